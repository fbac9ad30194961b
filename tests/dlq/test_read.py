"""list, show and stats against a real broker, through the functions and through the CLI."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta

import orjson
from prometheus_client import REGISTRY

from service.deadletter import parse
from service.dlq import ops
from service.dlq.filters import Filters
from service.dlq.metrics import refresh_metrics
from service.dlq.replay import replay
from tests.dlq.helpers import NOW, Spec, cli, event_value, kafka_args, put_dead_letters, put_raw
from tests.fixtures.kafka import KafkaEnv

SPECS = [
    Spec("a1", age=timedelta(minutes=10)),
    Spec(
        "a2",
        category="OBJECT_NOT_FOUND",
        status=404,
        age=timedelta(hours=3),
        message="no such contact",
    ),
    Spec("a3", age=timedelta(days=2)),
    Spec("a4", category="INVALID_EVENT", status=None, age=timedelta(days=9)),
    Spec("a1", age=timedelta(minutes=1), attempt=2),
]


async def test_list_shows_every_dead_letter_with_its_headers(kafka: KafkaEnv, group: str) -> None:
    """list returns each dead letter in DLQ order with the contract's fields."""
    await put_dead_letters(kafka.settings, SPECS)
    rows = await ops.list_dead_letters(kafka.settings, Filters(), group=group)
    assert [(r.offset, r.key, r.category, r.http_status, r.attempt) for r in rows] == [
        (0, "generic:a1", "VALIDATION_ERROR", 207, 1),
        (1, "generic:a2", "OBJECT_NOT_FOUND", 404, 1),
        (2, "generic:a3", "VALIDATION_ERROR", 207, 1),
        (3, "generic:a4", "INVALID_EVENT", None, 1),
        (4, "generic:a1", "VALIDATION_ERROR", 207, 2),
    ]
    a2 = rows[1]
    assert a2.message == "no such contact"
    assert a2.failed_at == (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    assert (a2.original_topic, a2.original_offset, a2.stage) == (
        kafka.settings.topic_events,
        101,
        "hubspot",
    )
    assert all(r.pending for r in rows)


async def test_filters_select_exactly_the_intended_records(kafka: KafkaEnv, group: str) -> None:
    """Category, key, time window and limit each select exactly the matching dead letters."""
    await put_dead_letters(kafka.settings, SPECS)

    async def offsets(**kw: object) -> list[int]:
        f = Filters.parse(now=NOW, **kw)  # type: ignore[arg-type]
        return [r.offset for r in await ops.list_dead_letters(kafka.settings, f, group=group)]

    assert await offsets(categories=["validation_error"]) == [0, 2, 4]
    assert await offsets(categories=["OBJECT_NOT_FOUND", "INVALID_EVENT"]) == [1, 3]
    assert await offsets(keys=["generic:a1"]) == [0, 4]
    assert await offsets(since="1h") == [0, 4]
    assert await offsets(since="3d", until="1h") == [1, 2]
    assert await offsets(until="7d") == [3]
    assert await offsets(categories=["VALIDATION_ERROR"], since="1d") == [0, 4]
    assert await offsets(limit=2) == [0, 1]
    assert await offsets(keys=["generic:nope"]) == []


async def test_list_cli_table_and_json(kafka: KafkaEnv, group: str) -> None:
    """`dlq list` prints a table of the dead letters, and the same rows with --json."""
    await put_dead_letters(kafka.settings, SPECS)
    args = kafka_args(kafka.settings, group)
    table = await cli("list", "--category", "OBJECT_NOT_FOUND", *args)
    assert table.exit_code == 0, table.output
    for text in ("generic:a2", "OBJECT_NOT_FOUND", "404", "no such contact", "pending"):
        assert text in table.stdout
    assert "generic:a3" not in table.stdout
    assert "1 dead letter (1 pending)" in table.stdout
    js = await cli("list", "--json", "--key", "generic:a1", *args)
    assert js.exit_code == 0, js.output
    docs = orjson.loads(js.stdout)
    assert [(d["offset"], d["attempt"], d["category"]) for d in docs] == [
        (0, 1, "VALIDATION_ERROR"),
        (4, 2, "VALIDATION_ERROR"),
    ]


async def test_list_matching_nothing_says_so(kafka: KafkaEnv, group: str) -> None:
    """A list that matches nothing says "no dead letters match" and exits 0 ([] in JSON)."""
    await put_dead_letters(kafka.settings, SPECS[:1])
    args = kafka_args(kafka.settings, group)
    result = await cli("list", "--category", "RATE_LIMIT", *args)
    assert (result.exit_code, result.stdout.strip()) == (0, "no dead letters match")
    result = await cli("list", "--json", "--since", "1s", *args)
    assert (result.exit_code, orjson.loads(result.stdout)) == (0, [])


async def test_show_offset_prints_headers_and_payload(kafka: KafkaEnv, group: str) -> None:
    """`dlq show OFFSET` prints every header and the original payload; --json has both."""
    await put_dead_letters(kafka.settings, SPECS)
    args = kafka_args(kafka.settings, group)
    result = await cli("show", "1", *args)
    assert result.exit_code == 0, result.output
    for text in (
        "dlq.error.category",
        "OBJECT_NOT_FOUND",
        "dlq.failed_at",
        "event_id",
        "a2:1",
        "call a2",
    ):
        assert text in result.stdout
    js = await cli("show", "1", "--json", *args)
    (doc,) = orjson.loads(js.stdout)
    assert doc["payload"] == orjson.loads(event_value("a2"))
    headers = [(k, v.encode()) for k, v in doc["headers"]]
    assert parse(headers).category == "OBJECT_NOT_FOUND"
    assert doc["dead_letter"]["http_status"] == 404


async def test_show_key_lists_every_dead_letter_of_the_call(kafka: KafkaEnv, group: str) -> None:
    """`dlq show --key K` shows each dead letter of that call."""
    await put_dead_letters(kafka.settings, SPECS)
    found = await ops.show_dead_letters(kafka.settings, key="generic:a1", group=group)
    assert [(s.offset, s.row.attempt if s.row else None) for s in found] == [(0, 1), (4, 2)]
    result = await cli("show", "--key", "generic:a1", *kafka_args(kafka.settings, group))
    assert result.exit_code == 0
    assert "dead letter 0/0" in result.stdout and "dead letter 0/4" in result.stdout


async def test_show_missing_offset_exits_1(kafka: KafkaEnv, group: str) -> None:
    """show of an offset or key that holds no dead letter exits 1 with a one-line message."""
    await put_dead_letters(kafka.settings, SPECS[:2])
    args = kafka_args(kafka.settings, group)
    result = await cli("show", "7", *args)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == f"error: no dead letter at offset 7 (partition 0) in {kafka.settings.topic_dlq}"
    )
    result = await cli("show", "--key", "generic:zz", *args)
    assert result.exit_code == 1 and "for key 'generic:zz'" in result.stderr
    result = await cli("show", *args)
    assert result.exit_code == 2 and "OFFSET or --key" in result.stderr


