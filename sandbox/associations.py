"""The v4 associations API, enough to link calls to contacts after the fact and read
links back: ``POST /crm/v4/associations/{from}/{to}/batch/create|read``,
``GET /crm/v4/objects/{type}/{id}/associations/{toType}``, and the two ``PUT``s that
create one association (labelled or default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.bodies import (
    AssocTypeIn,
    V4BatchCreateIn,
    V4BatchReadIn,
    check_batch_size,
    decode,
    id_text,
)
from sandbox.catalog import resolve_type
from sandbox.clock import iso_ms
from sandbox.context import Handler, Op
from sandbox.errors import ApiError, not_found, validation_error
from sandbox.objects import batch_envelope
from sandbox.portals import Portals
from sandbox.responses import json_response
from sandbox.schema import ObjectType
from sandbox.store import ASSOCIATION_TYPES, AssocType, Record, parse_id

_LABEL_CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED")


def _type(name: str) -> ObjectType:
    otype = resolve_type(name)
    if otype is None:
        raise validation_error(f"Unable to infer object type from: {name}")
    return otype


def _pair(request: Request, from_key: str, to_key: str) -> tuple[ObjectType, ObjectType, int]:
    a = _type(request.path_params[from_key])
    b = _type(request.path_params[to_key])
    default = ASSOCIATION_TYPES.get((a.name, b.name))
    if default is None:
        raise validation_error(f"{a.name} cannot be associated with {b.name} in the sandbox")
    return a, b, default[0]


def _check_types(types: list[AssocTypeIn] | None, default_id: int) -> list[AssocType]:
    if not types:
        return [("HUBSPOT_DEFINED", default_id)]
    out: list[AssocType] = []
    for t in types:
        if t.associationCategory not in _LABEL_CATEGORIES:
            raise validation_error(f"Unknown associationCategory {t.associationCategory!r}")
        if t.associationCategory != "HUBSPOT_DEFINED" or t.associationTypeId != default_id:
            raise validation_error(
                f"{t.associationCategory} association type {t.associationTypeId} is not valid here; "
                f"the sandbox knows HUBSPOT_DEFINED {default_id}",
                context={"associationTypeId": [str(t.associationTypeId)]},
            )
        out.append((t.associationCategory, t.associationTypeId))
    return out


def _label_json(types: list[AssocType]) -> list[dict[str, Any]]:
    return [{"category": c, "typeId": i, "label": None} for c, i in types]


def _link(
    op: Op, a: ObjectType, b: ObjectType, from_key: str, to_key: str, types: list[AssocType]
) -> dict[str, Any]:
    store = op.sb.store
    from_id, to_id = parse_id(from_key), parse_id(to_key)
    rec = store[a.name].live(from_id) if from_id is not None else None
    if rec is None or to_id is None or store[b.name].live(to_id) is None:
        missing = from_key if rec is None else to_key
        raise not_found(
            f"No {a.singular if rec is None else b.singular} with id {missing} exists",
            context={"ids": [missing]},
        )
    for atype in types:
        store.associate(a.name, rec, b.name, to_id, atype)
    return {
        "fromObjectTypeId": a.type_id,
        "fromObjectId": rec.id,
        "toObjectTypeId": b.type_id,
        "toObjectId": to_id,
        "labels": [],
    }


async def batch_create(request: Request, op: Op) -> Response:
    """Create associations; inputs naming records that do not exist fail per input (207)."""
    a, b, default_id = _pair(request, "fromObjectType", "toObjectType")
    started = op.sb.clock.wall_ms()
    body = decode(await request.body(), V4BatchCreateIn)
    check_batch_size(len(body.inputs), 2000)
    op.batch_size = len(body.inputs)
    checked = [_check_types(item.types, default_id) for item in body.inputs]
    results: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    for item, types in zip(body.inputs, checked, strict=True):
        try:
            results.append(_link(op, a, b, id_text(item.from_.id), id_text(item.to.id), types))
        except ApiError as err:
            errors.append(err.batch_item())
    out, partial = batch_envelope(started, op.sb.clock.wall_ms(), results, errors)
    return json_response(out, 207 if partial else 201)


def _targets(rec: Record, b: ObjectType) -> list[dict[str, Any]]:
    return [
        {"toObjectId": to_id, "associationTypes": _label_json(types)}
        for to_id, types in rec.assoc.get(b.name, {}).items()
    ]


async def batch_read(request: Request, op: Op) -> Response:
    """Read the associations of up to 1,000 records."""
    a, b, _ = _pair(request, "fromObjectType", "toObjectType")
    started = op.sb.clock.wall_ms()
    body = decode(await request.body(), V4BatchReadIn)
    check_batch_size(len(body.inputs), 1000)
    op.batch_size = len(body.inputs)
    ts = op.sb.store[a.name]
    results: list[dict[str, object]] = []
    missing: list[str] = []
    for item in body.inputs:
        key = id_text(item.id)
        rid = parse_id(key)
        rec = ts.live(rid) if rid is not None else None
        if rec is None:
            missing.append(key)
            continue
        results.append({"from": {"id": key}, "to": _targets(rec, b)})
    errors: list[dict[str, object]] = []
    if missing:
        errors.append(
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"No {a.singular} exists with these ids",
                "context": {"ids": missing},
            }
        )
    out, partial = batch_envelope(started, op.sb.clock.wall_ms(), results, errors)
    return json_response(out, 207 if partial else 200)


async def get_associations(request: Request, op: Op) -> Response:
    """A record's associations with one object type."""
    a, b, _ = _pair(request, "objectType", "toObjectType")
    key = request.path_params["objectId"]
    rid = parse_id(key)
    rec = op.sb.store[a.name].live(rid) if rid is not None else None
    if rec is None:
        raise not_found(f"No {a.singular} with id {key} exists", context={"ids": [key]})
    return json_response({"results": _targets(rec, b)})


