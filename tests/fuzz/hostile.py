"""Hypothesis generators of hostile, validly signed provider requests.

A request starts from a provider's documented example (``tests/fixtures/providers``) and
gets one or two hostile edits: a value replaced by raw JSON text that no well-behaved
sender produces (deep nesting, 500- and 5,000-digit numbers, ``NaN``, dates in year 1 or
9999 with offsets, lone surrogates, invalid UTF-8, 70,000-character strings, wrong types),
a duplicated key, an oversized or mistyped body. Then it is signed the provider's own way,
so that the ingress has to get past authenticity and cope with the content.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from handlers import generic, zoom
from tests.handlers.signed import FIXTURES, load

#: raw JSON texts no sender should send (bytes: some are not valid JSON or not UTF-8).
RAW_VALUES: list[bytes] = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-1e999",
    b"-0",
    b"9" * 500,
    b"-" + b"9" * 5000,
    b"1" + b"0" * 30,
    b"123456789012345678901234567890.5",
    b'"9999-12-31T23:59:59-05:00"',
    b'"0001-01-01T00:00:00+05:00"',
    b'"9999-12-31T23:59:59.999999+14:00"',
    b'"1969-12-31T23:59:59Z"',
    b'"2999-01-01T00:00:00Z"',
    b'"' + b"9" * 500 + b'"',
    b'"\\ud800"',
    b'"\\udfff\\ud800x"',
    b'"\xff\xfe\xfa"',
    b'"\xc3\x28"',
    b'"' + b"x" * 70_000 + b'"',
    b'"' + b"+1415555" * 400 + b'"',
    b"[" * 6000 + b"]" * 6000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"[" * 40 + b"]" * 40,
    b"null",
    b"true",
    b"[]",
    b"{}",
    b'""',
    b'"   "',
    b"[1, 2, 3]",
    b'{"nested": {"id": [1, {"x": null}]}}',
    b'["' + b'", "'.join(str(n).encode() for n in range(150)) + b'"]',
    b'["1", "not-a-number", "3"]',
    b'"\\u0000\\u0001\\u001f"',
    b'"client:agent"',
    b'"sip:alice@example.com"',
    b'"javascript:alert(1)"',
]

#: whole-body variants that replace the document itself.
RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"[" * 100_000,
    b"{" * 50_000,
    b'{"a": "b"',
    b"\xff\xfe\x00\x00",
    b"NaN",
    b'{"a": 1, "a": 2, "a": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
]

JSON_VALUE = st.one_of(
    st.sampled_from(RAW_VALUES),
    st.integers(min_value=-(10**40), max_value=10**40).map(lambda n: str(n).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(f).encode()),
    st.text(max_size=80).map(lambda t: json.dumps(t).encode()),
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out.append((*prefix, index))
            out.extend(_paths(value, (*prefix, index)))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


@st.composite
def hostile_json(
    draw: st.DrawFn, base: dict[str, Any], keep: frozenset[str] = frozenset()
) -> bytes:
    """``base`` as JSON bytes with one to three hostile edits (``keep``: top-level keys
    never edited, e.g. Aircall's ``token``)."""
    doc = json.loads(json.dumps(base))
    edits = draw(st.integers(min_value=1, max_value=3))
    paths = [p for p in _paths(doc) if p[0] not in keep]
    raws: dict[str, bytes] = {}
    duplicate: bytes | None = None
    for n in range(edits):
        kind = draw(st.sampled_from(["replace", "replace", "replace", "duplicate", "drop"]))
        if kind == "duplicate":
            key = draw(st.sampled_from(sorted(doc))) if doc else "x"
            duplicate = json.dumps(key).encode() + b": " + draw(JSON_VALUE)
            continue
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        try:
            if kind == "drop":
                parent = doc
                for step in path[:-1]:
                    parent = parent[step]
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
            else:
                marker = f"@@hostile{n}@@"
                _set(doc, path, marker)
                raws[marker] = draw(JSON_VALUE)
        except (KeyError, IndexError, TypeError):
            continue
        paths = [p for p in _paths(doc) if p[0] not in keep]
    body = orjson.dumps(doc)
    for marker, raw in raws.items():
        body = body.replace(b'"' + marker.encode() + b'"', raw)
    if duplicate is not None and body.startswith(b"{") and len(body) > 2:
        body = b"{" + duplicate + b", " + body[1:]
    return body


@dataclass
class Request:
    """A request to post: path (with query), headers, body, and what the test knows."""

    path: str
    headers: dict[str, str]
    body: bytes
    now: float
    notes: list[str] = field(default_factory=list)


Fixture = tuple[str, float, bytes]


def fixtures(provider: str) -> list[Fixture]:
    """(name, a fresh ``now``, raw body) of the provider's documented examples."""
    out = []
    for fx in FIXTURES:
        if fx.provider != provider or fx.handshake:
            continue
        out.append((fx.name, fx.now, load(provider, fx.name)))
    return out


def generic_payload(now: float) -> dict[str, Any]:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:8]}",
        "call_id": f"c-{uuid.uuid4().hex[:6]}",
        "type": "call.ended",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
        "direction": "inbound",
        "from": "+14155550142",
        "to": "+18005550100",
        "status": "COMPLETED",
        "duration_ms": 124000,
        "recording_url": "https://example.com/rec.mp3",
        "title": "t",
        "notes": "n",
        "disposition": "connected",
        "agent": {"id": "u1", "email": "a@example.com", "name": "A"},
        "contact_ids": ["101"],
        "company_ids": [],
        "deal_ids": ["7"],
    }


