"""CALLBRIDGE_CONTACT_MATCH for a number several contacts share (a switchboard)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from service.contacts import IndexedMatcher, metrics
from tests.contacts.conftest import CONTACTS, create_contacts
from tests.fixtures.sandbox import SandboxHandle

SWITCHBOARD = "+14155550100"


async def switchboard(sandbox: SandboxHandle) -> tuple[list[str], str]:
    """Three contacts on one number typed three ways, and the one modified last."""
    ids = create_contacts(
        sandbox,
        [
            {"phone": "(415) 555-0100", "firstname": "a"},
            {"phone": "+1 415 555 0100", "firstname": "b"},
            {"mobilephone": "415.555.0100", "firstname": "c"},
        ],
    )
    await asyncio.sleep(0.01)
    latest = ids[0]  # the oldest id, but the most recently modified
    r = sandbox.client.patch(
        f"{CONTACTS}/{latest}",
        json={"properties": {"jobtitle": "reception"}},
        headers=sandbox.headers,
    )
    assert r.status_code == 200, r.text
    return ids, latest


def shared_count() -> float:
    return metrics.MATCHES.labels("shared_unassociated", "default")._value.get()


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
async def test_all_latest_none(
    sandbox: SandboxHandle, matchers: Callable[..., IndexedMatcher], warm: bool
) -> None:
    """all: every contact; latest: the most recently modified; none: nobody, logged and
    counted. The same from the index and from the fallback search."""
    ids, latest = await switchboard(sandbox)
    (alone,) = create_contacts(sandbox, [{"phone": "+14155550111"}])
    answers = {}
    for policy in ("all", "latest", "none"):
        m = matchers(contact_match=policy, contact_index_dir=matchers().store.path.parent / policy)
        if warm:
            await m.index.build()
        before = shared_count()
        with capture_logs() as logs:
            answers[policy] = await m.match([SWITCHBOARD, "+14155550111"])
        flagged = [e for e in logs if e["event"] == "contact_match_shared"]
        if policy == "none":
            assert shared_count() == before + 1
            assert flagged and flagged[0]["contact_match_shared"] is True
            assert flagged[0]["contacts"] == 3
            assert SWITCHBOARD not in str(flagged)  # numbers are masked in logs
        else:
            assert shared_count() == before
            assert not flagged
        assert list(answers[policy]["+14155550111"]) == [alone]  # one contact: any policy
    assert sorted(answers["all"][SWITCHBOARD]) == sorted(ids)
    assert list(answers["latest"][SWITCHBOARD]) == [latest]
    assert list(answers["none"][SWITCHBOARD]) == []
