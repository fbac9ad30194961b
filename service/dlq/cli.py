"""``callbridge dlq``: list, show, replay and count dead letters.

Exit codes: 0 done; 1 nothing to act on (``show`` found no such dead letter, ``replay`` had
nothing to replay; an empty ``list`` is not an error: it prints "no dead letters match" and
exits 0); 2 the command could not run (unreachable broker, missing topic, bad option value),
with a one-line message on stderr; 130/143 a replay interrupted by SIGINT/SIGTERM after the
record in flight finished (run the same command again to resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.json import JSON
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from service.config import Settings
from service.dlq import ops
from service.dlq.checkpoint import DEFAULT_GROUP
from service.dlq.filters import BadFilter, Filters
from service.dlq.kafkaio import DEFAULT_TIMEOUT_S, DlqError
from service.dlq.replay import ReplayReport, Step, replay

T = TypeVar("T")

app = typer.Typer(
    help="Inspect, replay and count dead letters (the records HubSpot rejected).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Options shared by the commands.
Bootstrap = Annotated[
    str | None, typer.Option(help="Kafka bootstrap servers (env CALLBRIDGE_KAFKA_BOOTSTRAP)")
]
Topic = Annotated[str | None, typer.Option(help="dead-letter topic (env CALLBRIDGE_TOPIC_DLQ)")]
Group = Annotated[
    str,
    typer.Option(
        help="consumer-group family holding replay cursors (filtered replays add a suffix)"
    ),
]
Timeout = Annotated[float, typer.Option(help="seconds to wait for Kafka before giving up", min=0.1)]
Since = Annotated[
    str | None,
    typer.Option(help="failed at or after: ISO-8601 (2026-03-03T15:00:00Z) or relative (2h)"),
]
Until = Annotated[str | None, typer.Option(help="failed before: ISO-8601 or relative (30m)")]
Category = Annotated[
    list[str] | None,
    typer.Option("--category", "-c", help="error category, e.g. VALIDATION_ERROR (repeatable)"),
]
Key = Annotated[
    list[str] | None,
    typer.Option("--key", "-k", help="call key provider:call_id (repeatable)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]
PortalOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--portal",
        "-p",
        help="only this portal's dead letters (dlq.portal; none = default) (repeatable)",
    ),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings(bootstrap: str | None, topic: str | None, **more: object) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(f"bad CALLBRIDGE_* setting: {exc.errors()[0].get('msg', exc)}")
    update = {"kafka_bootstrap": bootstrap, "topic_dlq": topic, **more}
    return settings.model_copy(update={k: v for k, v in update.items() if v is not None})


def _filters(
    since: str | None,
    until: str | None,
    category: list[str] | None,
    key: list[str] | None,
    limit: int | None,
    portal: list[str] | None = None,
) -> Filters:
    try:
        return Filters.parse(
            now=datetime.now(UTC),
            since=since,
            until=until,
            categories=category or (),
            keys=key or (),
            limit=limit,
            portals=portal or (),
        )
    except BadFilter as exc:
        _fail(str(exc))


async def _cancel_on_sigterm(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; SIGTERM cancels it like Ctrl-C does (the main thread only)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    installed = False
    if task is not None:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            installed = True
    try:
        return await coro
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    # aiokafka logs every failed connection attempt; the one-line error below says it all
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_cancel_on_sigterm(coro))
    except DlqError as exc:
        _fail(str(exc))


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=200)


@app.command("list")
def list_(
    since: Since = None,
    until: Until = None,
    category: Category = None,
    key: Key = None,
    limit: Annotated[int | None, typer.Option(help="show at most N (oldest first)", min=1)] = None,
    pending: Annotated[bool, typer.Option(help="only dead letters not yet replayed")] = False,
    portal: PortalOpt = None,
    as_json: AsJson = False,
    bootstrap: Bootstrap = None,
    topic: Topic = None,
    group: Group = DEFAULT_GROUP,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """List dead letters: offset, portal, key, failed at, category, HTTP status, attempt,
    message."""
    settings = _settings(bootstrap, topic)
    filters = _filters(since, until, category, key, limit, portal)
    rows = _run(
        ops.list_dead_letters(
            settings, filters, pending_only=pending, group=group, timeout_s=timeout
        )
    )
    if as_json:
        typer.echo(orjson.dumps([r.to_json() for r in rows], option=orjson.OPT_INDENT_2))
        return
    console = _console()
    if not rows:
        console.print("no dead letters match")
        return
    table = Table(
        "part", "offset", "portal", "key", "failed at", "category", "status", "attempt", "message"
    )
    table.add_column("state")
    for r in rows:
        message = r.message if len(r.message) <= 80 else r.message[:79] + "…"
        table.add_row(
            str(r.partition),
            str(r.offset),
            escape(r.portal),
            escape(r.key or "-"),
            r.failed_at,
            escape(r.category),
            str(r.http_status or "-"),
            str(r.attempt),
            escape(message),
            "pending" if r.pending else "replayed",
        )
    console.print(table)
    waiting = sum(1 for r in rows if r.pending)
    noun = "dead letter" if len(rows) == 1 else "dead letters"
    console.print(f"{len(rows)} {noun} ({waiting} pending)", highlight=False)


def _payload(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode("utf-8", "replace")


@app.command()
def show(
    offset: Annotated[int | None, typer.Argument(help="DLQ offset of the dead letter")] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="every dead letter of this call")
    ] = None,
    partition: Annotated[int, typer.Option(help="DLQ partition of OFFSET", min=0)] = 0,
    portal: Annotated[
        str | None,
        typer.Option(
            "--portal",
            "-p",
            help="only this portal's dead letters (--key may then be provider:call_id)",
        ),
    ] = None,
    as_json: AsJson = False,
    bootstrap: Bootstrap = None,
    topic: Topic = None,
    group: Group = DEFAULT_GROUP,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Show one dead letter (OFFSET) or all of a call (--key): headers and original payload."""
    if (offset is None) == (key is None):
        _fail("give an OFFSET or --key (one of them)")
    settings = _settings(bootstrap, topic)
    found = _run(
        ops.show_dead_letters(
            settings,
            offset=offset,
            partition=partition,
            key=key,
            portal=portal,
            group=group,
            timeout_s=timeout,
        )
    )
    if not found:
        what = f"at offset {offset} (partition {partition})" if key is None else f"for key {key!r}"
        if portal is not None:
            what += f" of portal {portal!r}"
        _fail(f"no dead letter {what} in {settings.topic_dlq}", code=1)
    if as_json:
        docs = [
            {
                "partition": s.partition,
                "offset": s.offset,
                "timestamp_ms": s.timestamp_ms,
                "key": s.key,
                "headers": [[k, v] for k, v in s.headers],
                "payload": _payload(s.value),
                "dead_letter": s.row.to_json() if s.row else None,
            }
            for s in found
        ]
        typer.echo(orjson.dumps(docs, option=orjson.OPT_INDENT_2))
        return
    console = _console()
    for s in found:
        state = ""
        if s.row is not None:
            state = " (pending)" if s.row.pending else " (replayed)"
        console.rule(f"dead letter {s.partition}/{s.offset}{state}", style="bold")
        if s.row is None:
            console.print("[yellow]not a dead letter: the dlq.* headers are missing[/]")
        console.print(f"key: {escape(s.key or '-')}", highlight=False)
        if s.row is not None:
            console.print(f"portal: {escape(s.row.portal)}", highlight=False)
        headers = Table("header", "value", title="headers", title_justify="left")
        for name, value in s.headers:
            headers.add_row(escape(name), escape(value))
        console.print(headers)
        console.print("payload:")
        payload = _payload(s.value)
        if isinstance(payload, str) or payload is None:
            console.print(escape(repr(payload)), highlight=False)
        else:
            console.print(JSON(orjson.dumps(payload).decode()))


