"""Batch operations: create, read, update, archive — at most 100 inputs each.

As in HubSpot, a create/update batch reports failures per input (in a 207) only when
every input carries an ``objectWriteTraceId``, echoed in the error's
``context.objectWriteTraceId``; otherwise one failing input fails the whole batch and
nothing is written. Ids that do not exist are per-input errors of a 207 in reads and
updates.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sandbox.bodies import (
    BatchArchiveIn,
    BatchCreateIn,
    BatchReadIn,
    BatchUpdateIn,
    check_batch_size,
    decode,
    id_text,
)
from sandbox.context import Op
from sandbox.errors import ApiError, validation_error
from sandbox.objects import batch_envelope, check_id_property, check_upsert_property
from sandbox.params import bool_param
from sandbox.render import render
from sandbox.responses import json_response, no_content
from sandbox.store import Record
from sandbox.writes import CreatePlan, WriteChecker


def traced_error(
    err: ApiError, trace: str | None, ids: list[str] | None = None
) -> dict[str, object]:
    item = err.batch_item()
    ctx: dict[str, list[str]] = dict(item["context"])
    if ids is not None:
        ctx["ids"] = ids
    if trace is not None:
        ctx["objectWriteTraceId"] = [trace]
    item["context"] = ctx
    return item


async def batch_create(request: Request, op: Op) -> Response:
    """Create up to 100 records: 201, or 207 with per-input errors when traced."""
    sb, ts = op.sb, op.types
    started = sb.clock.wall_ms()
    body = decode(await request.body(), BatchCreateIn)
    inputs = body.inputs
    check_batch_size(len(inputs))
    op.batch_size = len(inputs)
    traced = bool(inputs) and all(i.objectWriteTraceId for i in inputs)
    checker = WriteChecker(sb.store, ts, sb.faults.reject, sb.rules_for(op.version))
    plans: list[CreatePlan | None] = []
    errors: list[dict[str, object]] = []
    for n, item in enumerate(inputs):
        try:
            plans.append(checker.create(item.properties, item.associations, n))
        except ApiError as err:
            if not traced or sb.faults.reject_whole_batch:
                raise
            plans.append(None)
            errors.append(traced_error(err, item.objectWriteTraceId))
    index_at, delayed = sb.index_at()
    now = sb.clock.wall_ms()
    results = []
    for item, plan in zip(inputs, plans, strict=True):
        if plan is None:
            continue
        rec = sb.store.create(ts, plan.props, plan.assoc, now, index_at, delayed, plan.rid)
        results.append(echo_trace(render(ts, rec, full=True), item.objectWriteTraceId))
    out, partial = batch_envelope(started, sb.clock.wall_ms(), results, errors)
    return json_response(out, 207 if partial else 201)


def echo_trace(rendered: dict[str, object], trace: str | None) -> dict[str, object]:
    """HubSpot echoes an input's ``objectWriteTraceId`` on the object it wrote."""
    if trace is not None:
        rendered["objectWriteTraceId"] = trace
    return rendered


async def batch_read(request: Request, op: Op) -> Response:
    """Read up to 100 records by id or unique ``idProperty``; missing ids → 207."""
    sb, ts = op.sb, op.types
    started = sb.clock.wall_ms()
    body = decode(await request.body(), BatchReadIn)
    check_batch_size(len(body.inputs))
    op.batch_size = len(body.inputs)
    id_property = check_id_property(ts, body.idProperty)
    archived = bool_param(request.query_params, "archived")
    props = list(body.properties or [])
    if id_property and id_property not in props:
        props.append(id_property)
    seen: set[str] = set()
    results: list[dict[str, object]] = []
    missing: list[str] = []
    for item in body.inputs:
        key = id_text(item.id)
        if key in seen:
            continue
        seen.add(key)
        rec = ts.find(key, id_property, archived=archived)
        if rec is None:
            missing.append(key)
        else:
            results.append(render(ts, rec, props, body.propertiesWithHistory))
    errors: list[dict[str, object]] = []
    if missing:
        errors.append(
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {ts.otype.singular.upper()} objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            }
        )
    out, partial = batch_envelope(started, sb.clock.wall_ms(), results, errors)
    return json_response(out, 207 if partial else 200)


async def batch_update(request: Request, op: Op) -> Response:
    """Update up to 100 records; unknown ids are per-input errors of a 207."""
    sb, ts = op.sb, op.types
    started = sb.clock.wall_ms()
    body = decode(await request.body(), BatchUpdateIn)
    inputs = body.inputs
    check_batch_size(len(inputs))
    op.batch_size = len(inputs)
    keys = [id_text(i.id) for i in inputs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise validation_error(
            f"Duplicate IDs found in batch input: {dupes}", context={"ids": dupes}
        )
    traced = bool(inputs) and all(i.objectWriteTraceId for i in inputs)
    checker = WriteChecker(sb.store, ts, sb.faults.reject, sb.rules_for(op.version))
    plans: list[tuple[Record, dict[str, str], str | None]] = []
    errors: list[dict[str, object]] = []
    for n, (item, key) in enumerate(zip(inputs, keys, strict=True)):
        id_property = (
            None
            if item.idProperty in (None, "hs_object_id")
            else check_upsert_property(ts, item.idProperty)
        )
        rec = ts.find(key, id_property, archived=False)
        if rec is None:
            err = ApiError(404, "OBJECT_NOT_FOUND", f"No {ts.otype.singular} with id {key} exists")
            errors.append(traced_error(err, item.objectWriteTraceId, [key]))
            continue
        try:
            plans.append((rec, checker.update(rec, item.properties, n), item.objectWriteTraceId))
        except ApiError as err:
            if not traced or sb.faults.reject_whole_batch:
                raise
            errors.append(traced_error(err, item.objectWriteTraceId))
    index_at, delayed = sb.index_at()
    now = sb.clock.wall_ms()
    results = []
    for rec, changes, trace in plans:
        sb.store.update(ts, rec, changes, now, index_at, delayed)
        results.append(echo_trace(render(ts, rec, full=True), trace))
    out, partial = batch_envelope(started, sb.clock.wall_ms(), results, errors)
    return json_response(out, 207 if partial else 200)


async def batch_archive(request: Request, op: Op) -> Response:
    """Archive up to 100 records: 204, ids that do not exist are ignored."""
    sb, ts = op.sb, op.types
    body = decode(await request.body(), BatchArchiveIn)
    check_batch_size(len(body.inputs))
    op.batch_size = len(body.inputs)
    index_at, delayed = sb.index_at()
    now = sb.clock.wall_ms()
    for item in body.inputs:
        rec = ts.find(id_text(item.id), None, archived=False)
        if rec is not None:
            sb.store.archive(ts, rec, now, index_at, delayed)
    return no_content()
