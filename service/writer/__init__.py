"""The writer: ``calls.events`` → exactly one HubSpot call record per call.

- ``records``: the durable per-call record and the merge rules (pure);
- ``buffer``: calls pending a write, bounded by events and bytes (pure);
- ``core``: the exactly-once decisions — plan, resolve, settle (pure);
- ``ports``: the ``Protocol``s the flush talks to and the outcomes they answer;
- ``flush``: the interpreter running the core's decisions over the ports;
- ``hubspot``, ``kafka``, ``idstore``: the adapters (HubSpot, the DLQ, ``calls.ids``);
- ``shell``: the Kafka consumer-group member (poll, pause, commit, rebalance, fencing);
- ``health``: its health port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.writer.shell import Writer

__all__ = ["Writer"]


def __getattr__(name: str) -> Any:
    """``Writer`` is imported on first use, so the pure modules import no I/O library."""
    if name == "Writer":
        from service.writer.shell import Writer

        return Writer
    raise AttributeError(name)
