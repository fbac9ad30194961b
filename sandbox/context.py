"""What a handler gets besides the request: the sandbox, the object type, the operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from sandbox.state import Sandbox
from sandbox.store import TypeStore


@dataclass(slots=True)
class Op:
    """One API request in flight; handlers set ``batch_size`` for the stats."""

    sb: Sandbox
    name: str
    ts: TypeStore | None = None
    batch_size: int | None = None
    version: str = "v3"  # the API version of the path: "v3", "v4" or a date ("2026-03")

    @property
    def types(self) -> TypeStore:
        """The object type's store (only for handlers routed by object type)."""
        assert self.ts is not None
        return self.ts


Handler = Callable[[Request, Op], Awaitable[Response]]
