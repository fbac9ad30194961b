"""Events and refs for the writer's pure tests."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from service.model import CallEvent
from service.writer.buffer import Ref
from service.writer.flush import FlushReport


def ev(
    seq: int,
    status: str | None = None,
    call: str = "c1",
    event_id: str | None = None,
    occurred_at: str = "2026-03-03T15:00:00+00:00",
    **props: str,
) -> CallEvent:
    properties = dict(props)
    if status:
        properties["hs_call_status"] = status
    properties.setdefault("hs_timestamp", f"2026-03-03T15:{seq % 60:02d}:00.000Z")
    return CallEvent(
        provider="generic",
        call_id=call,
        event_id=event_id or f"{call}:{seq}:{status}",
        type="call.updated",
        occurred_at=occurred_at,
        sequence=seq,
        properties=properties,
    )


def ref(offset: int, partition: int = 0, key: bytes = b"k") -> Ref:
    return Ref("calls.events", partition, offset, key, b"v")


def drive(coro: Coroutine[Any, Any, FlushReport]) -> FlushReport:
    """Run a flush over the fakes to its end (each fake yields once per call)."""
    while True:
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
