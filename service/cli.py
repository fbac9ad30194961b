"""``callbridge``: the one command line for every process and operator tool."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import structlog
import typer

from service import logs
from service.config import PROVIDER_SECRETS, Settings

if TYPE_CHECKING:
    from service.localkafka import LocalKafka

app = typer.Typer(
    help="callbridge: every telephony call into HubSpot as exactly one call record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
log = structlog.get_logger()

DEFAULT_DATA = Path(os.environ.get("CALLBRIDGE_DATA_DIR", Path.home() / ".local/share/callbridge"))


def _settings(**overrides: object) -> Settings:
    settings = Settings()
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    logs.configure(settings.log_level, settings.log_format)
    return settings


@app.command()
def ingress(
    host: Annotated[str | None, typer.Option(help="interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (default 8080)")] = None,
) -> None:
    """Serve provider webhooks: POST /webhooks/{provider}, /healthz, /readyz, /metrics."""
    from service.ingress import create_app
    from service.runtime import make_server, serve_until_stopped
    from service.runtime import run as run_on_loop

    s = _settings(ingress_host=host, ingress_port=port)
    server = make_server(create_app(s), s.ingress_host, s.ingress_port)
    log.info("ingress_listening", url=f"http://{s.ingress_host}:{s.ingress_port}")
    run_on_loop(serve_until_stopped([server], [], []))


@app.command()
def writer(
    health_port: Annotated[
        int | None, typer.Option(help="port for /healthz, /readyz, /metrics (default 8081)")
    ] = None,
    health_host: Annotated[str, typer.Option(help="interface for the health port")] = "0.0.0.0",
) -> None:
    """Consume calls.events and write calls to HubSpot in batches (a consumer-group member)."""
    from service.runtime import make_server, serve_until_stopped
    from service.runtime import run as run_on_loop
    from service.writer import Writer

    s = _settings(writer_health_port=health_port)

    async def main() -> None:
        w = Writer(s)  # aiokafka objects are made inside the running loop
        server = make_server(w.health_app(), health_host, s.writer_health_port)
        await serve_until_stopped([server], [w.run], [w.stop])

    run_on_loop(main())


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8090,
    token: Annotated[
        list[str] | None, typer.Option(help="accepted Bearer token (repeatable)")
    ] = None,
    rate_limit: Annotated[
        str, typer.Option(help="requests per rolling 10 s per token: 190 or 190/10s")
    ] = "190",
    search_rate: Annotated[int, typer.Option(help="search requests per second per token")] = 5,
    daily_limit: Annotated[int | None, typer.Option(help="requests per day per token")] = None,
    data: Annotated[
        Path | None, typer.Option(help="JSON file to persist state across restarts")
    ] = None,
) -> None:
    """Serve the local HubSpot Calls API emulator (the default HubSpot target)."""
    from sandbox.__main__ import rate
    from sandbox.config import SandboxConfig
    from sandbox.server import serve

    logs.configure()
    try:
        per_10s = rate(rate_limit)
    except argparse.ArgumentTypeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rate-limit") from exc
    config = SandboxConfig(
        tokens=token or ["sandbox-token"],
        rate_limit=per_10s,
        search_rate=search_rate,
        daily_limit=daily_limit,
        data_file=data,
    )
    log.info("sandbox_listening", url=f"http://{host}:{port}")
    serve(config, host=host, port=port)


@app.command()
def kafka(
    port: Annotated[int, typer.Option(help="broker port")] = 9092,
    controller_port: Annotated[int, typer.Option(help="KRaft controller port")] = 9093,
    data_dir: Annotated[
        Path, typer.Option(help="log/metadata directory (kept across restarts)")
    ] = DEFAULT_DATA / "kafka",
) -> None:
    """Fetch (once, with Maven) and run a local single-node Apache Kafka broker (KRaft)."""
    from service.localkafka import KAFKA_VERSION, LocalKafka

    logs.configure()
    broker = _start_broker(
        LocalKafka(data_dir=data_dir, port=port, controller_port=controller_port)
    )
    typer.echo(f"Apache Kafka {KAFKA_VERSION} ready on {broker.bootstrap} (Ctrl-C stops it)")
    try:
        while broker.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()


DEV_SECRETS = {provider: f"dev-{provider}-secret" for provider in PROVIDER_SECRETS}


@app.command()
def run(
    data_dir: Annotated[
        Path, typer.Option(help="where the local broker keeps its data")
    ] = DEFAULT_DATA / "kafka",
) -> None:
    """Everything for local use: Kafka broker, sandbox, ingress (8080) and writer; Ctrl-C stops all."""
    from service.localkafka import LocalKafka

    for provider, attr in PROVIDER_SECRETS.items():
        os.environ.setdefault(f"CALLBRIDGE_{attr.upper()}", DEV_SECRETS[provider])
    s = _settings()
    broker: LocalKafka | None = None
    if not _reachable(s.kafka_bootstrap):
        if s.kafka_bootstrap != "127.0.0.1:9092":
            typer.echo(
                f"error: CALLBRIDGE_KAFKA_BOOTSTRAP={s.kafka_bootstrap} is not reachable", err=True
            )
            raise typer.Exit(2)
        broker = _start_broker(LocalKafka(data_dir=data_dir))
    sandbox_proc = None
    if s.hubspot_url.rstrip("/") == "http://127.0.0.1:8090":
        # persisted next to the broker's data: the writer's calls.ids records survive a
        # restart, so must the HubSpot records they point at
        sandbox_proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "sandbox",
                "--port",
                "8090",
                "--token",
                s.hubspot_token.get_secret_value(),
                "--data",
                str(data_dir.parent / "sandbox.json"),
            ],
        )
        _wait_http("http://127.0.0.1:8090/_sandbox/stats")
    _banner(s, started_kafka=broker is not None)
    from service.runtime import run as run_on_loop

    try:
        run_on_loop(_run_services(s))
    finally:
        if sandbox_proc is not None:
            sandbox_proc.terminate()
            sandbox_proc.wait(10)
        if broker is not None:
            broker.stop()
        typer.echo("callbridge stopped.")


async def _run_services(s: Settings) -> None:
    from service.ingress import create_app
    from service.runtime import make_server, serve_until_stopped
    from service.writer import Writer

    w = Writer(s)
    servers = [
        make_server(create_app(s), s.ingress_host, s.ingress_port),
        make_server(w.health_app(), "127.0.0.1", s.writer_health_port),
    ]
    await serve_until_stopped(servers, [w.run], [w.stop])


def _banner(s: Settings, *, started_kafka: bool) -> None:
    lines = [
        "",
        "callbridge is running:",
        f"  kafka     {s.kafka_bootstrap}{' (local broker started)' if started_kafka else ''}",
        f"  hubspot   {s.hubspot_url}",
        f"  ingress   http://{s.ingress_host}:{s.ingress_port}/webhooks/<provider>",
        f"  writer    http://127.0.0.1:{s.writer_health_port}/healthz",
        "  secrets (development):",
    ]
    for provider in PROVIDER_SECRETS:
        lines.append(f"    {provider:<12} {s.provider_secret(provider)}")
    lines += [
        "  try:      .venv/bin/callbridge emit --call-id demo-1",
        "  then:     curl -s -H 'authorization: Bearer sandbox-token' "
        "'http://127.0.0.1:8090/crm/v3/objects/calls?properties=hs_call_title,hs_call_status'",
        "Ctrl-C stops everything.",
        "",
    ]
    typer.echo("\n".join(lines))


@app.command()
def emit(
    call_id: Annotated[str, typer.Option(help="the call key in your telephony system")] = "demo-1",
    event_type: Annotated[
        str, typer.Option("--type", help="call.started … call.ended")
    ] = "call.ended",
    url: Annotated[str, typer.Option(help="ingress base URL")] = "http://127.0.0.1:8080",
    from_number: Annotated[str, typer.Option("--from")] = "+14155550142",
    to_number: Annotated[str, typer.Option("--to")] = "+18005550100",
    duration_ms: Annotated[int, typer.Option()] = 124000,
) -> None:
    """Send one signed generic event to the ingress (development helper)."""
    import orjson

    from handlers.generic import sign

    secret = os.environ.get("CALLBRIDGE_GENERIC_SECRET", DEV_SECRETS["generic"])
    body = orjson.dumps(
        {
            "event_id": f"{call_id}:{event_type}",
            "call_id": call_id,
            "type": event_type,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "direction": "inbound",
            "from": from_number,
            "to": to_number,
            "duration_ms": duration_ms,
            "title": f"Demo call {call_id}",
        }
    )
    ts = str(int(time.time()))
    response = httpx.post(
        url.rstrip("/") + "/webhooks/generic",
        content=body,
        headers={
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": sign(secret, ts, body),
        },
        timeout=10,
    )
    typer.echo(f"{response.status_code} {response.text}")
    raise typer.Exit(0 if response.status_code == 202 else 1)


def _start_broker(broker: LocalKafka) -> LocalKafka:
    """Start the local broker and wait until it answers; exit 2 with the reason if not."""
    from service.localkafka import KafkaLaunchError

    try:
        broker.start()
        asyncio.run(broker.wait_ready())
    except KafkaLaunchError as exc:
        broker.stop()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    return broker


def _reachable(bootstrap: str) -> bool:
    import socket

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _wait_http(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


def _mount_dlq() -> None:
    try:
        from service.dlq.cli import app as dlq_app
    except ImportError:  # the DLQ tools land separately; the rest of the CLI works without
        return
    app.add_typer(dlq_app, name="dlq", help="Inspect, replay and count dead letters.")


_mount_dlq()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
