"""Object types and their property definitions, and how a property value is checked.

HubSpot stores every property value as a string; it refuses writes to properties
that do not exist or are read-only, and values that do not fit the property's type
(number, datetime, enumeration options, bool). ``hasUniqueValue`` properties are
enforced by the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.clock import iso_ms

STRING = "string"
NUMBER = "number"
DATETIME = "datetime"
DATE = "date"
ENUMERATION = "enumeration"
BOOL = "bool"
PHONE = "phone_number"
PROPERTY_TYPES = frozenset({STRING, NUMBER, DATETIME, DATE, ENUMERATION, BOOL, PHONE})
_FIELD_TYPES = {
    STRING: "text",
    NUMBER: "number",
    DATETIME: "date",
    DATE: "date",
    ENUMERATION: "select",
    BOOL: "booleancheckbox",
    PHONE: "phonenumber",
}


@dataclass(slots=True)
class PropertyDef:
    """One property of an object type."""

    name: str
    type: str = STRING
    label: str = ""
    group: str = ""
    field_type: str = ""
    unique: bool = False
    read_only: bool = False
    options: tuple[str, ...] | None = None  # enforced options; None: any value
    custom: bool = False
    created_ms: int = 0
    plain: bool = field(init=False, default=False)  # writable text: any string goes

    def __post_init__(self) -> None:
        free_text = self.type in (STRING, PHONE) or (
            self.type == ENUMERATION and self.options is None
        )
        self.plain = free_text and not self.read_only

    def to_json(self) -> dict[str, Any]:
        """The property as HubSpot's properties API shows it."""
        stamp = iso_ms(self.created_ms)
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "fieldType": self.field_type or _FIELD_TYPES.get(self.type, "text"),
            "groupName": self.group or "sandbox",
            "description": "",
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options or ())
            ],
            "hasUniqueValue": self.unique,
            "hidden": False,
            "formField": not self.read_only,
            "calculated": self.read_only,
            "externalOptions": False,
            "modificationMetadata": {
                "archivable": self.custom,
                "readOnlyDefinition": not self.custom,
                "readOnlyValue": self.read_only,
            },
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }


@dataclass(frozen=True, slots=True)
class ObjectType:
    """A CRM object type: its names, ids, required and default properties."""

    name: str  # plural, as in the URL: "calls"
    singular: str  # "call"
    type_id: str  # "0-48"
    noun: str  # for operation ids: "Call"
    nouns: str  # "Calls"
    created_prop: str
    modified_prop: str
    required: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()  # returned when no properties are requested
    text_props: tuple[str, ...] = ()  # what a search ``query`` matches
    builtin: tuple[PropertyDef, ...] = field(default_factory=tuple)

    def op(self, kind: str) -> str:
        """The operation id of ``kind`` for this type (``batchCreate`` → ``batchCreateCalls``)."""
        return _OPS[kind].format(s=self.noun, p=self.nouns)


_OPS = {
    "list": "list{p}",
    "create": "create{s}",
    "get": "get{s}ById",
    "update": "update{s}",
    "archive": "archive{s}",
    "batchCreate": "batchCreate{p}",
    "batchRead": "batchRead{p}",
    "batchUpdate": "batchUpdate{p}",
    "batchArchive": "batchArchive{p}",
    "batchUpsert": "batchUpsert{p}",
    "search": "search{p}",
    "gdprDelete": "gdprDelete{s}",
}

CALL_STATUSES = (
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "MISSED",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
)


def _p(name: str, type_: str = STRING, **kw: Any) -> PropertyDef:
    return PropertyDef(name, type_, **kw)


def _common(created: str, modified: str) -> tuple[PropertyDef, ...]:
    return (
        _p("hs_object_id", NUMBER, read_only=True),
        _p(created, DATETIME, read_only=True),
        _p(modified, DATETIME, read_only=True),
        _p("hubspot_owner_id", ENUMERATION),
    )


