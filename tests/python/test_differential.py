"""Differential test: seeded random operation sequences from several sessions, run on a
reference ZooKeeper and on the target at the same time, must give the same results, errors,
Stats, sequential names and watch events (see harness/differential.py for what is compared and
why). With target=zookeeper this compares two ZooKeepers, which must always agree.

KEEPR_DIFF_SEEDS (comma separated, or "random") and KEEPR_DIFF_OPS choose the runs; a failure
names the seed and the step, and the same seed replays the same sequence.
"""

import os
import random
import uuid
from collections import Counter

import pytest

from harness import differential


def seeds():
    chosen = os.environ.get("KEEPR_DIFF_SEEDS", "1,2,3")
    if chosen.strip() == "random":
        return [random.SystemRandom().randrange(1, 2**31)]
    return [int(s) for s in chosen.split(",") if s.strip()]


OPS = int(os.environ.get("KEEPR_DIFF_OPS", "200"))


@pytest.mark.parametrize("seed", seeds())
def test_random_operation_sequences_match_zookeeper(target, reference_zookeeper, seed):
    base = f"/diff-{seed}-{uuid.uuid4().hex[:8]}"
    steps = differential.run(
        reference_zookeeper.endpoints,
        target.endpoints,
        seed,
        OPS,
        base,
    )
    assert len(steps) == OPS
    # The run must have exercised what it claims to compare.
    kinds = Counter(step.op.kind for step in steps)
    assert kinds["create"] and kinds["multi"] and kinds["set"] and kinds["delete"]
    results = [step.reference for step in steps]
    assert any(isinstance(r, tuple) and r[:1] == ("error",) for r in results)
    assert any(any(events for events in step.reference_events.values()) for step in steps)
