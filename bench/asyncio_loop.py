"""``callbridge …`` on asyncio's own event loop instead of uvloop: the "before" column.

.venv/bin/python -m bench.asyncio_loop ingress --port 8080
"""

from __future__ import annotations

import service.runtime


def main() -> None:
    service.runtime.loop_factory = None  # asyncio.Runner's default: the stdlib loop
    from service.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
