"""The verdict, from what HubSpot (the sandbox) and Kafka hold: pure, no I/O.

- ``records``: HubSpot call records of the load's calls (``hs_call_external_id`` among them);
- ``duplicates``: records beyond the first per call key (any key, poison or not);
- ``lost``: load calls with no record;
- ``wrong``: calls with one record that lacks an expected final property (status,
  duration, direction, timestamp, contacts), with the first few differences; a duplicated
  call is counted apart (``duplicated_calls_without_a_right_record``: its events were split
  between its records);
- every call the sandbox rejected (``REJECT-ME``) must have gone through ``calls.dlq`` with
  a reason (``dlq.error.category`` and ``dlq.error.message``) and be present after replay;
- poisons: refused by the ingress (4xx), or accepted and then written or dead-lettered with
  a reason; accepted and neither is a silent loss.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from chaos.load import Call


def _ms(value: str | None) -> int | None:
    if not value:
        return None
    if value.isdigit():
        return int(value)
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def differences(record: dict[str, Any], want: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Expected-vs-found for each property that differs (empty: all as expected)."""
    props = record.get("properties", {})
    out: dict[str, tuple[Any, Any]] = {}
    for name in ("hs_call_status", "hs_call_duration", "hs_call_direction"):
        found = props.get(name) or None
        if found != want[name]:
            out[name] = (want[name], found)
    ts = _ms(props.get("hs_timestamp"))
    if ts != want["hs_timestamp"]:
        out["hs_timestamp"] = (want["hs_timestamp"], ts)
    assoc = record.get("associations", {}).get("contacts", {}).get("results", [])
    contacts = sorted({a["id"] for a in assoc})
    if contacts != want["contacts"]:
        out["contacts"] = (want["contacts"], contacts)
    return out


def judge(
    calls: list[Call],
    records: list[dict[str, Any]],
    dlq: list[tuple[str, dict[str, str]]],
    t0: float,
    refused: dict[str, list[int]],
) -> dict[str, Any]:
    """Figures of one run. ``records`` are HubSpot call objects (properties +
    associations), ``dlq`` the (key, headers) of every ``calls.dlq`` record, ``refused`` the
    4xx statuses the ingress gave per call key."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        key = r.get("properties", {}).get("hs_call_external_id") or ""
        by_key.setdefault(key, []).append(r)
    load = [c for c in calls if not c.poison]
    poisons = [c for c in calls if c.poison]
    known = {c.key for c in calls}
    lost = [c.key for c in load if c.key not in by_key]
    duplicates = {k: len(v) - 1 for k, v in by_key.items() if len(v) > 1}
    wrong: dict[str, dict[str, tuple[Any, Any]]] = {}
    split = 0  # duplicated calls none of whose records is right: the events were split
    for c in load:
        found = by_key.get(c.key, [])
        if len(found) == 1:
            diff = differences(found[0], c.expected(t0))
            if diff:
                wrong[c.key] = diff
        elif found and all(differences(r, c.expected(t0)) for r in found):
            split += 1
    extra_created = sorted(
        _ms(r.get("createdAt")) or 0
        for k, rs in by_key.items()
        if len(rs) > 1
        for r in sorted(rs, key=lambda r: r.get("createdAt") or "")[1:]
    )
    dlq_keys: dict[str, list[dict[str, str]]] = {}
    for key, headers in dlq:
        dlq_keys.setdefault(key, []).append(headers)
    rejected = [c for c in load if c.rejected]
    rejected_missing_dlq = [
        c.key
        for c in rejected
        if not any(
            h.get("dlq.error.category") and h.get("dlq.error.message")
            for h in dlq_keys.get(c.key, [])
        )
    ]
    rejected_absent = [c.key for c in rejected if c.key not in by_key]
    poison_out: dict[str, dict[str, Any]] = {}
    for c in poisons:
        dead = dlq_keys.get(c.key, [])
        if c.key in refused:
            outcome = f"refused by the ingress ({','.join(map(str, sorted(set(refused[c.key]))))})"
        elif c.key in by_key:
            outcome = "written"
        elif dead:
            outcome = "dead-lettered: " + (dead[-1].get("dlq.error.category") or "?")
        else:
            outcome = "LOST (accepted, neither written nor dead-lettered)"
        poison_out[c.poison] = {
            "key": c.key[:80],
            "outcome": outcome,
            "reason": (dead[-1].get("dlq.error.message", "")[:200] if dead else ""),
        }
    categories = Counter(h.get("dlq.error.category", "?") for _, h in dlq)
    by_field = Counter(name for diff in wrong.values() for name in diff)
    return {
        "expected": len(load),
        "records": sum(len(by_key[c.key]) for c in load if c.key in by_key),
        "records_total": len(records),
        "unexpected_records": sum(len(v) for k, v in by_key.items() if k not in known),
        "lost": len(lost),
        "duplicates": sum(duplicates.values()),
        "wrong": len(wrong),
        "wrong_by_property": dict(by_field),
        "duplicated_calls": len(duplicates),
        "duplicated_calls_without_a_right_record": split,
        "duplicate_created_ms": extra_created,
        "wrong_created_ms": sorted(_ms(by_key[k][0].get("createdAt")) or 0 for k in wrong),
        "rejected_calls": len(rejected),
        "rejected_without_dlq_reason": len(rejected_missing_dlq),
        "rejected_absent_after_replay": len(rejected_absent),
        "dlq": {
            "records": len(dlq),
            "calls": len(dlq_keys),
            "by_category": dict(categories),
            "unexpected_calls": len(
                [k for k in dlq_keys if k not in {c.key for c in rejected + poisons}]
            ),
        },
        "poisons": poison_out,
        "examples": {
            "lost": lost[:10],
            "duplicates": sorted(duplicates)[:10],
            "wrong": {k: {n: list(v) for n, v in d.items()} for k, d in list(wrong.items())[:5]},
            "rejected_absent": rejected_absent[:10],
            "rejected_titles": [
                by_key[c.key][0].get("properties", {}).get("hs_call_title")
                for c in rejected[:5]
                if c.key in by_key
            ],
        },
    }
