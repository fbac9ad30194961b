"""The DLQ tools' Kafka shell: connect within a deadline, read topic ranges, keep replay cursors.

Every failure to talk to Kafka becomes a ``DlqError`` whose message is one line an operator
can act on (the CLI prints it and exits 2): the broker cannot be reached within the
timeout, a topic does not exist, a read stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from service.config import Settings
from service.deadletter import Headers
from service.dlq.checkpoint import Checkpoint, Coverage, in_family
from service.kafkaread import read_to_end

DEFAULT_TIMEOUT_S: Final = 10.0
T = TypeVar("T")


class DlqError(Exception):
    """An operational failure, explained in one line (exit code 2 at the CLI)."""


class BrokerUnavailable(DlqError):
    pass


class TopicMissing(DlqError):
    pass


@dataclass(frozen=True)
class Record:
    """One record read from a topic, headers as produced."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")


@contextlib.contextmanager
def talking_to_kafka(bootstrap: str, what: str) -> Iterator[None]:
    """Turn Kafka and network failures into a ``BrokerUnavailable`` naming what failed."""
    try:
        yield
    except TimeoutError as exc:
        if what == "connecting":
            raise BrokerUnavailable(
                f"cannot reach Kafka at {bootstrap}: no answer in time"
            ) from exc
        raise BrokerUnavailable(f"Kafka at {bootstrap} did not answer in time ({what})") from exc
    except (KafkaError, OSError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        if what == "connecting":
            raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap}: {reason}") from exc
        raise BrokerUnavailable(f"Kafka at {bootstrap} failed while {what}: {reason}") from exc


