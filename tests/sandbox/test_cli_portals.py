"""``callbridge sandbox`` with portals: ``--portals-file`` gives every portal of a portals
file its sandbox portal, ``--oauth-app`` / ``--oauth-token-lifetime`` / ``--oauth-rotate``
reach the sandbox's OAuth server, and bad values are usage errors (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.fixtures.sandbox import ROOT, free_port

EXAMPLE = ROOT / "deploy" / "examples" / "portals.example.yaml"


@contextmanager
def cli_sandbox(*args: str, log: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "sandbox", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/_sandbox/stats", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def _refresh(url: str, client_id: str, secret: str, refresh_token: str) -> httpx.Response:
    return httpx.post(
        url + "/oauth/v1/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": refresh_token,
        },
        timeout=10,
    )


def test_portals_file_gives_every_portal_its_sandbox_portal(tmp_path: Path) -> None:
    """--portals-file: the example's three portals; the OAuth portal's refresh token works
    and issues access tokens of --oauth-token-lifetime seconds that reach its portal."""
    with cli_sandbox(
        "--portals-file", str(EXAMPLE), "--oauth-token-lifetime", "7", log=tmp_path / "s.log"
    ) as url:
        portals = httpx.get(url + "/_sandbox/portals", timeout=10).json()["portals"]
        assert len(portals) == 3
        for token in ("pat-na1-acme-development-token", "pat-na1-bravo-development-token"):
            ok = httpx.get(
                url + "/crm/v3/objects/calls", headers={"Authorization": f"Bearer {token}"}
            )
            assert ok.status_code == 200, ok.text
        answer = _refresh(
            url, "charlie-dev-app", "dev-charlie-client-secret", "dev-charlie-refresh-token"
        )
        assert answer.status_code == 200, answer.text
        grant = answer.json()
        assert grant["expires_in"] == 7
        stats = httpx.get(
            url + "/_sandbox/stats",
            headers={"Authorization": f"Bearer {grant['access_token']}"},
            timeout=10,
        ).json()
        charlie = httpx.get(
            url + "/_sandbox/stats",
            headers={"Authorization": "Bearer oauth-portal-charlie"},
            timeout=10,
        ).json()
        assert stats["requests"] == charlie["requests"]  # the access token is charlie's portal
        assert charlie["requests"]["oauthToken"] == {"200": 1}


def test_oauth_app_and_rotation_pass_through(tmp_path: Path) -> None:
    """--token T --oauth-app C:S:R:T --oauth-rotate: R refreshes once, then is retired for
    the rotated refresh token."""
    with cli_sandbox(
        "--token", "tok-x", "--oauth-app", "cid:csec:rt-1:tok-x", "--oauth-rotate",
        log=tmp_path / "s.log",
    ) as url:  # fmt: skip
        first = _refresh(url, "cid", "csec", "rt-1")
        assert first.status_code == 200, first.text
        rotated = first.json()["refresh_token"]
        assert rotated != "rt-1"
        assert _refresh(url, "cid", "csec", "rt-1").status_code == 400
        assert _refresh(url, "cid", "csec", rotated).status_code == 200


def _usage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "sandbox", "--port", str(free_port()), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_portal_flags_are_usage_errors(tmp_path: Path) -> None:
    """An --oauth-app on no --token, a malformed one, a bad lifetime and an invalid portals
    file each exit 2 naming the option."""
    not_a_token = _usage("--token", "a", "--oauth-app", "c:s:r:b")
    assert not_a_token.returncode == 2 and "which is no --token" in not_a_token.stderr
    malformed = _usage("--oauth-app", "c:s:r")
    assert malformed.returncode == 2 and "--oauth-app" in malformed.stderr
    lifetime = _usage("--oauth-token-lifetime", "0")
    assert lifetime.returncode == 2 and "--oauth-token-lifetime" in lifetime.stderr
    bad = tmp_path / "portals.yaml"
    bad.write_text("portals: []\n")
    invalid = _usage("--portals-file", str(bad))
    assert invalid.returncode == 2 and "non-empty list" in invalid.stderr
