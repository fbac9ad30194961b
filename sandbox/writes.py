"""Checking writes before they touch the store: property names, types and values,
required properties, unique values, association targets, and the reject fault.

A checker is used for one request, so values claimed by earlier inputs of the same
batch count as taken for later ones.

A create reserves its record id before its values are checked, as HubSpot allocates
one: a create refused for a unique value names that (burnt) id and the holder's, in
HubSpot's words (see :func:`conflict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sandbox.bodies import AssocIn, Props
from sandbox.errors import ApiError, validation_error
from sandbox.rules import Rule
from sandbox.schema import InvalidValue, check_value, stringify
from sandbox.store import TYPE_ID_PAIRS, AssocType, Record, Store, TypeStore, parse_id

CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED")


@dataclass(slots=True)
class CreatePlan:
    """A checked create: string properties and existing association targets."""

    props: dict[str, str]
    assoc: list[tuple[str, int, AssocType]]
    rid: int | None = None  # the id reserved for the record


class WriteChecker:
    """Checks creates and updates of one object type for one request."""

    def __init__(
        self,
        store: Store,
        ts: TypeStore,
        reject: list[tuple[str, str]],
        rules: Sequence[Rule] = (),
    ) -> None:
        self.store = store
        self.ts = ts
        self.reject = reject
        self.rules = [r for r in rules if r.object_type == ts.otype.name]
        # (prop, key) -> (input index, id of the record that will hold it)
        self.claimed: dict[tuple[str, str], tuple[int, int]] = {}

    def create(self, raw: Props, assoc: list[AssocIn] | None, index: int) -> CreatePlan:
        """A checked create plan, or an :class:`ApiError` naming what is wrong."""
        props = self._properties(raw, creating=True)
        self._rules(props)
        rid = self.store.reserve_id()
        self._unique(props, rid, index)
        return CreatePlan(props, self._associations(assoc or []), rid)

    def update(self, rec: Record, raw: Props, index: int) -> dict[str, str]:
        """Checked property changes for ``rec``."""
        props = self._properties(raw, creating=False)
        if self.rules:
            self._rules({**rec.props, **props})
        self._unique(props, rec.id, index)
        return props

    def _rules(self, props: dict[str, str]) -> None:
        """The portal's validation rules (only passed in for versions that enforce them)."""
        problems = [
            _problem(
                r.property,
                "REQUIRED_FIELD",
                f"{r.property} is required by a validation rule of this portal"
                + (f" when {r.when_property} is {r.when_value}" if r.when_property else ""),
            )
            for r in self.rules
            if r.violated(props)
        ]
        if problems:
            raise property_error(problems)

    def _properties(self, raw: Props, *, creating: bool) -> dict[str, str]:
        defs = self.ts.props
        out: dict[str, str] = {}
        problems: list[dict[str, Any]] = []
        for name, value in raw.items():
            prop = defs.get(name)
            if prop is not None and prop.plain and type(value) is str:
                out[name] = value  # the common case: a writable text property
                continue
            text = stringify(value)
            if prop is None:
                problems.append(
                    _problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if prop.read_only:
                problems.append(
                    _problem(
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            if text is None:
                problems.append(
                    _problem(name, "INVALID_VALUE", f"{name} must be a string, number or boolean")
                )
                continue
            try:
                out[name] = check_value(prop, text)
            except InvalidValue as exc:
                problems.append(_problem(name, exc.code, exc.message))
        if creating:
            for name in self.ts.otype.required:
                if not out.get(name) and not any(p["name"] == name for p in problems):
                    problems.append(_problem(name, "REQUIRED_FIELD", f"{name} is required"))
        for prop_name, bad in self.reject:
            if out.get(prop_name) == bad:
                problems.append(
                    _problem(
                        prop_name,
                        "INVALID_VALUE",
                        f"{bad} was rejected for {prop_name} (sandbox reject fault)",
                    )
                )
        if problems:
            raise property_error(problems)
        return out

    def _unique(self, props: dict[str, str], own_id: int, index: int) -> None:
        ts = self.ts
        for prop in ts.unique:
            value = props.get(prop)
            if not value:
                continue
            key = ts.unique_key(prop, value)
            owner = ts.owner_of(prop, value)
            if owner is not None and owner != own_id:
                raise conflict(ts, prop, value, own_id, owner)
            other = self.claimed.get((prop, key))
            if other is not None and other[0] != index:
                raise conflict(ts, prop, value, own_id, other[1])
            self.claimed[(prop, key)] = (index, own_id)

    def _associations(self, items: list[AssocIn]) -> list[tuple[str, int, AssocType]]:
        from_type = self.ts.otype.name
        out: list[tuple[str, int, AssocType]] = []
        for item in items:
            to_text = item.to.id if isinstance(item.to.id, str) else str(item.to.id)
            to_id = parse_id(to_text)
            if not item.types:
                raise validation_error(
                    "Each association needs at least one type", context={"ids": [to_text]}
                )
            for t in item.types:
                if t.associationCategory not in CATEGORIES:
                    raise validation_error(
                        f"Unknown associationCategory {t.associationCategory!r}; expected one of {', '.join(CATEGORIES)}"
                    )
                pair = TYPE_ID_PAIRS.get(t.associationTypeId)
                if (
                    t.associationCategory != "HUBSPOT_DEFINED"
                    or pair is None
                    or pair[0] != from_type
                ):
                    raise validation_error(
                        f"{t.associationCategory} association type {t.associationTypeId} is not valid "
                        f"for {self.ts.otype.singular} associations",
                        context={"associationTypeId": [str(t.associationTypeId)]},
                    )
                to_type = pair[1]
                if to_id is None or self.store[to_type].live(to_id) is None:
                    raise validation_error(
                        f"One or more associations are invalid: {to_type} {to_text} does not exist",
                        context={"ids": [to_text], "toObjectType": [to_type]},
                        sub_category="crm.associations.INVALID_OBJECT_IDS",
                    )
                out.append((to_type, to_id, (t.associationCategory, t.associationTypeId)))
        return out


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name}


def property_error(problems: list[dict[str, Any]]) -> ApiError:
    """HubSpot's 400 for invalid property values, naming each offending property."""
    names = [p["name"] for p in problems]
    return validation_error(
        "Property values were not valid: " + orjson.dumps(problems).decode(),
        errors=[
            {
                "message": p["message"],
                "code": p["error"],
                "in": p["name"],
                "context": {"propertyName": [p["name"]]},
            }
            for p in problems
        ],
        context={"propertyName": names},
    )


#: the portal id conflict messages name (the same for every sandbox portal; see Sandbox.portal_id)
PORTAL_ID = 100000001


def conflict(ts: TypeStore, prop: str, value: str, own_id: int, holder: int) -> ApiError:
    """HubSpot's refusal of a write that would duplicate a unique value.

    For a custom unique property (any type), HubSpot answers 400 ``VALIDATION_ERROR``
    whose message names the property, the value, the record being written (for a
    create, the id it had allocated) and the record holding the value, with no
    ``context``:
    ``Cannot set PropertyValueCoordinates{portalId=…, objectTypeId=ObjectTypeId{
    legacyObjectType=CALL}, propertyName=…, value=…} on <id>. <holder id> already has
    that value.`` A contact's ``email`` is HubSpot's built-in identity and answers 409
    ``CONFLICT`` ``Contact already exists. Existing ID: <holder id>`` instead.
    """
    if ts.otype.name == "contacts" and prop == "email":
        return ApiError(
            409,
            "CONFLICT",
            f"{ts.otype.noun} already exists. Existing ID: {holder}",
            context={"propertyName": [prop], "value": [value], "existingId": [str(holder)]},
        )
    coordinates = (
        f"PropertyValueCoordinates{{portalId={PORTAL_ID}, objectTypeId=ObjectTypeId{{"
        f"legacyObjectType={ts.otype.singular.upper()}}}, propertyName={prop}, value={value}}}"
    )
    return validation_error(
        f"Cannot set {coordinates} on {own_id}. {holder} already has that value."
    )