async def test_record_without_dlq_headers_is_shown_not_listed(kafka: KafkaEnv, group: str) -> None:
    """A foreign record in the DLQ is skipped by list, counted by stats, and shown raw."""
    await put_raw(kafka.settings, kafka.settings.topic_dlq, b"junk", key=b"k")
    await put_dead_letters(kafka.settings, SPECS[:1])
    assert [
        r.offset for r in await ops.list_dead_letters(kafka.settings, Filters(), group=group)
    ] == [1]
    figures = await ops.stats(kafka.settings, group=group)
    assert (figures.total, figures.unreadable) == (1, 1)
    result = await cli("show", "0", *kafka_args(kafka.settings, group))
    assert result.exit_code == 0 and "not a dead letter" in result.stdout


async def test_stats_by_category_and_age(kafka: KafkaEnv, group: str) -> None:
    """stats counts dead letters by category and age bucket, total and still pending."""
    await put_dead_letters(kafka.settings, SPECS)
    figures = await ops.stats(kafka.settings, now=NOW, group=group)
    assert {k: (c.pending, c.total) for k, c in figures.categories.items()} == {
        "VALIDATION_ERROR": (3, 3),
        "OBJECT_NOT_FOUND": (1, 1),
        "INVALID_EVENT": (1, 1),
    }
    assert {k: c.total for k, c in figures.ages.items()} == {
        "<1h": 2,
        "1h-6h": 1,
        "6h-24h": 0,
        "1d-7d": 1,
        ">=7d": 1,
    }
    assert (figures.total, figures.pending) == (5, 5)
    assert figures.oldest_pending_age_s == timedelta(days=9).total_seconds()
    result = await cli("stats", "--json", *kafka_args(kafka.settings, group))
    assert orjson.loads(result.stdout)["categories"]["OBJECT_NOT_FOUND"] == {
        "total": 1,
        "pending": 1,
    }
    table = await cli("stats", *kafka_args(kafka.settings, group))
    assert "5 dead letters" in table.stdout and "5 pending" in table.stdout


