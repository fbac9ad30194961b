"""Producing test events straight to ``calls.events`` (bypassing the ingress)."""

from __future__ import annotations

import asyncio

from service.config import Settings
from service.kafka import make_producer
from service.model import CallEvent, encode_event


async def produce_events(
    settings: Settings, events: list[CallEvent], raw: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Produce events in the given order (and raw key/value records), waiting for every ack.
    Keyed and headed as the ingress does (``service.ingress.kafkalink``): the key is
    ``e.portal_key`` (``provider:call_id`` in the ``default`` portal), the headers
    ``event_id``, ``provider`` and ``portal``."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topic_events,
                value=encode_event(e),
                key=e.portal_key.encode(),
                headers=[
                    ("event_id", e.event_id.encode()),
                    ("provider", e.provider.encode()),
                    ("portal", e.portal.encode()),
                ],
            )
            for e in events
        ]
        for key, value in raw or []:
            futures.append(await producer.send(settings.topic_events, value=value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
