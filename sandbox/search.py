"""HubSpot's CRM search: filter groups OR'd, filters AND'd, one sort, ``query`` over the
type's text properties, offset paging capped at 10,000 results, and HubSpot's limits
(5 groups, 6 filters per group, 18 in total, 3,000-character bodies, ``limit`` ≤ 200).

Numbers and dates compare by value where the property is a number or a date-time;
everything else compares as case-insensitive text. Search reads each record's search
view, which trails writes by the ``index_delay_ms`` fault.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.bodies import FilterGroupIn, FilterIn, Scalar, SearchIn, SortIn
from sandbox.errors import validation_error
from sandbox.schema import DATE, DATETIME, NUMBER, parse_datetime_ms, parse_number, stringify
from sandbox.store import Record, TypeStore, is_digits

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_BODY_CHARS = 3000
MAX_LIMIT = 200
MAX_RESULTS = 10_000
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
_SPLIT = re.compile(r"[^\w]+")

Props = dict[str, str]
Predicate = Callable[[Props], bool]
Key = Callable[[str], Any]


def check_size(body: bytes) -> None:
    """Refuse bodies over HubSpot's 3,000-character search limit."""
    if len(body) > MAX_BODY_CHARS and len(body.decode("utf-8", "replace")) > MAX_BODY_CHARS:
        raise validation_error(
            f"Search request body is too long: the limit is {MAX_BODY_CHARS} characters",
            context={"limit": [str(MAX_BODY_CHARS)]},
        )


def _kind(ts: TypeStore, name: str) -> str:
    prop = ts.props.get(name)
    if prop is None:
        return "string"
    if prop.type == NUMBER:
        return "number"
    if prop.type in (DATETIME, DATE):
        return "datetime"
    return "string"


def _key_fn(kind: str) -> Key:
    if kind == "number":
        return parse_number
    if kind == "datetime":
        return parse_datetime_ms
    return str.lower


def _operand(f: FilterIn, raw: Scalar, key: Key, what: str) -> Any:
    text = stringify(raw)
    if raw is None or text is None:
        raise validation_error(
            f"Filter on {f.propertyName} with operator {f.operator} needs a {what}",
            context={"propertyName": [f.propertyName]},
        )
    value = key(text)
    if value is None:
        raise validation_error(
            f"{text!r} is not a valid {what} for {f.propertyName}",
            context={"propertyName": [f.propertyName]},
        )
    return value


def _tokens(text: str) -> list[str]:
    low = text.lower()
    out = [low, *low.split()]
    out.extend(t for t in _SPLIT.split(low) if t)
    return out


def compile_filter(ts: TypeStore, f: FilterIn) -> Predicate:
    """One filter as a predicate over a record's search view."""
    op = f.operator
    if op not in OPERATORS:
        raise validation_error(
            f"Unknown filter operator {op!r}; expected one of {', '.join(sorted(OPERATORS))}",
            context={"operator": [op]},
        )
    name = f.propertyName
    if op == "HAS_PROPERTY":
        return lambda p: bool(p.get(name))
    if op == "NOT_HAS_PROPERTY":
        return lambda p: not p.get(name)
    kind = _kind(ts, name)
    key = _key_fn(kind)

    def keyed(p: Props) -> Any:
        v = p.get(name)
        return None if v is None else key(v)

    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = stringify(f.value)
        if f.value is None or not pattern:
            raise validation_error(f"Filter on {name} with operator {op} needs a value")
        pat = pattern.lower()

        def contains(p: Props) -> bool:
            v = p.get(name)
            return v is not None and any(fnmatch.fnmatchcase(t, pat) for t in _tokens(v))

        if op == "CONTAINS_TOKEN":
            return contains
        return lambda p: not contains(p)
    if op in ("IN", "NOT_IN"):
        if not f.values:
            raise validation_error(f"Filter on {name} with operator {op} needs values")
        wanted = {_operand(f, v, key, "value") for v in f.values}
        if op == "IN":
            return lambda p: keyed(p) in wanted
        return lambda p: keyed(p) not in wanted
    low = _operand(f, f.value, key, "value")
    if op == "EQ":
        return lambda p: keyed(p) == low
    if op == "NEQ":
        return lambda p: keyed(p) != low
    if op == "BETWEEN":
        high = _operand(f, f.highValue, key, "highValue")

        def between(p: Props) -> bool:
            v = keyed(p)
            return v is not None and low <= v <= high

        return between
    compare: dict[str, Callable[[Any], bool]] = {
        "LT": lambda v: v < low,
        "LTE": lambda v: v <= low,
        "GT": lambda v: v > low,
        "GTE": lambda v: v >= low,
    }
    test = compare[op]

    def ordered(p: Props) -> bool:
        v = keyed(p)
        return v is not None and bool(test(v))

    return ordered


