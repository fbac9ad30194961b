"""Part 5: the contact-matching issue's own check, at HubSpot's limits.

10,000 calls from 10,000 distinct numbers, every number a contact, stored the way people
type numbers into HubSpot (six US formats and two GB ones, on ``phone`` or
``mobilephone``). The events are preloaded on a fresh topic; one ``call.ended`` event per
call (the completed-call webhook most providers send). The sandbox enforces 190 requests
per rolling 10 s and 5 searches/s on a portal of its own.

Three runs of ``callbridge writer``, measured only through the sandbox's stats, the
records' ``createdAt`` and their associations:

- **cold**: a fresh contact index (the writer builds it by paging the contacts list);
- **warm**: a restarted writer on the index the cold run left on disk, 10,000 new calls;
- **sustained**: warm again, ``sustained_calls`` calls, long enough that the rolling
  window binds (its rate is taken after the first 10 s, past the fresh token's burst).

Every call's associations are read back: the figure that matters besides speed is that
each call is associated with exactly its caller's contact.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import phonenumbers

from bench import kafkaio
from bench.common import CLI, Topics, env, fmt, table
from bench.writer import (
    CEILING,
    RATE_10S,
    SCALE_TOKEN,
    UNLIMITED,
    Sandbox,
    WriterRun,
    call_records,
    requests_by_op,
    run_writer,
    steady_rate,
)


@dataclass
class ScalePlan:
    calls: int = 10_000
    sustained_calls: int = 50_000
    seconds: float = 150.0
    #: a pause after seeding and after each read-back: past the rolling window (10 s) and
    #: the contact index's clock-skew margin (10 s), so each run starts on a clear budget
    quiet_s: float = 11.0


def distinct_numbers(count: int, seed: int) -> list[str]:
    """``count`` distinct valid E.164 numbers: 90 % US, 10 % London."""
    rng = random.Random(seed)
    areas = (212, 305, 312, 404, 415, 512, 617, 646, 702, 718, 773, 917)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        if rng.random() < 0.1:
            n = f"+44207946{rng.randrange(10_000):04d}"[:13]
        else:
            n = f"+1{rng.choice(areas)}{rng.randrange(200, 1000)}{rng.randrange(10_000):04d}"
        if n not in seen and phonenumbers.is_valid_number(phonenumbers.parse(n)):
            seen.add(n)
            out.append(n)
    return out


def typed(number: str, n: int) -> str:
    """``number`` as a person types it: the issue's six US formats, two GB ones (with
    the country code: a national ``020 …`` on a US portal is no US number, for HubSpot's
    calculated properties as for ``phonenumbers``)."""
    p = phonenumbers.parse(number)
    national = str(p.national_number)
    if p.country_code == 44:
        return (
            phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            if n % 2
            else f"+44 (0){national[:2]} {national[2:6]} {national[6:]}"
        )
    a, b, c = national[:3], national[3:6], national[6:]
    forms = (
        f"({a}) {b}-{c}",
        f"{a}.{b}.{c}",
        f"+1 {a} {b} {c}",
        f"1-{a}-{b}-{c}",
        f"{a} {b}{c}",
        f"+1{a}{b}{c}",
    )
    return forms[n % len(forms)]


class ScaleSandbox:
    """The part's own sandbox portal (``SCALE_TOKEN``), set up with ``hubspot setup``."""

    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.auth = {"authorization": f"Bearer {SCALE_TOKEN}"}
        setup_env = env("unused") | {
            "CALLBRIDGE_HUBSPOT_URL": sb.url,
            "CALLBRIDGE_HUBSPOT_TOKEN": SCALE_TOKEN,
        }
        subprocess.run([*CLI, "hubspot", "setup"], env=setup_env, check=True, capture_output=True)

    def stats(self) -> dict[str, object]:
        return dict(self.sb.http.get("/_sandbox/stats", headers=self.auth).json())

    @contextlib.contextmanager
    def unlimited(self) -> Iterator[None]:
        """This portal's limits lifted (for seeding and reading back, never for a run)."""
        http = self.sb.http
        before = http.get("/_sandbox/config", headers=self.auth).json()
        http.post("/_sandbox/config", json=UNLIMITED, headers=self.auth).raise_for_status()
        try:
            yield
        finally:
            keep = {k: before[k] for k in UNLIMITED}
            http.post("/_sandbox/config", json=keep, headers=self.auth).raise_for_status()

    def seed(self, numbers: list[str]) -> dict[str, str]:
        """One contact per number, typed; ``{E.164: contact id}``."""
        out: dict[str, str] = {}
        with self.unlimited():
            for start in range(0, len(numbers), 100):
                chunk = numbers[start : start + 100]
                inputs = []
                for n, number in enumerate(chunk, start):
                    prop = "mobilephone" if n % 3 == 2 else "phone"
                    inputs.append({"properties": {prop: typed(number, n), "lastname": f"c{n}"}})
                r = self.sb.http.post(
                    "/crm/v3/objects/contacts/batch/create",
                    json={"inputs": inputs},
                    headers=self.auth,
                )
                r.raise_for_status()
                by_name = {x["properties"]["lastname"]: x["id"] for x in r.json()["results"]}
                for n, number in enumerate(chunk, start):
                    out[number] = by_name[f"c{n}"]
        return out

    def calls(self, prefix: str) -> dict[str, tuple[str, int]]:
        """``{hs_call_external_id: (record id, createdAt ms)}`` of the calls starting with
        ``prefix``."""
        out: dict[str, tuple[str, int]] = {}
        params: dict[str, str | int] = {"limit": 100, "properties": "hs_call_external_id"}
        with self.unlimited():
            while True:
                r = self.sb.http.get("/crm/v3/objects/calls", params=params, headers=self.auth)
                r.raise_for_status()
                page = r.json()
                for rec in page.get("results", []):
                    ext = (rec.get("properties") or {}).get("hs_call_external_id") or ""
                    if ext.startswith(prefix):
                        created = datetime.fromisoformat(rec["createdAt"].replace("Z", "+00:00"))
                        out[ext] = (rec["id"], int(created.timestamp() * 1000))
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return out
                params["after"] = after

    def contacts_of(self, call_ids: list[str]) -> dict[str, list[str]]:
        """Each call's associated contact ids (v4 batch read)."""
        out: dict[str, list[str]] = {}
        with self.unlimited():
            for start in range(0, len(call_ids), 1000):
                inputs = [{"id": i} for i in call_ids[start : start + 1000]]
                r = self.sb.http.post(
                    "/crm/v4/associations/calls/contacts/batch/read",
                    json={"inputs": inputs},
                    headers=self.auth,
                )
                r.raise_for_status()
                for row in r.json().get("results", []):
                    out[str(row["from"]["id"])] = [str(t["toObjectId"]) for t in row["to"]]
        return out


