"""Standard Webhooks (https://www.standardwebhooks.com) verification, as the
``standardwebhooks`` package does it, but against the injected clock.

- key: ``whsec_<base64>``; the bytes after the prefix, base64-decoded (padding optional),
  are the HMAC key;
- signed content: ``"{webhook-id}.{webhook-timestamp}.{raw body}"``, HMAC-SHA256;
- ``webhook-signature``: space-separated ``v1,<base64 signature>`` entries (several during
  a sender's key rotation); other versions are ignored; any ``v1`` match verifies;
- ``webhook-timestamp``: Unix seconds, refused more than 5 minutes before or after ``now``.

``webhook-id`` is returned: the caller uses it as the replay id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Final

from handlers.base import InvalidSignature

PREFIX: Final = "whsec_"
TOLERANCE_S: Final = 300
MAX_SIGNATURES: Final = 16
MAX_ID_CHARS: Final = 256


def key_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (``ValueError`` if it is not base64)."""
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "==")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
    if not key:
        raise ValueError("a whsec_ secret must not be empty")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature (senders and tests; the package's ``Webhook.sign``)."""
    mac = hmac.new(key_bytes(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> str:
    """The ``webhook-id`` of an authentic request, or ``InvalidSignature``."""
    webhook_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (webhook_id and timestamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    if len(webhook_id) > MAX_ID_CHARS:
        raise InvalidSignature(f"webhook-id longer than {MAX_ID_CHARS} characters")
    try:
        stamp = float(timestamp) if len(timestamp) <= 32 else math.nan
    except ValueError:
        stamp = math.nan
    if not math.isfinite(stamp):
        raise InvalidSignature("webhook-timestamp is not Unix seconds")
    if stamp < now - TOLERANCE_S:
        raise InvalidSignature("webhook-timestamp too old (5 min window)")
    if stamp > now + TOLERANCE_S:
        raise InvalidSignature("webhook-timestamp too new (5 min window)")
    try:
        key = key_bytes(secret)
    except ValueError as exc:
        raise InvalidSignature("the configured whsec_ key is not base64") from exc
    signed = f"{webhook_id}.{math.floor(stamp)}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for entry in signatures.split(" ")[:MAX_SIGNATURES]:
        version, sep, value = entry.partition(",")
        if not sep or version != "v1":
            continue
        try:
            candidate = base64.b64decode(value)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return webhook_id
    raise InvalidSignature("no matching webhook-signature")
