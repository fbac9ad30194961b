"""The sandbox process: command line, clean stop on SIGTERM/SIGINT, ``--data`` persistence."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from sandbox.__main__ import parse_args
from tests.fixtures.sandbox import start_sandbox, stop_sandbox

HEADERS = {"Authorization": "Bearer tok"}
TS = "2026-03-03T15:04:05.000Z"


def test_command_line_options() -> None:
    """``python -m sandbox`` flags map onto SandboxConfig, host and port."""
    config, host, port = parse_args(
        [
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--token",
            "a",
            "--token",
            "b",
            "--rate-limit",
            "50",
            "--search-rate",
            "3",
            "--daily-limit",
            "1000",
            "--data",
            "x.json",
        ]
    )
    assert (host, port) == ("0.0.0.0", 9000)
    assert config.tokens == ["a", "b"]
    assert (config.rate_limit, config.search_rate, config.daily_limit) == (50, 3, 1000)
    assert config.data_file == Path("x.json")
    default, _, default_port = parse_args([])
    assert (
        default.tokens == ["sandbox-token"] and default.rate_limit == 190 and default_port == 8090
    )
    assert parse_args(["--rate-limit", "100/10s"])[0].rate_limit == 100
    for bad in (["--rate-limit", "0"], ["--rate-limit", "fast"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_data_file_survives_restart(tmp_path: Path) -> None:
    """With --data, records, history, unique properties and ids survive a SIGTERM restart."""
    data = tmp_path / "state.json"
    first = start_sandbox("--data", str(data), log_dir=tmp_path, token="tok")
    try:
        url = first.url
        r = httpx.post(
            url + "/crm/v3/properties/calls",
            json={"name": "hs_call_external_id", "type": "string", "hasUniqueValue": True},
            headers=HEADERS,
        )
        assert r.status_code == 201
        call = httpx.post(
            url + "/crm/v3/objects/calls",
            json={
                "properties": {
                    "hs_timestamp": TS,
                    "hs_call_title": "a",
                    "hs_call_external_id": "k1",
                }
            },
            headers=HEADERS,
        ).json()
        httpx.patch(
            url + f"/crm/v3/objects/calls/{call['id']}",
            json={"properties": {"hs_call_title": "b"}},
            headers=HEADERS,
        )
    finally:
        assert stop_sandbox(first.process) == 0
    assert data.exists()
    second = start_sandbox("--data", str(data), log_dir=tmp_path, token="tok")
    try:
        url = second.url
        got = httpx.get(
            url + f"/crm/v3/objects/calls/{call['id']}?propertiesWithHistory=hs_call_title",
            headers=HEADERS,
        ).json()
        assert [h["value"] for h in got["propertiesWithHistory"]["hs_call_title"]] == ["b", "a"]
        dup = httpx.post(
            url + "/crm/v3/objects/calls",
            json={"properties": {"hs_timestamp": TS, "hs_call_external_id": "k1"}},
            headers=HEADERS,
        )
        assert dup.status_code == 400 and "already has that value" in dup.json()["message"]
        new = httpx.post(
            url + "/crm/v3/objects/calls",
            json={"properties": {"hs_timestamp": TS}},
            headers=HEADERS,
        )
        assert int(new.json()["id"]) > int(call["id"])
    finally:
        stop_sandbox(second.process)


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) stops the server with exit status 0."""
    server = start_sandbox(log_dir=tmp_path)
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(10) == 0
