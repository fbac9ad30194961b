"""Property and object-type definitions, and how a property value is checked.

HubSpot stores every property value as a string; it refuses writes to properties
that do not exist or are read-only, and values that do not fit the property's type
(number, datetime, enumeration options, bool). ``hasUniqueValue`` properties are
enforced by the store. The types themselves are in :mod:`sandbox.catalog`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.clock import iso_ms

STRING = "string"
NUMBER = "number"
DATETIME = "datetime"
DATE = "date"
ENUMERATION = "enumeration"
BOOL = "bool"
PHONE = "phone_number"
PROPERTY_TYPES = frozenset({STRING, NUMBER, DATETIME, DATE, ENUMERATION, BOOL, PHONE})
_FIELD_TYPES = {
    STRING: "text",
    NUMBER: "number",
    DATETIME: "date",
    DATE: "date",
    ENUMERATION: "select",
    BOOL: "booleancheckbox",
    PHONE: "phonenumber",
}


@dataclass(slots=True)
class PropertyDef:
    """One property of an object type."""

    name: str
    type: str = STRING
    label: str = ""
    group: str = ""
    field_type: str = ""
    unique: bool = False
    read_only: bool = False
    options: tuple[str, ...] | None = None  # enforced options; None: any value
    custom: bool = False
    created_ms: int = 0
    plain: bool = field(init=False, default=False)  # writable text: any string goes

    def __post_init__(self) -> None:
        free_text = self.type in (STRING, PHONE) or (
            self.type == ENUMERATION and self.options is None
        )
        self.plain = free_text and not self.read_only

    def to_json(self) -> dict[str, Any]:
        """The property as HubSpot's properties API shows it."""
        stamp = iso_ms(self.created_ms)
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "fieldType": self.field_type or _FIELD_TYPES.get(self.type, "text"),
            "groupName": self.group or "sandbox",
            "description": "",
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options or ())
            ],
            "hasUniqueValue": self.unique,
            "hidden": False,
            "formField": not self.read_only,
            "calculated": self.read_only,
            "externalOptions": False,
            "modificationMetadata": {
                "archivable": self.custom,
                "readOnlyDefinition": not self.custom,
                "readOnlyValue": self.read_only,
            },
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }


@dataclass(frozen=True, slots=True)
class ObjectType:
    """A CRM object type: its names, ids, required and default properties."""

    name: str  # plural, as in the URL: "calls"
    singular: str  # "call"
    type_id: str  # "0-48"
    noun: str  # for operation ids: "Call"
    nouns: str  # "Calls"
    created_prop: str
    modified_prop: str
    required: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()  # returned when no properties are requested
    text_props: tuple[str, ...] = ()  # what a search ``query`` matches
    builtin: tuple[PropertyDef, ...] = field(default_factory=tuple)
    groups: tuple[tuple[str, str], ...] = ()  # built-in property groups: (name, label)

    def op(self, kind: str) -> str:
        """The operation id of ``kind`` for this type (``batchCreate`` → ``batchCreateCalls``)."""
        return _OPS[kind].format(s=self.noun, p=self.nouns)


_OPS = {
    "list": "list{p}",
    "create": "create{s}",
    "get": "get{s}ById",
    "update": "update{s}",
    "archive": "archive{s}",
    "batchCreate": "batchCreate{p}",
    "batchRead": "batchRead{p}",
    "batchUpdate": "batchUpdate{p}",
    "batchArchive": "batchArchive{p}",
    "batchUpsert": "batchUpsert{p}",
    "search": "search{p}",
    "gdprDelete": "gdprDelete{s}",
}


class InvalidValue(Exception):
    """A property value HubSpot would refuse; ``code`` is HubSpot's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def stringify(raw: object) -> str | None:
    """A JSON property value as HubSpot stores it (a string), or None if not a scalar."""
    if isinstance(raw, str):
        return raw
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return str(int(raw)) if raw.is_integer() else repr(raw)
    return None


MIN_MS = -62_000_000_000_000  # about year 5: fromtimestamp() can render it
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_datetime_ms(text: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 date/date-time or an epoch-ms string, else None."""
    s = text.strip()
    if not s:
        return None
    digits = s.removeprefix("-")
    if digits.isascii() and digits.isdigit():
        ms = int(s) if len(digits) < 20 else MAX_MS + 1
    else:
        try:
            dt = datetime.fromisoformat(s.replace("z", "Z"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        try:
            ms = int(dt.timestamp() * 1000)
        except (OverflowError, ValueError):
            return None
    return ms if MIN_MS <= ms <= MAX_MS else None


def parse_number(text: str) -> float | None:
    """The numeric value of ``text``, or None when it is not a finite number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_value(prop: PropertyDef, value: str) -> str:
    """The value to store for ``prop``; raises :class:`InvalidValue` when HubSpot would."""
    if value == "":
        return value
    if prop.type == NUMBER:
        if parse_number(value) is None:
            raise InvalidValue("INVALID_INTEGER", f"{value} was not a valid number.")
    elif prop.type in (DATETIME, DATE):
        ms = parse_datetime_ms(value)
        if ms is None:
            raise InvalidValue(
                "INVALID_DATE",
                f"{value} was not a valid long (epoch millis) or ISO8601 date-time.",
            )
        digits = value.strip().removeprefix("-")
        if digits.isascii() and digits.isdigit():
            return iso_ms(ms)
    elif prop.type == BOOL:
        low = value.lower()
        if low not in ("true", "false"):
            raise InvalidValue("INVALID_BOOLEAN", f"{value} was not a valid boolean.")
        return low
    elif prop.type == ENUMERATION and prop.options is not None and value not in prop.options:
        raise InvalidValue(
            "INVALID_OPTION",
            f"{value} was not one of the allowed options: {', '.join(prop.options)}",
        )
    return value
