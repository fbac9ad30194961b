"""Contact matching: which HubSpot contacts a call from (or to) a phone number belongs to.

The writer's interface is :class:`ContactMatcher`, built by :func:`make_contact_matcher`::

    matcher = make_contact_matcher(client, settings)      # one per portal
    task = asyncio.create_task(matcher.run())             # build + refresh the index
    ids = await matcher.match({"+14155550142"})           # {"+14155550142": ["101"]}
    ...                                                   # write the calls, then:
    matcher.calls_written([("+14155550142", call_id, time.time())])
    await matcher.aclose()                                # on shutdown (stops run())

- ``match(numbers, names=None)``: E.164 number → contact ids to associate, after
  ``CALLBRIDGE_CONTACT_MATCH`` (``all | latest | none``, default ``latest``) and
  ``CALLBRIDGE_UNKNOWN_CALLER`` (``ignore | create``; ``names`` maps a number to the
  caller's display name for created contacts). Every number given is a key of the
  answer. Once the index is warm it spends no HubSpot request (except creates); before,
  it searches in batches. It may raise :class:`service.hubspot.HubSpotError` only while
  cold (a search failed): retry, or write the call without contacts.
- ``calls_written(items)``: ``(number, HubSpot call id, wall time)`` of calls just written;
  those whose number had no contact are kept so that, when the index learns the number
  (a contact created later), the index's refresh associates them itself (v4 batch),
  within ``CALLBRIDGE_CONTACT_LATE_MATCH_DAYS``. Synchronous, a local write; call it
  after the write is settled.
- ``run()`` / ``aclose()``: the background build and refresh, and its stop.

How it works (index, store, policies, settings): README "Contact matching" and the
modules :mod:`.index` (build/refresh/late matches), :mod:`.store` (the SQLite file),
:mod:`.search` (the cold path), :mod:`.policy`, :mod:`.matcher` (unknown callers);
:class:`service.contacts.fake.InMemoryMatcher` is a fake of the port for unit tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from service.contacts.index import PhoneIndex
from service.contacts.matcher import IndexedMatcher
from service.contacts.phones import TYPED
from service.contacts.resolver import ContactResolver
from service.contacts.search import search_candidates
from service.contacts.store import IndexStore, store_path

if TYPE_CHECKING:
    from service.config import Settings
    from service.hubspot import HubSpotClient

__all__ = [
    "ContactMatcher",
    "ContactResolver",
    "IndexStore",
    "IndexedMatcher",
    "PhoneIndex",
    "default_index_dir",
    "find_contacts",
    "make_contact_matcher",
]


class ContactMatcher(Protocol):
    """What the writer needs from contact matching (see the module docstring)."""

    async def match(
        self, numbers: Collection[str], names: Mapping[str, str] | None = None
    ) -> Mapping[str, Sequence[str]]: ...

    def calls_written(self, items: Iterable[tuple[str, str, float]]) -> None: ...

    async def run(self) -> None: ...

    async def aclose(self) -> None: ...


def default_index_dir() -> Path:
    """``$XDG_STATE_HOME/callbridge/contacts`` (``~/.local/state/callbridge/contacts``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "callbridge" / "contacts"


def make_contact_matcher(
    client: HubSpotClient,
    settings: Settings,
    clock: Callable[[], float] = time.time,
    *,
    portal: str = "default",
) -> IndexedMatcher:
    """The matcher of one portal: its index file is ``<CALLBRIDGE_CONTACT_INDEX_DIR>/
    <portal>.sqlite3``. ``clock`` is wall time in seconds (``time.time``)."""
    s = settings
    directory = s.contact_index_dir or default_index_dir()
    store = IndexStore(store_path(directory, portal))
    custom = s.contact_phone_property_list
    index = PhoneIndex(
        client,
        store,
        region=s.default_region,
        phone_properties=[*TYPED, *custom],
        policy=s.contact_match,
        refresh_s=s.contact_index_refresh_s,
        rebuild_s=s.contact_index_rebuild_s,
        build_rate=s.contact_index_build_rate,
        late_match_days=s.contact_late_match_days,
        wall=clock,
        portal=portal,
    )
    return IndexedMatcher(
        client,
        store,
        index,
        region=s.default_region,
        custom_properties=custom,
        policy=s.contact_match,
        unknown_caller=s.unknown_caller,
        reconcile_s=s.contact_create_reconcile_s,
        cache_ttl_s=s.contact_cache_ttl_s,
        negative_ttl_s=s.contact_negative_ttl_s,
        warm_wait_s=s.contact_index_warm_wait_s,
        wall=clock,
        portal=portal,
    )


async def find_contacts(
    client: HubSpotClient, numbers: list[str], region: str, custom: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Every contact (ids) holding each number, by batched search confirmed locally; no
    policy applied. The legacy writer's lookup (``find_contacts_by_phone``)."""
    found = await search_candidates(client, numbers, region=region, custom=custom)
    return {n: [c for c, _ in cands] for n, cands in found.items()}


if TYPE_CHECKING:
    from service.contacts.fake import InMemoryMatcher

    def _conforms(m: IndexedMatcher) -> ContactMatcher:
        return m  # mypy checks that IndexedMatcher implements the writer's port

    def _fake_conforms(m: InMemoryMatcher) -> ContactMatcher:
        return m
