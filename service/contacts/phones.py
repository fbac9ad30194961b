"""Phone numbers as contact matching compares them (pure: no I/O).

A contact matches a call's number when one of the contact's phone values, parsed with
``phonenumbers`` in the default region (``CALLBRIDGE_DEFAULT_REGION``), is the same E.164
number. Nothing looser: ``020 7946 0958`` typed on a contact in a US portal is not the
London number ``+442079460958`` (it is no possible US number), and a national number that
exists in two countries matches only in the country it was read in.

The search forms are HubSpot's calculated contact properties: the national significant
number ("without country code") and country code + national number ("with country
code"). A search on them only finds candidates; :func:`e164` confirms them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import phonenumbers

#: the typed properties HubSpot calculates searchable forms for
TYPED: Final = ("phone", "mobilephone")
NATIONAL: Final = (
    "hs_searchable_calculated_phone_number",
    "hs_searchable_calculated_mobile_number",
)
INTERNATIONAL: Final = (
    "hs_searchable_calculated_international_phone_number",
    "hs_searchable_calculated_international_mobile_number",
)
MODIFIED: Final = "lastmodifieddate"


def e164(value: str | None, region: str) -> str | None:
    """``value`` as E.164 when it parses as a possible number in ``region``, else None."""
    if not value:
        return None
    raw = value.strip()
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def search_forms(number: str) -> tuple[str, str] | None:
    """(national, with-country-code) digits of an E.164 number, as HubSpot searches them."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    national = str(parsed.national_number)
    return national, f"{parsed.country_code}{national}"


def contact_numbers(
    properties: Mapping[str, str | None], phone_properties: Iterable[str], region: str
) -> set[str]:
    """Every E.164 number a contact's phone properties hold."""
    out: set[str] = set()
    for name in phone_properties:
        number = e164(properties.get(name), region)
        if number is not None:
            out.add(number)
    return out


def split_name(name: str | None) -> dict[str, str]:
    """A caller's display name as ``firstname``/``lastname`` (first word, the rest)."""
    if not name or not name.strip():
        return {}
    first, _, rest = name.strip().partition(" ")
    out = {"firstname": first}
    if rest.strip():
        out["lastname"] = rest.strip()
    return out


def masked(number: str) -> str:
    """A number fit for a log line: country code and last two digits."""
    return number[:3] + "…" + number[-2:] if len(number) > 6 else "…"
