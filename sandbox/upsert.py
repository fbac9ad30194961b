"""``POST /crm/v3/objects/{type}/batch/upsert`` (``batchUpsertCalls``): create or update
records identified by a unique property value — HubSpot's API (the official client has
``crm.objects.calls.batch_api.upsert``), though not one of the shared spec's 11
operations. Each input names its ``idProperty``, which must be a property with unique
values (else HubSpot's 400 ``Unable to perform update/upsert by non-unique 0-48 property
…``); its ``id`` is that property's value, written on the record. Each result says
whether it is ``new``; failures follow the same ``objectWriteTraceId`` rule as batch
create (207 per input, else 400 for the batch, nothing written). 200 when all succeed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sandbox.batch import echo_trace, traced_error
from sandbox.bodies import BatchUpsertIn, check_batch_size, decode, id_text
from sandbox.context import Op
from sandbox.errors import ApiError, validation_error
from sandbox.objects import batch_envelope, check_upsert_property
from sandbox.render import render
from sandbox.responses import json_response
from sandbox.store import Record
from sandbox.writes import CreatePlan, WriteChecker


async def batch_upsert(request: Request, op: Op) -> Response:
    """Create or update up to 100 records by a unique ``idProperty``."""
    sb, ts = op.sb, op.types
    started = sb.clock.wall_ms()
    body = decode(await request.body(), BatchUpsertIn)
    inputs = body.inputs
    check_batch_size(len(inputs))
    op.batch_size = len(inputs)
    keys = [id_text(i.id) for i in inputs]
    for item in inputs:
        check_upsert_property(ts, item.idProperty)
    pairs = [(i.idProperty or "", k) for i, k in zip(inputs, keys, strict=True)]
    dupes = sorted({k for p, k in pairs if pairs.count((p, k)) > 1})
    if dupes:
        raise validation_error(
            f"Duplicate IDs found in batch input: {dupes}", context={"ids": dupes}
        )
    traced = bool(inputs) and all(i.objectWriteTraceId for i in inputs)
    checker = WriteChecker(sb.store, ts, sb.faults.reject, sb.rules_for(op.version))
    plans: list[tuple[Record | None, CreatePlan | dict[str, str], str | None] | None] = []
    errors: list[dict[str, object]] = []
    for n, (item, key) in enumerate(zip(inputs, keys, strict=True)):
        id_property = item.idProperty or ""
        raw = {**item.properties, id_property: key}
        existing = ts.find(key, id_property, archived=False)
        try:
            if existing is None:
                plans.append((None, checker.create(raw, None, n), item.objectWriteTraceId))
            else:
                plans.append((existing, checker.update(existing, raw, n), item.objectWriteTraceId))
        except ApiError as err:
            if not traced or sb.faults.reject_whole_batch:
                raise
            plans.append(None)
            errors.append(traced_error(err, item.objectWriteTraceId))
    index_at, delayed = sb.index_at()
    now = sb.clock.wall_ms()
    results = []
    for plan in plans:
        if plan is None:
            continue
        rec, change, trace = plan
        if rec is None:
            assert isinstance(change, CreatePlan)
            rec = sb.store.create(
                ts, change.props, change.assoc, now, index_at, delayed, change.rid
            )
            new = True
        else:
            assert isinstance(change, dict)
            sb.store.update(ts, rec, change, now, index_at, delayed)
            new = False
        rendered = echo_trace(render(ts, rec, full=True), trace)
        rendered["new"] = new
        results.append(rendered)
    out, partial = batch_envelope(started, sb.clock.wall_ms(), results, errors)
    return json_response(out, 207 if partial else 200)
