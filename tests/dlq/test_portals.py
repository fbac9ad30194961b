"""``--portal`` on every DLQ command that selects dead letters, against a real broker:
list/show/stats/replay by ``dlq.portal``, replays landing back in their own portal, the
per-portal gauges; plus the pure selection and cursor rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from handlers.event import decode_event
from service.deadletter import PORTAL, DeadLetter, Failure, dlq_headers, header_map, parse
from service.dlq import ops
from service.dlq.checkpoint import Checkpoint, advance
from service.dlq.filters import Filters
from service.dlq.metrics import OTHER_PORTAL, portal_label, refresh_metrics
from service.dlq.replay import replay
from tests.dlq.helpers import (
    NOW,
    Spec,
    cli,
    event_value,
    kafka_args,
    put_dead_letters,
    records,
    replay_args,
)
from tests.fixtures.kafka import KafkaEnv

SPECS = [
    Spec("c1"),
    Spec("c1", portal="acme"),
    Spec("c2", portal="bravo", category="OBJECT_NOT_FOUND", status=404),
    Spec("c3", portal="acme", age=timedelta(hours=3)),
    Spec("c4", portal="bravo"),
]


def _dead(portal: str = "default", category: str = "VALIDATION_ERROR") -> DeadLetter:
    headers = dlq_headers(
        [],
        topic="calls.events",
        partition=0,
        offset=1,
        failure=Failure("hubspot", "batchCreateCalls", 207, category, "bad"),
        failed_at=NOW,
        portal=portal,
    )
    return parse(headers)


async def _put_legacy_dead_letter(kafka: KafkaEnv, call: str) -> None:
    """A dead letter written before portals existed: no ``dlq.portal`` header."""
    headers = dlq_headers(
        [("event_id", f"{call}:1".encode()), ("provider", b"generic")],
        topic=kafka.settings.topic_events,
        partition=0,
        offset=7,
        failure=Failure("hubspot", "batchCreateCalls", 207, "VALIDATION_ERROR", "old"),
        failed_at=NOW - timedelta(minutes=1),
    )
    headers = [(k, v) for k, v in headers if k != PORTAL]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            kafka.settings.topic_dlq,
            value=event_value(call),
            key=f"generic:{call}".encode(),
            headers=headers,
        )
    finally:
        await producer.stop()


# --- pure -------------------------------------------------------------------------------


def test_portal_condition_selects_by_dlq_portal_and_qualifies_keys() -> None:
    """--portal selects by dlq.portal; with it a key also matches provider:call_id within
    that portal; without it a key matches the Kafka key exactly."""
    acme = Filters.parse(now=NOW, portals=["acme"])
    assert acme.selects(_dead("acme"), "acme/generic:c1")
    assert not acme.selects(_dead("bravo"), "bravo/generic:c1")
    assert not acme.selects(_dead(), "generic:c1")
    assert Filters.parse(now=NOW, portals=["default"]).selects(_dead(), "generic:c1")
    keyed = Filters.parse(now=NOW, portals=["acme"], keys=["generic:c1"])
    assert keyed.selects(_dead("acme"), "acme/generic:c1")
    assert not keyed.selects(_dead("acme"), "acme/generic:c2")
    assert not keyed.selects(_dead("bravo"), "bravo/generic:c1")
    plain = Filters.parse(now=NOW, keys=["generic:c1"])
    assert plain.selects(_dead(), "generic:c1")
    assert not plain.selects(_dead("acme"), "acme/generic:c1")
    assert not Filters.parse(now=NOW, portals=["acme"]).empty


def test_missing_portal_header_is_the_default_portal() -> None:
    """A dead letter without dlq.portal (written before portals) is the default portal's."""
    headers = [
        (k, v)
        for k, v in dlq_headers(
            [],
            topic="t",
            partition=0,
            offset=0,
            failure=Failure("hubspot", "op", 207, "VALIDATION_ERROR", "m"),
            failed_at=NOW,
            portal="acme",
        )
        if k != PORTAL
    ]
    dead = parse(headers)
    assert dead.portal == "default"
    assert Filters.parse(now=NOW, portals=["default"]).selects(dead, "generic:c1")


def test_identity_of_portal_less_selections_is_unchanged() -> None:
    """Replay cursors of selections without --portal keep their names (they resume), and
    --portal makes a cursor of its own."""
    f = Filters.parse(now=NOW, categories=["validation_error"], keys=["generic:k"])
    before = hashlib.sha256(
        orjson.dumps(
            {
                "since": None,
                "until": None,
                "categories": ["VALIDATION_ERROR"],
                "keys": ["generic:k"],
            },
            option=orjson.OPT_SORT_KEYS,
        )
    ).hexdigest()[:12]
    assert f.identity() == before
    with_portal = Filters.parse(
        now=NOW, categories=["validation_error"], keys=["generic:k"], portals=["acme"]
    )
    assert with_portal.identity() not in ("", before)
    assert (
        Filters.parse(now=NOW, portals=["acme"]).identity()
        != Filters.parse(now=NOW, portals=["bravo"]).identity()
    )
    assert Filters.from_json(with_portal.to_json()).portals == frozenset({"acme"})


