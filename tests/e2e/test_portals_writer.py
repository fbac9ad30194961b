"""The writer with many portals, on the real broker against a sandbox process holding four
portals (``python -m sandbox --token tok-a --token tok-b --token tok-c --token tok-d
--oauth-app …``): acme (private-app token, v3), bravo (2026-03, 4 requests per 10 s),
charlie (OAuth, 2026-03, access tokens of 3 s) and delta (2026-09: admin validation
rules). Events go straight to ``calls.events``, keyed by ``CallEvent.portal_key``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

import handlers.generic as generic
from handlers import NormalizeOptions, WebhookRequest
from service.config import Settings
from service.deadletter import parse as parse_dlq
from service.hubspot.oauth import OAuthTokenProvider
from service.hubspot.setup import ensure_call_key_property
from service.localkafka import free_port
from service.model import CallEvent
from service.runtime import make_server
from service.wiring import portal_clients
from service.writer import Writer
from tests.e2e.helpers import signed
from tests.e2e.kafkaio import produce_events
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.portals import BRAVO_RATE, portals_server
from tests.fixtures.portals import PORTALS as THREE_PORTALS
from tests.fixtures.portals import TOKENS as PORTAL_TOKENS
from tests.fixtures.sandbox import SandboxServer, portal_stats, sandbox_request
from tests.fixtures.services import serve_ingress, wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {**PORTAL_TOKENS, "delta": "tok-d"}
#: each portal's calls path (the test reads them the way the portal's writer writes)
PATHS = {
    "acme": "/crm/v3/objects/calls",
    "bravo": "/crm/objects/2026-03/calls",
    "charlie": "/crm/objects/2026-03/calls",
    "delta": "/crm/objects/2026-09/calls",
}
PORTALS = (
    THREE_PORTALS
    + """  - id: delta
    hubspot: {token: tok-d, api_version: "2026-09", rate: 1000}