async def retrying(call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """``call()`` again while Kafka answers with a retriable error (a coordinator still
    loading, a leader moving), until ``timeout_s``; then the last error stands."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                return await call()
            except KafkaError as exc:
                if not exc.retriable or loop.time() + 0.2 > deadline:
                    raise
            await asyncio.sleep(0.2)


class KafkaLink:
    """A reading consumer (no group) and an admin client on one bootstrap, with deadlines.

    ``async with KafkaLink(settings) as link:``; every call below raises ``DlqError``.
    """

    def __init__(self, settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.timeout_s = timeout_s
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=int(timeout_s * 1000)
        )
        self._topics: dict[str, list[int]] = {}

    async def __aenter__(self) -> KafkaLink:
        try:
            with talking_to_kafka(self.bootstrap, "connecting"):
                async with asyncio.timeout(self.timeout_s):
                    await self._consumer.start()
                    await self._admin.start()
                    described = await self._admin.describe_topics()
            self._topics = {
                str(t["topic"]): sorted(int(p["partition"]) for p in t["partitions"])
                for t in described
                if not t.get("error_code")
            }
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._consumer.stop()
        with contextlib.suppress(Exception):
            await self._admin.close()

    def require(self, *topics: str) -> None:
        """``TopicMissing`` for the first of ``topics`` the cluster does not have."""
        for topic in topics:
            if topic not in self._topics:
                raise TopicMissing(f"topic {topic!r} does not exist on {self.bootstrap}")

    def partitions(self, topic: str) -> list[int]:
        self.require(topic)
        return self._topics[topic]

    async def bounds(self, topic: str) -> tuple[dict[int, int], dict[int, int]]:
        """First and next-to-be-written offset of every partition of ``topic`` (not while a
        ``scan`` is running: it takes over the reading consumer)."""
        tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
        self._consumer.assign(tps)  # (an unassigned topic's offsets take a metadata detour)
        with talking_to_kafka(self.bootstrap, f"reading offsets of {topic}"):
            async with asyncio.timeout(self.timeout_s):
                begin = await self._consumer.beginning_offsets(tps)
                end = await self._consumer.end_offsets(tps)
        return {tp.partition: o for tp, o in begin.items()}, {
            tp.partition: o for tp, o in end.items()
        }

    async def scan(
        self, topic: str, partition: int, start: int, end: int
    ) -> AsyncGenerator[Record, None]:
        """Records of one partition with ``start <= offset < end``, in order. A read that makes
        no progress for ``timeout_s`` fails instead of hanging."""
        if start >= end:
            return
        tp = TopicPartition(topic, partition)
        with talking_to_kafka(self.bootstrap, f"reading {topic}"):
            records = read_to_end(
                self._consumer,
                [tp],
                start={tp: start},
                end={tp: end},
                stall_s=self.timeout_s,
                max_records=500,
            )
            async for rec in records:
                yield Record(
                    partition=partition,
                    offset=rec.offset,
                    timestamp_ms=rec.timestamp,
                    key=rec.key,
                    value=rec.value,
                    headers=[(k, bytes(v)) for k, v in rec.headers],
                )

    async def offset_at(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        """The first offset whose timestamp is at or after ``timestamp_ms`` (None: none yet)."""
        tp = TopicPartition(topic, partition)
        self._consumer.assign([tp])
        with talking_to_kafka(self.bootstrap, f"looking up a time in {topic}"):
            async with asyncio.timeout(self.timeout_s):
                found = await self._consumer.offsets_for_times({tp: max(0, timestamp_ms)})
        hit = found.get(tp)
        return None if hit is None else int(hit.offset)

    async def read_one(self, topic: str, partition: int, offset: int) -> Record | None:
        """The record at exactly ``offset`` (None if deleted, compacted away or not yet written)."""
        if partition not in self.partitions(topic):
            return None
        begin, end = await self.bounds(topic)
        if not begin[partition] <= offset < end[partition]:
            return None
        async for rec in self.scan(topic, partition, offset, offset + 1):
            return rec if rec.offset == offset else None
        return None

    async def checkpoints(self, group: str, topic: str) -> dict[int, Checkpoint]:
        """The commits of ``group`` on ``topic``'s partitions (partitions without one omitted)."""
        tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
        with talking_to_kafka(self.bootstrap, f"reading the offsets of group {group}"):
            offsets = await retrying(
                lambda: self._admin.list_consumer_group_offsets(group, partitions=tps),
                self.timeout_s,
            )
        return {
            tp.partition: Checkpoint.decode(om.offset, om.metadata or "")
            for tp, om in offsets.items()
            if tp.topic == topic and om.offset >= 0
        }

    async def coverage(self, base: str, topic: str, *, exclude: str | None = None) -> Coverage:
        """Every replay cursor of the ``base`` family on ``topic`` (but ``exclude``)."""
        with talking_to_kafka(self.bootstrap, "listing consumer groups"):
            listed = await retrying(self._admin.list_consumer_groups, self.timeout_s)
        groups = sorted({str(g[0]) for g in listed if in_family(str(g[0]), base)} - {exclude})
        found: dict[int, list[Checkpoint]] = {}
        for group in groups:
            for partition, checkpoint in (await self.checkpoints(group, topic)).items():
                found.setdefault(partition, []).append(checkpoint)
        return Coverage(found)


class Cursor:
    """The replay group's commits on the DLQ partitions (a consumer that never fetches)."""

    def __init__(
        self, settings: Settings, group: str, topic: str, partitions: list[int], timeout_s: float
    ) -> None:
        self.group = group
        self.topic = topic
        self.bootstrap = settings.kafka_bootstrap
        self.timeout_s = timeout_s
        self._tps = [TopicPartition(topic, p) for p in partitions]
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )

    async def start(self) -> None:
        try:
            with talking_to_kafka(self.bootstrap, f"joining group {self.group}"):
                async with asyncio.timeout(self.timeout_s):
                    await self._consumer.start()
                    self._consumer.assign(self._tps)
                    self._consumer.pause(*self._tps)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._consumer.stop()

    async def commit(self, partition: int, checkpoint: Checkpoint) -> None:
        tp = TopicPartition(self.topic, partition)
        with talking_to_kafka(self.bootstrap, f"committing the cursor of {self.group}"):
            offsets = {tp: (checkpoint.position, checkpoint.encode())}
            await retrying(lambda: self._consumer.commit(offsets), self.timeout_s)
