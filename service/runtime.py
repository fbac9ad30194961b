"""Process runners: serve the ingress / writer under uvicorn with clean signal handling.

Every long-running command stops the same way: on SIGINT/SIGTERM stop taking work, finish
what is in flight within a deadline, commit, close (STYLE.md habit 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import uvicorn

if TYPE_CHECKING:
    from service.config import Settings
    from service.portals import Portal

#: The event loop every server and the writer run on: uvloop where it is installed (it comes
#: with ``uvicorn[standard]``; `make bench` measures the ingress on both), else
#: asyncio's own. ``None`` means asyncio's default loop.
loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
try:
    import uvloop

    loop_factory = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
    loop_factory = None


class Server(uvicorn.Server):
    """uvicorn's server without its own signal capture: the caller owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(
    app: Any,
    host: str,
    port: int,
    *,
    log_level: str = "warning",
    limit_concurrency: int | None = None,
    backlog: int = 2048,
    proxy_headers: bool = True,
    lifespan: Literal["auto", "on", "off"] = "on",
) -> Server:
    """A uvicorn server whose loggers go through structlog (``log_config=None``: the
    handlers ``service.logs.configure`` installed stay). ``limit_concurrency`` caps
    connections + tasks (uvicorn answers 503 beyond it); ``proxy_headers=False`` keeps the
    peer address real (the ingress decides itself which proxies to trust)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        proxy_headers=proxy_headers,
        limit_concurrency=limit_concurrency,
        backlog=backlog,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        timeout_graceful_shutdown=10,
    )
    return Server(config)


def make_ingress_servers(
    settings: Settings, clock: Callable[[], float] | None = None
) -> list[Server]:
    """The ingress's two servers: the webhook port (``ingress_port``, bounded concurrency
    and backlog, peer addresses as received) and the metrics port (``ingress_metrics_port``:
    /metrics, /healthz, /readyz). ``ConfigError`` when the settings cannot work."""
    from service.ingress import create_app, create_metrics_app

    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    return [
        make_server(
            app,
            settings.ingress_host,
            settings.ingress_port,
            limit_concurrency=settings.ingress_limit_concurrency,
            backlog=settings.ingress_backlog,
            proxy_headers=False,
        ),
        make_server(
            create_metrics_app(app),
            settings.ingress_host,
            settings.ingress_metrics_port,
            lifespan="off",
        ),
    ]


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)`` on :data:`loop_factory`'s loop (uvloop): what every long-running
    command uses, since calling ``Server.serve()`` ourselves bypasses uvicorn's loop setup."""
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)


def install_stop_handler(stop: Callable[[], None]) -> None:
    """Call ``stop`` once on the first SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


async def serve_until_stopped(
    servers: list[Server],
    workers: list[Callable[[], Coroutine[Any, Any, None]]],
    stops: list[Callable[[], None]],
) -> None:
    """Run uvicorn servers and worker coroutines until a signal, then stop them all."""

    def stop() -> None:
        for server in servers:
            server.should_exit = True
        for s in stops:
            s()

    install_stop_handler(stop)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    tasks += [asyncio.create_task(w()) for w in workers]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None:
            raise exc


# --- `callbridge run` / `make run` against the local sandbox ---------------------------------

#: where ``callbridge run`` serves the sandbox (``CALLBRIDGE_HUBSPOT_URL``'s default)
SANDBOX_PORT = 8090


def portals_sandbox_args(path: Path) -> tuple[list[str], list[str]]:
    """The sandbox portal tokens and ``--oauth-app`` specs (``client_id:client_secret:
    refresh_token:portal_token``) that give every portal of the portals file at ``path``
    its own sandbox portal (:func:`service.portals.sandbox_args`).
    Raises :class:`~service.portals.PortalsFileError`."""
    from service.portals import parse_portals_file, sandbox_args

    args = sandbox_args(parse_portals_file(path))
    tokens = [args[i + 1] for i in range(0, len(args), 2) if args[i] == "--token"]
    apps = [args[i + 1] for i in range(0, len(args), 2) if args[i] == "--oauth-app"]
    return tokens, apps


def sandbox_command(
    settings: Settings, portals: list[Portal], data_file: Path, *, port: int = SANDBOX_PORT
) -> list[str]:
    """The sandbox process ``callbridge run`` starts: with ``CALLBRIDGE_PORTALS_FILE``,
    every portal's token (an OAuth portal: its app and a made-up portal token); without,
    ``CALLBRIDGE_HUBSPOT_TOKEN``. State persists in ``data_file``."""
    from service.portals import sandbox_args

    if settings.portals_file is None:
        access = ["--token", settings.hubspot_token.get_secret_value()]
    else:
        access = sandbox_args(portals)
    return [
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        str(port),
        *access,
        "--data",
        str(data_file),
    ]


def sandbox_token(portal: Portal) -> str:
    """The Bearer token that reaches ``portal``'s state in a sandbox started by
    :func:`sandbox_command` (its token; an OAuth portal's made-up portal token)."""
    hs = portal.hubspot
    return hs.token.get_secret_value() if hs.token is not None else f"oauth-portal-{portal.id}"


def portal_banner(settings: Settings, portals: list[Portal], *, sandbox: bool) -> list[str]:
    """The portals part of ``callbridge run``'s banner: each portal's HubSpot access and
    API version, and its webhook URLs ``/webhooks/{provider}/{portal}`` (the providers
    it has secrets for); against the sandbox, the token that reads its records."""
    from service.hubspot.paths import ApiPaths

    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    lines = [f"  portals   {len(portals)} from {settings.portals_file}"]
    for p in portals:
        hs = p.hubspot
        access = "OAuth" if hs.oauth is not None else "token"
        lines.append(f"    {p.id}: api {hs.api_version}, {access}, {hs.rate} requests/10 s")
        if not p.enabled_providers:
            lines.append("      (no providers: give it providers in the portals file)")
        for provider in p.enabled_providers:
            lines.append(f"      {base}/webhooks/{provider}/{p.id}")
        if sandbox:
            calls = ApiPaths.of(hs.api_version).calls
            lines.append(
                f"      records: curl -s -H 'authorization: Bearer {sandbox_token(p)}' "
                f"'{settings.hubspot_url.rstrip('/')}{calls}?properties=hs_call_title'"
            )
    return lines