def compile_query(ts: TypeStore, query: str | None) -> Predicate | None:
    """``query``: every term is a prefix of a token of the type's text properties."""
    if not query or not query.strip():
        return None
    terms = [t.strip("*") for t in query.lower().split()]
    terms = [t for t in terms if t]
    fields = ts.otype.text_props

    def matches(p: Props) -> bool:
        tokens: list[str] = []
        for name in fields:
            v = p.get(name)
            if v:
                tokens.extend(_tokens(v))
        return all(any(tok.startswith(term) for tok in tokens) for term in terms)

    return matches if terms else None


def _sort(ts: TypeStore, sorts: list[SortIn | str]) -> tuple[str, bool] | None:
    if not sorts:
        return None
    if len(sorts) > 1:
        raise validation_error("Only one sort is supported", context={"sorts": [str(len(sorts))]})
    s = sorts[0]
    if isinstance(s, str):
        desc = s.startswith("-")
        return s.lstrip("-"), desc
    if s.direction not in ("ASCENDING", "DESCENDING"):
        raise validation_error(
            f"Unknown sort direction {s.direction!r}; expected ASCENDING or DESCENDING"
        )
    return s.propertyName, s.direction == "DESCENDING"


Hit = tuple[Record, Props]


def _candidates(ts: TypeStore, groups: list[FilterGroupIn]) -> Iterable[Record]:
    """The records worth testing: when every group pins a unique property with EQ/IN
    (the writer's "which of these keys exist?" search), only their holders; otherwise all.
    Not while index delays are in play: the unique index is live, search is not."""
    if not groups or ts.delayed:
        return ts.records.values()
    ids: set[int] = set()
    for group in groups:
        pinned = None
        for f in group.filters:
            if (
                f.propertyName in ts.unique
                and f.operator in ("EQ", "IN")
                and _kind(ts, f.propertyName) == "string"
            ):
                raw = [f.value] if f.operator == "EQ" else (f.values or [])
                values = [stringify(v) for v in raw]
                if raw and all(v for v in values):
                    pinned = (f.propertyName, values)
                    break
        if pinned is None:
            return ts.records.values()
        prop, values = pinned
        for v in values:
            ids |= ts.holders(prop, v or "")
    records = ts.records
    return [records[i] for i in sorted(ids) if i in records]


def run_search(ts: TypeStore, req: SearchIn, now: float) -> tuple[int, list[Hit], int | None]:
    """(total, the page of (record, search view) hits, next offset or None)."""
    groups = req.filterGroups
    if len(groups) > MAX_GROUPS:
        raise validation_error(f"Too many filter groups: {len(groups)}, the limit is {MAX_GROUPS}")
    total_filters = 0
    compiled: list[list[Predicate]] = []
    for g in groups:
        if len(g.filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: {len(g.filters)}, the limit is {MAX_FILTERS_PER_GROUP}"
            )
        total_filters += len(g.filters)
        compiled.append([compile_filter(ts, f) for f in g.filters])
    if total_filters > MAX_FILTERS:
        raise validation_error(f"Too many filters: {total_filters}, the limit is {MAX_FILTERS}")
    limit = 10 if req.limit is None else req.limit
    if not 1 <= limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    offset = 0
    if req.after is not None and req.after != "":
        text = req.after if isinstance(req.after, str) else str(req.after)
        if not is_digits(text) or len(text) > 9:
            raise validation_error(f"Invalid paging cursor after={text!r}")
        offset = int(text)
    if offset >= MAX_RESULTS:
        raise validation_error(
            f"Paging beyond {MAX_RESULTS} results is not supported; narrow the search"
        )
    query = compile_query(ts, req.query)
    sort = _sort(ts, req.sorts)

    matched: list[Hit] = []
    for rec in _candidates(ts, groups):
        view = rec.search_view(now)
        if view is None:
            continue
        if compiled and not any(all(f(view) for f in group) for group in compiled):
            continue
        if query is not None and not query(view):
            continue
        matched.append((rec, view))
    if sort is not None:
        name, desc = sort
        key = _key_fn(_kind(ts, name))
        present = [(key(hit[1][name]) if name in hit[1] else None, hit) for hit in matched]
        have = [(k, hit) for k, hit in present if k is not None]
        missing = [hit for k, hit in present if k is None]
        have.sort(key=lambda kh: kh[0], reverse=desc)
        ordered = [hit for _, hit in have] + missing
    else:
        ordered = matched
    total = len(ordered)
    end = min(offset + limit, MAX_RESULTS)
    page = ordered[offset:end]
    nxt = end if end < min(total, MAX_RESULTS) else None
    return total, page, nxt
