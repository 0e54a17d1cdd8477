"""The soak: one long-lived 3-member ensemble, epoch after epoch of load with random faults of
every kind, membership changes included, each epoch checked on its own. Runs only with
`--soak-minutes N`; writes a JSON summary (operations checked, faults injected, anomalies)
next to the artifacts.

    /usr/bin/python3 -m pytest test_soak.py --soak-minutes 30 --keepr-bin PATH -s
"""

from __future__ import annotations

import collections
import json
import os
import time

import pytest

from faultkit.nemesis import ALL_FAULTS
from faultkit.runner import Run
from faultkit.workload import Config

EPOCH_SECONDS = 90


def test_soak_with_every_fault_kind_finds_no_anomaly(keepr_bin, seed, artifacts, soak_minutes):
    if soak_minutes <= 0:
        pytest.skip("the soak runs only with --soak-minutes N")
    deadline = time.monotonic() + soak_minutes * 60
    results = []
    fault_counts = collections.Counter()
    started = time.time()
    # More registers than in CI: fewer operations per register keep the linearizability
    # search (exponential in per-register concurrency) fast over long epochs. Five member
    # slots, three serving: grow-shrink joins the two spare ones, then removes two.
    with Run(binary=keepr_bin, seed=seed, artifacts=artifacts, workers=6,
             config=Config(registers=8), members=5, initial=[1, 2, 3]) as run:
        while time.monotonic() < deadline:
            n_faults = run.rng.randint(3, 6)

            def plan(nemesis, n_faults=n_faults):
                facts = []
                for _ in range(n_faults):
                    kind, fact = nemesis.random_fault(ALL_FAULTS)
                    fault_counts[kind] += 1
                    facts.append({"kind": kind, **{k: v for k, v in fact.items()
                                                   if isinstance(v, (int, str, bool))}})
                    time.sleep(run.rng.uniform(0.5, 3.0))
                return facts
            results.append(run.epoch_run(plan, duration=EPOCH_SECONDS, readers=3,
                                         name=f"soak {len(results) + 1}"))
        members = {m: run.cluster.ids[m] for m in run.cluster.serving}
    summary = {
        "seed": seed,
        "minutes": round((time.time() - started) / 60, 1),
        "epochs": len(results),
        "operations": sum(r.ops for r in results),
        "linearizability_checked_ops": sum(r.lin.checked_ops for r in results if r.lin),
        "outcomes": dict(sum((collections.Counter(r.counts) for r in results), collections.Counter())),
        "faults": dict(fault_counts),
        "members_at_end": members,
        "session_moves": sum(r.session_moves for r in results),
        "sessions_expired": sum(r.sessions_expired for r in results),
        "anomalies": [p for r in results for p in r.problems],
        "checking_seconds": round(sum(r.seconds_checking for r in results), 1),
    }
    os.makedirs(artifacts, exist_ok=True)
    out = os.path.join(artifacts, f"soak-{seed}.json")
    with open(out, "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    assert not summary["anomalies"], f"anomalies found; summary in {out}"
