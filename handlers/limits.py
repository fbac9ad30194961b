"""Edge limits: what the ingress accepts at most, checked before anything expensive.

The numbers are part of the contract (README "Security", ARCHITECTURE "Edge limits"):

| what | limit |
| --- | --- |
| ``call_id``, ``event_id`` | ``MAX_ID_CHARS`` (256) characters, not empty |
| event ``type`` | ``MAX_TYPE_CHARS`` (128) characters |
| ``contact_ids``, ``company_ids``, ``deal_ids`` | ``MAX_ASSOCIATIONS`` (100) each, numeric, ≤ 19 digits |
| text properties (title, notes, …) | ``MAX_TEXT_CHARS`` (65,536: HubSpot's limit for a string property) |
| recording URL | ``MAX_URL_CHARS`` (2,048), ``http(s)://`` |
| phone numbers | ``phone.MAX_NUMBER_CHARS`` (64) characters |
| timestamps | from ``MIN_TIME`` (2000-01-01T00:00:00Z) to now + ``MAX_FUTURE_S`` (1 day) |
| durations | 0 to ``MAX_DURATION_MS`` (7 days) |
| sequence numbers | 0 to ``MAX_SEQUENCE`` (2**63 - 1) |
| JSON nesting (bodies and JWT segments) | ``MAX_DEPTH`` (32) levels, refused before any decoder runs |
| form parameters (Twilio) | ``MAX_FORM_PARAMS`` (256) |

``nesting_depth`` measures bracket depth at C speed (``bytes.translate`` and
``itertools.accumulate``), so a 1 MiB body of ``[`` costs milliseconds, and no recursive
decoder (msgspec, orjson, the stdlib ``json`` inside PyJWT) ever sees it.
"""

from __future__ import annotations

import base64
import binascii
import operator
import re
from datetime import UTC, datetime
from itertools import accumulate
from typing import Final

MAX_ID_CHARS: Final = 256
MAX_TYPE_CHARS: Final = 128
MAX_ASSOCIATIONS: Final = 100
MAX_ASSOCIATION_ID_DIGITS: Final = 19
MAX_TEXT_CHARS: Final = 65_536
MAX_URL_CHARS: Final = 2_048
MIN_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: the latest time accepted when no clock is given (offline use: tests, benchmarks).
MAX_TIME_WITHOUT_CLOCK: Final = datetime(2100, 1, 1, tzinfo=UTC)
MAX_FUTURE_S: Final = 24 * 3600
MAX_DURATION_MS: Final = 7 * 24 * 3600 * 1000
MAX_SEQUENCE: Final = 2**63 - 1
MAX_DEPTH: Final = 32
MAX_FORM_PARAMS: Final = 256
#: events per generic request.
MAX_EVENTS: Final = 100

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN_CLOSE = bytes(range(256)).translate(None, b"[]{}")
# "[" and "{" count +1, "]" and "}" -1: mapped to 2 and 0, prefix sums minus the index.
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_CHUNK: Final = 1 << 14


def nesting_depth(data: bytes, stop_above: int | None = None) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text (brackets inside strings ignored).
    Linear, no recursion; malformed input gives a number, never an error. With
    ``stop_above`` it returns as soon as the depth exceeds that value."""
    brackets = _STRING.sub(b"", data).translate(None, _OPEN_CLOSE).translate(_STEP)
    depth = deepest = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = brackets[start : start + _CHUNK]
        levels = list(
            map(operator.sub, accumulate(chunk, initial=depth + 1), range(len(chunk) + 1))
        )
        deepest = max(deepest, max(levels) - 1)
        depth = levels[-1] - 1
        if stop_above is not None and deepest > stop_above:
            break
    return max(0, deepest)


def too_deep(data: bytes) -> bool:
    """Whether a JSON text nests deeper than ``MAX_DEPTH`` (a body with fewer opening
    brackets than that is answered without scanning)."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    return nesting_depth(data, stop_above=MAX_DEPTH) > MAX_DEPTH


def jwt_too_deep(token: str | bytes) -> bool:
    """Whether the header or payload of a compact JWT nests deeper than ``MAX_DEPTH``
    (checked before PyJWT's ``json.loads`` can recurse). Undecodable segments are not deep:
    the JWT decoder refuses them cheaply."""
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    for segment in raw.split(b".")[:2]:
        try:
            decoded = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            continue
        if too_deep(decoded):
            return True
    return False
