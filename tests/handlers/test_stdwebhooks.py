"""Standard Webhooks on /webhooks/generic: signed with the ``standardwebhooks`` package,
verified by ours exactly as that package does (keys, signatures, window), ``webhook-id``
as the replay id; the X-Callbridge-* scheme beside it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from handlers import InvalidSignature, WebhookRequest, generic, stdwebhooks

KEY = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"another key, same length, 32 by").decode()
NOW = 1_772_550_245
BODY = orjson.dumps(
    {
        "event_id": "e-1",
        "call_id": "c-1",
        "type": "call.ended",
        "occurred_at": "2026-03-03T15:00:00Z",
    }
)


def signed(
    body: bytes = BODY, key: str = KEY, ts: int = NOW, msg_id: str = "msg_1"
) -> dict[str, str]:
    signature = Webhook(key).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature,
    }


def verify(
    headers: dict[str, str], secret: str = KEY, now: float = NOW, body: bytes = BODY
) -> str | None:
    request = WebhookRequest("POST", "https://h/webhooks/generic", headers, body)
    return generic.verify(request, secret, now).replay_id


def test_package_signature_verifies_and_webhook_id_is_the_replay_id() -> None:
    """A request signed by the standardwebhooks package verifies; its webhook-id is the replay id."""
    assert verify(signed()) == "msg_1"


def test_several_signatures_any_v1_matches() -> None:
    """webhook-signature may carry several space-separated signatures; other versions are ignored."""
    mine = signed()["webhook-signature"]
    theirs = signed(key=OTHER)["webhook-signature"]
    for value in (f"{theirs} {mine}", f"v2,abc {mine}", f"garbage {mine}"):
        assert verify({**signed(), "webhook-signature": value}) == "msg_1"
    with pytest.raises(InvalidSignature):
        verify({**signed(), "webhook-signature": f"{theirs} v2,{mine.split(',')[1]}"})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-id": "msg_2"}, "no matching"),
        ({"webhook-timestamp": str(NOW + 1)}, "no matching"),
        ({"webhook-timestamp": "soon"}, "Unix seconds"),
        ({"webhook-signature": ""}, "missing"),
        ({"webhook-id": ""}, "missing"),
    ],
)
def test_changed_headers_are_refused(change: dict[str, str], reason: str) -> None:
    """A different id or timestamp than the signed ones, or a missing header, is refused."""
    with pytest.raises(InvalidSignature, match=reason):
        verify({**signed(), **change})


def test_tampered_body_and_wrong_key_are_refused() -> None:
    """Another body or another key does not verify."""
    with pytest.raises(InvalidSignature):
        verify(signed(), body=BODY + b" ")
    with pytest.raises(InvalidSignature):
        verify(signed(), secret=OTHER)


def test_window_is_five_minutes_either_way_like_the_package() -> None:
    """Timestamps more than 300 s before or after now are refused, as the package does."""
    verify(signed(ts=NOW - 300), now=NOW)
    verify(signed(ts=NOW + 300), now=NOW)
    with pytest.raises(InvalidSignature, match="too old"):
        verify(signed(ts=NOW - 301), now=NOW)
    with pytest.raises(InvalidSignature, match="too new"):
        verify(signed(ts=NOW + 301), now=NOW)


def test_each_key_verifies_only_its_scheme() -> None:
    """A whsec_ key verifies webhook-* headers only; a plain key X-Callbridge-* only."""
    ts = str(NOW)
    callbridge = {
        "x-callbridge-timestamp": ts,
        "x-callbridge-signature": generic.sign("plain-secret", ts, BODY),
    }
    assert verify(callbridge, secret="plain-secret") is None
    with pytest.raises(InvalidSignature, match="whsec_"):
        verify(callbridge, secret=KEY)
    with pytest.raises(InvalidSignature, match="whsec_"):
        verify(signed(), secret="plain-secret")


def test_unpadded_base64_key_as_the_package_accepts() -> None:
    """Keys may be written without base64 padding (the package pads them)."""
    unpadded = "whsec_" + base64.b64encode(b"sixteen byte key").decode().rstrip("=")
    assert stdwebhooks.key_bytes(unpadded) == b"sixteen byte key"
    assert verify(signed(key=unpadded), secret=unpadded) == "msg_1"


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=200).filter(lambda b: _utf8(b)),
    msg_id=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
    ),
    skew=st.integers(min_value=-400, max_value=400),
    sign_with=st.sampled_from([KEY, OTHER]),
)
def test_our_verdict_is_the_packages(body: bytes, msg_id: str, skew: int, sign_with: str) -> None:
    """For generated bodies, ids, clock skews and keys, ours accepts exactly what the package
    accepts (the package reads the wall clock, so ``now`` is the real time here)."""
    import time

    now = int(time.time())
    headers = signed(body, key=sign_with, ts=now + skew, msg_id=msg_id)
    try:
        Webhook(KEY).verify(body, headers, json_parse=False)
        theirs = True
    except WebhookVerificationError:
        theirs = False
    try:
        stdwebhooks.verify(headers, body, KEY, now)
        ours = True
    except InvalidSignature:
        ours = False
    if abs(skew) in (299, 300, 301):
        return  # the package's clock moved on since ``now``: the edge itself is tested above
    assert ours == theirs


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
