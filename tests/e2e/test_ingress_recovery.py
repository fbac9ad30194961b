"""The ingress replaces a producer the broker no longer accepts (seen in the chaos run: after
a broker restart the idempotent producer stayed on OutOfOrderSequenceNumber, every webhook
got 503 while /readyz said ready)."""

from __future__ import annotations

import asyncio

import httpx

from service.config import Settings
from service.ingress import create_app
from tests.e2e.helpers import generic_event, post_generic
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.services import wait_until


async def test_a_dead_producer_is_replaced_and_webhooks_are_accepted_again(
    kafka: KafkaEnv, pipeline_settings: Settings
) -> None:
    """The producer under the ingress is closed: the next webhooks get 503, the link replaces
    the producer after RESET_AFTER failures, /readyz is 503 meanwhile, then 202 again; the
    events answered 202 are on the topic, the ones answered 503 are not."""
    settings = pipeline_settings.model_copy(
        update={"produce_timeout_s": 2.0, "public_url": "http://ingress"}
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ingress") as client,
    ):

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_until(ready, timeout_s=30)
        link = app.state.kafka
        assert link.producer is not None
        await link.producer.stop()  # every send now fails, as a fenced producer's do
        statuses = [
            (await post_generic(client, "", generic_event(f"dead-{n}"))).status_code
            for n in range(3)
        ]
        assert statuses == [503, 503, 503]
        accepted = None
        for n in range(60):
            response = await post_generic(client, "", generic_event(f"alive-{n}"))
            if response.status_code == 202:
                accepted = f"alive-{n}"
                break
            await asyncio.sleep(0.5)
        assert accepted is not None, "the ingress never recovered"
        assert (await client.get("/readyz")).status_code == 200
    keys = [r.key for r in await kafka.records(kafka.settings.topic_events)]
    assert f"generic:{accepted}".encode() in keys
    assert not [k for k in keys if k.startswith(b"generic:dead-")]
