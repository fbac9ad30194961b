"""Admin-configured validation rules, enforced on API writes from version ``2026-09``.

HubSpot announced ("Breaking Change: CRM API Write Validation Enforcement Starting with
the 2026-09 API Version") that from ``/2026-09/`` on, rules an admin configures —
conditional required properties, required fields of the create form — apply to API
creates and updates, which answer a 400 ``VALIDATION_ERROR``; earlier versions (and
``/crm/v3/``) ignore them. The sandbox keeps such rules per portal (``POST
/_sandbox/validation-rules``) and applies them to writes on date-based paths of version
``2026-09`` or later.

A rule is ``{"object_type": "calls", "property": "hs_call_title"}`` (the property is
required) or with ``"when": {"property": "hs_call_status", "value": "COMPLETED"}`` (it is
required when the other property has that value). A create is checked against its input;
an update against the record as it would be after the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.catalog import resolve_type
from sandbox.errors import validation_error

#: the first API version that enforces admin-configured validation rules on writes
ENFORCED_FROM = "2026-09"


@dataclass(frozen=True, slots=True)
class Rule:
    """One "``property`` is required (when ``when_property`` = ``when_value``)" rule."""

    object_type: str
    property: str
    when_property: str | None = None
    when_value: str | None = None

    def violated(self, props: dict[str, str]) -> bool:
        """Whether a record with ``props`` breaks this rule."""
        if self.when_property is not None and props.get(self.when_property) != self.when_value:
            return False
        return not props.get(self.property)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object_type": self.object_type, "property": self.property}
        if self.when_property is not None:
            out["when"] = {"property": self.when_property, "value": self.when_value}
        return out


def enforced(version: str) -> bool:
    """Whether requests of API ``version`` (``v3``, ``2026-03``, …) obey the rules."""
    return version[:1].isdigit() and version >= ENFORCED_FROM


def parse_rules(body: Any) -> list[Rule]:
    """``{"rules": [...]}`` as rules, or a 400 naming what is wrong."""
    if not isinstance(body, dict) or set(body) != {"rules"} or not isinstance(body["rules"], list):
        raise validation_error('validation rules must be {"rules": [...]}')
    out: list[Rule] = []
    for raw in body["rules"]:
        if not isinstance(raw, dict) or not set(raw) <= {"object_type", "property", "when"}:
            raise validation_error("each rule is {object_type, property, when?: {property, value}}")
        otype = resolve_type(str(raw.get("object_type", "")))
        prop = raw.get("property")
        if otype is None or not isinstance(prop, str) or not prop:
            raise validation_error("a rule needs a known object_type and a property name")
        when = raw.get("when")
        if when is None:
            out.append(Rule(otype.name, prop))
            continue
        if (
            not isinstance(when, dict)
            or set(when) != {"property", "value"}
            or not all(isinstance(v, str) and v for v in when.values())
        ):
            raise validation_error("when must be {property, value} with string values")
        out.append(Rule(otype.name, prop, when["property"], when["value"]))
    return out
