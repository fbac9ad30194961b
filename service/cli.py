"""``callbridge``: the one command line for every process and operator tool."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
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
    from service.portals import Portal

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
    logs.mask_secret_values(
        secret for provider in PROVIDER_SECRETS for secret in settings.provider_secrets(provider)
    )
    logs.mask_secret_values([settings.hubspot_token.get_secret_value()])
    return settings


@app.command()
def ingress(
    host: Annotated[str | None, typer.Option(help="interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="webhook port (default 8080)")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="port for /metrics, /healthz, /readyz (default 9101)"),
    ] = None,
) -> None:
    """Serve provider webhooks (POST /webhooks/{provider} and /webhooks/{provider}/{portal},
    /healthz, /readyz, /openapi.json) and, on the metrics port, /metrics, /healthz, /readyz."""
    from service.ingress import ConfigError
    from service.runtime import make_ingress_servers, serve_until_stopped
    from service.runtime import run as run_on_loop

    s = _settings(ingress_host=host, ingress_port=port, ingress_metrics_port=metrics_port)
    try:
        servers = make_ingress_servers(s)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    log.info(
        "ingress_listening",
        url=f"http://{s.ingress_host}:{s.ingress_port}",
        metrics=f"http://{s.ingress_host}:{s.ingress_metrics_port}/metrics",
    )
    run_on_loop(serve_until_stopped(servers, [], []))


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
        list[str] | None,
        typer.Option(help="accepted Bearer token, each its own portal (repeatable)"),
    ] = None,
    rate_limit: Annotated[
        str, typer.Option(help="requests per rolling 10 s per token: 190 or 190/10s")
    ] = "190",
    search_rate: Annotated[int, typer.Option(help="search requests per second per token")] = 5,
    daily_limit: Annotated[int | None, typer.Option(help="requests per day per token")] = None,
    data: Annotated[
        Path | None, typer.Option(help="JSON file to persist state across restarts")
    ] = None,
    oauth_app: Annotated[
        list[str] | None,
        typer.Option(
            help="an OAuth app installed in the portal of PORTAL_TOKEN (a --token), "
            "CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN:PORTAL_TOKEN (repeatable)"
        ),
    ] = None,
    oauth_token_lifetime: Annotated[
        float, typer.Option(help="seconds an issued OAuth access token is valid (HubSpot: 1800)")
    ] = 1800.0,
    oauth_rotate: Annotated[
        bool, typer.Option(help="issue a new refresh token on every refresh")
    ] = False,
    portals_file: Annotated[
        Path | None,
        typer.Option(
            help="a callbridge portals file: every portal in it gets its sandbox portal "
            "(its token, or its OAuth app with a made-up portal token)"
        ),
    ] = None,
) -> None:
    """Serve the local HubSpot Calls API emulator (the default HubSpot target)."""
    from sandbox.__main__ import rate
    from sandbox.config import SandboxConfig
    from sandbox.oauth import AppSpec
    from sandbox.server import serve
    from service.runtime import portals_sandbox_args

    logs.configure()
    try:
        per_10s = rate(rate_limit)
    except argparse.ArgumentTypeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rate-limit") from exc
    if oauth_token_lifetime <= 0:
        raise typer.BadParameter("must be positive", param_hint="--oauth-token-lifetime")
    tokens, apps_text = list(token or []), list(oauth_app or [])
    if portals_file is not None:
        try:
            more_tokens, more_apps = portals_sandbox_args(portals_file)
        except ValueError as exc:  # PortalsFileError
            raise typer.BadParameter(str(exc), param_hint="--portals-file") from exc
        tokens += [t for t in more_tokens if t not in tokens]
        apps_text += more_apps
    tokens = tokens or ["sandbox-token"]
    apps: list[AppSpec] = []
    for text in apps_text:
        try:
            spec = AppSpec.parse(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--oauth-app") from exc
        if spec.portal_token not in tokens:
            raise typer.BadParameter(
                f"names portal token {spec.portal_token!r}, which is no --token",
                param_hint="--oauth-app",
            )
        apps.append(spec)
    config = SandboxConfig(
        tokens=tokens,
        rate_limit=per_10s,
        search_rate=search_rate,
        daily_limit=daily_limit,
        data_file=data,
        oauth_apps=apps,
        oauth_token_lifetime_s=oauth_token_lifetime,
        oauth_rotate_refresh_tokens=oauth_rotate,
    )
    log.info("sandbox_listening", url=f"http://{host}:{port}", portals=len(tokens))
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
    _stop_on_sigterm()
    broker = LocalKafka(data_dir=data_dir, port=port, controller_port=controller_port)
    try:
        _start_broker(broker)
        typer.echo(f"Apache Kafka {KAFKA_VERSION} ready on {broker.bootstrap} (Ctrl-C stops it)")
        while broker.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()


def _stop_on_sigterm() -> None:
    """SIGTERM stops like Ctrl-C: the ``finally`` that stops the broker runs (the broker also
    gets a death signal from the kernel should this process be SIGKILLed)."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