def test_cursor_metadata_keeps_the_portal_selection() -> None:
    """A cursor of --portal acme covers acme's dead letters only, across encode/decode; a
    cursor written before portals (no "portals" key) still covers every portal."""
    acme = Filters.parse(now=NOW, portals=["acme"])
    cp = advance(None, start=0, position=10, filters=acme)
    back = Checkpoint.decode(10, cp.encode())
    assert back.selection is not None and back.selection.portals == frozenset({"acme"})
    assert back.covers(3, _dead("acme"), "acme/generic:x", 0)
    assert not back.covers(3, _dead("bravo"), "bravo/generic:x", 0)
    old = advance(None, start=0, position=10, filters=Filters())
    doc = orjson.loads(old.encode())
    assert "portals" not in doc
    assert Checkpoint.decode(10, old.encode()).covers(3, _dead("bravo"), "bravo/generic:x", 0)
    # a run with another portal selection does not inherit acme's ranges
    bravo = advance(back, start=10, position=12, filters=Filters.parse(now=NOW, portals=["bravo"]))
    assert [(s.start, s.end) for s in bravo.segments] == [(10, 12)]
    again = advance(back, start=10, position=12, filters=acme)
    assert [(s.start, s.end) for s in again.segments] == [(0, 12)]


def test_portal_labels_are_bounded() -> None:
    """The gauges' portal label takes at most the limit of valid ids; the rest is other."""
    known: set[str] = set()
    assert [portal_label(p, known, limit=2) for p in ("a", "b", "c", "a", "Bad Id!")] == [
        "a",
        "b",
        OTHER_PORTAL,
        "a",
        OTHER_PORTAL,
    ]
    assert known == {"a", "b"}


# --- against the broker -----------------------------------------------------------------


async def test_list_filters_by_portal_and_shows_it(kafka: KafkaEnv, group: str) -> None:
    """list --portal P lists exactly P's dead letters; the table has a portal column and
    --json a portal field; a dead letter without dlq.portal is the default portal's."""
    await put_dead_letters(kafka.settings, SPECS)
    await _put_legacy_dead_letter(kafka, "old1")
    acme = await ops.list_dead_letters(
        kafka.settings, Filters.parse(now=NOW, portals=["acme"]), group=group
    )
    assert [(r.offset, r.portal, r.key) for r in acme] == [
        (1, "acme", "acme/generic:c1"),
        (3, "acme", "acme/generic:c3"),
    ]
    default = await ops.list_dead_letters(
        kafka.settings, Filters.parse(now=NOW, portals=["default"]), group=group
    )
    assert [(r.offset, r.key) for r in default] == [(0, "generic:c1"), (5, "generic:old1")]
    two = await ops.list_dead_letters(
        kafka.settings, Filters.parse(now=NOW, portals=["acme", "bravo"]), group=group
    )
    assert [r.offset for r in two] == [1, 2, 3, 4]

    table = await cli("list", "--portal", "bravo", *kafka_args(kafka.settings, group))
    assert table.exit_code == 0, table.output
    assert "portal" in table.stdout.splitlines()[1]
    assert "bravo/generic:c2" in table.stdout and "bravo/generic:c4" in table.stdout
    assert "acme/" not in table.stdout and "generic:c1" not in table.stdout
    assert "2 dead letters (2 pending)" in table.stdout

    as_json = await cli(
        "list", "--portal", "acme", "--key", "generic:c3", "--json",
        *kafka_args(kafka.settings, group),
    )  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    rows = orjson.loads(as_json.stdout)
    assert [(r["portal"], r["key"], r["offset"]) for r in rows] == [("acme", "acme/generic:c3", 3)]

    none = await cli("list", "--portal", "zulu", *kafka_args(kafka.settings, group))
    assert none.exit_code == 0 and "no dead letters match" in none.stdout