def _jwt(secret: str, header: bytes, payload: bytes) -> str:
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(header) + b"." + b64(payload)
    mac = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(mac)).decode()


HS256_HEADER = b'{"alg":"HS256","typ":"JWT"}'
HOSTILE_HEADERS = [
    HS256_HEADER,
    b'{"alg":"HS256","typ":"JWT","x":' + b"[" * 6000 + b"]" * 6000 + b"}",
    b'{"alg":"HS256","kid":' + b"9" * 5000 + b"}",
    b'{"alg":"none"}',
    b"[" * 3000,
]


@st.composite
def envelope(draw: st.DrawFn) -> str:
    """How the body is framed: as signed, oversized, or with a wrong content type."""
    return draw(st.sampled_from(["signed"] * 16 + ["huge", "ctype", "raw_body"]))


def frame(draw: st.DrawFn, req: Request, limit: int) -> Request:
    """Apply the envelope: an oversized body (413), a wrong content type (415)."""
    kind = draw(envelope())
    if kind == "huge":
        req.body = req.body + b" " * (limit + 1)
        req.notes.append("huge")
    elif kind == "ctype":
        req.headers["content-type"] = draw(
            st.sampled_from(["text/xml", "image/png", "multipart/form-data"])
        )
        req.notes.append("ctype")
    return req


@st.composite
def generic_requests(
    draw: st.DrawFn, secret: str, whsec: str, now: float, fixture: Fixture | None = None
) -> Request:
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.sampled_from(RAW_BODIES))
    elif draw(st.booleans()):
        body = draw(hostile_json(generic_payload(now)))
    else:
        events = [generic_payload(now) for _ in range(draw(st.integers(1, 3)))]
        body = draw(hostile_json({"events": events}))
    headers = {"content-type": "application/json"}
    if draw(st.booleans()):
        webhook_id = draw(st.sampled_from([f"msg_{uuid.uuid4().hex}", "x" * 300, "msg 1"]))
        stamp = int(now)
        from standardwebhooks import Webhook

        try:
            signature = Webhook(whsec).sign(webhook_id, _dt(stamp), body.decode())
        except UnicodeDecodeError:  # the package signs text: sign the bytes our way
            from handlers import stdwebhooks

            signature = stdwebhooks.sign(whsec, webhook_id, stamp, body)
        headers |= {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1,bm90LWl0 " + signature,
        }
    else:
        ts = str(int(now))
        headers |= {
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(secret, ts, body),
        }
    return frame(draw, Request("/webhooks/generic", headers, body, now), 1024 * 1024)


def _dt(stamp: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC)


@st.composite
def zoom_requests(draw: st.DrawFn, secret: str, fixture: Fixture | None = None) -> Request:
    name, now, raw = fixture or draw(st.sampled_from(fixtures("zoom")))
    body = (
        draw(st.sampled_from(RAW_BODIES))
        if draw(st.integers(0, 9)) == 0
        else draw(hostile_json(orjson.loads(raw)))
    )
    ts = str(int(now))
    headers = {
        "content-type": "application/json",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": zoom.sign(secret, ts, body),
    }
    return frame(draw, Request("/webhooks/zoom", headers, body, now, [name]), 1024 * 1024)


@st.composite
def aircall_requests(draw: st.DrawFn, secret: str, fixture: Fixture | None = None) -> Request:
    name, now, raw = fixture or draw(st.sampled_from(fixtures("aircall")))
    payload = orjson.loads(raw)
    payload["token"] = secret
    body = draw(hostile_json(payload, keep=frozenset({"token"})))
    return frame(
        draw,
        Request("/webhooks/aircall", {"content-type": "application/json"}, body, now, [name]),
        1024 * 1024,
    )