DEV_SECRETS = {provider: f"dev-{provider}-secret" for provider in PROVIDER_SECRETS}


@app.command()
def run(
    data_dir: Annotated[
        Path, typer.Option(help="where the local broker keeps its data")
    ] = DEFAULT_DATA / "kafka",
    sandbox_port: Annotated[
        int,
        typer.Option(
            help="the sandbox's port: started when CALLBRIDGE_HUBSPOT_URL is "
            "http://127.0.0.1:<this port>"
        ),
    ] = 8090,
) -> None:
    """Everything for local use: Kafka broker, sandbox, ingress (8080) and writer; Ctrl-C stops all.

    With CALLBRIDGE_PORTALS_FILE the sandbox gets one portal per portal in the file, every
    portal is set up (``hubspot setup``) and the banner lists each portal's webhook URLs."""
    from service.localkafka import LocalKafka

    for provider, attr in PROVIDER_SECRETS.items():
        os.environ.setdefault(f"CALLBRIDGE_{attr.upper()}", DEV_SECRETS[provider])
    # Twilio signs the URL it calls: locally that is the ingress itself
    os.environ.setdefault(
        "CALLBRIDGE_PUBLIC_URL",
        "http://{}:{}".format(
            os.environ.get("CALLBRIDGE_INGRESS_HOST", "127.0.0.1"),
            os.environ.get("CALLBRIDGE_INGRESS_PORT", "8080"),
        ),
    )
    s = _settings()
    portals = _portals_or_exit(s)
    broker: LocalKafka | None = None
    _stop_on_sigterm()  # until the services take over SIGTERM: the broker is stopped too
    if not _reachable(s.kafka_bootstrap):
        if s.kafka_bootstrap != "127.0.0.1:9092":
            typer.echo(
                f"error: CALLBRIDGE_KAFKA_BOOTSTRAP={s.kafka_bootstrap} is not reachable", err=True
            )
            raise typer.Exit(2)
        broker = LocalKafka(data_dir=data_dir)
        try:
            _start_broker(broker)
        except KeyboardInterrupt:
            broker.stop()
            raise typer.Exit(130) from None
    else:
        typer.echo(_foreign_broker_notice(s.kafka_bootstrap), err=True)
    sandbox_proc = None
    if s.hubspot_url.rstrip("/") == f"http://127.0.0.1:{sandbox_port}":
        from service.runtime import sandbox_command

        # persisted next to the broker's data: the writer's calls.ids records survive a
        # restart, so must the HubSpot records they point at (a portals file's sandbox
        # keeps its own file: its first portal is not the single-portal default)
        data_file = data_dir.parent / (
            "sandbox.json" if s.portals_file is None else "sandbox-portals.json"
        )
        sandbox_proc = subprocess.Popen(  # noqa: S603
            sandbox_command(s, portals, data_file, port=sandbox_port)
        )
        _wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats")
        # idempotent creates by callbridge_call_key, in every portal
        if s.portals_file is None:
            asyncio.run(_set_up_portal(s))
        else:
            lines, failed = asyncio.run(_set_up_portals(s, portals))
            for line in lines:
                typer.echo(line)
            if failed:
                typer.echo(f"warning: hubspot setup failed in {', '.join(failed)}", err=True)
    _banner(
        s,
        started_kafka=broker is not None,
        portals=portals if s.portals_file is not None else None,
        sandbox=sandbox_proc is not None,
    )
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


