"""The verdict counts exactly what the sandbox and the DLQ hold (pure)."""

from __future__ import annotations

from typing import Any

from chaos.judge import judge
from chaos.load import REJECT_TITLE, Call

T0 = 1_800_000_000.0


def record(c: Call, **override: Any) -> dict[str, Any]:
    want = c.expected(T0)
    props = {
        "hs_call_external_id": c.key,
        "hs_call_status": want["hs_call_status"],
        "hs_call_duration": want["hs_call_duration"],
        "hs_call_direction": want["hs_call_direction"],
        "hs_timestamp": "2027-01-15T08:00:00.000Z",
    }
    props.update(override)
    out: dict[str, Any] = {"id": "1", "properties": {k: v for k, v in props.items() if v}}
    contacts = override.get("contacts", want["contacts"])
    out["properties"].pop("contacts", None)
    if contacts:
        out["associations"] = {"contacts": {"results": [{"id": i} for i in contacts]}}
    return out


def calls() -> list[Call]:
    a = Call("generic", "a", "INBOUND", "+12125550101", True, 3, 60)
    b = Call("twilio", "CAb", "OUTBOUND", "+12125550102", False, 5, 0)
    b.phone_contacts = ("501",)
    r = Call("generic", "r", "INBOUND", "+12125550103", True, 3, 10, title=REJECT_TITLE)
    return [a, b, r]


def test_all_present_and_right() -> None:
    """One right record per call, the rejected one dead-lettered with a reason: clean."""
    cs = calls()
    for c in cs:
        c.start_rel = 0  # hs_timestamp of record() is T0
    recs = [record(c) for c in cs]
    dlq = [("generic:r", {"dlq.error.category": "VALIDATION_ERROR", "dlq.error.message": "bad"})]
    v = judge(cs, recs, dlq, T0, {})
    assert (v["lost"], v["duplicates"], v["wrong"], v["records"]) == (0, 0, 0, 3)
    assert v["rejected_without_dlq_reason"] == 0 and v["rejected_absent_after_replay"] == 0


def test_lost_duplicated_wrong_and_undead_lettered_are_counted() -> None:
    """A missing call, a second record, a wrong status/contact and a silent rejection."""
    cs = calls()
    for c in cs:
        c.start_rel = 0
    a, b, _ = cs
    recs = [
        record(a),
        record(a),
        record(b, hs_call_status="COMPLETED", contacts=[]),
    ]
    v = judge(cs, recs, [], T0, {})
    assert v["lost"] == 1 and v["examples"]["lost"] == ["generic:r"]
    assert v["duplicates"] == 1 and v["records"] == 3 and v["duplicated_calls"] == 1
    assert v["wrong"] == 1
    assert set(v["wrong_by_property"]) == {"hs_call_status", "contacts"}
    assert v["rejected_without_dlq_reason"] == 1 and v["rejected_absent_after_replay"] == 1
