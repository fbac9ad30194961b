"""Running the sandbox under uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

from types import FrameType

import uvicorn

from sandbox.app import create_app
from sandbox.config import SandboxConfig


class _Server(uvicorn.Server):
    """uvicorn, but a signal ends a graceful shutdown with a normal return (exit status
    0) instead of re-raising the signal afterwards."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the sandbox, blocking until SIGINT/SIGTERM; in-flight requests finish, then
    the app's shutdown saves the state to ``config.data_file`` when one is set."""
    app = create_app(config)
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    server.run()
