"""Dead letters made by hand (with the writer's own ``dlq_headers``) and ways to read them back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer, ConsumerRecord
from click.testing import Result
from typer.testing import CliRunner

from handlers.event import DEFAULT_PORTAL, portal_key
from service.config import Settings
from service.deadletter import Failure, dlq_headers
from service.dlq.cli import app
from service.model import CallEvent, encode_event
from tests.fixtures.kafka import KafkaEnv

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Spec:
    """One dead letter to put in the DLQ."""

    call: str
    category: str = "VALIDATION_ERROR"
    attempt: int = 1  # its dlq.attempt (the original record had attempt - 1)
    age: timedelta = timedelta(minutes=5)
    status: int | None = 207
    message: str = "Property values were not valid"
    portal: str = DEFAULT_PORTAL

    @property
    def key(self) -> str:
        """The Kafka key: ``generic:<call>``, qualified by a non-default portal."""
        return portal_key(self.portal, f"generic:{self.call}")


def event_value(call: str, seq: int = 1, portal: str = DEFAULT_PORTAL) -> bytes:
    event = CallEvent(
        provider="generic",
        call_id=call,
        event_id=f"{call}:{seq}",
        type="call.ended",
        occurred_at="2026-03-03T15:04:05Z",
        sequence=seq,
        properties={"hs_call_title": f"call {call}", "hs_call_status": "COMPLETED"},
        portal=portal,
    )
    return encode_event(event)


def original_headers(spec: Spec) -> list[tuple[str, bytes]]:
    headers = [("event_id", f"{spec.call}:1".encode()), ("provider", b"generic")]
    if spec.portal != DEFAULT_PORTAL:
        headers.append(("portal", spec.portal.encode()))
    if spec.attempt > 1:  # a record that was replayed before carries its count
        headers.append(("dlq.attempt", str(spec.attempt - 1).encode()))
    return headers


async def put_dead_letters(
    settings: Settings, specs: Sequence[Spec], *, now: datetime = NOW
) -> None:
    """Produce one dead letter per spec to the DLQ, as the writer would (in order)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i, spec in enumerate(specs):
            headers = dlq_headers(
                original_headers(spec),
                topic=settings.topic_events,
                partition=0,
                offset=100 + i,
                failure=Failure(
                    stage="hubspot",
                    operation="batchCreateCalls",
                    http_status=spec.status,
                    category=spec.category,
                    message=spec.message,
                    correlation_id=str(uuid.uuid4()),
                ),
                failed_at=now - spec.age,
                portal=spec.portal,
            )
            await producer.send_and_wait(
                settings.topic_dlq,
                value=event_value(spec.call, portal=spec.portal),
                key=spec.key.encode(),
                headers=headers,
            )
    finally:
        await producer.stop()


async def put_raw(settings: Settings, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def kafka_args(settings: Settings, group: str) -> list[str]:
    """CLI options pointing a command at the test's broker, DLQ topic and cursor group."""
    return [
        "--bootstrap",
        settings.kafka_bootstrap,
        "--topic",
        settings.topic_dlq,
        "--group",
        group,
    ]


def replay_args(settings: Settings) -> list[str]:
    return [
        "--events-topic",
        settings.topic_events,
        "--parked-topic",
        settings.topic_parked,
        "--max-attempts",
        str(settings.dlq_max_attempts),
    ]


async def cli(*args: str) -> Result:
    """Run ``callbridge dlq ARGS`` in a thread (the command runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def records(kafka: KafkaEnv, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic``; a generous deadline, as the shared cores may be busy."""
    return await kafka.records(topic, timeout_s=30)
