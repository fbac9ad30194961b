"""Per-portal webhook URLs on the real broker: ``POST /webhooks/{provider}/{portal}`` with a
three-portal ``CALLBRIDGE_PORTALS_FILE``; each portal's own secret, key, header and value;
another portal's secret 401; an unknown portal 404 before the body and nothing produced;
``/webhooks/{provider}`` unchanged without a file; Twilio's signed URL per portal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr

from handlers.event import decode_event, encode_event
from service import metrics
from service.config import Settings
from tests.e2e.helpers import generic_event, signed
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.services import SECRETS, serve_ingress
from tests.handlers.signed import fixture, sign_fixture

PORTALS = """
portals:
  - id: acme
    hubspot: {token: pat-acme}
    providers:
      generic: {secret: "acme-old,acme-generic"}
      twilio: {auth_token: tw-shared}
  - id: globex
    hubspot: {token: pat-globex, api_version: "2026-03"}
    providers:
      generic: {secret: globex-generic}
      twilio: {auth_token: tw-shared}
  - id: initech
    hubspot: {token: pat-initech}
    providers:
      generic: {secret: initech-generic}
"""
SECRET = {"acme": "acme-generic", "globex": "globex-generic", "initech": "initech-generic"}


def portals_settings(kafka: KafkaEnv, tmp_path: Path, text: str = PORTALS) -> Settings:
    path = tmp_path / "portals.yaml"
    path.write_text(text)
    return kafka.settings.model_copy(update={"portals_file": path})


async def post(
    client: httpx.AsyncClient, url: str, path: str, payload: object, secret: str, **headers: str
) -> httpx.Response:
    body = orjson.dumps(payload)
    return await client.post(
        url + path, content=body, headers={**signed(body, secret=secret), **headers}
    )


async def declared_but_unsent(url: str, path: str, length: int) -> bytes:
    """The status line answered to headers declaring ``length`` bytes, none of them sent."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


def requests_counted(provider: str, status: int, portal: str) -> float:
    value = metrics.INGRESS_REQUESTS.labels(provider, status, portal)._value.get()
    return float(value)


async def test_each_portal_accepts_its_own_webhook_with_its_key_header_and_value(
    kafka: KafkaEnv, tmp_path: Path
) -> None:
    """The same call id c-1 in three portals → three records keyed <portal>/generic:c-1,
    header portal=<portal>, value portal=<portal>; the response names the portal key."""
    before = {p: requests_counted("generic", 202, p) for p in SECRET}
    async with serve_ingress(portals_settings(kafka, tmp_path)) as url, httpx.AsyncClient() as c:
        for portal, secret in SECRET.items():
            response = await post(
                c, url, f"/webhooks/generic/{portal}", generic_event("c-1"), secret
            )
            assert response.status_code == 202, (portal, response.text)
            assert response.json() == {"accepted": 1, "keys": [f"{portal}/generic:c-1"]}
        rotated = await post(c, url, "/webhooks/generic/acme", generic_event("c-2"), "acme-old")
        assert rotated.status_code == 202
    records = await kafka.records(kafka.settings.topic_events)
    by_key = {r.key: r for r in records}
    assert sorted(by_key) == [
        b"acme/generic:c-1",
        b"acme/generic:c-2",
        b"globex/generic:c-1",
        b"initech/generic:c-1",
    ]
    for portal in SECRET:
        record = by_key[f"{portal}/generic:c-1".encode()]
        assert dict(record.headers)["portal"] == portal.encode()
        assert dict(record.headers)["provider"] == b"generic"
        assert orjson.loads(record.value)["portal"] == portal
        event = decode_event(record.value)
        assert (event.portal, event.portal_key, event.key) == (
            portal,
            f"{portal}/generic:c-1",
            "generic:c-1",
        )
        assert requests_counted("generic", 202, portal) == before[portal] + (
            2 if portal == "acme" else 1
        )


async def test_another_portals_secret_and_unknown_portals_produce_nothing(
    kafka: KafkaEnv, tmp_path: Path
) -> None:
    """globex's valid signature on acme → 401; a portal not in the file, a malformed id and
    the file-less /webhooks/generic (no portal "default") → 404 "unknown portal"; an
    unknown portal is refused before the body (a 10 MB Content-Length is 404, not 413);
    the topic stays empty and the refusals count under portal="unknown"."""
    unknown_before = requests_counted("generic", 404, "unknown")
    async with serve_ingress(portals_settings(kafka, tmp_path)) as url, httpx.AsyncClient() as c:
        crossed = await post(
            c, url, "/webhooks/generic/acme", generic_event("x-1"), SECRET["globex"]
        )
        assert crossed.status_code == 401
        assert crossed.json()["error"] == "invalid signature"
        for path, detail in [
            ("/webhooks/generic/umbrella", "umbrella"),
            ("/webhooks/generic/Not_A_Portal", "not a portal id ([a-z0-9-]{1,40})"),
            ("/webhooks/generic", "default"),
        ]:
            response = await post(c, url, path, generic_event("x-2"), SECRET["acme"])
            assert response.status_code == 404, path
            assert response.json() == {"error": "unknown portal", "detail": detail}
        status_line = await declared_but_unsent(url, "/webhooks/generic/umbrella", 10 << 20)
        assert status_line.startswith(b"HTTP/1.1 404"), status_line
        assert (await c.get(url + "/readyz")).status_code == 200
    assert await kafka.records(kafka.settings.topic_events, timeout_s=3) == []
    assert requests_counted("generic", 404, "unknown") == unknown_before + 4


