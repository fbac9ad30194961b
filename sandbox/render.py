"""Records as HubSpot's JSON: ``{id, properties, propertiesWithHistory?, createdAt, ...}``."""

from __future__ import annotations

from typing import Any

from sandbox.catalog import resolve_type
from sandbox.clock import iso_ms
from sandbox.store import ASSOCIATION_TYPES, Record, TypeStore


def render(
    ts: TypeStore,
    rec: Record,
    props: list[str] | None = None,
    history: list[str] | None = None,
    assoc: list[str] | None = None,
    *,
    full: bool = False,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One record: all stored properties when ``full`` (write responses), otherwise the
    type's default properties plus those requested. Unset properties are omitted.
    ``values`` overrides the record's properties (search shows its indexed view)."""
    if values is None:
        values = rec.props
    if full:
        shown = dict(values)
    else:
        shown = {}
        for name in ts.otype.defaults:
            v = values.get(name)
            if v is not None:
                shown[name] = v
        if props:
            for name in props:
                v = values.get(name)
                if v is not None:
                    shown[name] = v
    out: dict[str, Any] = {
        "id": str(rec.id),
        "properties": shown,
        "createdAt": iso_ms(rec.created_ms),
        "updatedAt": iso_ms(rec.updated_ms),
        "archived": rec.archived,
    }
    if rec.archived:
        out["archivedAt"] = iso_ms(rec.archived_ms)
    if history:
        out["propertiesWithHistory"] = render_history(rec, history)
    if assoc:
        rendered = render_associations(ts.otype.name, rec, assoc)
        if rendered:
            out["associations"] = rendered
    return out


def render_history(rec: Record, names: list[str]) -> dict[str, list[dict[str, str]]]:
    """Every recorded value of each named property, newest first."""
    out: dict[str, list[dict[str, str]]] = {}
    for name in names:
        entries = rec.history(name)
        if not entries:
            continue
        out[name] = [
            {"value": v, "timestamp": iso_ms(t), "sourceType": st, "sourceId": si}
            if si
            else {"value": v, "timestamp": iso_ms(t), "sourceType": st}
            for v, t, st, si in reversed(entries)
        ]
    return out


def render_associations(
    from_type: str, rec: Record, wanted: list[str]
) -> dict[str, dict[str, list[dict[str, str]]]]:
    """v3 association blocks ``{contacts: {results: [{id, type}]}}`` for the wanted types."""
    out: dict[str, dict[str, list[dict[str, str]]]] = {}
    for name in wanted:
        otype = resolve_type(name)
        if otype is None:
            continue
        targets = rec.assoc.get(otype.name)
        if not targets:
            continue
        default = ASSOCIATION_TYPES.get((from_type, otype.name))
        results: list[dict[str, str]] = []
        for to_id, types in targets.items():
            for _category, type_id in types:
                label = (
                    default[1]
                    if default is not None and default[0] == type_id
                    else f"{from_type[:-1]}_to_{otype.singular}_{type_id}"
                )
                results.append({"id": str(to_id), "type": label})
        if results:
            out[otype.name] = {"results": results}
    return out
