"""``python -m chaos [--seed N] [--bounded] [--out FILE]``: one seeded chaos run of the real
pipeline; prints a table and writes the figures (``chaos/results/latest.json``).

Exit status 0 when lost = 0, duplicates = 0, records = expected and every property and
rejected call checks out; 1 otherwise (the table says what failed); 2 if the run itself
could not be carried out.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path
from typing import Any

from chaos.run import run, write
from chaos.scenario import BOUNDED, FULL

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def passed(f: dict[str, Any]) -> bool:
    v = f["verdict"]
    return (
        f["lost"] == 0
        and f["duplicates"] == 0
        and f["records"] == f["expected"]
        and v["wrong"] == 0
        and v["rejected_without_dlq_reason"] == 0
        and v["rejected_absent_after_replay"] == 0
        and v["unexpected_records"] == 0
        and not any(p["outcome"].startswith("LOST") for p in v["poisons"].values())
    )


def table(f: dict[str, Any]) -> str:
    v = f["verdict"]
    rows: list[tuple[str, Any, str]] = [
        ("records in HubSpot", f["records"], f"expected {f['expected']}"),
        ("lost", f["lost"], "must be 0"),
        ("duplicates", f["duplicates"], "must be 0"),
        ("wrong final properties", v["wrong"], str(v["wrong_by_property"] or "")),
        (
            "duplicated calls",
            v["duplicated_calls"],
            f"{v['duplicated_calls_without_a_right_record']} with no right record",
        ),
        ("rejected calls (REJECT-ME)", v["rejected_calls"], ""),
        ("  without a DLQ reason", v["rejected_without_dlq_reason"], "must be 0"),
        ("  absent after replay", v["rejected_absent_after_replay"], "must be 0"),
        ("unexpected records", v["unexpected_records"], "must be 0"),
        (
            "DLQ records / calls",
            f"{f['dlq']['records']} / {f['dlq']['calls']}",
            str(f["dlq"]["by_category"]),
        ),
        ("replayed", f["replayed"], f"exit {f['replay_exit']}"),
        ("events sent / accepted", f"{f['events_sent']} / {f['events_accepted']}", ""),
        ("503s served", f["served_503"], f"retries {f['ingress']['retries']}"),
        ("ingress answers", "", str(f["ingress"]["by_status"])),
        ("drained (true lag 0)", f["drained"], f"lag after {f['lag_after']}"),
        ("drain after last fault s", f["drain_s_after_last_fault"], ""),
        (
            "HubSpot requests / 100 calls",
            f["hubspot_requests_per_100_calls"],
            f"{f['hubspot_requests']} in all",
        ),
        ("wall time s", f["wall_s"], ""),
    ]
    for kind, n in sorted(f["faults"].items()):
        rows.append((f"fault: {kind}", n, ""))
    for kind, p in v["poisons"].items():
        rows.append((f"poison: {kind}", p["outcome"], p["reason"][:60]))
    for fault, n in f.get("duplicates_after_fault", {}).items():
        rows.append(("duplicates after", n, fault))
    for fault, n in f.get("wrong_after_fault", {}).items():
        rows.append(("wrong records created after", n, fault))
    for finding in f.get("findings", []):
        rows.append(("finding", "", finding))
    width = max(len(r[0]) for r in rows)
    lines = [f"chaos {f['scenario']} run, seed {f['seed']} ({f['date']})"]
    lines += [f"{name:<{width}}  {value!s:>14}  {note}".rstrip() for name, value, note in rows]
    lines.append("PASS" if passed(f) else "FAIL: " + fail_summary(f))
    return "\n".join(lines)


def fail_summary(f: dict[str, Any]) -> str:
    ex = f["verdict"]["examples"]
    parts = []
    if f["lost"]:
        parts.append(f"lost {f['lost']} (e.g. {', '.join(ex['lost'][:3])})")
    if f["duplicates"]:
        parts.append(f"duplicates {f['duplicates']} (e.g. {', '.join(ex['duplicates'][:3])})")
    if f["verdict"]["wrong"]:
        parts.append(f"wrong properties {f['verdict']['wrong']}")
    parts.append(
        f"rerun: python -m chaos --seed {f['seed']}"
        + (" --bounded" if f["scenario"] == "bounded" else "")
    )
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run (default: random)")
    parser.add_argument("--bounded", action="store_true", help="the small variant make test runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"seed {seed}", flush=True)
    try:
        figures = asyncio.run(run(BOUNDED if args.bounded else FULL, seed))
    except Exception as exc:
        print(f"chaos run failed to complete (seed {seed}): {exc!r}", file=sys.stderr)
        return 2
    write(figures, args.out)
    print(table(figures))
    print(f"figures written to {args.out}")
    return 0 if passed(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
