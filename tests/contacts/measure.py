"""Figures for the README's contact-matching section (not a test; run by hand):

    .venv/bin/python -m tests.contacts.measure rss      # index RSS / disk per 100k contacts
    .venv/bin/python -m tests.contacts.measure cold     # 10k numbers matched before warm

``cold`` starts its own sandbox enforcing HubSpot's limits (190 per 10 s, 5 searches/s).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss(contacts: int = 100_000) -> None:
    from service.contacts.store import IndexStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.sqlite3"
        store = IndexStore(path)
        before = rss_kib()
        started = time.monotonic()
        for page in range(contacts // 100):
            rows = []
            for j in range(100):
                i = page * 100 + j
                numbers = {f"+1{200 + i % 700}{i:07d}"[:12]}
                if i % 3 == 0:
                    numbers.add(f"+44{7000000000 + i}")
                rows.append((str(10_000_000_000 + i), 1_700_000_000_000 + i, numbers))
            store.apply(rows, 1, {"cursor": str(page)})
        build_s = time.monotonic() - started
        after = rss_kib()
        wanted = [f"+1{200 + i % 700}{i:07d}"[:12] for i in range(0, contacts, 10)]
        started = time.monotonic()
        for k in range(0, len(wanted), 100):
            store.lookup(wanted[k : k + 100])
        lookup_s = time.monotonic() - started
        peak = rss_kib()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        rows_n, contacts_n = store.size()
        store.close()
    print(
        f"contacts={contacts_n} rows={rows_n} disk={size / 2**20:.1f} MiB "
        f"rss_before={before / 1024:.1f} MiB rss_after_build={after / 1024:.1f} MiB "
        f"rss_after_lookups={peak / 1024:.1f} MiB (+{(peak - before) / 1024:.1f} MiB) "
        f"build={build_s:.1f} s ({contacts // 100} pages) "
        f"lookups={len(wanted)} in {lookup_s:.2f} s"
    )


async def cold(n: int = 10_000) -> None:
    from service.config import Settings
    from service.contacts import make_contact_matcher
    from service.hubspot import HubSpotClient
    from tests.contacts.test_scale import number
    from tests.fixtures.sandbox import start_sandbox, stop_sandbox

    with tempfile.TemporaryDirectory() as tmp:
        server = start_sandbox(
            "--rate-limit", "100000", "--search-rate", "100000", log_dir=Path(tmp)
        )
        try:
            headers = {"Authorization": f"Bearer {server.token}"}
            typed = [number(i) for i in range(n)]
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as c:
                for s in range(0, n, 100):
                    inputs = [{"properties": {"phone": t}} for t, _ in typed[s : s + 100]]
                    await c.post("/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
                await c.post("/_sandbox/config", json={"rate_limit": 190, "search_rate": 5})
            await asyncio.sleep(10.5)
            settings = Settings(contact_index_dir=Path(tmp) / "idx")
            async with HubSpotClient(server.url, server.token, rate=190, search_rate=5) as hs:
                m = make_contact_matcher(hs, settings)
                started = time.monotonic()
                matched = 0
                for s in range(0, n, 100):
                    got = await m.match([e for _, e in typed[s : s + 100]])
                    matched += sum(1 for v in got.values() if v)
                took = time.monotonic() - started
                await m.aclose()
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
                stats = (await c.get("/_sandbox/stats")).json()["requests"]
            spent = sum(stats.get("searchContacts", {}).values())
            throttled = sum(v.get("429", 0) for v in stats.values())
            print(
                f"cold: {n} numbers in flushes of 100, matched={matched}, searches={spent} "
                f"({n / max(spent, 1):.1f} numbers per search), {took:.1f} s, 429s={throttled}"
            )
        finally:
            stop_sandbox(server.process)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "rss"
    if what == "rss":
        rss()
    else:
        asyncio.run(cold())
