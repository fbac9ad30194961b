"""The bounded chaos run (``python -m chaos --bounded``) in ``make test``: 2,000 events for 500
calls through the product's own processes (``callbridge kafka``, ``sandbox``, ``ingress``,
two ``writer``s) with one writer SIGKILL, one broker stop/start, 5 % HubSpot 5xx, a 429
burst and REJECT-ME rejections; judged only from the sandbox and Kafka. Today's writer
fails it on some seeds (duplicates created around the broker restart): the suite reports
that defect; it is not marked expected-to-fail.

It asserts what users are promised: no call lost, none duplicated, every record as its
events say, every rejected call through the DLQ and present after the replay. A failure
prints the seed: ``python -m chaos --bounded --seed N`` reruns it exactly.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from chaos.__main__ import table
from chaos.run import run, write
from chaos.scenario import BOUNDED

#: a new seed every run (printed; the failure message names it), like a property test: the
#: outcome depends on process timing too, so no seed is "the one that passes".
#: CALLBRIDGE_CHAOS_SEED=N pins one.
SEED = int(os.environ.get("CALLBRIDGE_CHAOS_SEED") or random.SystemRandom().randrange(1, 10**6))


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_bounded_chaos_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Crash, broker restart and HubSpot faults: lost = 0, duplicates = 0, all records right."""
    print(f"chaos seed {SEED} (CALLBRIDGE_CHAOS_SEED={SEED} reruns it)")
    figures = await run(BOUNDED, SEED, tmp_path / "run")
    write(figures, tmp_path / "latest.json")
    print(table(figures))
    assert figures["faults"].get("writer-sigkill") == 1
    assert figures["faults"].get("broker-stop") == 1
    summary = json.dumps(figures["verdict"]["examples"])[:2000]
    assert figures["lost"] == 0, f"seed {SEED}: {summary}"
    assert figures["duplicates"] == 0, f"seed {SEED}: {summary}"
    assert figures["records"] == figures["expected"] == 500
    assert figures["verdict"]["wrong"] == 0, summary
    assert figures["verdict"]["rejected_without_dlq_reason"] == 0
    assert figures["verdict"]["rejected_absent_after_replay"] == 0