async def _set_up_portal(s: Settings) -> None:
    """``callbridge hubspot setup`` against the local sandbox (idempotent)."""
    from service.hubspot.setup import ensure_call_key_property
    from service.wiring import hubspot_client

    async with hubspot_client(s, deadline_s=15.0) as hs:
        result = await ensure_call_key_property(hs)
    for line in result.lines():
        typer.echo(line)


async def _run_services(s: Settings) -> None:
    from service.runtime import make_ingress_servers, make_server, serve_until_stopped
    from service.writer import Writer

    w = Writer(s)
    servers = [
        *make_ingress_servers(s),
        make_server(w.health_app(), "127.0.0.1", s.writer_health_port),
    ]
    await serve_until_stopped(servers, [w.run], [w.stop])


def _portals_or_exit(s: Settings) -> list[Portal]:
    """The portals (``CALLBRIDGE_PORTALS_FILE``, or the default one); exit 2 if invalid."""
    from service.portals import PortalsFileError, load_portals

    try:
        return load_portals(s)
    except PortalsFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _banner(
    s: Settings,
    *,
    started_kafka: bool,
    portals: list[Portal] | None = None,
    sandbox: bool = True,
) -> None:
    lines = [
        "",
        "callbridge is running:",
        f"  kafka     {s.kafka_bootstrap}"
        + (
            " (local broker started by this command; stops with it)"
            if started_kafka
            else " (NOT started by this command: a broker that was already running)"
        ),
        f"  hubspot   {s.hubspot_url}",
        f"  ingress   http://{s.ingress_host}:{s.ingress_port}/webhooks/<provider>",
        f"  metrics   http://{s.ingress_host}:{s.ingress_metrics_port}/metrics (ingress)",
        f"  writer    http://127.0.0.1:{s.writer_health_port}/healthz",
        "  secrets (development):",
    ]
    for provider in PROVIDER_SECRETS:
        lines.append(f"    {provider:<12} {s.provider_secret(provider)}")
    if portals is not None:
        from service.runtime import portal_banner

        lines += portal_banner(s, portals, sandbox=sandbox)
        lines.append("  each portal's URLs verify with that portal's secrets in the portals file")
    else:
        lines += [
            "  try:      .venv/bin/callbridge emit --call-id demo-1",
            "  then:     curl -s -H 'authorization: Bearer sandbox-token' "
            "'http://127.0.0.1:8090/crm/v3/objects/calls?properties=hs_call_title,hs_call_status'",
        ]
    lines += ["Ctrl-C stops everything.", ""]
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


def _foreign_broker_notice(bootstrap: str) -> str:
    """What ``run`` says when something already listens on the broker address."""
    if bootstrap == "127.0.0.1:9092":
        return (
            f"note: a Kafka broker is already listening on {bootstrap}; callbridge run uses "
            "it and did NOT start it (it may be an earlier run's, with that run's data). "
            "Stop it to get a broker of this run, or set CALLBRIDGE_KAFKA_BOOTSTRAP."
        )
    return f"note: using the Kafka broker at {bootstrap} (CALLBRIDGE_KAFKA_BOOTSTRAP); not started here"


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


hubspot_app = typer.Typer(
    help="Set up the HubSpot portal callbridge writes to.", no_args_is_help=True
)
app.add_typer(hubspot_app, name="hubspot")