async def test_a_provider_without_a_secret_in_the_portal_is_not_enabled_there(
    kafka: KafkaEnv, tmp_path: Path
) -> None:
    """initech has no Twilio secret: /webhooks/twilio/initech answers today's disabled
    provider 404 while /webhooks/twilio/acme is on."""
    settings = portals_settings(kafka, tmp_path)
    async with serve_ingress(settings) as url, httpx.AsyncClient() as c:
        off = await c.post(url + "/webhooks/twilio/initech", content=b"a=1")
        on = await c.post(
            url + "/webhooks/twilio/acme",
            content=b"a=1",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert off.status_code == 404
    assert off.json() == {"error": "provider not enabled", "detail": "twilio"}
    assert on.status_code == 401  # enabled, unsigned


async def test_without_a_portals_file_the_default_route_is_byte_for_byte_today(
    kafka: KafkaEnv,
) -> None:
    """No file: /webhooks/generic and /webhooks/generic/default both produce the record of
    today: key generic:c-1, no portal field in the value (the same bytes but received_at
    as a file-less event encodes to), header portal=default; other portals are 404."""
    settings = kafka.settings.model_copy(update={"generic_secret": SecretStr(SECRETS["generic"])})
    async with serve_ingress(settings) as url, httpx.AsyncClient() as c:
        plain = await post(c, url, "/webhooks/generic", generic_event("c-1"), SECRETS["generic"])
        named = await post(
            c, url, "/webhooks/generic/default", generic_event("c-1"), SECRETS["generic"]
        )
        other = await post(
            c, url, "/webhooks/generic/acme", generic_event("c-1"), SECRETS["generic"]
        )
    assert (plain.status_code, named.status_code, other.status_code) == (202, 202, 404)
    assert plain.json() == named.json() == {"accepted": 1, "keys": ["generic:c-1"]}
    records = await kafka.records(kafka.settings.topic_events)
    assert [r.key for r in records] == [b"generic:c-1", b"generic:c-1"]
    for record in records:
        value = orjson.loads(record.value)
        assert "portal" not in value
        assert dict(record.headers)["portal"] == b"default"
        event = decode_event(record.value)
        assert event.portal == "default" and encode_event(event) == record.value
    stripped = [
        {k: v for k, v in orjson.loads(r.value).items() if k != "received_at"} for r in records
    ]
    assert stripped[0] == stripped[1]


async def test_twilio_signs_the_per_portal_url(kafka: KafkaEnv, tmp_path: Path) -> None:
    """acme and globex share a Twilio token: a callback signed for /webhooks/twilio/acme is
    202 there and 401 on /webhooks/twilio/globex (the URL is signed, the portal is in it);
    one signed for the portal-less URL is 401 on acme; a JSON callback (bodySHA256 in the
    query) signed for globex's URL is 202 on globex."""
    fx = fixture("twilio", "status_completed")
    clock_now = fx.now
    settings = portals_settings(kafka, tmp_path)
    async with serve_ingress(settings, clock=lambda: clock_now) as url, httpx.AsyncClient() as c:
        good = sign_fixture("twilio", fx.name, "tw-shared", f"{url}/webhooks/twilio/acme", fx.now)
        accepted = await c.post(good.url, headers=good.headers, content=good.body)
        moved = await c.post(
            good.url.replace("/acme", "/globex"), headers=good.headers, content=good.body
        )
        bare = sign_fixture("twilio", fx.name, "tw-shared", f"{url}/webhooks/twilio", fx.now)
        bare_on_acme = await c.post(
            f"{url}/webhooks/twilio/acme", headers=bare.headers, content=bare.body
        )
        json_fx = sign_fixture(
            "twilio", "status_completed_json", "tw-shared", f"{url}/webhooks/twilio/globex", fx.now
        )
        json_ok = await c.post(json_fx.url, headers=json_fx.headers, content=json_fx.body)
    assert accepted.status_code == 202, accepted.text
    assert (moved.status_code, bare_on_acme.status_code) == (401, 401)
    assert json_ok.status_code == 202, json_ok.text
    records = await kafka.records(kafka.settings.topic_events)
    keys = sorted(r.key for r in records)
    assert keys == [
        b"acme/twilio:CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b",
        b"globex/twilio:CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b",
    ]
    assert {dict(r.headers)["portal"] for r in records} == {b"acme", b"globex"}


async def test_vonage_jti_replays_are_per_portal(kafka: KafkaEnv, tmp_path: Path) -> None:
    """The same jti in two portals is two requests (both produced); again in one portal it
    is a replay (401)."""
    from handlers import vonage

    text = PORTALS.replace(
        "      generic: {secret: globex-generic}\n",
        "      generic: {secret: globex-generic}\n      vonage: {signature_secret: vn-globex}\n",
    ).replace(
        "      generic: {secret: initech-generic}\n",
        "      generic: {secret: initech-generic}\n      vonage: {signature_secret: vn-initech}\n",
    )
    body = orjson.dumps(
        {
            "uuid": "u-shared",
            "status": "answered",
            "direction": "outbound",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )

    def headers(secret: str) -> dict[str, str]:
        token = vonage.sign(secret, body, int(time.time()), "jti-shared")
        return {"content-type": "application/json", "authorization": f"Bearer {token}"}

    async with (
        serve_ingress(portals_settings(kafka, tmp_path, text)) as url,
        httpx.AsyncClient() as c,
    ):
        globex = await c.post(
            url + "/webhooks/vonage/globex", content=body, headers=headers("vn-globex")
        )
        initech = await c.post(
            url + "/webhooks/vonage/initech", content=body, headers=headers("vn-initech")
        )
        again = await c.post(
            url + "/webhooks/vonage/globex", content=body, headers=headers("vn-globex")
        )
    assert (globex.status_code, initech.status_code, again.status_code) == (202, 202, 401)
    assert again.json()["error"] == "replayed request"
    records = await kafka.records(kafka.settings.topic_events)
    assert sorted(r.key for r in records) == [b"globex/vonage:u-shared", b"initech/vonage:u-shared"]


def test_every_portals_secrets_are_masked_in_logs(kafka: KafkaEnv, tmp_path: Path) -> None:
    """Building the app with a portals file masks each portal's provider secrets (every
    rotated value) wherever they would appear in a log line."""
    from service import logs
    from service.ingress import create_app

    create_app(portals_settings(kafka, tmp_path).model_copy(update={"public_url": "https://h"}))
    line = logs.mask(None, "info", {"event": "x", "note": "acme-old / globex-generic / tw-shared"})
    assert line["note"] == "*** / *** / ***"


async def test_every_provider_verifies_per_portal(kafka: KafkaEnv, tmp_path: Path) -> None:
    """Every provider on /webhooks/{provider}/acme: its documented example signed with
    acme's secret → 202 and records keyed acme/<provider:call_id> with header portal=acme;
    the same request signed with globex's secret → 401; Zoom's URL-validation challenge on
    globex is answered with globex's secret."""
    import hashlib
    import hmac

    from service.portals import PROVIDER_FIELDS
    from tests.handlers.signed import FIXTURES

    def secret(portal: str, provider: str) -> str:
        return f"{portal}-{provider}-secret"

    text = "portals:\n" + "".join(
        f"  - id: {portal}\n    hubspot: {{token: pat-{portal}}}\n    providers:\n"
        + "".join(
            f"      {provider}: {{{field}: {secret(portal, provider)}}}\n"
            for provider, field in PROVIDER_FIELDS.items()
        )
        for portal in ("acme", "globex")
    )
    providers = sorted({f.provider for f in FIXTURES})
    firsts = [next(f for f in FIXTURES if f.provider == p and f.events) for p in providers]
    clock_now = [0.0]
    settings = portals_settings(kafka, tmp_path, text)
    async with (
        serve_ingress(settings, clock=lambda: clock_now[0]) as url,
        httpx.AsyncClient() as c,
    ):
        for fx in firsts:
            clock_now[0] = fx.now
            target = f"{url}/webhooks/{fx.provider}/acme"
            own = sign_fixture(fx.provider, fx.name, secret("acme", fx.provider), target, fx.now)
            crossed = sign_fixture(
                fx.provider, fx.name, secret("globex", fx.provider), target, fx.now
            )
            refused = await c.post(crossed.url, headers=crossed.headers, content=crossed.body)
            assert refused.status_code == 401, (fx.id, refused.text)
            accepted = await c.post(own.url, headers=own.headers, content=own.body)
            assert accepted.status_code == 202, (fx.id, accepted.text)
            assert accepted.json()["keys"] == [f"acme/{fx.call_key}"]
        zoom_fx = fixture("zoom", "url_validation")
        clock_now[0] = zoom_fx.now
        challenge = sign_fixture(
            "zoom",
            "url_validation",
            secret("globex", "zoom"),
            f"{url}/webhooks/zoom/globex",
            zoom_fx.now,
        )
        handshake = await c.post(challenge.url, headers=challenge.headers, content=challenge.body)
    assert handshake.status_code == 200
    plain = handshake.json()["plainToken"]
    assert (
        handshake.json()["encryptedToken"]
        == hmac.new(secret("globex", "zoom").encode(), plain.encode(), hashlib.sha256).hexdigest()
    )
    records = await kafka.records(kafka.settings.topic_events)
    assert sorted({r.key for r in records}) == sorted(
        f"acme/{fx.call_key}".encode() for fx in firsts
    )
    assert len(records) == sum(fx.events for fx in firsts)
    assert {dict(r.headers)["portal"] for r in records} == {b"acme"}
