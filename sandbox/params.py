"""Query parameters the way HubSpot reads them.

Lists come comma-separated (``properties=a,b``) or repeated (``properties=a&properties=b``);
booleans in any case (the official Python client sends ``archived=True``).
"""

from __future__ import annotations

from starlette.datastructures import QueryParams

from sandbox.errors import validation_error


def list_param(qp: QueryParams, name: str) -> list[str] | None:
    """The values of list parameter ``name``, or None when it is absent."""
    raw = qp.getlist(name)
    if not raw:
        return None
    out: list[str] = []
    for chunk in raw:
        for part in chunk.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def bool_param(qp: QueryParams, name: str, default: bool = False) -> bool:
    """Boolean parameter ``name`` (``true``/``false`` in any case)."""
    raw = qp.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise validation_error(
        f"Unable to process query parameter {name}={raw!r}: expected true or false",
        context={"parameter": [name]},
    )


def int_param(qp: QueryParams, name: str, default: int, low: int, high: int) -> int:
    """Integer parameter ``name`` within ``[low, high]``."""
    raw = qp.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise validation_error(
            f"Unable to process query parameter {name}={raw!r}: expected an integer",
            context={"parameter": [name]},
        ) from None
    if not low <= value <= high:
        raise validation_error(
            f"{name} must be between {low} and {high}, got {value}",
            context={"parameter": [name]},
        )
    return value


def str_param(qp: QueryParams, name: str) -> str | None:
    """String parameter ``name``, None when absent or empty."""
    raw = qp.get(name)
    return raw if raw else None
