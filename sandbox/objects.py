"""Basic CRM object operations: list, create, get, update, archive, search, gdpr-delete.

Routed per object type (``/crm/v3/objects/{objectType}``); for calls these are the spec's
``listCalls``, ``createCall``, ``getCallById``, ``updateCall``, ``archiveCall``,
``searchCalls`` and ``gdprDeleteCall``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from sandbox.bodies import CreateIn, GdprIn, SearchIn, UpdateIn, decode, id_text
from sandbox.clock import iso_ms
from sandbox.context import Op
from sandbox.errors import ApiError, not_found, validation_error
from sandbox.params import bool_param, int_param, list_param, str_param
from sandbox.render import render
from sandbox.responses import json_response, no_content
from sandbox.search import check_size, run_search
from sandbox.store import Record, TypeStore, is_digits
from sandbox.writes import PORTAL_ID, WriteChecker

MAX_LIST_LIMIT = 100


def _missing(ts: TypeStore, key: str) -> ApiError:
    return not_found(
        f"No {ts.otype.singular} with id {key} exists",
        context={"id": [key]},
    )


def check_id_property(ts: TypeStore, id_property: str | None) -> str | None:
    """``idProperty`` must be ``hs_object_id`` or a property with unique values."""
    if id_property is None or id_property == "hs_object_id":
        return None
    prop = ts.props.get(id_property)
    if prop is None or not prop.unique:
        raise validation_error(
            f"{id_property} is not a unique identifier property of {ts.otype.name}; "
            "idProperty must be hs_object_id or a property with hasUniqueValue",
            context={"idProperty": [id_property]},
        )
    return id_property


def check_upsert_property(ts: TypeStore, id_property: str | None) -> str:
    """``idProperty`` of an upsert (or of a batch update by key): a unique property."""
    if not id_property:
        raise validation_error(
            "idProperty is required: the name of a property with unique values",
            context={"idProperty": [""]},
        )
    prop = ts.props.get(id_property)
    if prop is None or not prop.unique:
        raise validation_error(
            f"Unable to perform update/upsert by non-unique {ts.otype.type_id} property "
            f"{id_property} in portal ID {PORTAL_ID}",
            context={"idProperty": [id_property]},
        )
    return id_property


async def list_objects(request: Request, op: Op) -> Response:
    """A page of records in id order; ``archived=true`` lists only archived ones."""
    ts = op.types
    qp = request.query_params
    limit = int_param(qp, "limit", 10, 1, MAX_LIST_LIMIT)
    archived = bool_param(qp, "archived")
    after_raw = str_param(qp, "after")
    after = 0
    if after_raw is not None:
        if not is_digits(after_raw) or len(after_raw) > 18:
            raise validation_error(
                f"Invalid paging cursor after={after_raw!r}", context={"after": [after_raw]}
            )
        after = int(after_raw)
    props = list_param(qp, "properties")
    history = list_param(qp, "propertiesWithHistory")
    assoc = list_param(qp, "associations")
    page: list[Record] = []
    more = False
    for rec in ts.ids_after(after, archived=archived):
        if len(page) == limit:
            more = True
            break
        page.append(rec)
    body: dict[str, object] = {"results": [render(ts, r, props, history, assoc) for r in page]}
    if more:
        cursor = str(page[-1].id)
        params = [(k, v) for k, v in qp.multi_items() if k != "after"] + [("after", cursor)]
        link = str(request.url.replace(query=urlencode(params)))
        body["paging"] = {"next": {"after": cursor, "link": link}}
    return json_response(body)


async def create_object(request: Request, op: Op) -> Response:
    """Create one record: 201 with every stored property."""
    sb, ts = op.sb, op.types
    item = decode(await request.body(), CreateIn)
    plan = WriteChecker(sb.store, ts, sb.faults.reject, sb.rules_for(op.version)).create(
        item.properties, item.associations, 0
    )
    index_at, delayed = sb.index_at()
    rec = sb.store.create(
        ts, plan.props, plan.assoc, sb.clock.wall_ms(), index_at, delayed, plan.rid
    )
    return json_response(render(ts, rec, full=True), 201)


async def get_object(request: Request, op: Op) -> Response:
    """One record by id (or unique ``idProperty``)."""
    ts = op.types
    qp = request.query_params
    key = request.path_params["objectId"]
    id_property = check_id_property(ts, str_param(qp, "idProperty"))
    rec = ts.find(key, id_property, archived=bool_param(qp, "archived"))
    if rec is None:
        raise _missing(ts, key)
    return json_response(
        render(
            ts,
            rec,
            list_param(qp, "properties"),
            list_param(qp, "propertiesWithHistory"),
            list_param(qp, "associations"),
        )
    )


async def update_object(request: Request, op: Op) -> Response:
    """Change some properties of a live record; an empty string clears one."""
    sb, ts = op.sb, op.types
    key = request.path_params["objectId"]
    id_property = check_id_property(ts, str_param(request.query_params, "idProperty"))
    item = decode(await request.body(), UpdateIn)
    rec = ts.find(key, id_property, archived=False)
    if rec is None:
        raise _missing(ts, key)
    changes = WriteChecker(sb.store, ts, sb.faults.reject, sb.rules_for(op.version)).update(
        rec, item.properties, 0
    )
    index_at, delayed = sb.index_at()
    sb.store.update(ts, rec, changes, sb.clock.wall_ms(), index_at, delayed)
    return json_response(render(ts, rec, full=True))


async def archive_object(request: Request, op: Op) -> Response:
    """Move a record to the recycling bin: 204, also when it is already gone."""
    sb, ts = op.sb, op.types
    rec = ts.find(request.path_params["objectId"], None, archived=False)
    if rec is not None:
        index_at, delayed = sb.index_at()
        sb.store.archive(ts, rec, sb.clock.wall_ms(), index_at, delayed)
    return no_content()


async def gdpr_delete(request: Request, op: Op) -> Response:
    """Erase a record for good, history and associations included."""
    sb, ts = op.sb, op.types
    item = decode(await request.body(), GdprIn)
    key = id_text(item.objectId)
    id_property = check_id_property(ts, item.idProperty)
    rec = ts.find(key, id_property, archived=False) or ts.find(key, id_property, archived=True)
    if rec is None:
        raise _missing(ts, key)
    sb.store.purge(ts, rec)
    return no_content()


async def search_objects(request: Request, op: Op) -> Response:
    """``POST .../search``: filters, query, one sort, offset paging, ``total``."""
    sb, ts = op.sb, op.types
    raw = await request.body()
    check_size(raw)
    req = decode(raw, SearchIn)
    total, page, nxt = run_search(ts, req, sb.clock.monotonic())
    body: dict[str, object] = {
        "total": total,
        "results": [render(ts, r, req.properties, values=view) for r, view in page],
    }
    if nxt is not None:
        body["paging"] = {"next": {"after": str(nxt)}}
    return json_response(body)


def batch_envelope(
    started_ms: int,
    completed_ms: int,
    results: list[dict[str, object]],
    errors: list[dict[str, object]],
) -> tuple[dict[str, object], bool]:
    """A batch response body, and whether it is a 207 (some inputs failed)."""
    body: dict[str, object] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso_ms(started_ms),
        "completedAt": iso_ms(completed_ms),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body, bool(errors)
