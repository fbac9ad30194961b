"""``callbridge hubspot setup`` with a portals file: every portal (or ``--portal P``) set up
with its own token or OAuth grant and API version, one line per portal; against an
in-process sandbox and a sandbox process holding the three portals."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.oauth import AppSpec
from service.config import Settings
from service.hubspot.setup import CALL_KEY_PROPERTY, set_up_portals
from service.portals import parse_portals_file, sandbox_args
from service.wiring import portal_clients
from tests.fixtures.sandbox import ROOT, SandboxServer, start_sandbox, stop_sandbox

URL = "http://sandbox.test"
PORTALS = """
portals:
  - id: acme
    hubspot: {token: tok-acme}
  - id: bravo
    hubspot: {token: tok-bravo, api_version: "2026-03"}
  - id: charlie
    hubspot:
      oauth: {client_id: cid, client_secret: csec, refresh_token: rt-charlie}
      api_version: "2026-03"
"""
#: the Bearer token that reaches each portal's sandbox state (sandbox_args' made-up one
#: for the OAuth portal)
PORTAL_TOKENS = {"acme": "tok-acme", "bravo": "tok-bravo", "charlie": "oauth-portal-charlie"}
CREATED = (
    "created property group callbridge (calls); created call property callbridge_call_key "
    "(string, unique values, group callbridge)"
)
FOUND = "found call property callbridge_call_key (string, unique values, group callbridge)"


@pytest.fixture
def portals_file(tmp_path: Path) -> Path:
    path = tmp_path / "portals.yaml"
    path.write_text(PORTALS)
    return path


class Sandbox:
    """An in-process sandbox with the three portals (tokens and the OAuth app)."""

    def __init__(self) -> None:
        config = SandboxConfig(
            tokens=list(PORTAL_TOKENS.values()),
            rate_limit=100_000,
            search_rate=100_000,
            oauth_apps=[AppSpec("cid", "csec", "rt-charlie", "oauth-portal-charlie")],
        )
        self.transport = httpx.ASGITransport(app=create_app(config))

    async def get(self, portal: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {PORTAL_TOKENS[portal]}"}
        async with httpx.AsyncClient(transport=self.transport, base_url=URL) as http:
            return await http.get(path, headers=headers)

    async def stats(self, portal: str) -> dict[str, Any]:
        return (await self.get(portal, "/_sandbox/stats")).json()  # type: ignore[no-any-return]


@pytest.fixture
async def inproc() -> AsyncIterator[Sandbox]:
    yield Sandbox()


async def test_every_portal_is_set_up_with_its_own_access(
    inproc: Sandbox, portals_file: Path
) -> None:
    """set_up_portals creates the property in each portal through its own token, OAuth
    grant and path family; a second run only finds it; one line per portal, in order."""
    settings = Settings(hubspot_url=URL, portals_file=portals_file)
    portals = parse_portals_file(portals_file, settings)
    clients = portal_clients(settings, portals, transport=inproc.transport, deadline_s=20.0)
    try:
        first = await set_up_portals(clients)
        assert [o.line() for o in first] == [f"{p}: {CREATED}" for p in PORTAL_TOKENS]
        again = await set_up_portals(clients)
        assert [o.line() for o in again] == [f"{p}: {FOUND}" for p in PORTAL_TOKENS]
    finally:
        for hs in clients.values():
            await hs.aclose()
    # each portal's requests went to its own path family (the OAuth refresh too)
    assert set((await inproc.stats("acme"))["versions"]) == {"v3"}
    assert set((await inproc.stats("bravo"))["versions"]) == {"2026-03"}
    charlie = (await inproc.stats("charlie"))["versions"]
    assert set(charlie) == {"2026-03"} and charlie["2026-03"]["oauthToken"] == 1
    for portal in PORTAL_TOKENS:
        assert (await inproc.stats(portal))["requests"]["createProperty"] == {"201": 1}
        prop = await inproc.get(portal, f"/crm/v3/properties/calls/{CALL_KEY_PROPERTY}")
        assert prop.status_code == 200 and prop.json()["hasUniqueValue"] is True


async def test_one_portal_failing_does_not_stop_the_others(inproc: Sandbox, tmp_path: Path) -> None:
    """A portal whose token the sandbox refuses and one whose refresh token is wrong are
    reported with the reason; the good portal is still set up."""
    path = tmp_path / "portals.yaml"
    path.write_text(
        "portals:\n"
        "  - id: acme\n    hubspot: {token: tok-acme}\n"
        "  - id: revoked\n    hubspot: {token: not-a-token}\n"
        "  - id: charlie\n    hubspot:\n"
        "      oauth: {client_id: cid, client_secret: csec, refresh_token: wrong}\n"
    )
    settings = Settings(hubspot_url=URL, portals_file=path)
    clients = portal_clients(settings, transport=inproc.transport, deadline_s=20.0)
    try:
        outcomes = await set_up_portals(clients)
    finally:
        for hs in clients.values():
            await hs.aclose()
    assert [(o.portal, o.ok) for o in outcomes] == [
        ("acme", True),
        ("revoked", False),
        ("charlie", False),
    ]
    assert outcomes[1].line().startswith("revoked: error: HubSpot refused the token (401")
    assert outcomes[2].line() == (
        "charlie: error: oauthToken: 400 BAD_REFRESH_TOKEN: missing or unknown refresh token"
    )
    assert "\n" not in outcomes[2].line()
    prop = await inproc.get("acme", f"/crm/v3/properties/calls/{CALL_KEY_PROPERTY}")
    assert prop.status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox process started with the portals file's sandbox_args (as `make run`)."""
    tmp = tmp_path_factory.mktemp("setup-portals")
    path = tmp / "portals.yaml"
    path.write_text(PORTALS)
    args = sandbox_args(parse_portals_file(path))
    first_token = args[1]
    s = start_sandbox(*args[2:], log_dir=tmp, token=first_token)
    try:
        yield s
    finally:
        stop_sandbox(s.process)


