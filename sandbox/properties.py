"""``/crm/v3/properties/{objectType}``: read property definitions and create custom
ones — notably ``hasUniqueValue`` properties, which the store then enforces (HubSpot's
400 "… already has that value.", see :func:`sandbox.writes.conflict`) and ``idProperty``
reads, updates and upserts accept — plus property groups (``/groups``).

As HubSpot documents: unique values are for ``string`` and ``number`` properties, at most
10 per object type, and only on a property created unique (the flag cannot be changed).

Deviation from HubSpot, on purpose: ``hs_call_external_id`` is a built-in (non-unique)
call property in HubSpot, and HubSpot answers 409 to creating a property that exists.
The sandbox lets a create with ``hasUniqueValue: true`` turn an existing writable
built-in *string* property unique (201), which callbridge's writer relies on; the
upgraded definition then behaves like a custom one (kept across resets unless
``{"properties": true}``). A second create of the same name is a 409."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.bodies import GroupIn, PropertyIn, decode
from sandbox.catalog import resolve_type
from sandbox.context import Handler, Op
from sandbox.errors import ApiError, not_found, validation_error
from sandbox.portals import Portals
from sandbox.responses import json_response
from sandbox.schema import ENUMERATION, PROPERTY_TYPES, PropertyDef
from sandbox.store import TypeStore

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
#: property types that may require unique values, and how many may per object type
UNIQUE_TYPES = frozenset({"string", "number"})
MAX_UNIQUE = 10


def _types(op: Op, request: Request) -> TypeStore:
    name = request.path_params["objectType"]
    otype = resolve_type(name)
    if otype is None:
        raise validation_error(f"Unable to infer object type from: {name}")
    return op.sb.store[otype.name]


async def list_properties(request: Request, op: Op) -> Response:
    """Every property of the type."""
    ts = _types(op, request)
    return json_response({"results": [p.to_json() for p in ts.props.values()]})


async def get_property(request: Request, op: Op) -> Response:
    """One property definition."""
    ts = _types(op, request)
    name = request.path_params["propertyName"]
    prop = ts.props.get(name)
    if prop is None:
        raise not_found(
            f"Unable to find property {name} on {ts.otype.name}", context={"propertyName": [name]}
        )
    return json_response(prop.to_json())


async def create_property(request: Request, op: Op) -> Response:
    """Define a custom property: 201, or 409 when the name is taken."""
    ts = _types(op, request)
    body = decode(await request.body(), PropertyIn)
    if not _NAME.match(body.name):
        raise validation_error(
            f"Invalid property name {body.name!r}: lowercase letters, digits and underscores",
            context={"propertyName": [body.name]},
        )
    if body.type not in PROPERTY_TYPES:
        raise validation_error(
            f"Invalid property type {body.type!r}; expected one of {', '.join(sorted(PROPERTY_TYPES))}",
            context={"propertyName": [body.name]},
        )
    if body.hasUniqueValue and body.type not in UNIQUE_TYPES:
        raise validation_error(
            f"Property {body.name!r} of type {body.type!r} cannot require unique values; "
            "only string and number properties can",
            context={"propertyName": [body.name]},
        )
    existing = ts.props.get(body.name)
    if body.hasUniqueValue and sum(1 for p in ts.props.values() if p.unique and p.custom) >= (
        MAX_UNIQUE
    ):
        raise validation_error(
            f"The {ts.otype.singular} object already has {MAX_UNIQUE} properties with unique "
            "values, the most it may have",
            context={"propertyName": [body.name]},
        )
    upgrade = (
        existing is not None
        and not existing.custom
        and not existing.read_only
        and not existing.unique
        and existing.type == body.type == "string"
        and body.hasUniqueValue
    )
    if existing is not None and not upgrade:
        raise ApiError(
            409,
            "CONFLICT",
            f"Property named '{body.name}' already exists.",
            context={"propertyName": [body.name]},
        )
    values = [
        r.props[body.name] for r in ts.records.values() if not r.archived and body.name in r.props
    ]
    if body.hasUniqueValue and len(values) != len(set(values)):
        raise validation_error(f"Existing records hold duplicate values of {body.name}")
    options = (
        tuple(o.value for o in body.options) if body.type == ENUMERATION and body.options else None
    )
    prop = PropertyDef(
        body.name,
        body.type,
        label=body.label,
        group=body.groupName,
        field_type=body.fieldType,
        unique=body.hasUniqueValue,
        options=options,
        custom=True,
        created_ms=op.sb.clock.wall_ms(),
    )
    ts.props[prop.name] = prop
    if prop.unique:
        ts.rebuild_unique(prop.name)
    return json_response(prop.to_json(), 201)


async def list_groups(request: Request, op: Op) -> Response:
    """Every property group of the type."""
    ts = _types(op, request)
    return json_response({"results": [_group_json(g) for g in ts.groups.values()]})


async def get_group(request: Request, op: Op) -> Response:
    """One property group."""
    ts = _types(op, request)
    name = request.path_params["groupName"]
    group = ts.groups.get(name)
    if group is None:
        raise not_found(
            f"Unable to find property group {name} on {ts.otype.name}",
            context={"groupName": [name]},
        )
    return json_response(_group_json(group))


async def create_group(request: Request, op: Op) -> Response:
    """Define a property group: 201, or 409 when the name is taken."""
    ts = _types(op, request)
    body = decode(await request.body(), GroupIn)
    if not _NAME.match(body.name):
        raise validation_error(
            f"Invalid property group name {body.name!r}: lowercase letters, digits and underscores",
            context={"groupName": [body.name]},
        )
    if body.name in ts.groups:
        raise ApiError(
            409,
            "CONFLICT",
            f"Property group named '{body.name}' already exists.",
            context={"groupName": [body.name]},
        )
    group = {
        "name": body.name,
        "label": body.label or body.name,
        "displayOrder": body.displayOrder,
        "archived": False,
        "custom": True,
    }
    ts.groups[body.name] = group
    return json_response(_group_json(group), 201)


def _group_json(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "custom"}


Plain = Callable[[Portals, str, Handler], Any]


def routes(sb: Portals, plain: Plain, base: str = "/crm/v3/properties/{objectType}") -> list[Route]:
    """The properties API routes."""
    groups = base + "/groups"
    return [
        Route(groups, plain(sb, "getAllPropertyGroups", list_groups), methods=["GET"]),
        Route(groups, plain(sb, "createPropertyGroup", create_group), methods=["POST"]),
        Route(groups + "/{groupName}", plain(sb, "getPropertyGroup", get_group), methods=["GET"]),
        Route(base, plain(sb, "getAllProperties", list_properties), methods=["GET"]),
        Route(base, plain(sb, "createProperty", create_property), methods=["POST"]),
        Route(base + "/{propertyName}", plain(sb, "getProperty", get_property), methods=["GET"]),
    ]
