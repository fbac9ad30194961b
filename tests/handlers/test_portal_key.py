"""The portal dimension of the call key (``CallEvent.portal`` / ``portal_key``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from handlers.event import (
    DEFAULT_PORTAL,
    CallEvent,
    decode_event,
    encode_event,
    portal_key,
    split_portal_key,
)


def _event(portal: str = DEFAULT_PORTAL, call_id: str = "c-1") -> CallEvent:
    return CallEvent(
        provider="generic",
        call_id=call_id,
        event_id="e-1",
        type="call.ended",
        occurred_at="2026-03-03T15:04:05Z",
        sequence=1,
        properties={"hs_call_status": "COMPLETED"},
        portal=portal,
    )


def test_default_portal_records_are_unchanged() -> None:
    event = _event()
    assert b"portal" not in encode_event(event)
    assert event.portal_key == event.key == "generic:c-1"


def test_a_default_portal_read_from_text_is_still_omitted() -> None:
    """msgspec omits defaults by identity: a "default" parsed from a URL must not be written."""
    parsed = "".join(["def", "ault"])  # equal to DEFAULT_PORTAL, not the same object
    assert parsed is not DEFAULT_PORTAL
    assert b"portal" not in encode_event(_event(parsed))


def test_another_portal_is_another_call() -> None:
    a, b = _event("acme"), _event("globex")
    assert a.key == b.key == "generic:c-1"  # hs_call_external_id within each portal
    assert a.portal_key == "acme/generic:c-1" != b.portal_key
    assert decode_event(encode_event(a)).portal == "acme"


def test_an_old_record_without_a_portal_is_the_default_portal() -> None:
    raw = encode_event(_event())
    assert decode_event(raw).portal == DEFAULT_PORTAL


@given(
    portal=st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True),
    call_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
)
def test_split_inverts_portal_key(portal: str, call_id: str) -> None:
    key = f"generic:{call_id}"  # call ids may hold '/' and ':'
    assert split_portal_key(portal_key(portal, key)) == (portal, key)
    assert split_portal_key(key) == (DEFAULT_PORTAL, key)
