"""The durable side of contact matching: one SQLite file per portal.

Tables:
- ``phones(number, contact_id, modified_ms, gen)``: the phone index, E.164 → contacts.
  ``gen`` is the build generation that last saw the row; a full rebuild drops the rows
  an older generation left (deleted or merged contacts).
- ``meta(key, value)``: ``warm_gen`` (the last complete build), ``gen`` (the one being
  built), ``cursor`` (the list cursor to resume a build from), ``watermark_ms`` (the
  newest ``lastmodifieddate`` the refresh has seen), ``built_at_ms``.
- ``calls(number, call_id, at_ms)``: written calls whose number had no contact, kept
  ``CALLBRIDGE_CONTACT_LATE_MATCH_DAYS`` for late matching.
- ``intents(number, started_ms, contact_id)``: unknown-caller creates; a row without a
  contact id is a create whose outcome is not known yet.

Memory stays bounded whatever the portal's size: SQLite keeps at most ``cache_kib`` of
pages in memory and the process holds no per-contact state. Writes are WAL with
``synchronous=FULL``: a committed intent survives a crash of the process or the host.
The store is used from one thread (the event loop); every method is a short transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.contacts.policy import Candidate

SCHEMA = """
CREATE TABLE IF NOT EXISTS phones (
    number TEXT NOT NULL, contact_id TEXT NOT NULL, modified_ms INTEGER NOT NULL,
    gen INTEGER NOT NULL, PRIMARY KEY (number, contact_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS phones_contact ON phones (contact_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    number TEXT NOT NULL, call_id TEXT NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (number, call_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_at ON calls (at_ms);
CREATE TABLE IF NOT EXISTS intents (
    number TEXT PRIMARY KEY, started_ms INTEGER NOT NULL, contact_id TEXT) WITHOUT ROWID;
"""
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: SQLite's default limit on host parameters is 999 in older builds
_CHUNK = 900


def store_path(directory: Path, portal: str) -> Path:
    """The index file of ``portal`` in ``directory``."""
    return directory / f"{_SAFE.sub('_', portal) or 'default'}.sqlite3"


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class IndexStore:
    """The phone index, build progress, late-match calls and create intents of one portal."""

    def __init__(self, path: Path | str, *, cache_kib: int = 8192) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta -----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def meta_int(self, key: str, default: int = 0) -> int:
        value = self.meta(key)
        return default if value is None else int(value)

    def set_meta(self, **values: str | int | None) -> None:
        with self._tx() as db:
            self._set_meta(db, values)

    @staticmethod
    def _set_meta(db: sqlite3.Connection, values: dict[str, str | int | None]) -> None:
        for key, value in values.items():
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    @property
    def warm(self) -> bool:
        """True once a full build has completed (ever: a rebuild keeps the old rows)."""
        return self.meta("warm_gen") is not None

    # -- the index ------------------------------------------------------------------------

    def lookup(self, numbers: Collection[str]) -> dict[str, list[Candidate]]:
        """The indexed contacts of each number (numbers without any are left out)."""
        out: dict[str, list[Candidate]] = {}
        for chunk in _chunks(sorted(set(numbers))):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT number, contact_id, modified_ms FROM phones WHERE number IN ({marks})",  # noqa: S608 (placeholders only)
                chunk,
            )
            for number, contact_id, modified in rows:
                out.setdefault(number, []).append((contact_id, modified))
        return out

    def known(self, numbers: Collection[str]) -> set[str]:
        """Which of ``numbers`` have at least one contact in the index."""
        return set(self.lookup(numbers))

    def apply(
        self,
        contacts: Iterable[tuple[str, int, set[str]]],
        gen: int,
        meta: dict[str, str | int | None] | None = None,
    ) -> set[str]:
        """Make the index say exactly ``numbers`` for each ``(contact id, modified ms,
        numbers)`` (unless it holds a newer version of that contact), and set ``meta``, in
        one transaction. Answers the numbers that had no contact before (what late
        matching looks for)."""
        learned: set[str] = set()
        with self._tx() as db:
            for contact_id, modified, numbers in contacts:
                stored = db.execute(
                    "SELECT number, modified_ms FROM phones WHERE contact_id = ?", (contact_id,)
                ).fetchall()
                if stored and max(m for _, m in stored) > modified:
                    # an older version (search trails writes): keep the newer, but mark
                    # the rows seen by this generation
                    db.execute("UPDATE phones SET gen = ? WHERE contact_id = ?", (gen, contact_id))
                    continue
                old = {n for n, _ in stored}
                for gone in old - numbers:
                    db.execute(
                        "DELETE FROM phones WHERE number = ? AND contact_id = ?",
                        (gone, contact_id),
                    )
                for number in numbers - old:
                    row = db.execute("SELECT 1 FROM phones WHERE number = ?", (number,))
                    if row.fetchone() is None:
                        learned.add(number)
                db.executemany(
                    "INSERT OR REPLACE INTO phones VALUES (?, ?, ?, ?)",
                    [(n, contact_id, modified, gen) for n in numbers],
                )
            if meta:
                self._set_meta(db, meta)
        return learned

    def sweep(self, gen: int) -> int:
        """Drop rows no build since generation ``gen`` has seen; the count dropped."""
        with self._tx() as db:
            return db.execute("DELETE FROM phones WHERE gen < ?", (gen,)).rowcount

    def size(self) -> tuple[int, int]:
        """(index rows, distinct contacts)."""
        rows = self.db.execute("SELECT count(*), count(DISTINCT contact_id) FROM phones")
        n, c = rows.fetchone()
        return int(n), int(c)

    # -- late matching --------------------------------------------------------------------

    def record_calls(self, items: Iterable[tuple[str, str, int]]) -> None:
        """Remember ``(number, call id, at ms)`` for late matching."""
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?)", list(items))

    def matched_calls(self, since_ms: int) -> list[tuple[str, str]]:
        """``(number, call id)`` of every remembered call whose number the index now knows."""
        rows = self.db.execute(
            "SELECT DISTINCT c.number, c.call_id FROM calls c JOIN phones p ON p.number = c.number"
            " WHERE c.at_ms >= ?",
            (since_ms,),
        )
        return [(str(n), str(c)) for n, c in rows]

    def calls_for(self, numbers: Collection[str], since_ms: int) -> list[tuple[str, str]]:
        """``(number, call id)`` of remembered calls from ``numbers`` since ``since_ms``."""
        out: list[tuple[str, str]] = []
        for chunk in _chunks(sorted(set(numbers))):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT number, call_id FROM calls WHERE number IN ({marks}) AND at_ms >= ?",  # noqa: S608 (placeholders only)
                [*chunk, since_ms],
            )
            out.extend((str(n), str(c)) for n, c in rows)
        return out

    def forget_calls(self, items: Iterable[tuple[str, str]]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM calls WHERE number = ? AND call_id = ?", list(items))

    def prune_calls(self, before_ms: int) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM calls WHERE at_ms < ?", (before_ms,)).rowcount

    def call_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM calls").fetchone()[0])

    # -- unknown-caller creates -----------------------------------------------------------

    def intents(self, numbers: Collection[str]) -> dict[str, tuple[int, str | None]]:
        """``number -> (started ms, contact id or None)`` for numbers with a create intent."""
        out: dict[str, tuple[int, str | None]] = {}
        for chunk in _chunks(sorted(set(numbers))):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT number, started_ms, contact_id FROM intents WHERE number IN ({marks})",  # noqa: S608 (placeholders only)
                chunk,
            )
            for number, started, contact_id in rows:
                out[str(number)] = (int(started), contact_id)
        return out

    def begin_creates(self, numbers: Iterable[str], now_ms: int) -> None:
        """Durably record that contacts are about to be created for ``numbers``."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO intents VALUES (?, ?, NULL)",
                [(n, now_ms) for n in numbers],
            )

    def finish_creates(self, created: dict[str, str], modified_ms: int, gen: int) -> None:
        """Record the contacts created (or found) for numbers, and index them at once."""
        with self._tx() as db:
            for number, contact_id in created.items():
                db.execute(
                    "INSERT OR REPLACE INTO intents VALUES (?, "
                    "COALESCE((SELECT started_ms FROM intents WHERE number = ?), ?), ?)",
                    (number, number, modified_ms, contact_id),
                )
                db.execute(
                    "INSERT OR IGNORE INTO phones VALUES (?, ?, ?, ?)",
                    (number, contact_id, modified_ms, gen),
                )
