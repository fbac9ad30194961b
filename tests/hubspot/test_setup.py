"""``callbridge hubspot setup``: the unique call-key property, created once, found after."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.hubspot import HubSpotValidationError, unique_conflict
from service.hubspot.setup import CALL_KEY_PROPERTY, SetupError, ensure_call_key_property
from tests.fixtures.sandbox import ROOT, SandboxHandle
from tests.hubspot.conftest import InProcessSandbox, call_props


async def test_setup_creates_then_finds_the_unique_call_key(inproc: InProcessSandbox) -> None:
    """First run creates the group and the unique property; the second only finds it."""
    async with inproc.client() as hs:
        first = await ensure_call_key_property(hs)
        assert first.lines() == [
            "created property group callbridge (calls)",
            "created call property callbridge_call_key (string, unique values, group callbridge)",
        ]
        assert first.created
        second = await ensure_call_key_property(hs)
        assert second.lines() == [
            "found call property callbridge_call_key (string, unique values, group callbridge)"
        ]
        assert not second.created
        prop = await hs.get_call_property(CALL_KEY_PROPERTY)
        assert prop.has_unique_value and prop.group_name == "callbridge"

        # the property does what it is for: a second record with one key is refused
        made = await hs.create_call(call_props("a", callbridge_call_key="twilio:CA1"))
        with pytest.raises(HubSpotValidationError) as refused:
            await hs.create_call(call_props("b", callbridge_call_key="twilio:CA1"))
        conflict = unique_conflict(refused.value)
        assert conflict is not None and conflict.existing_id == made.id
    requests = (await inproc.stats())["requests"]
    assert requests["createProperty"] == {"201": 1}
    assert requests["createPropertyGroup"] == {"201": 1}


async def test_setup_without_the_scope_is_a_clear_403(inproc: InProcessSandbox) -> None:
    """A token without the schema-write scope: SetupError naming the scope, nothing made."""
    await inproc.faults(missing_scopes=["createProperty", "createPropertyGroup"])
    async with inproc.client() as hs:
        with pytest.raises(SetupError) as failed:
            await ensure_call_key_property(hs)
    assert failed.value.status == 403
    assert str(failed.value) == (
        "the token lacks a scope (403 MISSING_SCOPES); it needs crm.schemas.calls.write"
    )
    assert "\n" not in str(failed.value)
    answer = await inproc.control.get(f"/crm/v3/properties/calls/{CALL_KEY_PROPERTY}")
    assert answer.status_code == 404


async def test_setup_with_a_bad_token_is_a_clear_401(inproc: InProcessSandbox) -> None:
    """A token HubSpot does not know: SetupError with status 401, one line."""
    async with inproc.client(token="not-a-token") as hs:
        with pytest.raises(SetupError) as failed:
            await ensure_call_key_property(hs)
    assert failed.value.status == 401
    assert str(failed.value).startswith("HubSpot refused the token (401 INVALID_AUTHENTICATION)")


async def test_setup_refuses_a_non_unique_property_of_that_name(inproc: InProcessSandbox) -> None:
    """A callbridge_call_key without unique values cannot be fixed by set-up: it says so."""
    answer = await inproc.control.post(
        "/crm/v3/properties/calls",
        json={"name": CALL_KEY_PROPERTY, "label": "k", "type": "string", "groupName": "callinfo"},
    )
    assert answer.status_code == 201
    async with inproc.client() as hs:
        with pytest.raises(SetupError, match="does not require unique values"):
            await ensure_call_key_property(hs)


def _cli(
    sandbox: SandboxHandle, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CALLBRIDGE_HUBSPOT_URL": sandbox.url,
        "CALLBRIDGE_HUBSPOT_TOKEN": token or sandbox.token,
    }
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "hubspot", "setup", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_setup_is_idempotent_with_clear_errors(sandbox: SandboxHandle) -> None:
    """The command: exit 0 created/found; exit 1 one-line error on 401; without a portals
    file a --portal other than default is exit 2."""
    sandbox.reset(properties=True)
    first = _cli(sandbox)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "created property group callbridge (calls)",
        "created call property callbridge_call_key (string, unique values, group callbridge)",
    ]
    again = _cli(sandbox)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "found call property callbridge_call_key (string, unique values, group callbridge)"
    ]
    bad = _cli(sandbox, token="wrong")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith(f"error: {sandbox.url}: HubSpot refused the token (401")
    portal = _cli(sandbox, "--portal", "acme")
    assert portal.returncode == 2
    assert portal.stderr == "error: unknown portal 'acme'; known portals: default\n"
