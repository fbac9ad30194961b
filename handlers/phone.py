"""Telephone numbers: E.164 normalization (``phonenumbers``), memoized and bounded.

Parsing a number costs tens of microseconds and the same few numbers (your lines, your
frequent callers) arrive on every event of a call, so ``e164`` keeps a bounded LRU cache
(``E164_CACHE_SIZE`` entries). Inputs longer than ``MAX_NUMBER_CHARS`` are never parsed nor
cached: no telephone number is that long, and a hostile 1 MiB "number" must not live in
the cache (the event builder refuses it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import phonenumbers

#: fewer digits than this is an internal extension or a placeholder, not a phone number.
MIN_NUMBER_DIGITS: Final = 7
#: the longest text treated as a telephone number (E.164 has at most 15 digits; formatted
#: input with spaces, dashes and an extension stays well below this).
MAX_NUMBER_CHARS: Final = 64
#: entries kept by the E.164 cache (each a short string pair).
E164_CACHE_SIZE: Final = 8192


@lru_cache(maxsize=E164_CACHE_SIZE)
def _e164(raw: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def e164(number: str | None, region: str) -> str | None:
    """The number in E.164 when it parses as a possible number, else the trimmed input."""
    if number is None:
        return None
    raw = number.strip()
    if not raw:
        return None
    if len(raw) > MAX_NUMBER_CHARS or len(region) > 3:
        return raw
    return _e164(raw, region)


def phone(value: str | None, region: str) -> str | None:
    """A telephone number in E.164 (or as given when it does not parse); SIP URIs, client
    identities, internal extensions and "Anonymous" are not numbers (``None``)."""
    if value is None or value.strip().lower().startswith(("client:", "sip:", "sips:")):
        return None
    if sum(c.isdigit() for c in value[: MAX_NUMBER_CHARS + 1]) < MIN_NUMBER_DIGITS:
        return None  # "Anonymous", "Restricted", internal extensions ("1001")…
    return e164(value, region)


def cache_info() -> str:
    """The E.164 cache's hit/miss figures (for benchmarks and diagnostics)."""
    return str(_e164.cache_info())
