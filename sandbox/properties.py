"""``/crm/v3/properties/{objectType}``: read property definitions and create custom
ones — notably ``hasUniqueValue`` properties, which the store then enforces (409
``CONFLICT``) and ``idProperty`` reads accept.

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

from sandbox.bodies import PropertyIn, decode
from sandbox.catalog import resolve_type
from sandbox.context import Handler, Op
from sandbox.errors import ApiError, not_found, validation_error
from sandbox.responses import json_response
from sandbox.schema import ENUMERATION, PROPERTY_TYPES, PropertyDef
from sandbox.state import Sandbox
from sandbox.store import TypeStore

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


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
    existing = ts.props.get(body.name)
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


Plain = Callable[[Sandbox, str, Handler], Any]


def routes(sb: Sandbox, plain: Plain) -> list[Route]:
    """The properties API routes."""
    base = "/crm/v3/properties/{objectType}"
    return [
        Route(base, plain(sb, "getAllProperties", list_properties), methods=["GET"]),
        Route(base, plain(sb, "createProperty", create_property), methods=["POST"]),
        Route(base + "/{propertyName}", plain(sb, "getProperty", get_property), methods=["GET"]),
    ]