async def test_replayed_dead_letters_stop_counting_as_pending(kafka: KafkaEnv, group: str) -> None:
    """After a replay of one category, stats and list count only the rest as pending."""
    await put_dead_letters(kafka.settings, SPECS)
    await replay(
        kafka.settings,
        Filters.parse(now=NOW, categories=["INVALID_EVENT", "OBJECT_NOT_FOUND"]),
        group=group,
    )
    figures = await ops.stats(kafka.settings, now=NOW, group=group)
    assert figures.categories["OBJECT_NOT_FOUND"].pending == 0
    assert figures.categories["VALIDATION_ERROR"].pending == 3
    assert (figures.total, figures.pending) == (5, 3)
    assert figures.oldest_pending_age_s == timedelta(days=2).total_seconds()
    pending = await ops.list_dead_letters(kafka.settings, Filters(), pending_only=True, group=group)
    assert [r.offset for r in pending] == [0, 2, 4]


async def test_prometheus_gauges_follow_pending_dead_letters(kafka: KafkaEnv, group: str) -> None:
    """refresh_metrics sets callbridge_dlq_depth{category} and the oldest pending age; a
    category replayed away reads 0."""
    await put_dead_letters(kafka.settings, SPECS)
    await refresh_metrics(kafka.settings, now=NOW, group=group)

    def depth(category: str) -> float | None:
        return REGISTRY.get_sample_value("callbridge_dlq_depth", {"category": category})

    assert depth("VALIDATION_ERROR") == 3
    assert depth("INVALID_EVENT") == 1
    assert (
        REGISTRY.get_sample_value("callbridge_dlq_oldest_age_seconds")
        == timedelta(days=9).total_seconds()
    )
    await replay(kafka.settings, Filters(), group=group)
    await refresh_metrics(kafka.settings, now=NOW, group=group)
    assert depth("VALIDATION_ERROR") == 0
    assert depth("INVALID_EVENT") == 0
    assert REGISTRY.get_sample_value("callbridge_dlq_oldest_age_seconds") == 0


async def test_missing_topic_exits_2_with_one_line(kafka: KafkaEnv, group: str) -> None:
    """Every command on a topic that does not exist exits 2 with one line, no traceback."""
    args = ["--bootstrap", kafka.bootstrap, "--topic", "calls.dlq.nope", "--group", group]
    for command in (["list"], ["show", "0"], ["stats"], ["replay"]):
        result = await cli(*command, *args)
        assert result.exit_code == 2, (command, result.output)
        assert (
            result.stderr == f"error: topic 'calls.dlq.nope' does not exist on {kafka.bootstrap}\n"
        )
        assert "Traceback" not in result.output


async def test_unreachable_broker_exits_2_within_the_timeout(group: str) -> None:
    """A broker that cannot be reached fails each command within --timeout, exit 2."""
    for command in (["list"], ["stats"], ["replay", "--dry-run"]):
        started = time.monotonic()
        result = await cli(
            *command, "--bootstrap", "127.0.0.1:1", "--timeout", "3", "--group", group
        )
        assert time.monotonic() - started < 10
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: cannot reach Kafka at 127.0.0.1:1: ")
        assert len(result.stderr.strip().splitlines()) == 1


async def test_silent_broker_times_out_within_the_timeout(group: str) -> None:
    """A broker address that accepts connections but never answers fails within --timeout."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        result = await cli(
            "stats", "--bootstrap", f"127.0.0.1:{port}", "--timeout", "2", "--group", group
        )
        assert 1.5 < time.monotonic() - started < 8
    finally:
        server.close()
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot reach Kafka at 127.0.0.1:{port}: no answer in time\n"


async def test_cli_process_prints_one_line_for_an_unreachable_broker() -> None:
    """The real process prints exactly one line on stderr (no library log noise, no
    traceback) and exits 2."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.dlq",
        "list",
        "--bootstrap",
        "127.0.0.1:1",
        "--timeout",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert out == b""
    assert err.decode().startswith("error: cannot reach Kafka at 127.0.0.1:1: ")
    assert err.count(b"\n") == 1


async def test_bad_filter_value_exits_2(kafka: KafkaEnv, group: str) -> None:
    """An unreadable --since is a usage error (exit 2) naming the accepted forms."""
    result = await cli("list", "--since", "last tuesday", *kafka_args(kafka.settings, group))
    assert result.exit_code == 2
    assert "ISO-8601" in result.stderr
