"""One way to build a ``CallEvent``: providers extract ``CallFacts``, ``build_event`` does the rest.

Every provider module reads its payload into the same typed facts (who, when, what status,
which numbers, which agent); this module turns facts into HubSpot call properties once: the
calling-integration keys, ``hs_timestamp``, direction, status and disposition GUID, numbers,
owner, title, recording and body. It is also the one place where the edge limits
(``handlers.limits``) are enforced on what becomes an event, so that no provider can let a
3,000-character call id, a year-9999 date or an unencodable string through to Kafka.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from handlers import limits
from handlers.base import InvalidEvent, NormalizeOptions
from handlers.common import call_title, disposition_guid, epoch_ms, iso_ms, owner_id
from handlers.event import CALL_SOURCE, DIRECTIONS, STATUS_RANK, CallEvent, encode_event
from handlers.phone import MAX_NUMBER_CHARS

#: ``hs_call_status`` of a call that was never answered, by direction: a customer's call the
#: company missed is ``MISSED``; a company call the customer did not pick up is ``NO_ANSWER``.
UNANSWERED: Final = {"INBOUND": "MISSED", "OUTBOUND": "NO_ANSWER"}


def direction_of(value: str | None) -> str | None:
    """A provider's direction word (``inbound``, ``outbound``, ``outbound-api``, …) as
    HubSpot's ``INBOUND``/``OUTBOUND``, else ``None``."""
    word = (value or "").strip().lower()
    if word == "inbound":
        return "INBOUND"
    if word.startswith("outbound"):
        return "OUTBOUND"
    return None


def unanswered(direction: str | None) -> str:
    """The status of an unanswered call (see ``UNANSWERED``; unknown direction: NO_ANSWER)."""
    return UNANSWERED.get(direction or "", "NO_ANSWER")


@dataclass(frozen=True)
class CallFacts:
    """What one provider event says about one call, in HubSpot's vocabulary but not yet
    as properties. Numbers are already normalized (``handlers.phone``); ``disposition`` is
    a label (``connected``, ``no answer``…) or a GUID; ``agents`` are owner-map candidates."""

    provider: str
    call_id: str
    event_id: str
    type: str
    occurred: datetime
    #: when the call started (``hs_timestamp``); default ``occurred``.
    started: datetime | None = None
    #: merge order within the call; default ``occurred`` in epoch milliseconds.
    sequence: int | None = None
    direction: str | None = None
    status: str | None = None
    disposition: str | None = None
    duration_ms: int | None = None
    from_number: str | None = None
    to_number: str | None = None
    recording_url: str | None = None
    #: ``hs_call_title``; ``None`` builds one from direction, counterpart and agent name
    #: unless ``titled`` is false (events that only add a recording).
    title: str | None = None
    titled: bool = True
    body: str | None = None
    agents: Sequence[str | None] = ()
    agent_name: str | None = None
    contact_ids: Sequence[str] = field(default_factory=tuple)
    company_ids: Sequence[str] = field(default_factory=tuple)
    deal_ids: Sequence[str] = field(default_factory=tuple)

    @property
    def counterpart(self) -> str | None:
        """The customer's number: the caller on inbound calls, the callee otherwise."""
        return self.from_number if self.direction == "INBOUND" else self.to_number


