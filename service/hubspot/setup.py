"""Portal set-up for idempotent creates: the custom call property ``callbridge_call_key``.

Every call record callbridge creates carries its call key (``provider:call_id``) in this
property, which requires unique values (``hasUniqueValue``). HubSpot then refuses a
second record with the same key (400 "… already has that value.", see
:func:`service.hubspot.wire.unique_conflict`) and reads, updates and upserts by it
(``idProperty``) — answered from the record store, so a create whose outcome is unknown
is resolved by reading its key, without waiting for the search index.

:func:`ensure_call_key_property` is idempotent: it reports what it found, creates what
is missing (the property, and the property group it goes in), and fails with
:class:`SetupError` when it cannot be made right — e.g. a property of that name that
does not require unique values (HubSpot cannot change that flag after creation). It
takes a :class:`~service.hubspot.client.HubSpotClient` and knows nothing of the app's
settings; ``callbridge hubspot setup`` is its command line.

Each HubSpot portal needs the property once: :func:`set_up_portals` runs set-up for
several portals at once (portal id -> that portal's client, with its token or OAuth grant
and API version), one portal's failure never stopping another's, and reports one
:class:`PortalSetup` per portal, in the order given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from service.hubspot.client import HubSpotClient
from service.hubspot.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotError,
    HubSpotMissingScopes,
    HubSpotNotFound,
)
from service.hubspot.models import Property, PropertyCreate, PropertyGroupCreate

CALL_KEY_PROPERTY: Final = "callbridge_call_key"
CALL_KEY_LABEL: Final = "callbridge call key"
CALL_KEY_DESCRIPTION: Final = (
    "The provider's call key (provider:call_id), set by callbridge: one call record per value."
)
GROUP: Final = "callbridge"
GROUP_LABEL: Final = "callbridge"
OBJECT_TYPE: Final = "calls"

Action = Literal["created", "found"]


@dataclass(frozen=True, slots=True)
class Step:
    """One thing set-up looked at: ``what`` (``property group``/``call property``), its
    name, whether it was created or found, and a detail for the operator."""

    what: str
    name: str
    action: Action
    detail: str = ""

    def line(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.action} {self.what} {self.name}{detail}"


@dataclass(frozen=True, slots=True)
class SetupResult:
    """What :func:`ensure_call_key_property` did, in order."""

    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def created(self) -> bool:
        """Whether anything was created (False: everything was already there)."""
        return any(s.action == "created" for s in self.steps)

    def lines(self) -> list[str]:
        return [s.line() for s in self.steps]


class SetupError(Exception):
    """Set-up cannot be completed; ``str()`` is one line saying why and what to do.
    ``status`` is HubSpot's HTTP status when HubSpot refused (0 otherwise)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _describe(prop: Property) -> str:
    unique = "unique values" if prop.has_unique_value else "values NOT unique"
    return f"{prop.type or 'string'}, {unique}, group {prop.group_name or '?'}"


async def ensure_call_key_property(
    hs: HubSpotClient, *, name: str = CALL_KEY_PROPERTY, group: str = GROUP
) -> SetupResult:
    """Make sure the unique call-key property ``name`` exists on calls; idempotent.

    Raises :class:`SetupError` with a one-line reason when HubSpot refuses the token (401),
    a scope is missing (403: the message names it), the property exists without unique
    values, or HubSpot refuses to create it (e.g. the 10-unique-properties limit).
    """
    try:
        return await _ensure(hs, name, group)
    except SetupError:
        raise
    except HubSpotError as exc:
        raise SetupError(describe_failure(exc), exc.status) from exc


async def _ensure(hs: HubSpotClient, name: str, group: str) -> SetupResult:
    steps: list[Step] = []
    existing = await _get(hs, name)
    if existing is None:
        steps.append(await _ensure_group(hs, group))
        definition = PropertyCreate(
            name=name,
            label=CALL_KEY_LABEL,
            group_name=group,
            type="string",
            field_type="text",
            description=CALL_KEY_DESCRIPTION,
            has_unique_value=True,
        )
        try:
            created = await hs.create_call_property(definition)
        except HubSpotConflict:  # made meanwhile (another set-up, or a repeated request)
            existing = await _get(hs, name)
            if existing is None:
                raise
        else:
            steps.append(Step("call property", name, "created", _describe(created)))
            return SetupResult(tuple(steps))
    if not existing.has_unique_value:
        raise SetupError(
            f"call property {name} exists but does not require unique values, and HubSpot "
            "cannot change that: delete it in HubSpot (Settings > Properties > Calls) and "
            "run set-up again"
        )
    steps.append(Step("call property", name, "found", _describe(existing)))
    return SetupResult(tuple(steps))


async def _get(hs: HubSpotClient, name: str) -> Property | None:
    try:
        return await hs.get_call_property(name)
    except HubSpotNotFound:
        return None


async def _ensure_group(hs: HubSpotClient, group: str) -> Step:
    try:
        await hs.get_property_group(OBJECT_TYPE, group)
        return Step("property group", group, "found", OBJECT_TYPE)
    except HubSpotNotFound:
        pass
    try:
        await hs.create_property_group(
            OBJECT_TYPE, PropertyGroupCreate(name=group, label=GROUP_LABEL)
        )
    except HubSpotConflict:
        return Step("property group", group, "found", OBJECT_TYPE)
    return Step("property group", group, "created", OBJECT_TYPE)


def describe_failure(exc: HubSpotError) -> str:
    """One line for an operator: what HubSpot refused and why (scopes named)."""
    if isinstance(exc, HubSpotAuthError):
        return f"HubSpot refused the token (401 {exc.category}): {exc.message}"
    if isinstance(exc, HubSpotMissingScopes):
        scopes = sorted(
            {
                scope
                for detail in (exc.body.errors or [] if exc.body else [])
                for scope in (detail.context or {}).get("requiredGranularScopes", [])
            }
        )
        needs = f"; it needs {', '.join(scopes)}" if scopes else ""
        return f"the token lacks a scope (403 {exc.category}){needs}"
    return str(exc)


@dataclass(frozen=True, slots=True)
class PortalSetup:
    """Set-up's outcome in one portal: its ``result``, or the ``error`` that stopped it."""

    portal: str
    result: SetupResult | None = None
    error: SetupError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """One line for the operator: ``acme: created …; created …`` or ``acme: error: …``."""
        if self.error is not None:
            return f"{self.portal}: error: {self.error}"
        assert self.result is not None
        return f"{self.portal}: " + "; ".join(self.result.lines())


async def set_up_portals(
    clients: Mapping[str, HubSpotClient], *, name: str = CALL_KEY_PROPERTY, group: str = GROUP
) -> list[PortalSetup]:
    """:func:`ensure_call_key_property` in every portal of ``clients`` (portal id ->
    client), concurrently; one outcome per portal in ``clients``' order. A portal that
    fails (401, missing scope, OAuth refresh refused, no answer) is reported, the others
    are still set up."""

    async def one(portal: str, hs: HubSpotClient) -> PortalSetup:
        try:
            return PortalSetup(portal, await ensure_call_key_property(hs, name=name, group=group))
        except SetupError as exc:
            return PortalSetup(portal, error=exc)

    return list(await asyncio.gather(*(one(p, hs) for p, hs in clients.items())))
