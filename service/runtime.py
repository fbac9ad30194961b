"""Process runners: serve the ingress / writer under uvicorn with clean signal handling.

Every long-running command stops the same way: on SIGINT/SIGTERM stop taking work, finish
what is in flight within a deadline, commit, close (STYLE.md habit 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn

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


def make_server(app: Any, host: str, port: int, *, log_level: str = "warning") -> Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return Server(config)


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
