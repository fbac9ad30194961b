"""The ingress's ceiling: a bare Starlette endpoint that answers 202 and does no work.

Served exactly as ``callbridge ingress`` serves its app (the same uvicorn settings from
``service.runtime.make_server``, the same event loop), so the gap between the two is what
the ingress does per request: read the body, verify, normalize, produce, await the ack.

    .venv/bin/python -m bench.bare --port 8099
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.runtime import make_server, run, serve_until_stopped


async def accept(request: Request) -> Response:
    await request.body()
    return Response(b'{"accepted":1}', status_code=202, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b"ok")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = Starlette(
        routes=[
            Route("/webhooks/{provider}", accept, methods=["POST"]),
            Route("/readyz", ready),
        ]
    )
    run(serve_until_stopped([make_server(app, "127.0.0.1", args.port)], [], []))


if __name__ == "__main__":
    main()
