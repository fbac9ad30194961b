"""Saving the store to a JSON file and loading it back (``--data FILE``).

The file is written atomically (temporary file, then rename), at shutdown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from sandbox.schema import PropertyDef
from sandbox.store import Record, Store

VERSION = 2


def dump(store: Store) -> dict[str, Any]:
    """The store as plain JSON."""
    types: dict[str, Any] = {}
    for name, ts in store.types.items():
        types[name] = {
            "custom_properties": [
                {
                    "name": p.name,
                    "type": p.type,
                    "label": p.label,
                    "group": p.group,
                    "field_type": p.field_type,
                    "unique": p.unique,
                    "options": list(p.options) if p.options is not None else None,
                    "created_ms": p.created_ms,
                }
                for p in ts.props.values()
                if p.custom
            ],
            "custom_groups": [g for g in ts.groups.values() if g.get("custom")],
            "records": [
                {
                    "id": r.id,
                    "props": r.props,
                    "initial": r.initial,
                    "changes": {k: [list(h) for h in v] for k, v in (r.changes or {}).items()},
                    "created_ms": r.created_ms,
                    "updated_ms": r.updated_ms,
                    "archived": r.archived,
                    "archived_ms": r.archived_ms,
                    "assoc": {
                        t: {str(i): [list(a) for a in types_] for i, types_ in targets.items()}
                        for t, targets in r.assoc.items()
                    },
                }
                for r in ts.records.values()
            ],
        }
    return {"version": VERSION, "next_id": store.next_id, "types": types}


def load(store: Store, data: dict[str, Any]) -> None:
    """Replace the store's contents with ``data`` (as written by :func:`dump`)."""
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported sandbox data version {data.get('version')!r}")
    store.reset(keep_custom_properties=False)
    store.next_id = int(data["next_id"])
    for name, blob in data["types"].items():
        ts = store.types[name]
        for p in blob["custom_properties"]:
            options = tuple(p["options"]) if p["options"] is not None else None
            prop = PropertyDef(
                p["name"],
                p["type"],
                label=p["label"],
                group=p["group"],
                field_type=p["field_type"],
                unique=p["unique"],
                options=options,
                custom=True,
                created_ms=p["created_ms"],
            )
            ts.props[prop.name] = prop
        for group in blob.get("custom_groups", []):
            ts.groups[group["name"]] = dict(group)
        for raw in blob["records"]:
            rec = Record(int(raw["id"]), dict(raw["props"]), int(raw["created_ms"]))
            rec.initial = dict(raw["initial"])
            changes = raw["changes"]
            rec.changes = (
                {k: [(h[0], int(h[1]), h[2], h[3]) for h in v] for k, v in changes.items()}
                if changes
                else None
            )
            rec.updated_ms = int(raw["updated_ms"])
            rec.archived = bool(raw["archived"])
            rec.archived_ms = int(raw["archived_ms"])
            rec.assoc = {
                t: {int(i): [(a[0], int(a[1])) for a in types_] for i, types_ in targets.items()}
                for t, targets in raw["assoc"].items()
            }
            rec.indexed = None if rec.archived else rec.props
            ts.add(rec)
        for prop in ts.props.values():
            if prop.unique:
                ts.rebuild_unique(prop.name)


def save_file(store: Store, path: Path) -> None:
    """Write the store to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(dump(store)))
    os.replace(tmp, path)


def load_file(store: Store, path: Path) -> bool:
    """Load ``path`` into the store if it exists; True when it did."""
    if not path.exists():
        return False
    load(store, orjson.loads(path.read_bytes()))
    return True