CALLS = ObjectType(
    name="calls",
    singular="call",
    type_id="0-48",
    noun="Call",
    nouns="Calls",
    created_prop="hs_createdate",
    modified_prop="hs_lastmodifieddate",
    required=("hs_timestamp",),
    defaults=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    text_props=("hs_call_title", "hs_call_body"),
    builtin=(
        *_common("hs_createdate", "hs_lastmodifieddate"),
        _p("hs_timestamp", DATETIME),
        _p("hs_call_title"),
        _p("hs_call_body"),
        _p("hs_call_duration", NUMBER),
        _p("hs_call_from_number"),
        _p("hs_call_to_number"),
        _p("hs_call_recording_url"),
        _p("hs_call_status", ENUMERATION, options=CALL_STATUSES),
        _p("hs_call_direction", ENUMERATION, options=("INBOUND", "OUTBOUND")),
        _p("hs_call_disposition", ENUMERATION),  # GUIDs in a portal; any value here
        _p("hs_call_callee_object_id", NUMBER),
        _p("hs_call_callee_object_type_id"),
        _p("hs_call_source", ENUMERATION),
        _p("hs_call_has_transcript", BOOL),
        _p("hs_call_transcription_id"),
        _p("hs_call_app_id", NUMBER),
        _p("hs_call_external_id"),
        _p("hs_call_external_account_id"),
        _p("hs_call_unique_external_id"),
        _p("hs_call_has_voicemail", BOOL),
        _p("hs_call_location"),
        _p("hs_call_from_number_nickname"),
        _p("hs_call_to_number_nickname"),
        _p("hs_call_meeting_id"),
        _p("hs_call_callee_object_type"),
        _p("hs_call_deal_stage_during_call"),
        _p("hs_call_phone_number_source"),
        _p("hs_call_primary_deal", NUMBER),
        _p("hs_call_routing_strategy_type"),
        _p("hs_call_summary"),
        _p("hs_call_video_meeting_type"),
        _p("hs_calls_service_call_id"),
        _p("hs_product_name"),
        _p("hubspot_team_id", ENUMERATION),
        _p("hs_voicemail_count", NUMBER),
        _p("hs_call_authed_url_provider"),
        _p("hs_call_recording_duration", NUMBER),
        _p("hs_call_video_recording_url"),
        _p("hs_call_zoom_meeting_uuid"),
        _p("hs_activity_type", ENUMERATION),
        _p("hs_attachment_ids", ENUMERATION),
        _p("hs_at_mentioned_owner_ids", ENUMERATION),
        _p("hs_engagement_source"),
        _p("hs_engagement_source_id"),
        _p("hs_unique_id"),
    ),
)

