"""Kafka plumbing shared by the ingress, the writer and the DLQ tools (aiokafka)."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from service.config import Settings

log = structlog.get_logger()

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics callbridge uses. ``calls.ids`` is compacted and co-partitioned with
    ``calls.events`` (same partition count, same keys) so a writer owns both halves of a call."""
    n = settings.topic_partitions
    return [
        TopicSpec(settings.topic_events, n, {"retention.ms": str(WEEK_MS)}),
        TopicSpec(
            settings.topic_ids,
            n,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
        TopicSpec(settings.topic_dlq, 1, {"retention.ms": str(4 * WEEK_MS)}),
        TopicSpec(settings.topic_parked, 1, {"retention.ms": str(4 * WEEK_MS)}),
    ]


async def ensure_topics(settings: Settings) -> None:
    """Create missing topics (local/dev; in Kubernetes Strimzi ``KafkaTopic``s do this)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=1,
                topic_configs=spec.config,
            )
            for spec in topic_specs(settings)
            if spec.name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them concurrently
            log.info("topics_created", topics=[t.name for t in missing])
    finally:
        await admin.close()


def make_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """The idempotent producer: ``acks=all``; a send resolves only once the broker has it."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
        "metadata_max_age_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)
