"""Kafka as the bench observes it, with confluent-kafka (librdkafka: fast, and not the
client the product uses): preload records, read end offsets and a group's commits."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int = 6) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    for f in futures.values():
        try:
            f.result(30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def preload(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes, list]]) -> int:
    """Produce ``(key, value, headers)`` records with ``acks=all``; returns how many."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "log_level": 3,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
        }
    )
    failed: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    n = 0
    for key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 10000 == 0:
            producer.poll(0)
    producer.flush(120)
    if failed:
        raise RuntimeError(f"{len(failed)} records not delivered: {failed[0]}")
    return n


def _consumer(bootstrap: str, group: str = "bench-observer") -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )


def partitions(bootstrap: str, topic: str, consumer: Consumer | None = None) -> list[int]:
    c = consumer or _consumer(bootstrap)
    try:
        meta = c.list_topics(topic, timeout=10)
        return sorted(meta.topics[topic].partitions)
    finally:
        if consumer is None:
            c.close()


def end_offsets(bootstrap: str, topic: str) -> int:
    """Records in ``topic``: the sum of its partitions' high watermarks."""
    c = _consumer(bootstrap)
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions(bootstrap, topic, c)
        )
    finally:
        c.close()


class GroupWatch:
    """A consumer group's committed offsets on a topic (how far the writer has settled)."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        self.consumer = _consumer(bootstrap, group)
        self.tps = [TopicPartition(topic, p) for p in partitions(bootstrap, topic, self.consumer)]

    def committed(self) -> int:
        try:
            got = self.consumer.committed(self.tps, timeout=5)
        except KafkaException:
            return -1
        return sum(max(0, tp.offset) for tp in got)

    def close(self) -> None:
        self.consumer.close()


def wait_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if partitions(bootstrap, topic):
                return
        except (KafkaException, KeyError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic} not found")


def read_timestamps(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0):
    """``{key: first CreateTime ms}`` of every record in ``topic`` (reads until ``expected``)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reader-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    out: dict[str, int] = {}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in partitions(bootstrap, topic, c)])
        seen = 0
        deadline = time.monotonic() + timeout_s
        while seen < expected and time.monotonic() < deadline:
            for msg in c.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                seen += 1
                key = (msg.key() or b"").decode()
                ts = msg.timestamp()[1]
                if key not in out or ts < out[key]:
                    out[key] = ts
    finally:
        c.close()
    return out
