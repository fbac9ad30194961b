"""RSS of the writer's calls.ids map per 100k records: the on-disk map (SQLite, what the
writer uses) against the same records held in a dict (what the old writer did).

    .venv/bin/python -m bench.ids_memory [--records 300000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sqlite3
import tempfile
from pathlib import Path

from service.writer.records import CallRecord, decode_record, digest, encode_record


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record(n: int) -> CallRecord:
    """A realistic record: a completed call with 6 events and 12 properties written."""
    props = [f"hs_prop_{i}" for i in range(12)]
    return CallRecord(
        hubspot_id=str(10_000_000 + n),
        status="COMPLETED",
        started="2026-03-03T15:00:00.000Z",
        seq={p: 3 for p in props},
        values={p: digest(f"{p}{n}") for p in props},
        events=tuple(digest(f"e{n}:{k}") for k in range(6)),
        contacts=(str(500_000 + n % 9000),),
        answered_at="2026-03-03T15:00:10+00:00",
        ended_at="2026-03-03T15:02:10+00:00",
        touched_at=1_780_000_000.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000)
    n = parser.parse_args().records
    gc.collect()
    base = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "ids.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, part INTEGER, value BLOB)")
        for start in range(0, n, 1000):
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                (
                    (f"generic:call-{i:09d}", i % 12, encode_record(record(i)))
                    for i in range(start, min(n, start + 1000))
                ),
            )
            db.execute("COMMIT")
        for i in range(0, n, 997):  # reads, as the flush does
            row = db.execute(
                "SELECT value FROM records WHERE key = ?", (f"generic:call-{i:09d}",)
            ).fetchone()
            decode_record(row[0])
        gc.collect()
        disk = (Path(tmp) / "ids.sqlite3").stat().st_size / 1e6
        on_disk = rss_mb() - base
        db.close()
    gc.collect()
    base = rss_mb()
    held = {f"generic:call-{i:09d}": record(i) for i in range(n)}
    gc.collect()
    in_memory = rss_mb() - base
    per = 100_000 / n
    print(f"records: {n:,} ({len(held):,} in the dict)")
    print("| store | RSS growth | per 100k records |")
    print("| --- | --- | --- |")
    print(
        f"| on-disk map (SQLite, {disk:.0f} MB file) | {on_disk:.1f} MiB | {on_disk * per:.1f} MiB |"
    )
    print(f"| in a dict (the old writer) | {in_memory:.1f} MiB | {in_memory * per:.1f} MiB |")


if __name__ == "__main__":
    main()