def events(prefix: str, numbers: list[str]) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """One normalized ``call.ended`` record per number, through the product's generic
    normalization once and cloned (the same bytes the ingress produces)."""
    from bench.backlog import _record
    from bench.callers import call_events

    start = datetime.now(UTC) - timedelta(hours=1)
    [template_body] = call_events("TEMPLATE", "+14155550142", start, ("call.ended",))
    _, raw, _ = _record(template_body)
    template = orjson.loads(raw)
    out = []
    for n, number in enumerate(numbers):
        call_id = f"{prefix}{n}"
        value = dict(template)
        value["call_id"] = call_id
        value["event_id"] = f"{call_id}:call.ended"
        props = dict(template["properties"])
        props["hs_call_external_id"] = f"generic:{call_id}"
        props["hs_call_from_number"] = number
        props["hs_call_title"] = f"Inbound call from {number}"
        value["properties"] = props
        value["counterpart"] = number
        headers = [("event_id", value["event_id"].encode()), ("provider", b"generic")]
        out.append((f"generic:{call_id}".encode(), orjson.dumps(value), headers))
    random.Random(len(prefix)).shuffle(out)
    return out


def _run(
    label: str,
    bootstrap: str,
    sb: Sandbox,
    ssb: ScaleSandbox,
    numbers: list[str],
    contact_of: dict[str, str],
    index_dir: Path,
    plan: ScalePlan,
    workdir: Path,
) -> dict[str, object]:
    prefix = f"{label}{int(time.time())}-"
    topics = Topics()
    kafkaio.create_topic(bootstrap, topics.events)
    records = events(prefix, numbers)
    kafkaio.preload(bootstrap, topics.events, records)
    before = ssb.stats()
    run: WriterRun = run_writer(
        label,
        bootstrap,
        sb,
        topics,
        len(records),
        len(numbers),
        plan.seconds,
        workdir,
        0.5,
        extra_env={
            "CALLBRIDGE_HUBSPOT_TOKEN": SCALE_TOKEN,
            "CALLBRIDGE_CONTACT_INDEX_DIR": str(index_dir),
        },
        stats=ssb.stats,
    )
    after = ssb.stats()
    ops = requests_by_op(before, after)
    calls = ssb.calls(f"generic:{prefix}")
    assoc = ssb.contacts_of([rid for rid, _ in calls.values()])
    time.sleep(plan.quiet_s)  # reading back spent this portal's window: clear it for the next run
    by_number = {f"generic:{prefix}{n}": number for n, number in enumerate(numbers)}
    right = sum(
        1 for ext, (rid, _) in calls.items() if assoc.get(rid) == [contact_of[by_number[ext]]]
    )
    created = sorted(ms for _, ms in calls.values())
    span_s = (created[-1] - created[0]) / 1000 if len(created) > 1 else 0.0
    rate, basis = steady_rate(run)
    first_record_t = next((s.t for s in run.samples if s.records > 0), run.wall_s)
    return {
        "label": label,
        "calls": len(numbers),
        "records": call_records(after) - call_records(before),
        "associated_right": right,
        "searches": sum(v for k, v in ops.items() if k.startswith("searchContacts")),
        "list_pages": sum(v for k, v in ops.items() if k.startswith("listContacts")),
        "requests_by_op": ops,
        "wall_s": round(run.wall_s, 1),
        "drained": run.finished,
        "exit_note": run.exit_note,
        "first_record_s": first_record_t,
        "create_span_s": round(span_s, 2),
        "records_per_s_from_start": len(calls) / max(run.wall_s, 1e-9),
        "records_per_s_writing": len(calls) / max(span_s, 1e-9) if span_s else 0.0,
        "records_per_s_steady": rate,
        "steady_basis": basis,
        "writer_cpu_pct": run.stats["writer_cpu_pct"],
        "sandbox_cpu_pct": run.stats["sandbox_cpu_pct"],
        "peak_rss_mb": run.peak_rss_mb,
    }


