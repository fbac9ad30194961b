"""RingCentral: telephony session notifications (event filter
``/restapi/v1.0/account/~/telephony/sessions`` or ``…/extension/~/telephony/sessions``).

Authenticity: the ``Verification-Token`` header equals the token given as
``deliveryMode.verificationToken`` when the subscription was created (constant-time
compare); RingCentral signs no body. The token is static: there is no replay window; a
replayed notification repeats its ``uuid`` (the ``event_id``), which the writer drops as a
duplicate. Subscription set-up sends a ``Validation-Token``
header that must come back in the response's ``Validation-Token`` header: such a request is
answered (200, header echoed) and produces nothing; it is accepted without
``Verification-Token`` (echoing a header reveals nothing), but a wrong one is refused.

One notification per party status change: Setup, Proceeding, Answered, Hold, VoiceMail,
Disconnected (+ Gone, Parked…). The call key is ``body.telephonySessionId``, the order
``body.sequence``, the event id the notification ``uuid``. No notification carries a
duration, and a ``Disconnected`` notification alone cannot know when the call was answered:
the duration can only be derived across events (``Disconnected.eventTime`` minus
``Answered.eventTime``), which a single pure event cannot do, so no ``hs_call_duration`` is
set here. Recording URLs are not in notifications either (they need an API call).
"""

from __future__ import annotations

from typing import Final

import msgspec

from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Reply,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of, unanswered
from handlers.common import consteq, decode_json, parse_time
from handlers.phone import phone
from handlers.provider import ModuleProvider, parser

NAME: Final = "ringcentral"
MAX_VALIDATION_TOKEN: Final = 256

#: party ``status.code`` → ``hs_call_status`` (``Disconnected`` is decided below).
STATUS: Final[dict[str, str]] = {
    "setup": "CONNECTING",
    "proceeding": "RINGING",
    "answered": "IN_PROGRESS",
    "hold": "IN_PROGRESS",
    "parked": "IN_PROGRESS",
    "voicemail": "MISSED",
    "voicemailscreening": "MISSED",
}
#: ``Disconnected`` ``status.reason`` → (status, disposition label) when it says how it ended.
DISCONNECT_REASONS: Final[dict[str, tuple[str, str | None]]] = {
    "targetbusy": ("BUSY", "busy"),
    "cancelled": ("CANCELED", None),
    "invalidnumber": ("FAILED", "wrong number"),
    "nosuchuser": ("FAILED", "wrong number"),
    "internalerror": ("FAILED", None),
    "notenoughfunds": ("FAILED", None),
    "internationaldisabled": ("FAILED", None),
    "destinationblocked": ("FAILED", None),
}


class Endpoint(msgspec.Struct, forbid_unknown_fields=False):
    phoneNumber: str | None = None
    name: str | None = None
    extensionId: str | None = None


class Status(msgspec.Struct, forbid_unknown_fields=False):
    code: str
    reason: str | None = None


class Party(msgspec.Struct, forbid_unknown_fields=False):
    id: str | None = None
    extensionId: str | None = None
    direction: str | None = None
    status: Status | None = None
    missedCall: bool = False
    to: Endpoint | None = None
    from_: Endpoint | None = msgspec.field(default=None, name="from")


class Body(msgspec.Struct, forbid_unknown_fields=False):
    telephonySessionId: str
    eventTime: str
    sequence: int | None = None
    sessionId: str | None = None
    parties: list[Party] = msgspec.field(default_factory=list)


class Notification(msgspec.Struct, forbid_unknown_fields=False):
    uuid: str
    body: Body
    event: str | None = None
    ownerId: str | None = None
    timestamp: str | None = None


_notification = msgspec.json.Decoder(Notification)


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    token = request.headers.get("verification-token")
    if request.headers.get("validation-token") and token is None:
        return Verification()  # subscription set-up: parse echoes the token, nothing produced
    if not token:
        raise InvalidSignature("missing Verification-Token")
    if not consteq(token, secret):
        raise InvalidSignature("Verification-Token mismatch")
    return Verification()


def _validation_reply(token: str) -> Reply:
    if len(token) > MAX_VALIDATION_TOKEN or not token.isprintable() or not token.isascii():
        raise InvalidEvent("unusable Validation-Token")
    return Reply(200, b"", "application/json", {"Validation-Token": token})


def _our_party(notification: Notification) -> Party:
    """The party of the subscriber's extension (the company side) when one is marked."""
    parties = notification.body.parties
    if not parties:
        raise InvalidEvent("notification without parties")
    owner = notification.ownerId
    for party in parties:
        if owner and party.extensionId == owner:
            return party
    for party in parties:
        if party.extensionId:
            return party
    return parties[0]


def facts(notification: Notification, options: NormalizeOptions) -> CallFacts | None:
    body = notification.body
    session = body.telephonySessionId.strip()
    if not session or not notification.uuid.strip():
        raise InvalidEvent("telephonySessionId and uuid must not be empty")
    party = _our_party(notification)
    if party.status is None:
        return None
    code = party.status.code.strip()
    occurred = parse_time(body.eventTime)
    direction = direction_of(party.direction)

    key = code.lower()
    status = STATUS.get(key)
    disposition: str | None = "left voicemail" if key == "voicemail" else None
    if key == "disconnected":
        reason = (party.status.reason or "").lower()
        if reason in DISCONNECT_REASONS:
            status, disposition = DISCONNECT_REASONS[reason]
        elif party.missedCall or reason in ("noanswer", "rejected", "timeout"):
            status, disposition = unanswered(direction), "no answer"
        else:
            status, disposition = "COMPLETED", "connected"
    if status is None:
        return None  # Gone, FaxReceive, Tds…: nothing to say about the call

    agent = party.to if direction == "INBOUND" else party.from_
    return CallFacts(
        provider=NAME,
        call_id=session,
        event_id=notification.uuid.strip(),
        type=f"party.{code}",
        occurred=occurred,
        sequence=body.sequence,
        direction=direction,
        status=status,
        disposition=disposition,
        from_number=phone(party.from_.phoneNumber if party.from_ else None, options.default_region),
        to_number=phone(party.to.phoneNumber if party.to else None, options.default_region),
        agents=[party.extensionId or (agent.extensionId if agent else None)],
        agent_name=agent.name if agent else None,
    )


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts] | Reply:
    validation = request.headers.get("validation-token")
    if validation:
        return _validation_reply(validation)
    notification = decode_json(request.body, _notification)
    found = facts(notification, options)
    return [found] if found else []


parse = parser(extract)
# the subscription set-up request may come without a body or a content type
PROVIDER = ModuleProvider(NAME, verify, extract, frozenset({"application/json", ""}))