@st.composite
def ringcentral_requests(draw: st.DrawFn, secret: str, fixture: Fixture | None = None) -> Request:
    name, now, raw = fixture or draw(st.sampled_from(fixtures("ringcentral")))
    body = (
        draw(st.sampled_from(RAW_BODIES))
        if draw(st.integers(0, 9)) == 0
        else draw(hostile_json(orjson.loads(raw)))
    )
    headers = {"content-type": "application/json", "verification-token": secret}
    return frame(draw, Request("/webhooks/ringcentral", headers, body, now, [name]), 1024 * 1024)


@st.composite
def vonage_requests(draw: st.DrawFn, secret: str, fixture: Fixture | None = None) -> Request:
    name, now, raw = fixture or draw(st.sampled_from(fixtures("vonage")))
    body = (
        draw(st.sampled_from(RAW_BODIES))
        if draw(st.integers(0, 9)) == 0
        else draw(hostile_json(orjson.loads(raw)))
    )
    claims = {
        "iat": int(now),
        "jti": uuid.uuid4().hex,
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    header = draw(st.sampled_from(HOSTILE_HEADERS * 3 + [HS256_HEADER] * 12))
    token = _jwt(secret, header, orjson.dumps(claims))
    path = "/webhooks/vonage"
    query = draw(st.sampled_from(["", "", "", "?uuid=someone-else", "?uuid=x&uuid_sig=00"]))
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    return frame(draw, Request(path + query, headers, body, now, [name]), 1024 * 1024)


@st.composite
def dialpad_requests(draw: st.DrawFn, secret: str, fixture: Fixture | None = None) -> Request:
    name, now, raw = fixture or draw(st.sampled_from(fixtures("dialpad")))
    payload = (
        draw(st.sampled_from(RAW_BODIES))
        if draw(st.integers(0, 9)) == 0
        else draw(hostile_json(orjson.loads(raw)))
    )
    header = draw(st.sampled_from(HOSTILE_HEADERS * 3 + [HS256_HEADER] * 12))
    body = _jwt(secret, header, payload).encode()
    content_type = draw(st.sampled_from(["application/jwt", "text/plain", "application/json", ""]))
    headers = {"content-type": content_type} if content_type else {}
    return frame(draw, Request("/webhooks/dialpad", headers, body, now, [name]), 1024 * 1024)


TWILIO_VALUES = st.one_of(
    st.sampled_from(
        [
            "Fri, 31 Dec 9999 23:59:59 -0500",
            "Mon, 01 Jan 0001 00:00:00 +0500",
            "9" * 500,
            "-1",
            "NaN",
            "1e999",
            "",
            " ",
            "x" * 5000,
            "client:",
            "outbound-api",
            "completed",
            "\ud7ff\ufffd",
        ]
    ),
    st.text(max_size=40),
)


@st.composite
def twilio_requests(
    draw: st.DrawFn, secret: str, base_url: str, fixture: Fixture | None = None
) -> Request:
    name, now, raw = fixture or draw(st.sampled_from(fixtures("twilio")))
    url = base_url + "/webhooks/twilio"
    validator = RequestValidator(secret)
    if name.endswith("_json"):
        body = draw(hostile_json(orjson.loads(raw)))
        target = url + "?bodySHA256=" + hashlib.sha256(body).hexdigest()
        headers = {
            "content-type": "application/json",
            "x-twilio-signature": validator.compute_signature(target, {}),
        }
        return frame(
            draw, Request(target.removeprefix(base_url), headers, body, now, [name]), 64 * 1024
        )
    params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(params) + ["Extra", "SequenceNumber", "CallDuration"]))
        params[key] = draw(TWILIO_VALUES)
    if draw(st.integers(0, 19)) == 0:
        params |= {f"P{n}": "v" for n in range(300)}  # more parameters than any callback
    body = urlencode(params).encode()
    if draw(st.integers(0, 19)) == 0:
        body += b"&Junk=%FF%FE"  # not UTF-8 once decoded: cannot be signed as text
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": validator.compute_signature(url, params),
    }
    return frame(draw, Request("/webhooks/twilio", headers, body, now, [name]), 64 * 1024)


def batches(
    provider: str, make: Callable[[Fixture], st.SearchStrategy[Request]], size: int
) -> st.SearchStrategy[list[Request]]:
    """``size`` requests on one documented example (they share its ``now``, so that they can
    be in flight together against one clock)."""
    return st.sampled_from(fixtures(provider)).flatmap(
        lambda fx: st.lists(make(fx), min_size=size, max_size=size)
    )
