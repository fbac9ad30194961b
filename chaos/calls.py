"""The load's model: a provider call (``Call``), its events (``Event``, signed once at
first delivery), the deliveries that carry them (``Delivery``) and the signed requests
(``Request``), plus the secrets every provider is enabled with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.config import PROVIDER_SECRETS

PROVIDERS: tuple[str, ...] = (
    "generic",
    "twilio",
    "aircall",
    "zoom",
    "ringcentral",
    "vonage",
    "dialpad",
)
#: environment variable of each provider's secret (the ingress's contract names).
SECRET_ENV: dict[str, str] = {p: f"CALLBRIDGE_{a.upper()}" for p, a in PROVIDER_SECRETS.items()}
SECRETS: dict[str, str] = {p: f"load-{p}-secret-0123456789abcdef" for p in PROVIDERS}
#: the company's own line (the non-counterpart side of every call).
LINE = "+14155550100"
REJECT_TITLE = "REJECT-ME"


def secrets_env(secrets: dict[str, str] | None = None) -> dict[str, str]:
    """``CALLBRIDGE_*`` variables enabling every provider with the load's secrets."""
    return {SECRET_ENV[p]: s for p, s in (secrets or SECRETS).items()}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{round(ts * 1000) % 1000:03d}Z"
    )


def rfc2822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


@dataclass
class Call:
    """One provider call: the truth its events describe."""

    provider: str
    call_id: str
    direction: str  # INBOUND | OUTBOUND
    counterpart: str  # the customer's number, E.164
    answered: bool
    ring_s: int  # start → answer (or → give-up)
    talk_s: int  # answer → hang-up (0 when unanswered)
    #: when the call started, in seconds after the load's t0 (negative: before it)
    start_rel: float = 0.0
    title: str | None = None  # generic only
    contact_ids: tuple[str, ...] = ()  # explicit associations (generic only)
    #: contacts whose phone is the counterpart (filled from the contact book)
    phone_contacts: tuple[str, ...] = ()
    #: a poison's kind ("" for an ordinary call)
    poison: str = ""

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.call_id}"

    @property
    def rejected(self) -> bool:
        return self.title == REJECT_TITLE

    def expected(self, t0: float) -> dict[str, Any]:
        """The final HubSpot properties this call must have (``None``: must be absent)."""
        start = t0 + self.start_rel
        if self.answered:
            status = "COMPLETED"
            # RingCentral's notifications state no duration: the writer derives it from the
            # answered and ended times, which are the call's talk time too
            duration: str | None = str(self.talk_s * 1000)
        else:
            status = "MISSED" if self.direction == "INBOUND" else "NO_ANSWER"
            if self.provider == "twilio":  # CallStatus=no-answer whatever the direction
                status = "NO_ANSWER"
            duration = None
        return {
            "hs_call_status": status,
            "hs_call_duration": duration,
            "hs_call_direction": self.direction,
            "hs_timestamp": round(start * 1000),
            "contacts": sorted(set(self.contact_ids) | set(self.phone_contacts)),
        }


@dataclass
class Request:
    """A signed webhook request, ready to post."""

    path: str  # /webhooks/<provider>[?query]
    headers: dict[str, str]
    body: bytes
    signed_at: float


@dataclass
class Event:
    """One provider event of a call: rendered (signed) once, at its first delivery."""

    call: Call
    name: str
    at_rel: float  # when it happened, seconds after t0
    build: Callable[[Event, float, float], Request]
    _request: Request | None = None
    attempts: int = 0

    def request(self, t0: float, now: float, *, fresh: bool = False) -> Request:
        """The signed request; the same bytes every time unless the scheme forbids it
        (Vonage's one-time ``jti``) or ``fresh`` asks for a new signature."""
        self.attempts += 1
        if self._request is None or fresh or self.call.provider == "vonage":
            self._request = self.build(self, t0, now)
        return self._request


@dataclass
class Delivery:
    """One POST the load sends: an event, maybe a re-delivery of it."""

    event: Event
    duplicate: bool
    slot: float  # position in the schedule (seconds after t0 at the nominal rate)

    @property
    def call(self) -> Call:
        return self.event.call
