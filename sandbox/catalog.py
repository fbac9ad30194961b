"""The object types the sandbox serves and their built-in properties: HubSpot's call
properties (those callbridge and calling integrations write), and enough of contacts,
companies, deals and tickets to associate calls with them."""

from __future__ import annotations

from typing import Any

from sandbox.schema import (
    BOOL,
    DATETIME,
    ENUMERATION,
    NUMBER,
    PHONE,
    STRING,
    ObjectType,
    PropertyDef,
)

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
    groups=(("callinfo", "Call information"),),
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
        # HubSpot: "not possible to modify the Marketing contact status property using the
        # API"; app-created contacts are non-marketing unless the portal opts the app in
        _p("hs_marketable_status", BOOL, read_only=True),
        # calculated from phone / mobilephone (sandbox.phones)
        _p("hs_searchable_calculated_phone_number", PHONE, read_only=True),
        _p("hs_searchable_calculated_mobile_number", PHONE, read_only=True),
        _p("hs_searchable_calculated_international_phone_number", read_only=True),
        _p("hs_searchable_calculated_international_mobile_number", read_only=True),
        _p("hs_calculated_phone_number", read_only=True),
        _p("hs_calculated_mobile_number", read_only=True),
        _p("hs_calculated_phone_number_country_code", read_only=True),
        _p("hs_calculated_phone_number_area_code", read_only=True),
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
    groups=(("companyinformation", "Company information"),),
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
    groups=(("dealinformation", "Deal information"),),
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
    groups=(("ticketinformation", "Ticket information"),),
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
