"""Running the sandbox under uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import uvicorn

from sandbox.app import create_app
from sandbox.config import SandboxConfig


def serve(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the sandbox, blocking. uvicorn stops cleanly on SIGINT/SIGTERM; the app's
    shutdown saves the state to ``config.data_file`` when one is set."""
    app = create_app(config)
    server = uvicorn.Server(
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