async def put_association(request: Request, op: Op) -> Response:
    """Associate two records with the labels in the body."""
    a, b, default_id = _pair(request, "objectType", "toObjectType")
    raw = await request.body()
    types = decode(raw, list[AssocTypeIn])
    checked = _check_types(types, default_id)
    if not checked:  # pragma: no cover - _check_types never returns empty
        raise validation_error("at least one association type is required")
    out = _link(
        op, a, b, request.path_params["objectId"], request.path_params["toObjectId"], checked
    )
    return json_response(
        {
            "fromObjectTypeId": out["fromObjectTypeId"],
            "fromObjectId": out["fromObjectId"],
            "toObjectTypeId": out["toObjectTypeId"],
            "toObjectId": out["toObjectId"],
            "labels": [],
        },
        201,
    )


async def put_default_association(request: Request, op: Op) -> Response:
    """Associate two records with the default (unlabelled) type."""
    a, b, default_id = _pair(request, "objectType", "toObjectType")
    _link(
        op,
        a,
        b,
        request.path_params["objectId"],
        request.path_params["toObjectId"],
        [("HUBSPOT_DEFINED", default_id)],
    )
    now = iso_ms(op.sb.clock.wall_ms())
    result = {
        "from": {"id": request.path_params["objectId"]},
        "to": {"id": request.path_params["toObjectId"]},
        "associationSpec": {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": default_id,
        },
    }
    return Response(
        orjson.dumps(
            {"status": "COMPLETE", "results": [result], "startedAt": now, "completedAt": now}
        ),
        200,
        media_type="application/json",
    )


Plain = Callable[[Portals, str, Handler], Any]


def routes(
    sb: Portals,
    plain: Plain,
    pair: str = "/crm/v4/associations/{fromObjectType}/{toObjectType}",
    obj: str = "/crm/v4/objects/{objectType}/{objectId}/associations",
) -> list[Route]:
    """The v4 association routes (or their date-based twins, by ``pair`` and ``obj``)."""
    return [
        Route(
            pair + "/batch/create",
            plain(sb, "batchCreateAssociations", batch_create),
            methods=["POST"],
        ),
        Route(
            pair + "/batch/read", plain(sb, "batchReadAssociations", batch_read), methods=["POST"]
        ),
        Route(
            obj + "/default/{toObjectType}/{toObjectId}",
            plain(sb, "createDefaultAssociation", put_default_association),
            methods=["PUT"],
        ),
        Route(
            obj + "/{toObjectType}/{toObjectId}",
            plain(sb, "createAssociation", put_association),
            methods=["PUT"],
        ),
        Route(
            obj + "/{toObjectType}", plain(sb, "getAssociations", get_associations), methods=["GET"]
        ),
    ]
