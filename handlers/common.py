"""Normalization helpers shared by provider modules (pure).

``e164``/``phone`` live in ``handlers.phone`` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, TypeVar

import msgspec

from handlers import limits
from handlers.base import InvalidEvent, NormalizeOptions

# re-exported (the writer imports ``e164`` from here); ``handlers.phone`` owns them
from handlers.phone import MIN_NUMBER_DIGITS as MIN_NUMBER_DIGITS
from handlers.phone import e164 as e164
from handlers.phone import phone as phone

T = TypeVar("T")


def shown(value: object, most: int = 64) -> str:
    """``value`` for an error message: quoted, cut to ``most`` characters, never raising
    (``str()`` of a 5,000-digit integer does)."""
    try:
        text = repr(value)
    except ValueError:
        return "<a number too long to show>"
    return text if len(text) <= most else text[:most] + "…"


def consteq(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two secrets/signatures."""
    ab = a.encode() if isinstance(a, str) else a
    bb = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


def iso_ms(dt: datetime) -> str:
    """HubSpot's timestamp form: ISO-8601 UTC with milliseconds and ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: object) -> datetime:
    """A provider timestamp (ISO-8601 string, Unix seconds or milliseconds) as aware UTC."""
    if isinstance(value, bool):
        raise InvalidEvent(f"invalid timestamp: {shown(value)}")
    if isinstance(value, int | float):
        try:
            seconds = value / 1000 if value > 10_000_000_000 else value
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidEvent(f"invalid timestamp: {shown(value)}") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return parse_time(int(text)) if len(text) <= 20 else parse_time(float("inf"))
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidEvent(f"invalid timestamp: {shown(value)}") from exc
        return _utc(dt, value)
    raise InvalidEvent(f"invalid timestamp: {shown(value)}")


def _utc(dt: datetime, value: object) -> datetime:
    """``dt`` as aware UTC; an offset that moves it past year 1 or 9999 is ``InvalidEvent``."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidEvent(f"timestamp out of range: {shown(value)}") from exc


def epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def disposition_guid(value: str | None, options: NormalizeOptions) -> str | None:
    """A disposition label (``connected``, ``no answer``, …) or GUID → HubSpot GUID."""
    if not value:
        return None
    label = value.strip().lower().replace("_", " ").replace("-", " ")
    if label in options.dispositions:
        return options.dispositions[label]
    if value in options.dispositions.values() or _looks_like_guid(value):
        return value
    return None


def _looks_like_guid(value: str) -> bool:
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


def owner_id(candidates: Iterable[str | None], options: NormalizeOptions) -> str | None:
    """The HubSpot owner for the first agent id/e-mail the owner map knows."""
    for candidate in candidates:
        if candidate and candidate in options.owner_map:
            return options.owner_map[candidate]
        if candidate and candidate.lower() in options.owner_map:
            return options.owner_map[candidate.lower()]
    return None


def call_title(direction: str | None, counterpart: str | None, agent: str | None = None) -> str:
    """A readable default title, e.g. ``Inbound call from +14155550142``."""
    if direction == "OUTBOUND":
        title = "Outbound call" + (f" to {counterpart}" if counterpart else "")
    elif direction == "INBOUND":
        title = "Inbound call" + (f" from {counterpart}" if counterpart else "")
    else:
        title = "Call" + (f" with {counterpart}" if counterpart else "")
    return title + (f" ({agent})" if agent else "")


#: the longest duration a provider may report (a week): beyond it the payload is nonsense,
#: and date arithmetic on it could overflow.
MAX_DURATION_MS: Final = limits.MAX_DURATION_MS


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def decode_json(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """A typed JSON body, or ``InvalidEvent`` naming what is wrong."""
    try:
        return decoder.decode(body)
    except (
        msgspec.DecodeError,
        msgspec.ValidationError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        # msgspec reports invalid UTF-8 inside a string as UnicodeDecodeError
        raise InvalidEvent(f"malformed payload: {str(exc)[:200]}") from exc


def duration_ms(value: object, scale: float = 1) -> int | None:
    """A non-negative duration (``value`` times ``scale`` ms) from a number or numeric string."""
    if value is None or value == "":
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # a 500-digit integer
            number = None
    elif isinstance(value, str) and len(value) <= 32:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number * scale <= MAX_DURATION_MS:
        raise InvalidEvent(f"invalid duration: {shown(value)}")
    return round(number * scale)


def minus_ms(dt: datetime, ms: int | None) -> datetime:
    """``dt`` moved ``ms`` milliseconds earlier (e.g. an end time back to the start)."""
    if not ms:
        return dt
    try:
        return dt - timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise InvalidEvent("timestamp out of range") from exc


def between_ms(start: datetime | None, end: datetime | None) -> int | None:
    """The milliseconds from ``start`` to ``end`` when both are known and in order."""
    if start is None or end is None or end < start:
        return None
    ms = round((end - start).total_seconds() * 1000)
    return ms if ms <= MAX_DURATION_MS else None


def rfc2822_time(value: str) -> datetime:
    """An RFC 2822 date (``Tue, 03 Mar 2026 15:04:05 +0000``) as aware UTC."""
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise InvalidEvent(f"invalid RFC 2822 timestamp: {value[:64]!r}") from exc
    return _utc(dt, value)


def maybe_time(value: object) -> datetime | None:
    """``parse_time`` for optional fields: ``None``/empty stays ``None``."""
    if value is None or value == "":
        return None
    return parse_time(value)


def ident(value: object) -> str | None:
    """A provider id (string or integer) as a non-empty string, else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
