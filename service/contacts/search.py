"""Contact candidates for phone numbers by search, confirmed locally: the cold path.

Used until the local index is warm, to re-check an unknown-caller create of unknown
outcome, and by the legacy :func:`service.contacts.find_contacts`. One search
asks for many numbers at once: one filter group per property, ``IN`` the numbers' forms:
HubSpot's calculated national form ("without country code") of ``phone`` and
``mobilephone``, then each custom phone property with the E.164 and national forms. As
many numbers as fit HubSpot's 3,000-character body go into one search (about 90);
properties beyond HubSpot's 5 groups per search go into further searches.

The calculated *international* forms ("with country code") are not queried: HubSpot sets
the national form whenever it sets the international one (and also for numbers it cannot
validate), so with groups OR'd they could only find contacts the national groups already
find, at twice the body size per number. Every contact found is confirmed by parsing its
phone values (:func:`service.contacts.phones.e164`): the national digits may belong to a
number of another country.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime

from service.contacts import metrics
from service.contacts.phones import (
    MODIFIED,
    NATIONAL,
    TYPED,
    contact_numbers,
    search_forms,
)
from service.contacts.policy import Candidate
from service.hubspot import HubSpotClient
from service.hubspot.models import CrmObject, Filter, FilterGroup, SearchRequest, encode

MAX_BODY = 2900  # HubSpot refuses search bodies over 3,000 characters
MAX_GROUPS = 5
PAGE = 200


def parse_ms(value: str | None) -> int:
    """An ISO-8601 / epoch-ms HubSpot timestamp as epoch ms (0 when absent or unreadable)."""
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def _property_sets(custom: Sequence[str]) -> list[list[str]]:
    props = [*NATIONAL, *custom]
    return [props[i : i + MAX_GROUPS] for i in range(0, len(props), MAX_GROUPS)]


def _values(prop: str, number: str, forms: tuple[str, str]) -> list[str]:
    national, _international = forms
    if prop in NATIONAL:
        return [national]
    return [number, national]


def _request(
    props: list[str], numbers: list[tuple[str, tuple[str, str]]], fetch: list[str]
) -> SearchRequest:
    groups = []
    for prop in props:
        values = sorted({v for n, f in numbers for v in _values(prop, n, f)})
        groups.append(
            FilterGroup(filters=[Filter(property_name=prop, operator="IN", values=values)])
        )
    return SearchRequest(filter_groups=groups, properties=fetch, limit=PAGE)


def plan(numbers: Collection[str], custom: Sequence[str] = ()) -> list[SearchRequest]:
    """The searches that look for every one of ``numbers`` (E.164) on every phone property."""
    fetch = [*TYPED, *custom, MODIFIED]
    forms = [(n, f) for n in sorted(set(numbers)) if (f := search_forms(n)) is not None]
    out: list[SearchRequest] = []
    for props in _property_sets(custom):
        chunk: list[tuple[str, tuple[str, str]]] = []
        for item in forms:
            if chunk and len(encode(_request(props, [*chunk, item], fetch))) > MAX_BODY:
                out.append(_request(props, chunk, fetch))
                chunk = []
            chunk.append(item)
        if chunk:
            out.append(_request(props, chunk, fetch))
    return out


async def search_candidates(
    hs: HubSpotClient,
    numbers: Collection[str],
    *,
    region: str,
    custom: Sequence[str] = (),
    reason: str = "fallback",
    portal: str = "default",
) -> dict[str, list[Candidate]]:
    """The contacts (id, last modified ms) holding each of ``numbers``, confirmed locally."""
    wanted = set(numbers)
    phone_props = [*TYPED, *custom]
    found: dict[str, dict[str, int]] = {}
    for request in plan(wanted, custom):
        async for contact in _pages(hs, request, reason, portal):
            modified = parse_ms(contact.properties.get(MODIFIED))
            for number in contact_numbers(contact.properties, phone_props, region) & wanted:
                found.setdefault(number, {})[contact.id] = modified
    return {n: sorted(c.items()) for n, c in found.items()}


async def _pages(
    hs: HubSpotClient, request: SearchRequest, reason: str, portal: str
) -> AsyncIterator[CrmObject]:
    after: str | None = None
    while True:
        request.after = after
        page = await hs.search_contacts(request)
        metrics.SEARCHES.labels(reason, portal).inc()
        for contact in page.results:
            yield contact
        after = page.after
        if not after or not page.results:
            return