async def test_show_and_stats_by_portal(kafka: KafkaEnv, group: str) -> None:
    """show --key K --portal P shows only P's dead letters of K; show OFFSET --portal P
    refuses another portal's record; stats counts per portal and --portal narrows it."""
    await put_dead_letters(kafka.settings, SPECS)
    shown = await ops.show_dead_letters(
        kafka.settings, key="generic:c1", portal="acme", group=group
    )
    assert [(s.offset, s.key) for s in shown] == [(1, "acme/generic:c1")]
    plain = await ops.show_dead_letters(kafka.settings, key="generic:c1", group=group)
    assert [s.offset for s in plain] == [0]  # the Kafka key, exactly: the default portal's
    result = await cli(
        "show", "--key", "generic:c1", "--portal", "acme", *kafka_args(kafka.settings, group)
    )
    assert result.exit_code == 0, result.output
    assert "portal: acme" in result.stdout and "dead letter 0/1" in result.stdout
    wrong = await cli("show", "2", "--portal", "acme", *kafka_args(kafka.settings, group))
    assert wrong.exit_code == 1
    assert "of portal 'acme'" in wrong.stderr

    figures = await ops.stats(kafka.settings, now=NOW, group=group)
    assert {p: (c.pending, c.total) for p, c in figures.portals.items()} == {
        "default": (1, 1),
        "acme": (2, 2),
        "bravo": (2, 2),
    }
    assert figures.oldest_pending_age_of("acme") == timedelta(hours=3).total_seconds()
    only = await ops.stats(kafka.settings, now=NOW, group=group, portals=frozenset({"bravo"}))
    assert (only.total, set(only.portals)) == (2, {"bravo"})
    assert set(only.categories) == {"OBJECT_NOT_FOUND", "VALIDATION_ERROR"}
    text = await cli("stats", "--portal", "bravo", *kafka_args(kafka.settings, group))
    assert text.exit_code == 0, text.output
    assert "2 dead letters" in text.stdout and "bravo" in text.stdout


async def test_replay_by_portal_lands_in_that_portal(kafka: KafkaEnv, group: str) -> None:
    """replay --portal acme re-produces only acme's dead letters with their original key,
    value (portal acme) and headers (portal: acme); a later unfiltered replay moves the
    rest and not acme's again."""
    await put_dead_letters(kafka.settings, SPECS)
    result = await cli(
        "replay",
        "--portal",
        "acme",
        *kafka_args(kafka.settings, group),
        *replay_args(kafka.settings),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("replayed 2, parked 0")
    got = await records(kafka, kafka.settings.topic_events)
    assert sorted(r.key for r in got) == [b"acme/generic:c1", b"acme/generic:c3"]
    for rec in got:
        call = rec.key.decode().rsplit(":", 1)[1]
        assert rec.value == event_value(call, portal="acme")
        event = decode_event(rec.value)
        assert (event.portal, event.portal_key) == ("acme", rec.key.decode())
        h = header_map(rec.headers)
        assert h["portal"] == "acme" and h["provider"] == "generic"
        assert h["event_id"] == f"{call}:1"
        assert PORTAL not in h  # dlq.* headers are not carried into calls.events

    rows = await ops.list_dead_letters(kafka.settings, Filters(), group=group)
    assert {(r.offset, r.pending) for r in rows} == {
        (0, True), (1, False), (2, True), (3, False), (4, True),
    }  # fmt: skip

    rest = await replay(kafka.settings, Filters(), group=group)
    assert (rest.replayed, rest.already) == (3, 2)
    got = await records(kafka, kafka.settings.topic_events)
    keys = sorted(r.key for r in got)
    assert keys == [
        b"acme/generic:c1",
        b"acme/generic:c3",
        b"bravo/generic:c2",
        b"bravo/generic:c4",
        b"generic:c1",
    ]
    default = next(r for r in got if r.key == b"generic:c1")
    assert "portal" not in header_map(default.headers)
    assert decode_event(default.value).portal == "default"


async def test_dry_run_lists_the_portal(kafka: KafkaEnv, group: str) -> None:
    """replay --dry-run --portal bravo prints bravo's dead letters with their portal."""
    await put_dead_letters(kafka.settings, SPECS)
    result = await cli(
        "replay",
        "--dry-run",
        "--portal",
        "bravo",
        *kafka_args(kafka.settings, group),
        *replay_args(kafka.settings),
    )
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if "generic:" in ln]
    assert len(lines) == 2 and all("bravo" in ln for ln in lines)
    assert "would replay 2" in result.stdout
    assert await records(kafka, kafka.settings.topic_events) == []


async def test_portal_gauges_follow_pending_dead_letters(kafka: KafkaEnv, group: str) -> None:
    """refresh_metrics sets callbridge_dlq_portal_depth{portal} and the per-portal oldest
    age; a portal replayed away reads 0 while the others keep theirs."""
    await put_dead_letters(kafka.settings, SPECS)
    now = datetime.now(UTC)
    await refresh_metrics(kafka.settings, now=now, group=group)

    def depth(portal: str) -> float | None:
        return REGISTRY.get_sample_value("callbridge_dlq_portal_depth", {"portal": portal})

    def age(portal: str) -> float | None:
        return REGISTRY.get_sample_value(
            "callbridge_dlq_portal_oldest_age_seconds", {"portal": portal}
        )

    assert (depth("default"), depth("acme"), depth("bravo")) == (1, 2, 2)
    acme_age = age("acme")
    assert acme_age is not None and acme_age >= timedelta(hours=3).total_seconds() - 60
    await replay(kafka.settings, Filters.parse(now=NOW, portals=["acme"]), group=group)
    await refresh_metrics(kafka.settings, now=now, group=group)
    assert (depth("default"), depth("acme"), depth("bravo")) == (1, 0, 2)
    assert age("acme") == 0