@hubspot_app.command("setup")
def hubspot_setup(
    portal: Annotated[
        str | None,
        typer.Option(
            help="set up only this portal of CALLBRIDGE_PORTALS_FILE (default: every portal)"
        ),
    ] = None,
) -> None:
    """Create (or find) the unique call property callbridge_call_key; idempotent.

    Without CALLBRIDGE_PORTALS_FILE: the one portal of CALLBRIDGE_HUBSPOT_URL and
    CALLBRIDGE_HUBSPOT_TOKEN (the sandbox by default). With it: every portal in the file,
    or the one --portal names, each with its own token or OAuth grant and API version,
    one line per portal ("acme: created ..."). Exit 0 when the property is there (in every
    portal set up); 1 with a one-line reason when HubSpot refused (401 token, 403 scope,
    OAuth refresh refused, ...); 2 on a usage error (an unknown --portal, a bad portals
    file).
    """
    from service.hubspot import HubSpotError
    from service.hubspot.setup import SetupError, ensure_call_key_property
    from service.portals import PortalsFileError, load_portals
    from service.wiring import hubspot_client

    s = _settings()
    logs.configure("ERROR", s.log_format)  # the outcome is printed; requests are noise here
    try:
        portals = load_portals(s)
    except PortalsFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if portal is not None:
        chosen = [p for p in portals if p.id == portal]
        if not chosen:
            known = ", ".join(p.id for p in portals)
            typer.echo(f"error: unknown portal {portal!r}; known portals: {known}", err=True)
            raise typer.Exit(2)
        portals = chosen
    if s.portals_file is not None:
        lines, failed = asyncio.run(_set_up_portals(s, portals))
        for line in lines:
            typer.echo(line)
        if failed:
            noun = "portal" if len(portals) == 1 else "portals"
            typer.echo(
                f"error: {len(failed)} of {len(portals)} {noun} not set up: {', '.join(failed)}",
                err=True,
            )
            raise typer.Exit(1)
        return

    async def main() -> list[str]:
        async with hubspot_client(s, deadline_s=15.0) as hs:
            return (await ensure_call_key_property(hs)).lines()

    try:
        lines = asyncio.run(main())
    except SetupError as exc:
        hint = ""
        if exc.status in (401, 403):
            hint = " (check CALLBRIDGE_HUBSPOT_TOKEN and the private app's scopes)"
        typer.echo(f"error: {s.hubspot_url}: {exc}{hint}", err=True)
        raise typer.Exit(1) from exc
    except HubSpotError as exc:  # no answer at all (connection refused, timeouts)
        typer.echo(f"error: {s.hubspot_url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in lines:
        typer.echo(line)


async def _set_up_portals(s: Settings, portals: list[Portal]) -> tuple[list[str], list[str]]:
    """``hubspot setup`` in each of ``portals`` at once: one line per portal (in order) and
    the ids of the portals that failed."""
    from service.hubspot.setup import set_up_portals
    from service.portals import secret_values
    from service.wiring import portal_client, refresh_token_store

    logs.mask_secret_values(secret_values(portals))
    store = refresh_token_store(s)
    clients = {p.id: portal_client(s, p, store=store, deadline_s=15.0) for p in portals}
    try:
        outcomes = await set_up_portals(clients)
    finally:
        await asyncio.gather(*(hs.aclose() for hs in clients.values()))
    return [o.line() for o in outcomes], [o.portal for o in outcomes if not o.ok]


def _mount_dlq() -> None:
    try:
        from service.dlq.cli import app as dlq_app
    except ImportError:  # the DLQ tools land separately; the rest of the CLI works without
        return
    app.add_typer(dlq_app, name="dlq", help="Inspect, replay and count dead letters.")


_mount_dlq()


portals_app = typer.Typer(
    help="The HubSpot portals this deployment serves (CALLBRIDGE_PORTALS_FILE).",
    no_args_is_help=True,
)
app.add_typer(portals_app, name="portals")


@portals_app.command("list")
def portals_list(
    writer_url: Annotated[
        str | None,
        typer.Option(
            help="the writer's health port (default http://127.0.0.1:"
            "{CALLBRIDGE_WRITER_HEALTH_PORT})"
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Each portal with the writer's view of it: ready, paused and why, budget used, lag.

    Exit 0 when the writer answered; 1 when it could not be reached (every portal is then
    listed as "unknown (writer unreachable)"); 2 when the portals file is invalid.
    """
    import orjson

    from service.portals import PortalsFileError, load_portals
    from service.writer.status import fetch, table

    s = _settings()
    try:
        portals = load_portals(s)
    except PortalsFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    url = writer_url or f"http://127.0.0.1:{s.writer_health_port}"
    status = asyncio.run(fetch(portals, url))
    if json_out:
        typer.echo(orjson.dumps(status.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(table(status))
    if not status.reachable:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