"""
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with portals_server(TOKENS, tmp_path_factory.mktemp("portals-writer-sandbox")) as s:
        yield s


async def stats(server: SandboxServer, portal: str) -> dict[str, Any]:
    return await portal_stats(server, TOKENS[portal])


async def record_counts(server: SandboxServer, portals: list[str]) -> dict[str, int]:
    return {p: (await stats(server, p))["records"]["calls"] for p in portals}


async def calls_in(server: SandboxServer, portal: str) -> dict[str, dict[str, str]]:
    """Every call record of ``portal`` by ``hs_call_external_id``."""
    out: dict[str, dict[str, str]] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {
            "limit": 100,
            "properties": "hs_call_external_id,hs_call_title,hs_call_status,hs_call_body",
        }
        if after:
            params["after"] = after
        r = await sandbox_request(server, "GET", PATHS[portal], TOKENS[portal], params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        for c in page["results"]:
            out[c["properties"]["hs_call_external_id"]] = c["properties"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


def event(portal: str, call: int, kind: str = "call.ended", **fields: Any) -> CallEvent:
    """A generic event of ``portal`` normalized as the ingress does."""
    body = {
        "event_id": f"{portal}-c{call}:{kind}",
        "call_id": f"c{call}",  # the same call ids in every portal: different calls
        "type": kind,
        "occurred_at": "2026-03-03T15:04:05Z",
        "direction": "inbound",
        "from": f"+1415555{call:04d}",
        "to": "+18005550100",
        "notes": portal,
        **fields,
    }
    [ev] = generic.parse(
        WebhookRequest("POST", "", {}, orjson.dumps(body)), NormalizeOptions()
    ).events
    return msgspec.structs.replace(ev, portal=portal)


@dataclass
class Running:
    writer: Writer
    task: asyncio.Task[None]
    health: httpx.AsyncClient
    health_url: str

    async def portals(self) -> dict[str, dict[str, Any]]:
        r = await self.health.get("/portals")
        assert r.status_code == 200
        return {p["id"]: p for p in r.json()["portals"]}


@pytest.fixture
async def settings(server: SandboxServer, kafka: KafkaEnv, tmp_path: Path) -> Settings:
    reset = await sandbox_request(server, "POST", "/_sandbox/reset", json={"all": True})
    assert reset.status_code == 200
    for token in TOKENS.values():
        assert (
            await sandbox_request(server, "DELETE", "/_sandbox/faults", token)
        ).status_code == 200
        assert (
            await sandbox_request(server, "DELETE", "/_sandbox/validation-rules", token)
        ).is_success
    path = tmp_path / "portals.yaml"
    path.write_text(PORTALS)
    s = kafka.settings.model_copy(
        update={
            "hubspot_url": server.url,
            "portals_file": path,
            "writer_linger_ms": 200,
            "writer_reconcile_after_s": 1.0,
            "writer_state_dir": str(tmp_path / "state"),
            "contact_index_dir": tmp_path / "contacts",
        }
    )
    clients = portal_clients(s)
    try:
        for client in clients.values():  # `callbridge hubspot setup` in every portal
            await ensure_call_key_property(client)
    finally:
        for client in clients.values():
            await client.aclose()
    return s


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Running]:
    writer = Writer(settings)
    await writer.start()
    task = asyncio.create_task(writer.run())
    port = free_port()
    server = make_server(writer.health_app(), "127.0.0.1", port)
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as health:
        try:
            yield Running(writer, task, health, url)
        finally:
            server.should_exit = True
            writer.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 60)
            await serving


#: requests of the test itself (the set-up's property creation, reading the records back)
NOT_THE_WRITER = {"listCalls", "getPropertyGroup", "createPropertyGroup", "createProperty"}


def writer_requests(portal_stats: dict[str, Any]) -> list[float]:
    """When the writer's requests reached the portal (the set-up's 404 read excluded)."""
    return [
        t
        for t, op, status in portal_stats["timeline"]
        if op not in NOT_THE_WRITER and not (op == "getProperty" and status == 404)
    ]


@dataclass
class Ran:
    returncode: int
    stdout: bytes
    stderr: str


async def portals_cli(settings: Settings, url: str, *args: str) -> Ran:
    """``callbridge portals list --json`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["CALLBRIDGE_PORTALS_FILE"] = str(settings.portals_file)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "portals",
        "list",
        "--writer-url",
        url,
        "--json",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Ran(proc.returncode, out, err.decode())


def _max_in_window(times: list[float], window_s: float = 10.0) -> int:
    return max(
        (sum(1 for u in times[i:] if u - t < window_s) for i, t in enumerate(times)), default=0
    )


async def committed(kafka: KafkaEnv, group: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:
        return 0
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values())


async def test_three_portals_interleaved_land_each_in_its_own_portal(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """Interleaved events of acme, bravo and charlie (the same call ids in each) make one
    record per call in its own portal and none in another's; bravo's requests keep to its
    own 4 per 10 s while the others are not slowed; the 2026-03 portals use dated paths."""
    counts = {"acme": 40, "bravo": 12, "charlie": 25}
    answered = [event(p, i, "call.answered") for i in range(40) for p in counts if i < counts[p]]
    await produce_events(settings, answered)

    async def created() -> bool:
        return await record_counts(server, list(counts)) == counts

    await wait_until(created, timeout_s=60)
    ended = [
        event(p, i, "call.ended", duration_ms=1000)
        for i in range(40)
        for p in counts
        if i < counts[p]
    ]
    started = asyncio.get_running_loop().time()
    await produce_events(settings, ended)

    async def acme_completed() -> bool:
        calls = await calls_in(server, "acme")
        return {c["hs_call_status"] for c in calls.values()} == {"COMPLETED"}

    await wait_until(acme_completed, timeout_s=60)
    acme_s = asyncio.get_running_loop().time() - started

    async def all_settled() -> bool:
        return await committed(kafka, settings.writer_group) == len(answered) + len(ended)

    await wait_until(all_settled, timeout_s=90)
    # a third wave for bravo alone: its writer needs more requests than its budget holds
    # (its start-up read, the contact index page, the creates, two rounds of updates)
    notes = [event("bravo", i, "call.updated", title="Follow-up") for i in range(counts["bravo"])]
    await produce_events(settings, notes)
    everything = len(answered) + len(ended) + len(notes)

    async def bravo_settled() -> bool:
        return await committed(kafka, settings.writer_group) == everything

    await wait_until(bravo_settled, timeout_s=90)
    for portal, n in counts.items():
        calls = await calls_in(server, portal)
        assert sorted(calls) == sorted(f"generic:c{i}" for i in range(n))  # no portal prefix
        assert {c["hs_call_body"] for c in calls.values()} == {portal}  # none of another's
        assert {c["hs_call_status"] for c in calls.values()} == {"COMPLETED"}
    assert (await stats(server, "delta"))["records"]["calls"] == 0
    acme, bravo = await stats(server, "acme"), await stats(server, "bravo")
    assert set(acme["versions"]) == {"v3"}
    assert set(bravo["versions"]) == {"2026-03"}
    assert set((await stats(server, "charlie"))["versions"]) == {"2026-03"}
    bravo_times = writer_requests(bravo)
    assert len(bravo_times) > BRAVO_RATE  # the pacing had to act
    assert _max_in_window(bravo_times) <= BRAVO_RATE
    assert bravo_times[-1] - bravo_times[0] >= 10.0  # bravo's updates waited for its budget
    assert acme_s < 5.0  # while acme's were written at once: not held to bravo's rate
    state = await running.portals()
    assert state["bravo"]["budget_10s"] == BRAVO_RATE
    assert state["acme"]["budget_10s"] == 1000
    assert {p["reconcile_mode"] for p in state.values()} == {"key"}
    assert all(p["buffered"] == 0 and p["ready"] for p in state.values())


async def test_a_revoked_token_holds_only_its_portal_and_its_calls_land_once_restored(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """acme's token is revoked mid-run: its calls wait (buffered, uncommitted, never
    dead-lettered), bravo and charlie keep writing, /readyz stays 200 and /portals says
    why acme is paused; once the token is restored acme's calls land, one record each."""
    wave1 = [event(p, i) for i in range(5) for p in ("acme", "bravo", "charlie")]
    await produce_events(settings, wave1)

    async def first() -> bool:
        return set((await record_counts(server, ["acme", "bravo", "charlie"])).values()) == {5}

    await wait_until(first, timeout_s=60)
    r = await sandbox_request(
        server, "POST", "/_sandbox/config", "tok-a", json={"tokens": ["tok-a-off"]}
    )
    assert r.status_code == 200, r.text
    held = [event("acme", i) for i in range(5, 25)]
    await produce_events(settings, held)

    async def acme_paused() -> bool:
        return bool((await running.portals())["acme"]["paused"])

    await wait_until(acme_paused, timeout_s=30)
    # acme is paused (at least 10 s for a refused token): the others' new calls go at once
    started = asyncio.get_running_loop().time()
    others = [event(p, i) for i in range(5, 25) for p in ("charlie", "bravo")]
    await produce_events(settings, others)

    async def charlie_written() -> bool:
        return (await record_counts(server, ["charlie"]))["charlie"] == 25

    await wait_until(charlie_written, timeout_s=60)
    assert asyncio.get_running_loop().time() - started < 5.0

    async def bravo_written() -> bool:  # at bravo's own pace (4 requests per 10 s)
        return (await record_counts(server, ["bravo"]))["bravo"] == 25

    await wait_until(bravo_written, timeout_s=60)
    wave2 = held + others
    state = await running.portals()
    assert state["acme"]["ready"] is False
    assert "token" in state["acme"]["reason"]
    assert state["acme"]["buffered"] + state["acme"]["in_flight"] == 20 == state["acme"]["lag"]
    assert state["bravo"]["ready"] and not state["bravo"]["paused"]
    ready = await running.health.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["portals"]["acme"]["paused"] is True
    assert await committed(kafka, settings.writer_group) < len(wave1) + len(wave2)
    listed = await portals_cli(settings, running.health_url)
    assert listed.returncode == 0, listed.stderr
    rows = {p["id"]: p for p in orjson.loads(listed.stdout)["portals"]}
    assert rows["acme"]["state"] == "blocked (auth)"
    assert "token" in rows["acme"]["reason"]
    assert rows["bravo"]["state"] == rows["charlie"]["state"] == "ready"
    assert rows["acme"]["lag"] == 20
    assert await kafka.records(settings.topic_dlq) == []
    # acme's records are still only wave 1 (read with the revoked token's replacement)
    r = await sandbox_request(server, "GET", "/_sandbox/stats", "tok-a-off")
    assert r.json()["records"]["calls"] == 5

    restored = await sandbox_request(
        server, "POST", "/_sandbox/config", "tok-a-off", json={"tokens": ["tok-a"]}
    )
    assert restored.status_code == 200

    async def all_settled() -> bool:
        return await committed(kafka, settings.writer_group) == len(wave1) + len(wave2)

    await wait_until(all_settled, timeout_s=90)
    calls = await calls_in(server, "acme")
    assert sorted(calls) == sorted(f"generic:c{i}" for i in range(25))
    assert await kafka.records(settings.topic_dlq) == []
    state = await running.portals()
    assert state["acme"]["ready"] and not state["acme"]["paused"]


async def test_an_oauth_portal_keeps_writing_across_an_access_token_expiry(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """charlie's access tokens last 3 s: calls before and after an expiry are all written,
    the token refreshed ahead (a handful of refreshes, never a refused write)."""
    await produce_events(settings, [event("charlie", i) for i in range(10)])

    async def landed(n: int) -> bool:
        return (await stats(server, "charlie"))["records"]["calls"] == n

    await wait_until(lambda: landed(10), timeout_s=60)
    await asyncio.sleep(3.5)  # every access token issued so far has expired
    await produce_events(settings, [event("charlie", i) for i in range(10, 30)])
    await wait_until(lambda: landed(30), timeout_s=60)
    s = await stats(server, "charlie")
    assert s["requests"]["oauthToken"].get("200", 0) >= 2
    assert set(s["requests"]["oauthToken"]) == {"200"}
    assert "401" not in s["requests"].get("batchCreateCalls", {})
    client = running.writer.clients["charlie"]
    assert isinstance(client.session.auth, OAuthTokenProvider)
    assert client.session.auth.refreshes >= 2
    assert await kafka.records(settings.topic_dlq) == []


@pytest.mark.parametrize("whole_batch", [False, True])
async def test_a_2026_09_validation_rule_dead_letters_that_call_only(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running, whole_batch: bool
) -> None:
    """delta (2026-09) requires a recording on completed calls: a call without one is
    refused with HubSpot's VALIDATION_ERROR (per input in a 207, or the whole batch 400,
    bisected) and dead-lettered with the rule's message and ``dlq.portal: delta``; the
    other calls of delta and of acme are written."""
    rule = {
        "rules": [
            {
                "object_type": "calls",
                "property": "hs_call_recording_url",
                "when": {"property": "hs_call_status", "value": "COMPLETED"},
            }
        ]
    }
    assert (
        await sandbox_request(server, "POST", "/_sandbox/validation-rules", "tok-d", json=rule)
    ).is_success
    if whole_batch:
        r = await sandbox_request(
            server, "POST", "/_sandbox/faults", "tok-d", json={"reject_whole_batch": True}
        )
        assert r.status_code == 200
    bad = {3, 7}
    events = [
        event("delta", i, **({} if i in bad else {"recording_url": f"https://rec.example/{i}.mp3"}))
        for i in range(12)
    ] + [event("acme", i) for i in range(12)]  # acme (v3) ignores the rule: all written
    await produce_events(settings, events)

    async def settled() -> bool:
        return await committed(kafka, settings.writer_group) == len(events)

    await wait_until(settled, timeout_s=90)
    delta = await calls_in(server, "delta")
    assert sorted(delta) == sorted(f"generic:c{i}" for i in range(12) if i not in bad)
    assert len(await calls_in(server, "acme")) == 12
    letters = await kafka.records(settings.topic_dlq)
    assert sorted(r.key for r in letters) == sorted(f"delta/generic:c{i}".encode() for i in bad)
    for record in letters:
        letter = parse_dlq(record.headers)
        assert letter.portal == "delta"
        assert letter.category == "VALIDATION_ERROR"
        assert "hs_call_recording_url is required by a validation rule" in letter.message


async def test_a_failed_oauth_refresh_pauses_only_that_portal_until_the_grant_works_again(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """charlie's refresh token is revoked and its access tokens expired: its refresh fails,
    charlie alone is paused (logged, ``callbridge_writer_portal_paused{portal="charlie"}``),
    acme keeps writing, nothing is dead-lettered; once the app's grant is installed again
    charlie's calls land."""
    await produce_events(settings, [event("charlie", 0)])

    async def charlie_has(n: int) -> bool:
        return (await record_counts(server, ["charlie"]))["charlie"] == n

    await wait_until(lambda: charlie_has(1), timeout_s=60)
    r = await sandbox_request(
        server,
        "POST",
        "/_sandbox/oauth",
        json={"revoke_refresh_token": "rt-c", "expire_access_tokens": True},
    )
    assert r.status_code == 200, r.text
    await produce_events(settings, [event("charlie", i) for i in range(1, 11)])

    async def charlie_paused() -> bool:
        return bool((await running.portals())["charlie"]["paused"])

    await wait_until(charlie_paused, timeout_s=30)
    await produce_events(settings, [event("acme", i) for i in range(10)])

    async def acme_written() -> bool:
        return (await record_counts(server, ["acme"]))["acme"] == 10

    await wait_until(acme_written, timeout_s=30)
    state = await running.portals()
    assert state["charlie"]["pause_kind"] == "auth" and not state["charlie"]["ready"]
    assert state["charlie"]["lag"] == 10
    assert state["acme"]["ready"]
    assert (await running.health.get("/readyz")).status_code == 200
    text = (await running.health.get("/metrics")).text
    assert 'callbridge_writer_portal_paused{portal="charlie"} 1.0' in text
    assert 'callbridge_writer_portal_paused{portal="acme"} 0.0' in text
    assert await charlie_has(1)
    assert await kafka.records(settings.topic_dlq) == []

    app = {"client_id": "cid", "client_secret": "csec", "refresh_token": "rt-c"}
    r = await sandbox_request(
        server, "POST", "/_sandbox/oauth", json={"apps": [{**app, "portal_token": "tok-c"}]}
    )
    assert r.status_code == 200, r.text
    await wait_until(lambda: charlie_has(11), timeout_s=60)
    assert await kafka.records(settings.topic_dlq) == []


#: three portals for the shedding tests: acme's token is revoked, bravo and delta write
THREE = """
portals:
  - id: acme
    hubspot: {token: tok-a, rate: 1000}
  - id: bravo
    hubspot: {token: tok-b, api_version: "2026-03", rate: 1000}
  - id: delta
    hubspot: {token: tok-d, rate: 1000}
"""


def shed_metric(text: str, portal: str) -> float:
    prefix = f'callbridge_writer_portal_shed_events_total{{portal="{portal}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0  # not created yet: 0


async def test_a_paused_portals_backlog_ten_times_the_buffer_is_shed_not_starving_the_others(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, tmp_path: Path
) -> None:
    """Buffer 60 (a share of 20 per portal), acme's token revoked and 600 of its calls with
    60 of bravo's and 60 of delta's interleaved behind them in the same partitions: acme
    sheds (its calls beyond its share are left unread and uncommitted), so bravo's and
    delta's calls are all written while acme is still paused; once its token is restored,
    every acme call lands exactly once, nothing is dead-lettered, and the group's
    committed offsets reach the log end."""
    path = tmp_path / "three.yaml"
    path.write_text(THREE)
    small = settings.model_copy(update={"writer_max_buffer": 60, "portals_file": path})
    acme_before = shed_metric(generate_latest().decode(), "acme")
    writer = Writer(small)
    await writer.start()  # acme's key property read: key mode
    r = await sandbox_request(
        server, "POST", "/_sandbox/config", "tok-a", json={"tokens": ["tok-a-off"]}
    )
    assert r.status_code == 200
    task = asyncio.create_task(writer.run())
    transport = httpx.ASGITransport(app=writer.health_app())
    events: list[CallEvent] = []
    for i in range(600):
        events.append(event("acme", i))
        if i % 10 == 9:
            events += [event("bravo", i // 10), event("delta", i // 10)]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as health:
            await produce_events(small, events)

            async def others_written() -> bool:
                return await record_counts(server, ["bravo", "delta"]) == {
                    "bravo": 60,
                    "delta": 60,
                }

            await wait_until(others_written, timeout_s=90)

            async def acme_refused() -> bool:
                state = {p["id"]: p for p in (await health.get("/portals")).json()["portals"]}
                return state["acme"]["pause_kind"] == "auth"

            await wait_until(acme_refused, timeout_s=30)
            body = (await health.get("/portals")).json()
            state = {p["id"]: p for p in body["portals"]}
            assert state["acme"]["pause_kind"] == "auth" and not state["acme"]["ready"]
            assert state["acme"]["shedding"] is True
            assert state["acme"]["shed"] >= 600 - 20  # it holds its share at most
            # buffered + in flight + shed: all of them, each once
            assert state["acme"]["lag"] == 600
            assert state["bravo"]["shed"] == 0 and state["bravo"]["shedding"] is False
            assert body["buffer"]["held_by_paused_portals"] is False
            revoked = await sandbox_request(server, "GET", "/_sandbox/stats", "tok-a-off")
            assert revoked.json()["records"]["calls"] == 0
            text = (await health.get("/metrics")).text
            assert shed_metric(text, "acme") - acme_before >= 600 - 20
            assert await committed(kafka, small.writer_group) < len(events)
            assert await kafka.records(small.topic_dlq) == []
            restored = await sandbox_request(
                server, "POST", "/_sandbox/config", "tok-a-off", json={"tokens": ["tok-a"]}
            )
            assert restored.status_code == 200

            async def all_settled() -> bool:
                return await committed(kafka, small.writer_group) == len(events)

            await wait_until(all_settled, timeout_s=150)
            state = {p["id"]: p for p in (await health.get("/portals")).json()["portals"]}
            assert state["acme"]["shed"] == 0 and state["acme"]["shedding"] is False
            assert state["acme"]["lag"] == 0
    finally:
        writer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
    assert (await record_counts(server, ["acme"]))["acme"] == 600  # each exactly once
    assert sorted(await calls_in(server, "acme")) == sorted(f"generic:c{i}" for i in range(600))
    assert len(await calls_in(server, "bravo")) == len(await calls_in(server, "delta")) == 60
    assert await kafka.records(small.topic_dlq) == []
    assert await committed(kafka, small.writer_group) == len(
        await kafka.records(small.topic_events)
    )


async def test_a_slow_portals_backlog_is_shed_so_the_others_calls_behind_it_are_read(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, tmp_path: Path
) -> None:
    """Not paused, just slow: bravo may send 4 requests per 10 s and has 300 calls, with 60
    of acme's interleaved behind them; in a buffer of 60 bravo sheds, so acme's calls are
    all written while most of bravo's still wait, and none is dead-lettered."""
    path = tmp_path / "slow.yaml"
    path.write_text(THREE.replace('tok-b, api_version: "2026-03", rate: 1000', "tok-b, rate: 4"))
    small = settings.model_copy(update={"writer_max_buffer": 60, "portals_file": path})
    events: list[CallEvent] = []
    for i in range(300):
        events.append(event("bravo", i))
        if i % 5 == 4:
            events.append(event("acme", i // 5))
    writer = Writer(small)
    await writer.start()
    assert writer.clients["bravo"].session.budget.limit == 4
    task = asyncio.create_task(writer.run())
    try:
        await produce_events(small, events)

        async def acme_written() -> bool:
            return (await record_counts(server, ["acme"]))["acme"] == 60

        await wait_until(acme_written, timeout_s=60)
        [bravo] = [p for p in writer.portal_report() if p["id"] == "bravo"]
        written = (await record_counts(server, ["bravo"]))["bravo"]
        assert written < 100
        assert bravo["pause_kind"] is None and bravo["ready"]
        assert isinstance(bravo["shed"], int) and bravo["shed"] > 100
        assert isinstance(bravo["lag"], int) and bravo["lag"] >= 300 - written  # all read
    finally:
        writer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
    assert await kafka.records(small.topic_dlq) == []


async def test_a_single_portal_never_sheds_a_buffer_full_of_its_paused_calls(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings
) -> None:
    """Without a portals file (the one portal ``default``, its share the whole buffer of
    30): 100 calls while its token is refused fill the buffer and reading stops, as it
    always did (``held_by_paused_portals`` in /portals and /readyz), nothing is shed or
    committed past them; once the token is restored everything lands."""
    single = settings.model_copy(
        update={
            "portals_file": None,
            "hubspot_token": SecretStr("tok-a"),
            "writer_max_buffer": 30,
        }
    )
    r = await sandbox_request(
        server, "POST", "/_sandbox/config", "tok-a", json={"tokens": ["tok-a-off"]}
    )
    assert r.status_code == 200
    before = shed_metric(generate_latest().decode(), "default")
    writer = Writer(single)
    await writer.start()
    task = asyncio.create_task(writer.run())
    transport = httpx.ASGITransport(app=writer.health_app())
    calls = [event("default", i) for i in range(100)]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as health:
            await produce_events(single, calls)

            async def held() -> bool:
                body = (await health.get("/portals")).json()
                return bool(body["buffer"]["held_by_paused_portals"])

            await wait_until(held, timeout_s=60)
            ready = (await health.get("/readyz")).json()
            assert ready["buffer_held_by_paused_portals"] is True
            [default] = (await health.get("/portals")).json()["portals"]
            assert default["buffered"] + default["in_flight"] == 30 and default["shed"] == 0
            assert default["shedding"] is False
            assert writer._shed.offsets == {} and not writer._shed.enabled
            assert await committed(kafka, single.writer_group) < len(calls)
            restored = await sandbox_request(
                server, "POST", "/_sandbox/config", "tok-a-off", json={"tokens": ["tok-a"]}
            )
            assert restored.status_code == 200

            async def all_settled() -> bool:
                return await committed(kafka, single.writer_group) == len(calls)

            await wait_until(all_settled, timeout_s=90)
            text = (await health.get("/metrics")).text
            assert shed_metric(text, "default") == before
    finally:
        writer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
    assert sorted(await calls_in(server, "acme")) == sorted(f"generic:c{i}" for i in range(100))
    assert await kafka.records(single.topic_dlq) == []


async def test_a_call_of_a_portal_not_in_the_file_is_dead_lettered_with_its_portal(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """An event of portal ``zulu`` (not configured: say, removed from the file) can never
    be written: it is dead-lettered (``UNKNOWN_PORTAL``, ``dlq.portal: zulu``, replayable
    once the portal is back) and committed; acme's calls are written as usual."""
    events = [event("zulu", 0), *(event("acme", i) for i in range(3))]
    await produce_events(settings, events)

    async def settled() -> bool:
        return await committed(kafka, settings.writer_group) == len(events)

    await wait_until(settled, timeout_s=60)
    [letter] = await kafka.records(settings.topic_dlq)
    assert letter.key == b"zulu/generic:c0"
    parsed = parse_dlq(letter.headers)
    assert parsed.portal == "zulu" and parsed.category == "UNKNOWN_PORTAL"
    assert len(await calls_in(server, "acme")) == 3
    assert "zulu" not in {p["id"] for p in (await running.portals()).values()}


async def test_an_event_whose_portal_is_no_portal_id_is_dead_lettered_not_routed(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """A record the ingress did not write, with portal ``acme/x``: routed, it would land in
    acme under the key ``x/generic:c0``. It is dead-lettered as ``INVALID_EVENT`` instead,
    and acme gets only its own call."""
    bad = msgspec.structs.replace(event("acme", 0), portal="acme/x")
    await produce_events(settings, [bad, event("acme", 1)])

    async def settled() -> bool:
        return await committed(kafka, settings.writer_group) == 2

    await wait_until(settled, timeout_s=60)
    [letter] = await kafka.records(settings.topic_dlq)
    parsed = parse_dlq(letter.headers)
    assert parsed.category == "INVALID_EVENT" and "not a portal id" in parsed.message
    assert sorted(await calls_in(server, "acme")) == ["generic:c1"]


async def test_a_huge_backlog_of_one_portal_does_not_starve_another(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, running: Running
) -> None:
    """3,000 calls of acme (each request of acme answered after 1 s) are being written
    when 5 of charlie arrive: charlie's land before even acme's first flush is done (each
    portal flushes on its own, at most 1,000 calls at a time)."""
    r = await sandbox_request(
        server, "POST", "/_sandbox/faults", "tok-a", json={"latency_ms": 1000}
    )
    assert r.status_code == 200
    backlog = [event("acme", i) for i in range(3000)]
    await produce_events(settings, backlog)

    async def acme_flushing() -> bool:
        return int((await running.portals())["acme"]["in_flight"]) > 0

    await wait_until(acme_flushing, timeout_s=60)
    await produce_events(settings, [event("charlie", i) for i in range(5)])

    async def charlie_landed() -> bool:
        return (await record_counts(server, ["charlie"]))["charlie"] == 5

    await wait_until(charlie_landed, timeout_s=60)
    acme_then = (await record_counts(server, ["acme"]))["acme"]
    assert acme_then < 1000  # not even acme's first flush (1,000 calls) was done

    async def all_settled() -> bool:
        return await committed(kafka, settings.writer_group) == 3005

    await wait_until(all_settled, timeout_s=120)
    assert (await record_counts(server, ["acme"]))["acme"] == 3000
    acme = await stats(server, "acme")
    assert max(acme["batch_inputs"]["batchCreateCalls"]) == 100


#: the same portals with provider secrets, for the whole pipeline through the ingress
SECRETS_BY_PORTAL = {"acme": "acme-secret", "bravo": "bravo-secret", "charlie": "charlie-secret"}


def _with_secrets(text: str) -> str:
    out = []
    for line in text.splitlines():
        out.append(line)
        stripped = line.strip()
        for portal, secret in SECRETS_BY_PORTAL.items():
            if stripped == f"- id: {portal}":
                indent = line[: len(line) - len(line.lstrip())]
                out.append(f"{indent}  providers: {{generic: {{secret: {secret}}}}}")
    return "\n".join(out) + "\n"


async def test_webhooks_through_the_ingress_land_each_in_its_own_portal(
    server: SandboxServer, kafka: KafkaEnv, settings: Settings, tmp_path: Path
) -> None:
    """The whole pipeline: signed webhooks to ``/webhooks/generic/{portal}`` (the same call
    ids in each portal), the ingress and the writer reading one portals file, each call
    one record in its own portal. Another portal's secret is 401, an unknown portal 404;
    neither produces anything, so nothing more lands anywhere."""
    path = tmp_path / "portals-with-secrets.yaml"
    path.write_text(_with_secrets(PORTALS))
    s = settings.model_copy(update={"portals_file": path})
    counts = {"acme": 15, "bravo": 6, "charlie": 10}
    writer = Writer(s)
    await writer.start()
    task = asyncio.create_task(writer.run())
    try:
        async with serve_ingress(s) as url, httpx.AsyncClient(timeout=30) as http:

            async def post(portal: str, body: dict[str, Any], secret: str) -> int:
                raw = orjson.dumps(body)
                r = await http.post(
                    f"{url}/webhooks/generic/{portal}", content=raw, headers=signed(raw, secret)
                )
                return r.status_code

            for i in range(max(counts.values())):
                for portal, n in counts.items():
                    if i >= n:
                        continue
                    body = {
                        "event_id": f"e{i}",  # the same event and call ids in every portal
                        "call_id": f"c{i}",
                        "type": "call.ended",
                        "occurred_at": "2026-03-03T15:04:05Z",
                        "direction": "inbound",
                        "from": f"+1415555{i:04d}",
                        "to": "+18005550100",
                        "notes": portal,
                    }
                    assert await post(portal, body, SECRETS_BY_PORTAL[portal]) == 202
            stray = {
                "event_id": "x",
                "call_id": "stray",
                "type": "call.ended",
                "occurred_at": "2026-03-03T15:04:05Z",
                "direction": "inbound",
                "from": "+14155550000",
                "to": "+18005550100",
            }
            assert await post("acme", stray, SECRETS_BY_PORTAL["bravo"]) == 401
            assert await post("zulu", stray, SECRETS_BY_PORTAL["acme"]) == 404

            async def landed() -> bool:
                return await record_counts(server, list(counts)) == counts

            await wait_until(landed, timeout_s=90)
            total = sum(counts.values())

            async def settled() -> bool:
                return await committed(kafka, s.writer_group) == total

            await wait_until(settled, timeout_s=60)
    finally:
        writer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
    for portal, n in counts.items():
        calls = await calls_in(server, portal)
        assert sorted(calls) == sorted(f"generic:c{i}" for i in range(n))
        assert {c["hs_call_body"] for c in calls.values()} == {portal}
    assert (await stats(server, "delta"))["records"]["calls"] == 0
