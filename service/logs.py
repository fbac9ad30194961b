"""structlog set-up: JSON lines rendered with orjson in production, console on a terminal.

Every line is structured, libraries' too: the stdlib loggers (uvicorn, aiokafka, …) go
through structlog's ``ProcessorFormatter`` with the same processors and renderer. A
request id bound with ``structlog.contextvars`` (the ingress binds one per webhook) appears
in every line of that request.

aiokafka logs a few retriable start-up conditions at ERROR (the group coordinator not yet
available, a broker not yet listening); ``KafkaNoise`` lowers those to INFO/WARNING: they
are not errors, and a real outage shows in readiness and in our own warnings.

Secrets never reach a log line: ``Settings`` holds them as ``SecretStr``, the ``redact``
processor masks any key that names a secret, and ``mask_secret_values`` masks the configured
secret values wherever they appear, as a last line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import orjson
import structlog

_SECRET_WORDS = ("token", "secret", "password", "authorization", "signature")
#: configured secret values masked in every line (see ``mask_secret_values``).
_SECRET_VALUES: set[str] = set()
#: secrets shorter than this are not searched for (they would mask ordinary words).
_MIN_MASKED = 6
_HANDLER_NAME = "callbridge-structlog"


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values whose key names a secret (``hubspot_token``, ``authorization``, …)."""
    for key in list(event_dict):
        if any(word in key.lower() for word in _SECRET_WORDS) and event_dict[key] is not None:
            event_dict[key] = "***"
    return event_dict


def mask_secret_values(values: Iterable[str]) -> None:
    """Mask these values (configured secrets) wherever they appear in a log line."""
    _SECRET_VALUES.update(v for v in values if len(v) >= _MIN_MASKED)


def mask(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not _SECRET_VALUES:
        return event_dict
    for key, value in event_dict.items():
        if isinstance(value, str):
            for secret in _SECRET_VALUES:
                if secret in value:
                    value = value.replace(secret, "***")
            event_dict[key] = value
    return event_dict


class KafkaNoise(logging.Filter):
    """Lower aiokafka's retriable start-up ERRORs; drop them below the handler's level."""

    #: message prefix → level it really is
    LOWER = {
        "Group Coordinator Request failed": logging.INFO,
        "Unable connect to": logging.WARNING,
        "Unable to update metadata from": logging.WARNING,
    }

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("aiokafka") and record.levelno >= logging.ERROR:
            message = str(record.msg)
            for prefix, level in self.LOWER.items():
                if message.startswith(prefix):
                    record.levelno, record.levelname = level, logging.getLevelName(level)
        return record.levelno >= self.threshold


def _json_str(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=repr).decode()


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger (libraries) once per process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
        mask,
    ]
    renderer: Any
    stdlib_renderer: Any
    if use_json:
        shared.append(structlog.processors.format_exc_info)
        logger_factory: Any = structlog.BytesLoggerFactory(sys.stderr.buffer)
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        stdlib_renderer = structlog.processors.JSONRenderer(serializer=_json_str)
    else:
        renderer = stdlib_renderer = structlog.dev.ConsoleRenderer()
        logger_factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    library_level = max(numeric, logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                stdlib_renderer,
            ],
        )
    )
    handler.addFilter(KafkaNoise(library_level))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)  # ours, from an earlier call
    root.addHandler(handler)
    # aiokafka's ERRORs must reach the filter to be lowered; the handler drops the rest
    root.setLevel(min(library_level, logging.ERROR))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
        lib.setLevel(logging.NOTSET)