def part_contacts_scale(
    bootstrap: str, sb: Sandbox, plan: ScalePlan, workdir: Path
) -> dict[str, object]:
    ssb = ScaleSandbox(sb)
    numbers = distinct_numbers(plan.calls, seed=14)
    t0 = time.monotonic()
    contact_of = ssb.seed(numbers)
    # the contacts existed before the writer started (HubSpot's clock moved on), and the
    # seeding is out of the rolling window the runs are measured in
    time.sleep(plan.quiet_s)
    index_dir = workdir / "contact-index-scale"
    out: dict[str, object] = {"seed_s": round(time.monotonic() - t0, 1), "runs": []}
    runs: list[dict[str, object]] = out["runs"]  # type: ignore[assignment]
    for label, count in (("cold", plan.calls), ("warm", plan.calls)):
        runs.append(
            _run(label, bootstrap, sb, ssb, numbers[:count], contact_of, index_dir, plan, workdir)
        )
    sustained = [numbers[n % len(numbers)] for n in range(plan.sustained_calls)]
    runs.append(
        _run("sustained", bootstrap, sb, ssb, sustained, contact_of, index_dir, plan, workdir)
    )
    return out


def scale_report(out: dict[str, object]) -> str:
    rows = []
    for r in out["runs"]:  # type: ignore[attr-defined]
        rows.append(
            [
                str(r["label"]),
                f"{r['records']:,} of {r['calls']:,}",
                f"{r['associated_right']:,}",
                fmt(r["searches"]),
                fmt(r["list_pages"]),
                f"{r['wall_s']:.1f} s",
                fmt(float(r["records_per_s_from_start"])),
                f"{float(r['records_per_s_from_start']) / CEILING:.2f}",
                fmt(float(r["records_per_s_steady"])),
                f"{float(r['records_per_s_steady']) / CEILING:.2f}",
                f"{r['writer_cpu_pct']} / {r['sandbox_cpu_pct']}",
            ]
        )
    notes = [
        "cold: a fresh contact index (built by paging the contacts list); warm: a restarted "
        "writer on that index, new calls; sustained: warm, long enough for the rolling window "
        "to bind (steady rate after the first 10 s)",
        "right contact: calls whose only associated contact is their caller's, read back "
        "through v4 associations",
    ]
    return (
        table(
            f"\nContact matching at scale: {RATE_10S} requests/10 s and 5 searches/s, calls "
            "from distinct numbers stored in 8 typed formats, one call.ended per call",
            [
                "run",
                "records",
                "right contact",
                "searches",
                "list pages",
                "wall",
                "records/s from start",
                "ratio",
                "steady records/s",
                "ratio",
                "CPU % writer/sandbox",
            ],
            rows,
        )
        + "\n"
        + "\n".join(notes)
    )