class _Display:
    """Replay progress: a rich bar on a terminal, nothing otherwise; keeps the last tally."""

    def __init__(self, console: Console, dry_run: bool) -> None:
        self.report: ReplayReport | None = None
        self.bar: Progress | None = None
        self.task: Any = None
        if console.is_terminal and not dry_run:
            self.bar = Progress(
                TextColumn("replay"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[tally]}"),
                TimeElapsedColumn(),
                console=console,
            )

    def begin(self, total: int) -> None:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("replay", total=total, tally="")

    def advance(self, report: ReplayReport, step: Step | None) -> None:
        self.report = report
        if self.bar is not None:
            tally = f"replayed {report.replayed} parked {report.parked}"
            self.bar.update(self.task, advance=1, tally=tally)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("replay")
def replay_(
    since: Since = None,
    until: Until = None,
    category: Category = None,
    key: Key = None,
    portal: PortalOpt = None,
    max_: Annotated[
        int | None,
        typer.Option("--max", "--limit", help="move at most N records in this run", min=1),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="at most R records per second", min=0.001)
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="print what would happen, produce nothing")] = False,
    from_start: Annotated[
        bool,
        typer.Option(help="also replay matching dead letters that an earlier replay moved"),
    ] = False,
    events_topic: Annotated[
        str | None, typer.Option(help="where replays go (env CALLBRIDGE_TOPIC_EVENTS)")
    ] = None,
    parked_topic: Annotated[
        str | None,
        typer.Option(help="where records out of attempts go (env CALLBRIDGE_TOPIC_PARKED)"),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(help="park at this dlq.attempt (env CALLBRIDGE_DLQ_MAX_ATTEMPTS)", min=1),
    ] = None,
    bootstrap: Bootstrap = None,
    topic: Topic = None,
    group: Group = DEFAULT_GROUP,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Replay matching dead letters to the events topic (parked once out of attempts).

    Resumes where an interrupted run stopped; skips dead letters an earlier replay moved.
    """
    settings = _settings(
        bootstrap,
        topic,
        topic_events=events_topic,
        topic_parked=parked_topic,
        dlq_max_attempts=max_attempts,
    )
    filters = _filters(since, until, category, key, None, portal)
    console = _console()
    display = _Display(console, dry_run)
    code = 0
    report: ReplayReport | None = None
    try:
        report = _run(
            replay(
                settings,
                filters,
                dry_run=dry_run,
                max=max_,
                rate=rate,
                progress=display,
                group=group,
                from_start=from_start,
                timeout_s=timeout,
            )
        )
    except KeyboardInterrupt:
        code = 130
    except asyncio.CancelledError:
        code = 143
    finally:
        display.close()
    if report is None:
        done = display.report.summary() if display.report else "nothing moved"
        typer.echo(f"interrupted: {done}; run the same command again to resume", err=True)
        raise typer.Exit(code)
    if dry_run and report.steps:
        table = Table("part", "offset", "portal", "key", "action", "attempt", "category")
        for st in report.steps:
            action = "replay" if st.action == "replay" else "park (out of attempts)"
            table.add_row(
                str(st.partition),
                str(st.offset),
                escape(st.portal),
                escape(st.key or "-"),
                action,
                str(st.attempt),
                escape(st.category),
            )
        console.print(table)
    if report.moved == 0:
        reason = (
            f"{report.already} matching dead letters were already replayed "
            "(--from-start replays them again)"
            if report.already
            else "no pending dead letters match"
        )
        typer.echo(f"nothing to replay: {reason}")
        raise typer.Exit(1)
    typer.echo(report.summary())


def _count_table(title: str, counts: dict[str, ops.Count]) -> Table:
    table = Table(title, "pending", "total", title_justify="left")
    for name, c in counts.items():
        table.add_row(escape(name), str(c.pending), str(c.total))
    return table


@app.command("stats")
def stats_(
    portal: PortalOpt = None,
    as_json: AsJson = False,
    bootstrap: Bootstrap = None,
    topic: Topic = None,
    group: Group = DEFAULT_GROUP,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Dead letters by error category, by age and by portal: pending (not yet replayed) and
    total."""
    settings = _settings(bootstrap, topic)
    portals = frozenset(p.strip() for p in portal or () if p.strip())
    figures = _run(ops.stats(settings, group=group, timeout_s=timeout, portals=portals))
    if as_json:
        typer.echo(orjson.dumps(figures.to_json(), option=orjson.OPT_INDENT_2))
        return
    console = _console()
    console.print(_count_table("category", dict(sorted(figures.categories.items()))))
    console.print(_count_table("age", figures.ages))
    console.print(_count_table("portal", dict(sorted(figures.portals.items()))))
    oldest = (
        f", oldest pending failed {int(figures.oldest_pending_age_s)}s ago"
        if figures.oldest_pending
        else ""
    )
    unreadable = f", {figures.unreadable} unreadable" if figures.unreadable else ""
    console.print(
        f"{figures.total} dead letters in {settings.topic_dlq}, {figures.pending} pending"
        f"{oldest}{unreadable}",
        highlight=False,
    )


@app.command("exporter")
def exporter_(
    bootstrap: Bootstrap = None,
    topic: Topic = None,
    host: Annotated[str, typer.Option(help="address to serve /metrics on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="port to serve /metrics on")] = 9102,
) -> None:
    """Serve the DLQ depth/age gauges on /metrics (run one per deployment)."""
    from service.dlq.exporter import Exporter
    from service.runtime import make_server

    settings = _settings(bootstrap, topic)
    exporter = Exporter(settings)

    async def serve() -> None:
        refresher = asyncio.create_task(exporter.refresh_forever())
        try:
            await make_server(exporter.app(), host, port).serve()
        finally:
            refresher.cancel()

    asyncio.run(serve())


def main() -> None:
    app(prog_name="callbridge dlq")
