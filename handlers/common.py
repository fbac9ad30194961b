"""Normalization helpers shared by provider modules (pure)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import phonenumbers

from handlers.base import InvalidEvent, NormalizeOptions
from service.model import CALL_SOURCE


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
        if text.isdigit():
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
