"""HubSpot's calculated phone properties of a contact, computed from the values as typed.

HubSpot keeps ``phone`` and ``mobilephone`` exactly as written (unless the portal turns on
phone validation) and derives read-only, searchable forms from them. What they hold,
from HubSpot's property labels and the values real portals answer:

| property | label | value for ``phone = "(415) 555-0142"`` |
| --- | --- | --- |
| ``hs_searchable_calculated_phone_number`` | Calculated Phone Number without country code | ``4155550142`` |
| ``hs_searchable_calculated_international_phone_number`` | Calculated Phone Number with country code | ``14155550142`` |
| ``hs_calculated_phone_number`` | Calculated Phone Number in International Format | ``+14155550142`` |
| ``hs_calculated_phone_number_country_code`` | Calculated Phone Number Country Code | ``US`` |
| ``hs_calculated_phone_number_area_code`` | Calculated Phone Number Area Code | ``415`` |

and the same ``*_mobile_number`` forms from ``mobilephone`` (there are no country or area
code properties for the mobile number). A value without a country code is read in the
portal's default country (``DEFAULT_REGION`` here). The national form ("without country
code") is the national significant number whenever the value parses at all, valid or
not (``00004`` → ``4``, ``08180854296`` → ``8180854296``, as HubSpot answers); the
international and E.164 forms, country and area code exist only for valid numbers.
"""

from __future__ import annotations

from typing import Final

import phonenumbers

DEFAULT_REGION: Final = "US"

#: typed property -> (national, international, E.164) calculated properties
SOURCES: Final[dict[str, tuple[str, str, str]]] = {
    "phone": (
        "hs_searchable_calculated_phone_number",
        "hs_searchable_calculated_international_phone_number",
        "hs_calculated_phone_number",
    ),
    "mobilephone": (
        "hs_searchable_calculated_mobile_number",
        "hs_searchable_calculated_international_mobile_number",
        "hs_calculated_mobile_number",
    ),
}
PHONE_COUNTRY: Final = "hs_calculated_phone_number_country_code"
PHONE_AREA: Final = "hs_calculated_phone_number_area_code"
#: every property this module computes
CALCULATED: Final[frozenset[str]] = frozenset(
    {name for names in SOURCES.values() for name in names} | {PHONE_COUNTRY, PHONE_AREA}
)


def calculated(props: dict[str, str], region: str = DEFAULT_REGION) -> dict[str, str]:
    """The calculated phone properties of a contact whose typed properties are ``props``."""
    out: dict[str, str] = {}
    for source, (national, international, e164) in SOURCES.items():
        raw = props.get(source)
        if not raw:
            continue
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if parsed.national_number:
            out[national] = str(parsed.national_number)
        if not phonenumbers.is_valid_number(parsed):
            continue
        out[international] = f"{parsed.country_code}{parsed.national_number}"
        out[e164] = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if source == "phone":
            country = phonenumbers.region_code_for_number(parsed)
            if country:
                out[PHONE_COUNTRY] = country
            area = phonenumbers.length_of_geographical_area_code(parsed)
            if area:
                out[PHONE_AREA] = str(parsed.national_number)[:area]
    return out


def recalculate(props: dict[str, str], region: str = DEFAULT_REGION) -> dict[str, str]:
    """``props`` with its calculated phone properties brought up to date (a new dict)."""
    out = {k: v for k, v in props.items() if k not in CALCULATED}
    out.update(calculated(out, region))
    return out


def derive(type_name: str, props: dict[str, str], *, creating: bool) -> dict[str, str]:
    """The properties HubSpot calculates for a record of ``type_name`` as it is written:
    a contact's phone forms (above) and, on create, ``hs_marketable_status`` ``false``
    (read-only to the API; contacts an app creates are non-marketing contacts unless the
    portal's marketing-contacts setting opts that app in, which the sandbox does not)."""
    if type_name != "contacts":
        return props
    out = recalculate(props)
    if creating:
        out["hs_marketable_status"] = "false"
    return out
