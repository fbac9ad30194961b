"""Records and their indexes: the sandbox's whole state, independent of HTTP.

Every write goes through here so that history, unique indexes, associations and
the (optionally delayed) search view stay consistent. Property maps are never
mutated in place: a write replaces ``Record.props`` with a new dict, so the search
view may keep pointing at an older version while the index delay runs.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterator
from typing import Any

from sandbox.catalog import OBJECT_TYPES
from sandbox.clock import iso_ms
from sandbox.phones import CALCULATED as PHONE_CALCULATED
from sandbox.phones import derive
from sandbox.schema import ObjectType, PropertyDef

API_SOURCE = ("INTEGRATION", "sandbox")
CALC_SOURCE = ("CALCULATED", "")
FIRST_ID = 10_000_000_001

# (from type, to type) -> (HUBSPOT_DEFINED type id, label); the reverse pair is listed too.
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, str]] = {}
_PAIRS = [
    ("calls", "contacts", 194, 193),
    ("calls", "companies", 182, 181),
    ("calls", "deals", 206, 205),
    ("calls", "tickets", 220, 219),
    ("contacts", "companies", 279, 280),
    ("contacts", "deals", 4, 3),
    ("contacts", "tickets", 15, 16),
    ("companies", "deals", 342, 341),
    ("companies", "tickets", 340, 339),
    ("deals", "tickets", 27, 28),
]
for _a, _b, _ab, _ba in _PAIRS:
    _sa, _sb = OBJECT_TYPES[_a].singular, OBJECT_TYPES[_b].singular
    ASSOCIATION_TYPES[(_a, _b)] = (_ab, f"{_sa}_to_{_sb}")
    ASSOCIATION_TYPES[(_b, _a)] = (_ba, f"{_sb}_to_{_sa}")
# type id -> (from type, to type)
TYPE_ID_PAIRS: dict[int, tuple[str, str]] = {v[0]: k for k, v in ASSOCIATION_TYPES.items()}

AssocType = tuple[str, int]  # (associationCategory, associationTypeId)
Change = tuple[str, int, str, str]  # (value, epoch ms, sourceType, sourceId)
CALCULATED = frozenset(
    {"hs_object_id", "hs_createdate", "hs_lastmodifieddate", "createdate", "lastmodifieddate"}
    | PHONE_CALCULATED
)


class Record:
    """One CRM object. ``props`` includes the calculated ``hs_object_id`` and dates.

    History costs nothing at create time: ``initial`` is the first property map (never
    mutated), ``changes`` the later writes per property, oldest first.
    """

    __slots__ = (
        "archived",
        "archived_ms",
        "assoc",
        "changes",
        "created_ms",
        "id",
        "indexed",
        "initial",
        "pending",
        "props",
        "updated_ms",
    )

    def __init__(self, rid: int, props: dict[str, str], created_ms: int) -> None:
        self.id = rid
        self.props = props
        self.initial = props
        self.changes: dict[str, list[Change]] | None = None
        self.created_ms = created_ms
        self.updated_ms = created_ms
        self.archived = False
        self.archived_ms = 0
        self.assoc: dict[str, dict[int, list[AssocType]]] = {}
        self.indexed: dict[str, str] | None = None
        self.pending: list[tuple[float, dict[str, str] | None]] | None = None

    def history(self, name: str) -> list[Change]:
        """Every value ``name`` has had, oldest first."""
        out: list[Change] = []
        first = self.initial.get(name)
        if first is not None:
            source = CALC_SOURCE if name in CALCULATED else API_SOURCE
            out.append((first, self.created_ms, *source))
        if self.changes is not None:
            out.extend(self.changes.get(name, ()))
        return out

    def record_change(self, name: str, value: str, at_ms: int, source: tuple[str, str]) -> None:
        """Remember that ``name`` was set to ``value``."""
        if self.changes is None:
            self.changes = {}
        self.changes.setdefault(name, []).append((value, at_ms, *source))

    def search_view(self, now: float) -> dict[str, str] | None:
        """The properties search sees at monotonic time ``now`` (None: not searchable)."""
        pending = self.pending
        if pending is not None:
            while pending and pending[0][0] <= now:
                self.indexed = pending.pop(0)[1]
            if not pending:
                self.pending = None
        return self.indexed


class TypeStore:
    """The records of one object type, their property definitions and unique indexes."""

    def __init__(self, otype: ObjectType) -> None:
        self.otype = otype
        self.records: dict[int, Record] = {}
        self.props: dict[str, PropertyDef] = {}
        #: property groups: name -> {name, label, displayOrder, archived}; custom ones
        #: (``POST /crm/v3/properties/{type}/groups``) are kept like custom properties
        self.groups: dict[str, dict[str, Any]] = {}
        self.unique: dict[str, dict[str, int]] = {}
        # unique prop -> lower(value) -> id, or ids when values differ only in case
        self.folded: dict[str, dict[str, int | set[int]]] = {}
        self.delayed = False  # some write here went through the index delay
        self._keys: list[int] | None = None  # sorted record ids, for list paging
        self.reset(keep_custom=False)

    def reset(self, *, keep_custom: bool) -> None:
        """Drop every record; keep custom property definitions when asked."""
        custom = [p for p in self.props.values() if p.custom] if keep_custom else []
        groups = [g for g in self.groups.values() if g.get("custom")] if keep_custom else []
        self.records = {}
        self.props = {p.name: PropertyDef(**_fields(p)) for p in self.otype.builtin}
        for p in custom:
            self.props[p.name] = p
        self.groups = {
            name: {"name": name, "label": label, "displayOrder": -1, "archived": False}
            for name, label in self.otype.groups
        }
        for g in groups:
            self.groups[g["name"]] = g
        self.unique = {}
        self.folded = {}
        self.delayed = False
        self._keys = None
        for p in self.props.values():
            if p.unique:
                self.rebuild_unique(p.name)

    def rebuild_unique(self, prop: str) -> None:
        """(Re)build the indexes of unique property ``prop`` from the live records."""
        self.unique[prop] = {}
        self.folded[prop] = {}
        for rec in self.records.values():
            value = rec.props.get(prop)
            if value is not None and not rec.archived:
                self.claim(prop, value, rec.id)

    def claim(self, prop: str, value: str, rid: int) -> None:
        """Record that live record ``rid`` holds ``value`` in unique property ``prop``."""
        self.unique[prop][self.unique_key(prop, value)] = rid
        folded = self.folded[prop]
        low = value.lower()
        held = folded.get(low)
        if held is None or held == rid:
            folded[low] = rid
        elif isinstance(held, int):
            folded[low] = {held, rid}
        else:
            held.add(rid)

    def release(self, prop: str, value: str, rid: int) -> None:
        """Forget that ``rid`` holds ``value`` in unique property ``prop``."""
        index = self.unique[prop]
        key = self.unique_key(prop, value)
        if index.get(key) == rid:
            del index[key]
        folded = self.folded[prop]
        low = value.lower()
        held = folded.get(low)
        if held == rid:
            del folded[low]
        elif isinstance(held, set):
            held.discard(rid)
            if len(held) == 1:
                folded[low] = held.pop()

    def holders(self, prop: str, value: str) -> set[int]:
        """Live records holding ``value`` (any case) in unique property ``prop``."""
        held = self.folded[prop].get(value.lower())
        if held is None:
            return set()
        return {held} if isinstance(held, int) else set(held)

    def add(self, rec: Record) -> None:
        """Store a new record (ids only grow, so the id list stays sorted)."""
        self.records[rec.id] = rec
        if self._keys is not None:
            self._keys.append(rec.id)

    def remove(self, rid: int) -> None:
        """Drop a record for good."""
        del self.records[rid]
        self._keys = None

    def unique_key(self, prop: str, value: str) -> str:
        """Unique values compare exactly, except email (case-insensitive, as HubSpot)."""
        return value.lower() if prop == "email" else value

    def owner_of(self, prop: str, value: str) -> int | None:
        """The id of the live record holding ``value`` in unique property ``prop``."""
        return self.unique[prop].get(self.unique_key(prop, value))

    def live(self, rid: int) -> Record | None:
        """The non-archived record ``rid``."""
        rec = self.records.get(rid)
        return rec if rec is not None and not rec.archived else None

    def find(self, key: str, id_property: str | None, *, archived: bool) -> Record | None:
        """The record whose id (or unique ``id_property``) is ``key`` in the chosen dataset."""
        if id_property and id_property != "hs_object_id":
            if archived:
                for rec in self.records.values():
                    if rec.archived and rec.props.get(id_property) == key:
                        return rec
                return None
            owner = self.owner_of(id_property, key)
            return self.records.get(owner) if owner is not None else None
        rid = parse_id(key)
        found = self.records.get(rid) if rid is not None else None
        if found is None or found.archived != archived:
            return None
        return found

    def ids_after(self, after: int, *, archived: bool) -> Iterator[Record]:
        """Records with id > ``after`` in id order, from the chosen dataset."""
        if self._keys is None:
            self._keys = list(self.records)
        keys = self._keys
        start = bisect.bisect_right(keys, after)
        for rid in keys[start:]:
            rec = self.records[rid]
            if rec.archived == archived:
                yield rec

    def counts(self) -> tuple[int, int]:
        """(live, archived) record counts."""
        archived = sum(1 for r in self.records.values() if r.archived)
        return len(self.records) - archived, archived


def is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts ``'¹'``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def parse_id(text: str) -> int | None:
    """A record id from its string form, or None when it is not one."""
    if not is_digits(text) or len(text) > 18:
        return None
    return int(text)


def _fields(p: PropertyDef) -> dict[str, Any]:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.init}


class Store:
    """Every object type's records, the id sequence, and the writes that change them."""

    def __init__(self) -> None:
        self.types: dict[str, TypeStore] = {name: TypeStore(t) for name, t in OBJECT_TYPES.items()}
        self.next_id = FIRST_ID

    def reset(self, *, keep_custom_properties: bool = True) -> None:
        """Empty every store. Ids keep increasing, as HubSpot's never repeat."""
        for ts in self.types.values():
            ts.reset(keep_custom=keep_custom_properties)

    def __getitem__(self, name: str) -> TypeStore:
        return self.types[name]

    # -- writes ---------------------------------------------------------------

    def reserve_id(self) -> int:
        """The next record id, taken now (a create that then fails leaves a gap)."""
        rid = self.next_id
        self.next_id += 1
        return rid

    def create(
        self,
        ts: TypeStore,
        props: dict[str, str],
        assoc: list[tuple[str, int, AssocType]],
        now_ms: int,
        index_at: float,
        delayed: bool,
        rid: int | None = None,
    ) -> Record:
        """Create a record from checked properties and existing association targets;
        ``rid`` is an id from :meth:`reserve_id` (ids grow: reserve and create within
        one request, without awaiting in between)."""
        if rid is None:
            rid = self.reserve_id()
        otype = ts.otype
        stamp = iso_ms(now_ms)
        full = derive(otype.name, {k: v for k, v in props.items() if v}, creating=True)
        full["hs_object_id"] = str(rid)
        full[otype.created_prop] = stamp
        full[otype.modified_prop] = stamp
        rec = Record(rid, full, now_ms)
        ts.add(rec)
        for prop in ts.unique:
            unique_value = full.get(prop)
            if unique_value is not None:
                ts.claim(prop, unique_value, rid)
        for to_type, to_id, atype in assoc:
            self.associate(otype.name, rec, to_type, to_id, atype)
        self._index(ts, rec, full, index_at, delayed)
        return rec

    def update(
        self,
        ts: TypeStore,
        rec: Record,
        changes: dict[str, str],
        now_ms: int,
        index_at: float,
        delayed: bool,
    ) -> None:
        """Apply checked property changes; an empty string clears a value."""
        old = rec.props
        new = dict(old)
        changed = False
        for name, value in changes.items():
            if old.get(name, "") == value:
                continue
            changed = True
            if name in ts.unique:
                if name in old:
                    ts.release(name, old[name], rec.id)
                if value != "":
                    ts.claim(name, value, rec.id)
            if value == "":
                new.pop(name, None)
            else:
                new[name] = value
            rec.record_change(name, value, now_ms, API_SOURCE)
        if not changed:
            return
        derived = derive(ts.otype.name, new, creating=False)
        for name in PHONE_CALCULATED:
            if derived.get(name, "") != new.get(name, ""):
                rec.record_change(name, derived.get(name, ""), now_ms, CALC_SOURCE)
        new = derived
        modified = ts.otype.modified_prop
        new[modified] = iso_ms(now_ms)
        rec.record_change(modified, new[modified], now_ms, CALC_SOURCE)
        rec.props = new
        rec.updated_ms = now_ms
        self._index(ts, rec, new, index_at, delayed)

    def archive(
        self, ts: TypeStore, rec: Record, now_ms: int, index_at: float, delayed: bool
    ) -> None:
        """Soft-delete: hidden from reads and search, unique values released."""
        if rec.archived:
            return
        rec.archived = True
        rec.archived_ms = now_ms
        for prop in ts.unique:
            value = rec.props.get(prop)
            if value is not None:
                ts.release(prop, value, rec.id)
        self._index(ts, rec, None, index_at, delayed)

    def purge(self, ts: TypeStore, rec: Record) -> None:
        """GDPR delete: the record, its history and its associations are gone for good."""
        if not rec.archived:
            self.archive(ts, rec, rec.updated_ms, 0.0, False)
        for to_type, targets in rec.assoc.items():
            other = self.types[to_type]
            for to_id in targets:
                target = other.records.get(to_id)
                if target is not None:
                    back = target.assoc.get(ts.otype.name)
                    if back is not None:
                        back.pop(rec.id, None)
        ts.remove(rec.id)

    def associate(
        self, from_type: str, rec: Record, to_type: str, to_id: int, atype: AssocType
    ) -> bool:
        """Link ``rec`` to an existing ``to_type`` record both ways; False if it is absent."""
        target = self.types[to_type].live(to_id)
        if target is None:
            return False
        forward = rec.assoc.setdefault(to_type, {}).setdefault(to_id, [])
        if atype not in forward:
            forward.append(atype)
        reverse_id = _reverse_type_id(from_type, to_type, atype)
        back = target.assoc.setdefault(from_type, {}).setdefault(rec.id, [])
        if reverse_id not in back:
            back.append(reverse_id)
        return True

    @staticmethod
    def _index(
        ts: TypeStore, rec: Record, view: dict[str, str] | None, index_at: float, delayed: bool
    ) -> None:
        if delayed or rec.pending:
            ts.delayed = True
            if rec.pending is None:
                rec.pending = []
            rec.pending.append((index_at, view))
        else:
            rec.indexed = view


def _reverse_type_id(from_type: str, to_type: str, atype: AssocType) -> AssocType:
    category, type_id = atype
    pair = ASSOCIATION_TYPES.get((from_type, to_type))
    if category == "HUBSPOT_DEFINED" and pair is not None and pair[0] == type_id:
        return category, ASSOCIATION_TYPES[(to_type, from_type)][0]
    return atype