def build_event(facts: CallFacts, options: NormalizeOptions, now: float | None = None) -> CallEvent:
    """The ``CallEvent`` for ``facts``, or ``InvalidEvent`` naming the limit it breaks.

    ``now`` (Unix seconds, the ingress clock) bounds timestamps to now + 1 day; without it
    (offline use) the bound is ``limits.MAX_TIME_WITHOUT_CLOCK``."""
    call_id = _ident(facts.call_id, "call_id")
    event_id = _ident(facts.event_id, "event_id")
    _text(facts.type, "type", limits.MAX_TYPE_CHARS)
    latest = (
        limits.MAX_TIME_WITHOUT_CLOCK
        if now is None
        else datetime.fromtimestamp(now, UTC) + timedelta(seconds=limits.MAX_FUTURE_S)
    )
    occurred = _time(facts.occurred, latest, "occurred time")
    started = _time(facts.started or facts.occurred, latest, "start time")
    sequence = epoch_ms(occurred) if facts.sequence is None else facts.sequence
    if not 0 <= sequence <= limits.MAX_SEQUENCE:
        raise InvalidEvent(f"sequence must be between 0 and {limits.MAX_SEQUENCE}")
    if facts.direction is not None and facts.direction not in DIRECTIONS:
        raise InvalidEvent(f"unknown direction {facts.direction!r}")
    if facts.status is not None and facts.status not in STATUS_RANK:
        raise InvalidEvent(f"unknown status {facts.status!r}")
    if facts.duration_ms is not None and not 0 <= facts.duration_ms <= limits.MAX_DURATION_MS:
        raise InvalidEvent(f"duration must be between 0 and {limits.MAX_DURATION_MS} ms")
    for number, what in ((facts.from_number, "from number"), (facts.to_number, "to number")):
        if number is not None:
            _text(number, what, MAX_NUMBER_CHARS)
    if facts.recording_url is not None:
        _url(facts.recording_url)

    props = {"hs_call_external_id": f"{facts.provider}:{call_id}", "hs_call_source": CALL_SOURCE}
    if options.external_account_id:
        props["hs_call_external_account_id"] = options.external_account_id
    props["hs_timestamp"] = iso_ms(started)
    _put(props, "hs_call_direction", facts.direction)
    _put(props, "hs_call_status", facts.status)
    _put(props, "hs_call_duration", facts.duration_ms)
    _put(props, "hs_call_from_number", facts.from_number)
    _put(props, "hs_call_to_number", facts.to_number)
    _put(props, "hs_call_recording_url", facts.recording_url)
    _put(props, "hs_call_body", facts.body)
    _put(props, "hs_call_disposition", disposition_guid(facts.disposition, options))
    _put(props, "hubspot_owner_id", owner_id(facts.agents, options))
    title = facts.title
    if not title and facts.titled:
        title = call_title(facts.direction, facts.counterpart, facts.agent_name)
    _put(props, "hs_call_title", title)
    for name, value in props.items():
        _text(value, name, limits.MAX_TEXT_CHARS)

    event = CallEvent(
        provider=facts.provider,
        call_id=call_id,
        event_id=event_id,
        type=facts.type,
        occurred_at=iso_ms(occurred),
        sequence=sequence,
        properties=props,
        counterpart=facts.counterpart,
        contact_ids=_ids(facts.contact_ids, "contact_ids"),
        company_ids=_ids(facts.company_ids, "company_ids"),
        deal_ids=_ids(facts.deal_ids, "deal_ids"),
    )
    try:
        encode_event(event)  # e.g. a lone surrogate from a JSON "\ud800" cannot be UTF-8
    except (msgspec.EncodeError, UnicodeEncodeError, OverflowError) as exc:
        raise InvalidEvent(f"unencodable event: {exc}") from exc
    return event


def _put(props: dict[str, str], name: str, value: object) -> None:
    if value is None or value == "":
        return
    props[name] = str(value)


def _ident(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidEvent(f"{what} must not be empty")
    _text(text, what, limits.MAX_ID_CHARS)
    return text


def _text(value: str, what: str, most: int) -> None:
    if len(value) > most:
        raise InvalidEvent(f"{what} longer than {most} characters")


def _url(value: str) -> None:
    _text(value, "recording URL", limits.MAX_URL_CHARS)
    if not value.lower().startswith(("https://", "http://")):
        raise InvalidEvent("recording URL must be http(s)")


def _time(value: datetime, latest: datetime, what: str) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not limits.MIN_TIME <= aware <= latest:
        raise InvalidEvent(
            f"{what} {aware.isoformat()} outside "
            f"{iso_ms(limits.MIN_TIME)} .. now + {limits.MAX_FUTURE_S // 3600} h"
        )
    return aware


def _ids(values: Sequence[str], what: str) -> list[str]:
    if len(values) > limits.MAX_ASSOCIATIONS:
        raise InvalidEvent(f"at most {limits.MAX_ASSOCIATIONS} {what}, got {len(values)}")
    out = []
    for value in values:
        text = value.strip()
        if not (
            text.isascii() and text.isdigit() and len(text) <= limits.MAX_ASSOCIATION_ID_DIGITS
        ):
            raise InvalidEvent(f"{what} must be numeric HubSpot ids")
        out.append(text)
    return out