def _cli(
    server: SandboxServer, portals_file: Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["CALLBRIDGE_HUBSPOT_URL"] = server.url
    env["CALLBRIDGE_HUBSPOT_TOKEN"] = "tok-acme"
    if portals_file is not None:
        env["CALLBRIDGE_PORTALS_FILE"] = str(portals_file)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "hubspot", "setup", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _reset(server: SandboxServer) -> None:
    answer = httpx.post(
        server.url + "/_sandbox/reset", json={"all": True, "properties": True}, timeout=10
    )
    assert answer.status_code == 200, answer.text


def _has_property(server: SandboxServer, portal: str) -> bool:
    answer = httpx.get(
        f"{server.url}/crm/v3/properties/calls/{CALL_KEY_PROPERTY}",
        headers={"Authorization": f"Bearer {PORTAL_TOKENS[portal]}"},
        timeout=10,
    )
    return answer.status_code == 200


def test_cli_sets_up_one_portal_or_all(server: SandboxServer, portals_file: Path) -> None:
    """--portal bravo sets up bravo only; without it every portal, one line each; an
    unknown portal is exit 2 naming the known ids."""
    _reset(server)
    one = _cli(server, portals_file, "--portal", "bravo")
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines() == [f"bravo: {CREATED}"]
    assert [_has_property(server, p) for p in PORTAL_TOKENS] == [False, True, False]

    every = _cli(server, portals_file)
    assert every.returncode == 0, every.stderr
    assert every.stdout.splitlines() == [
        f"acme: {CREATED}",
        f"bravo: {FOUND}",
        f"charlie: {CREATED}",
    ]
    assert all(_has_property(server, p) for p in PORTAL_TOKENS)

    unknown = _cli(server, portals_file, "--portal", "zulu")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr == "error: unknown portal 'zulu'; known portals: acme, bravo, charlie\n"


def test_cli_without_a_portals_file_knows_only_default(server: SandboxServer) -> None:
    """Without a portals file: --portal default is the single portal (unchanged output),
    any other id is exit 2 naming default."""
    _reset(server)
    result = _cli(server, None, "--portal", "default")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == CREATED.split("; ")
    assert _has_property(server, "acme") and not _has_property(server, "bravo")
    other = _cli(server, None, "--portal", "acme")
    assert other.returncode == 2
    assert other.stderr == "error: unknown portal 'acme'; known portals: default\n"


def test_cli_reports_a_failing_portal_and_exits_1(server: SandboxServer, tmp_path: Path) -> None:
    """A portal the sandbox does not know fails with its reason on its own line; the
    others are set up; exit 1 with a summary naming it; no secret is printed."""
    _reset(server)
    path = tmp_path / "portals.yaml"
    path.write_text(
        "portals:\n"
        "  - id: acme\n    hubspot: {token: tok-acme}\n"
        "  - id: gone\n    hubspot: {token: tok-revoked-long-secret}\n"
    )
    result = _cli(server, path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"acme: {CREATED}"
    assert lines[1].startswith("gone: error: HubSpot refused the token (401")
    assert result.stderr == "error: 1 of 2 portals not set up: gone\n"
    assert "tok-revoked-long-secret" not in result.stdout + result.stderr


def test_cli_bad_portals_file_is_a_usage_error(server: SandboxServer, tmp_path: Path) -> None:
    """An invalid portals file is exit 2 with the file's problem in one line."""
    path = tmp_path / "portals.yaml"
    path.write_text("portals:\n  - id: Bad_Id\n    hubspot: {token: t}\n")
    result = _cli(server, path)
    assert result.returncode == 2
    assert "Bad_Id" in result.stderr and result.stderr.count("\n") == 1
