"""Process runners: serve the ingress / writer under uvicorn with clean signal handling.

Every long-running command stops the same way: on SIGINT/SIGTERM stop taking work, finish
what is in flight within a deadline, commit, close (STYLE.md habit 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Literal

import uvicorn

if TYPE_CHECKING:
    from service.config import Settings

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
