"""structlog set-up: JSON lines rendered with orjson in production, console on a terminal.

Secrets never reach a log line: ``Settings`` holds them as ``SecretStr``, and the
``redact`` processor masks any key that names a secret, as a second line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_SECRET_WORDS = ("token", "secret", "password", "authorization", "signature")


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values whose key names a secret (``hubspot_token``, ``authorization``, …)."""
    for key in list(event_dict):
        if any(word in key.lower() for word in _SECRET_WORDS) and event_dict[key] is not None:
            event_dict[key] = "***"
    return event_dict


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog (and the stdlib root logger, for libraries) once per process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any
    if use_json:
        shared.append(structlog.processors.format_exc_info)
        logger_factory: Any = structlog.BytesLoggerFactory(sys.stderr.buffer)
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer()
        logger_factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
