"""``callbridge run`` with ``CALLBRIDGE_PORTALS_FILE=deploy/examples/portals.example.yaml``
(as the README says): the sandbox comes up with the file's three portals, each is set up
through its own access and API version, and the banner lists each portal's webhook URLs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from service.config import Settings
from service.localkafka import LocalKafka, free_port
from service.portals import parse_portals, parse_portals_file
from service.runtime import portal_banner, sandbox_command, sandbox_token

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "examples" / "portals.example.yaml"
SETUP = (
    "created property group callbridge (calls); created call property callbridge_call_key "
    "(string, unique values, group callbridge)"
)


def _wait_for(log: Path, proc: subprocess.Popen[bytes], text: str, deadline: float) -> str:
    while text not in log.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    out = log.read_text()
    assert text in out, out
    return out


def _sandbox_get(url: str, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(url + path, headers=headers, timeout=10)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return answer.json()


def test_run_with_the_example_portals_file(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    """The three example portals: in the sandbox, set up (bravo and charlie on the 2026-03
    paths, charlie through OAuth), listed with their /webhooks/{provider}/{portal} URLs;
    SIGTERM stops everything, the sandbox included."""
    sandbox_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(
        {
            "CALLBRIDGE_PORTALS_FILE": str(EXAMPLE),
            "CALLBRIDGE_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "CALLBRIDGE_HUBSPOT_URL": f"http://127.0.0.1:{sandbox_port}",
            "CALLBRIDGE_INGRESS_PORT": str(free_port()),
            "CALLBRIDGE_INGRESS_METRICS_PORT": str(free_port()),
            "CALLBRIDGE_WRITER_HEALTH_PORT": str(free_port()),
            "CALLBRIDGE_TOPIC_EVENTS": f"calls.events.run-{free_port()}",
        }
    )
    log = tmp_path / "run.log"
    argv = [sys.executable, "-m", "service.cli", "run", "--data-dir", str(tmp_path / "kafka")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--sandbox-port", str(sandbox_port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = env["CALLBRIDGE_HUBSPOT_URL"]
    try:
        text = _wait_for(log, proc, "Ctrl-C stops everything", time.monotonic() + 90)
        # hubspot setup in every portal, one line each, before the banner
        for portal in ("acme", "bravo", "charlie"):
            assert f"{portal}: {SETUP}" in text, text
        base = f"http://127.0.0.1:{env['CALLBRIDGE_INGRESS_PORT']}/webhooks"
        for provider, portal in [
            ("generic", "acme"),
            ("twilio", "acme"),
            ("generic", "bravo"),
            ("aircall", "bravo"),
            ("generic", "charlie"),
        ]:
            assert f"      {base}/{provider}/{portal}\n" in text, (provider, portal)
        assert f"{base}/twilio/bravo" not in text and f"{base}/aircall/charlie" not in text
        assert "bravo: api 2026-03, token, 50 requests/10 s" in text
        assert "charlie: api 2026-03, OAuth, 100 requests/10 s" in text
        assert "pat-na1-acme-development-token" in text  # the sandbox token to read records
        assert "dev-charlie-client-secret" not in text

        listed = _sandbox_get(url, "/_sandbox/portals")["portals"]
        assert len(listed) == 3
        portals = parse_portals_file(EXAMPLE)
        for p in portals:
            token = sandbox_token(p)
            prop = _sandbox_get(url, "/crm/v3/properties/calls/callbridge_call_key", token)
            assert prop["hasUniqueValue"] is True
        stats = {p.id: _sandbox_get(url, "/_sandbox/stats", sandbox_token(p)) for p in portals}
        assert stats["acme"]["versions"]["v3"]["createProperty"] == 1
        assert stats["bravo"]["versions"]["2026-03"]["createProperty"] == 1
        assert stats["charlie"]["versions"]["2026-03"]["oauthToken"] >= 1
        assert stats["charlie"]["versions"]["2026-03"]["createProperty"] == 1

        health = f"http://127.0.0.1:{env['CALLBRIDGE_INGRESS_PORT']}/healthz"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
        assert "callbridge stopped." in log.read_text()
        try:
            httpx.get(url + "/_sandbox/stats", timeout=1)
            raise AssertionError("the sandbox outlived callbridge run")
        except httpx.TransportError:
            pass
    finally:
        proc.kill()
        proc.wait(30)


def test_run_gives_the_sandbox_every_portal(tmp_path: Path) -> None:
    """The sandbox command has each token portal's token and the OAuth portal's app (on a
    made-up portal token); without a portals file only CALLBRIDGE_HUBSPOT_TOKEN."""
    settings = Settings(portals_file=EXAMPLE)
    portals = parse_portals_file(EXAMPLE, settings)
    cmd = sandbox_command(settings, portals, tmp_path / "s.json", port=8123)
    assert cmd[:5] == [sys.executable, "-m", "sandbox", "--port", "8123"]
    tokens = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--token"]
    assert tokens == [
        "pat-na1-acme-development-token",
        "pat-na1-bravo-development-token",
        "oauth-portal-charlie",
    ]
    apps = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--oauth-app"]
    assert apps == [
        "charlie-dev-app:dev-charlie-client-secret:dev-charlie-refresh-token:oauth-portal-charlie"
    ]
    single = sandbox_command(Settings(hubspot_token="tok-1"), [], tmp_path / "s.json")
    assert [a for i, a in enumerate(single) if single[i - 1] == "--token"] == ["tok-1"]
    assert single[single.index("--port") + 1] == "8090"


def test_banner_lists_each_portals_urls() -> None:
    """The banner part names every portal with its access and its providers' URLs; a
    portal without providers says how to give it some."""
    settings = Settings(portals_file=EXAMPLE, ingress_host="127.0.0.1", ingress_port=8080)
    portals = parse_portals_file(EXAMPLE, settings)
    lines = portal_banner(settings, portals, sandbox=False)
    assert lines[0] == f"  portals   3 from {EXAMPLE}"
    assert "      http://127.0.0.1:8080/webhooks/twilio/acme" in lines
    assert not any("curl" in line for line in lines)  # not against the sandbox: no tokens
    with_sandbox = portal_banner(settings, portals, sandbox=True)
    assert any("/crm/objects/2026-03/calls" in line and "bravo" in line for line in with_sandbox)
    bare = parse_portals({"portals": [{"id": "zulu", "hubspot": {"token": "t"}}]}, settings)
    assert portal_banner(settings, bare, sandbox=False)[1:] == [
        "    zulu: api v3, token, 100 requests/10 s",
        "      (no providers: give it providers in the portals file)",
    ]
