"""The durable per-call records: the compacted ``calls.ids`` topic, served from an on-disk
map (``RecordStore``).

``calls.ids`` is keyed like ``calls.events`` (``CallEvent.portal_key``: ``provider:call_id``
in the ``default`` portal, so single-portal state stays valid, ``portal/provider:call_id``
in another) and co-partitioned
with it: a record goes to the partition number of its call's events, so the writer that
owns a partition of events loads exactly the records it needs. The topic is the truth;
a local SQLite file holds the owned partitions' records, so memory stays flat whatever
the retention (RSS does not grow with the number of calls), and remembers how far it has
read each partition, so a partition that comes back (a restart with the same state
directory, a rebalance) is read only from there.

A record untouched for ``retention_s`` is *compacted*, not dropped: its HubSpot id, status
and start time stay (tens of bytes), so a late event of an old call, whatever its own
timestamp, still updates the call's one record. A value that is not a record is skipped
and counted (``callbridge_writer_ids_undecodable_total``): it cannot stall a partition.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from service import metrics
from service.clock import Now
from service.kafkaread import read_to_end
from service.writer.kafka import Outgoing, WriterProducer
from service.writer.records import CallRecord, decode_record, encode_record

log = structlog.get_logger()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, part INTEGER, value BLOB);
CREATE INDEX IF NOT EXISTS records_part ON records (part);
CREATE TABLE IF NOT EXISTS progress (topic TEXT, part INTEGER, next INTEGER,
                                     PRIMARY KEY (topic, part));
"""


@dataclass(frozen=True)
class Loaded:
    partitions: tuple[int, ...]
    records: int
    undecodable: int
    compacted: int


class IdStore:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        producer: WriterProducer,
        *,
        path: Path,
        retention_s: float = float("inf"),
        wall: Now,
        stall_s: float = 30.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.producer = producer
        self.retention_s = retention_s
        self.wall = wall
        self.stall_s = stall_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")  # a cache of the topic: the topic is durable
        self.db.executescript(_SCHEMA)
        self.owned: set[int] = set()

    def close(self) -> None:
        self.db.close()

    def get(self, key: str) -> CallRecord | None:
        row = self.db.execute("SELECT part, value FROM records WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] not in self.owned:
            return None
        return decode_record(row[1])

    def __len__(self) -> int:
        marks = ",".join("?" * len(self.owned))
        query = f"SELECT count(*) FROM records WHERE part IN ({marks})"  # noqa: S608
        return int(self.db.execute(query, tuple(self.owned)).fetchone()[0])

    async def load(self, partitions: set[int]) -> Loaded:
        """Bring the records of ``partitions`` up to the topic's end, then own them.
        Raises (``TimeoutError``, ``KafkaError``) when the broker cannot serve the read:
        the caller retries."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            first = await consumer.beginning_offsets(tps)
            start = {}
            for tp in tps:
                done = self._progress(tp.partition)
                if done is None or done < first[tp]:  # nothing kept, or kept too little
                    self.db.execute("DELETE FROM records WHERE part = ?", (tp.partition,))
                    start[tp] = first[tp]
                else:
                    start[tp] = done
            records, bad = await self._read(consumer, tps, start)
        finally:
            await consumer.stop()
        self.owned |= partitions
        compacted = await self._compact(partitions)
        loaded = Loaded(tuple(sorted(partitions)), records, bad, compacted)
        log.info("idstore_loaded", **loaded.__dict__, kept=len(self))
        return loaded

    async def _read(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        start: dict[TopicPartition, int],
    ) -> tuple[int, int]:
        records = bad = 0
        rows: list[tuple[str, int, bytes | None]] = []
        nexts: dict[int, int] = {}
        async for rec in read_to_end(consumer, tps, start=start, stall_s=self.stall_s):
            nexts[rec.partition] = rec.offset + 1
            if rec.key is None:
                continue
            key = rec.key.decode("utf-8", "replace")
            if rec.value is not None:
                try:
                    decode_record(rec.value)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    bad += 1
                    metrics.IDS_UNDECODABLE.inc()
                    log.error("ids_record_undecodable", key=key[:200], error=str(exc)[:200])
                    continue
            rows.append((key, rec.partition, rec.value))
            records += 1
            if len(rows) >= 1000:
                self._apply(rows, nexts)
                rows = []
        self._apply(rows, nexts)
        end = await consumer.end_offsets(tps)
        self._apply([], {tp.partition: end[tp] for tp in tps})
        return records, bad

    def _apply(self, rows: list[tuple[str, int, bytes | None]], nexts: dict[int, int]) -> None:
        self.db.execute("BEGIN")
        try:
            for key, part, value in rows:
                if value is None:
                    self.db.execute("DELETE FROM records WHERE key = ?", (key,))
                else:
                    self.db.execute(
                        "INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (key, part, value)
                    )
            for part, nxt in nexts.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO progress VALUES (?, ?, ?)", (self.topic, part, nxt)
                )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _progress(self, partition: int) -> int | None:
        row = self.db.execute(
            "SELECT next FROM progress WHERE topic = ? AND part = ?", (self.topic, partition)
        ).fetchone()
        return None if row is None else int(row[0])

    async def _compact(self, partitions: set[int]) -> int:
        """Compact the records of ``partitions`` untouched for the retention window."""
        horizon = self.wall() - self.retention_s
        if horizon == float("-inf"):
            return 0
        marks = ",".join("?" * len(partitions))
        rows = self.db.execute(
            f"SELECT key, part, value FROM records WHERE part IN ({marks})",  # noqa: S608
            tuple(partitions),
        )
        old: list[tuple[str, int, CallRecord]] = []
        for key, part, value in rows:
            record = decode_record(value)
            touched = record.touched_at
            if touched is not None and touched < horizon and record != record.compacted():
                old.append((key, part, record.compacted()))
        for start in range(0, len(old), 1000):
            await self.put(old[start : start + 1000])
        return len(old)

    def forget(self, partitions: set[int]) -> None:
        """Stop serving these partitions (the on-disk rows stay, as a cache to resume)."""
        self.owned -= partitions

    async def put(self, items: Sequence[tuple[str, int, CallRecord]]) -> None:
        """Durably write records (broker acks awaited), then keep them locally.
        ``StoreUnavailable`` when Kafka cannot take them (nothing kept locally)."""
        if not items:
            return
        values = [(key, part, encode_record(record)) for key, part, record in items]
        await self.producer.send_all(
            [Outgoing(self.topic, value, key.encode(), part) for key, part, value in values]
        )
        self._apply([(k, p, v) for k, p, v in values], {})
