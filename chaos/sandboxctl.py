"""The sandbox's test-control API (``/_sandbox/*``) and its HubSpot reads, for the judge."""

from __future__ import annotations

from typing import Any

import httpx

TOKEN = "sandbox-token"


class Sandbox:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def faults(self, **settings: Any) -> None:
        self.http.post("/_sandbox/faults", json=settings).raise_for_status()

    def clear(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/_sandbox/stats").json()
        return body

    def create_contacts(self, numbers: list[str]) -> dict[str, str]:
        book: dict[str, str] = {}
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            r = self.http.post(
                "/crm/v3/objects/contacts/batch/create",
                json={"inputs": [{"properties": {"phone": n}} for n in chunk]},
            )
            r.raise_for_status()
            for item in r.json()["results"]:
                book[item["properties"]["phone"]] = item["id"]
        return book

    def calls(self) -> list[dict[str, Any]]:
        props = "hs_call_external_id,hs_call_status,hs_call_duration,hs_call_direction,hs_timestamp,hs_call_title"
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"limit": "100", "properties": props, "associations": "contacts"}
            if after:
                params["after"] = after
            r = self.http.get("/crm/v3/objects/calls", params=params)
            r.raise_for_status()
            body = r.json()
            out.extend(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                return out
