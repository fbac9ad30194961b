"""The writer's shell under faults that stalled or crash-looped the old one (issue 11):
a calls.ids value that is not a record, a refused token, and the lag it reports."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from service.kafka import make_producer
from service.writer.kafka import Outgoing, WriterProducer
from service.writer.ports import StoreUnavailable
from tests.e2e.helpers import all_calls
from tests.e2e.kafkaio import produce_events
from tests.e2e.test_writer import PROPS, committed_offsets, event
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.services import wait_until


async def test_an_undecodable_ids_value_is_skipped_and_counted_not_a_stall(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """A calls.ids value that is not a record (on every partition) is skipped and counted
    while loading; the partitions are consumed and their calls written."""
    producer = make_producer(kafka.settings)
    await producer.start()
    try:
        for partition in range(3):
            await producer.send_and_wait(
                kafka.settings.topic_ids, b"\xffnot json", key=b"generic:junk", partition=partition
            )
    finally:
        await producer.stop()
    before = _metric("callbridge_writer_ids_undecodable_total")
    await produce_events(kafka.settings, [event(i, "call.ended", timedelta()) for i in range(30)])
    await start_writer()

    async def written() -> bool:
        return len(all_calls(sandbox, PROPS)) == 30

    await wait_until(written, timeout_s=60)
    assert _metric("callbridge_writer_ids_undecodable_total") - before == 3


async def test_a_refused_token_pauses_marks_unready_and_dead_letters_nothing(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """401 from HubSpot: writing pauses, /readyz answers 503 and the auth metric is 1; no call
    is dead-lettered and no offset committed, so nothing is lost for a token fix."""
    settings = pipeline_settings.model_copy(update={"hubspot_token": SecretStr("revoked")})
    await produce_events(kafka.settings, [event(i, "call.ended", timedelta()) for i in range(10)])
    handle = await start_writer(settings)
    transport = httpx.ASGITransport(app=handle.writer.health_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://writer") as web:

        async def unready() -> bool:
            return (await web.get("/readyz")).status_code == 503

        await wait_until(unready, timeout_s=60)
        body = (await web.get("/readyz")).json()
    assert body["paused"] == "auth"
    assert _metric("callbridge_writer_hubspot_auth_failed") == 1
    await handle.stop()
    assert await kafka.records(kafka.settings.topic_dlq) == []
    assert sum((await committed_offsets(kafka, settings.writer_group)).values()) == 0
    assert all_calls(sandbox, PROPS) == []


async def test_the_lag_metric_is_log_end_minus_committed(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """While HubSpot refuses every write the writer commits nothing: the lag gauge shows the
    20 waiting records (it counted in-memory records before, and read 0)."""
    sandbox.faults(error_rate=1.0, error_status=503, operations=["batchCreateCalls"])
    await produce_events(kafka.settings, [event(i, "call.ended", timedelta()) for i in range(20)])
    settings = pipeline_settings.model_copy(update={"writer_lag_interval_s": 0.5})
    await start_writer(settings)

    async def lag_shows_them() -> bool:
        text = generate_latest().decode()
        lags = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("callbridge_writer_consumer_lag{")
        ]
        return sum(lags) == 20

    await wait_until(lag_shows_them, timeout_s=60)
    sandbox.clear_faults()


def _metric(name: str) -> float:
    for line in generate_latest().decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_compressed_batches_of_every_codec_are_written(
    kafka: KafkaEnv, sandbox: SandboxHandle, start_writer, pipeline_settings
) -> None:
    """Events produced lz4- and zstd-compressed are consumed and written (the writer exited
    with UnsupportedCodecError on an lz4 batch: any producer using lz4 stopped it)."""
    from service.model import encode_event

    for n, codec in enumerate(("lz4", "zstd", "snappy")):
        producer = make_producer(kafka.settings, compression_type=codec)
        await producer.start()
        try:
            for i in range(10):
                e = event(n * 10 + i, "call.ended", timedelta())
                await producer.send_and_wait(
                    kafka.settings.topic_events, encode_event(e), key=e.key.encode()
                )
        finally:
            await producer.stop()
    await start_writer()

    async def written() -> bool:
        return len(all_calls(sandbox, PROPS)) == 30

    await wait_until(written, timeout_s=60)


async def test_a_producer_that_met_a_fatal_error_is_replaced_and_the_next_send_works(
    kafka: KafkaEnv,
) -> None:
    """The writer's producer after a non-retriable error (an idempotent producer whose
    sequence the restarted broker no longer knows raises OutOfOrderSequenceNumber forever;
    an oversized record raises MessageSizeTooLarge the same way): the send says
    ``StoreUnavailable`` (the flush settles nothing), the producer is replaced, and the
    next send is written."""
    producer = WriterProducer(kafka.settings)
    topic = kafka.settings.topic_ids
    try:
        with pytest.raises(StoreUnavailable, match="MessageSizeTooLarge"):
            await producer.send_all([Outgoing(topic, b"x" * 2_000_000, b"big", 0)])
        assert producer.replaced == 1
        await producer.send_all([Outgoing(topic, b"{}", b"generic:after", 0)])
    finally:
        await producer.stop()
    assert [r.key for r in await kafka.records(topic)] == [b"generic:after"]