CONTACTS = ObjectType(
    name="contacts",
    singular="contact",
    type_id="0-1",
    noun="Contact",
    nouns="Contacts",
    created_prop="createdate",
    modified_prop="lastmodifieddate",
    defaults=("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    text_props=("firstname", "lastname", "email", "phone", "mobilephone", "company"),
    builtin=(
        *_common("createdate", "lastmodifieddate"),
        _p("email", unique=True),
        _p("firstname"),
        _p("lastname"),
        _p("phone", PHONE),
        _p("mobilephone", PHONE),
        _p("company"),
        _p("jobtitle"),
        _p("website"),
        _p("address"),
        _p("city"),
        _p("state"),
        _p("zip"),
        _p("country"),
        _p("lifecyclestage", ENUMERATION),
        _p("hs_lead_status", ENUMERATION),
    ),
)

COMPANIES = ObjectType(
    name="companies",
    singular="company",
    type_id="0-2",
    noun="Company",
    nouns="Companies",
    created_prop="createdate",
    modified_prop="hs_lastmodifieddate",
    defaults=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    text_props=("name", "domain", "phone", "website"),
    builtin=(
        *_common("createdate", "hs_lastmodifieddate"),
        _p("name"),
        _p("domain"),
        _p("phone", PHONE),
        _p("website"),
        _p("city"),
        _p("country"),
        _p("industry", ENUMERATION),
    ),
)

DEALS = ObjectType(
    name="deals",
    singular="deal",
    type_id="0-3",
    noun="Deal",
    nouns="Deals",
    created_prop="createdate",
    modified_prop="hs_lastmodifieddate",
    defaults=(
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    text_props=("dealname",),
    builtin=(
        *_common("createdate", "hs_lastmodifieddate"),
        _p("dealname"),
        _p("amount", NUMBER),
        _p("closedate", DATETIME),
        _p("dealstage", ENUMERATION),
        _p("pipeline", ENUMERATION),
    ),
)

TICKETS = ObjectType(
    name="tickets",
    singular="ticket",
    type_id="0-5",
    noun="Ticket",
    nouns="Tickets",
    created_prop="createdate",
    modified_prop="hs_lastmodifieddate",
    required=("subject", "hs_pipeline_stage"),
    defaults=(
        "content",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_category",
        "hs_ticket_priority",
        "subject",
    ),
    text_props=("subject", "content"),
    builtin=(
        *_common("createdate", "hs_lastmodifieddate"),
        _p("subject"),
        _p("content"),
        _p("hs_pipeline", ENUMERATION),
        _p("hs_pipeline_stage", ENUMERATION),
        _p("hs_ticket_category", ENUMERATION),
        _p("hs_ticket_priority", ENUMERATION),
    ),
)

OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t for t in (CALLS, CONTACTS, COMPANIES, DEALS, TICKETS)
}
_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.singular, _t.type_id):
        _ALIASES[_alias] = _t.name


def resolve_type(name: str) -> ObjectType | None:
    """The object type named ``name`` (plural, singular or ``0-n`` id, any case)."""
    key = _ALIASES.get(name.lower())
    return OBJECT_TYPES[key] if key else None


class InvalidValue(Exception):
    """A property value HubSpot would refuse; ``code`` is HubSpot's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def stringify(raw: object) -> str | None:
    """A JSON property value as HubSpot stores it (a string), or None if not a scalar."""
    if isinstance(raw, str):
        return raw
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return str(int(raw)) if raw.is_integer() else repr(raw)
    return None


MIN_MS = -62_000_000_000_000  # about year 5: fromtimestamp() can render it
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_datetime_ms(text: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 date/date-time or an epoch-ms string, else None."""
    s = text.strip()
    if not s:
        return None
    digits = s.removeprefix("-")
    if digits.isascii() and digits.isdigit():
        ms = int(s) if len(digits) < 20 else MAX_MS + 1
    else:
        try:
            dt = datetime.fromisoformat(s.replace("z", "Z"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        try:
            ms = int(dt.timestamp() * 1000)
        except (OverflowError, ValueError):
            return None
    return ms if MIN_MS <= ms <= MAX_MS else None


def parse_number(text: str) -> float | None:
    """The numeric value of ``text``, or None when it is not a finite number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_value(prop: PropertyDef, value: str) -> str:
    """The value to store for ``prop``; raises :class:`InvalidValue` when HubSpot would."""
    if value == "":
        return value
    if prop.type == NUMBER:
        if parse_number(value) is None:
            raise InvalidValue("INVALID_INTEGER", f"{value} was not a valid number.")
    elif prop.type in (DATETIME, DATE):
        ms = parse_datetime_ms(value)
        if ms is None:
            raise InvalidValue(
                "INVALID_DATE",
                f"{value} was not a valid long (epoch millis) or ISO8601 date-time.",
            )
        digits = value.strip().removeprefix("-")
        if digits.isascii() and digits.isdigit():
            return iso_ms(ms)
    elif prop.type == BOOL:
        low = value.lower()
        if low not in ("true", "false"):
            raise InvalidValue("INVALID_BOOLEAN", f"{value} was not a valid boolean.")
        return low
    elif prop.type == ENUMERATION and prop.options is not None and value not in prop.options:
        raise InvalidValue(
            "INVALID_OPTION",
            f"{value} was not one of the allowed options: {', '.join(prop.options)}",
        )
    return value
