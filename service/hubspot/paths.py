"""Which HubSpot API paths a client uses: the legacy ``/crm/v3/…`` (and v4
associations) family, or a date-based version (``/crm/objects/2026-03/…``).

HubSpot's date-based scheme is ``/api-name/{YYYY-MM}/resource`` ("2026-03 API
reference"): objects at ``/crm/objects/{version}/{objectType}``, properties at
``/crm/properties/{version}/{objectType}``, associations at
``/crm/associations/{version}/{fromObjectType}/{toObjectType}/batch/create``. The legacy
paths stop being supported in 2027; from ``2026-09`` on, writes obey the portal's
admin-configured validation rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

LEGACY: Final = "v3"
#: the date-based versions HubSpot has published (and the sandbox serves)
DATE_VERSIONS: Final = ("2025-09", "2026-03", "2026-09")
API_VERSIONS: Final = (LEGACY, *DATE_VERSIONS)
_DATE = re.compile(r"^\d{4}-(03|09)$")


def check_version(version: str) -> str:
    """``version`` if the client knows it (``v3`` or a published date), else ValueError."""
    if version == LEGACY or version in DATE_VERSIONS:
        return version
    hint = " (HubSpot releases dates in March and September)" if not _DATE.match(version) else ""
    raise ValueError(
        f"unknown HubSpot api_version {version!r}{hint}; known: {', '.join(API_VERSIONS)}"
    )


@dataclass(frozen=True, slots=True)
class ApiPaths:
    """The path prefixes of one API version."""

    version: str
    calls: str
    contacts: str
    properties: str
    call_contact_associations: str

    @classmethod
    def of(cls, version: str = LEGACY) -> ApiPaths:
        version = check_version(version)
        if version == LEGACY:
            return cls(
                version,
                "/crm/v3/objects/calls",
                "/crm/v3/objects/contacts",
                "/crm/v3/properties",
                "/crm/v4/associations/calls/contacts/batch/create",
            )
        return cls(
            version,
            f"/crm/objects/{version}/calls",
            f"/crm/objects/{version}/contacts",
            f"/crm/properties/{version}",
            f"/crm/associations/{version}/calls/contacts/batch/create",
        )
