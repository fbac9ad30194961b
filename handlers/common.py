"""Normalization helpers shared by provider modules (pure)."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, TypeVar

import msgspec
import phonenumbers

from handlers.base import InvalidEvent, NormalizeOptions
from service.model import CALL_SOURCE

T = TypeVar("T")


def consteq(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two secrets/signatures."""
    ab = a.encode() if isinstance(a, str) else a
    bb = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


def e164(number: str | None, region: str) -> str | None:
    """The number in E.164 when it parses as a possible number, else the trimmed input."""
    if number is None:
        return None
    raw = number.strip()
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def iso_ms(dt: datetime) -> str:
    """HubSpot's timestamp form: ISO-8601 UTC with milliseconds and ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: object) -> datetime:
    """A provider timestamp (ISO-8601 string, Unix seconds or milliseconds) as aware UTC."""
    if isinstance(value, bool):
        raise InvalidEvent(f"invalid timestamp: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10_000_000_000 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidEvent(f"invalid timestamp: {value!r}") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return parse_time(int(text))
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidEvent(f"invalid timestamp: {value!r}") from exc
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    raise InvalidEvent(f"invalid timestamp: {value!r}")


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


def base_properties(provider: str, call_id: str, options: NormalizeOptions) -> dict[str, str]:
    """The properties every event of a call carries: HubSpot's calling-integration keys."""
    props = {
        "hs_call_external_id": f"{provider}:{call_id}",
        "hs_call_source": CALL_SOURCE,
    }
    if options.external_account_id:
        props["hs_call_external_account_id"] = options.external_account_id
    return props


def call_title(direction: str | None, counterpart: str | None, agent: str | None = None) -> str:
    """A readable default title, e.g. ``Inbound call from +14155550142``."""
    if direction == "OUTBOUND":
        title = "Outbound call" + (f" to {counterpart}" if counterpart else "")
    elif direction == "INBOUND":
        title = "Inbound call" + (f" from {counterpart}" if counterpart else "")
    else:
        title = "Call" + (f" with {counterpart}" if counterpart else "")
    return title + (f" ({agent})" if agent else "")


def put(props: dict[str, str], name: str, value: object) -> None:
    """Set ``name`` when ``value`` is meaningful, stringified as HubSpot stores it."""
    if value is None or value == "":
        return
    props[name] = str(value)


def require_mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"{what} must be a JSON object")
    return value


# --- helpers shared by the provider modules (twilio, aircall, zoom, ringcentral, vonage,
# dialpad). Every failure is an ``InvalidEvent`` (parse) so the ingress answers 400.

#: the longest duration a provider may report (a week): beyond it the payload is nonsense,
#: and date arithmetic on it could overflow.
MAX_DURATION_MS: Final = 7 * 24 * 3600 * 1000
#: fewer digits than this is an internal extension or a placeholder, not a phone number.
MIN_NUMBER_DIGITS: Final = 7


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def decode_json(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """A typed JSON body, or ``InvalidEvent`` naming what is wrong."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        # msgspec reports invalid UTF-8 inside a string as UnicodeDecodeError
        raise InvalidEvent(f"malformed payload: {exc}") from exc


def duration_ms(value: object, scale: float = 1) -> int | None:
    """A non-negative duration (``value`` times ``scale`` ms) from a number or numeric string."""
    if value is None or value == "":
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number * scale <= MAX_DURATION_MS:
        raise InvalidEvent(f"invalid duration: {value!r}")
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
        raise InvalidEvent(f"invalid RFC 2822 timestamp: {value!r}") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


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


def phone(value: str | None, region: str) -> str | None:
    """A telephone number in E.164 (or as given when it does not parse); SIP URIs, client
    identities, internal extensions and "Anonymous" are not numbers (``None``)."""
    if value is None or value.strip().lower().startswith(("client:", "sip:", "sips:")):
        return None
    if sum(c.isdigit() for c in value) < MIN_NUMBER_DIGITS:
        return None  # "Anonymous", "Restricted", internal extensions ("1001")…
    return e164(value, region)
