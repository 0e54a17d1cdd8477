"""Differential testing: one randomized operation sequence, run on a reference ZooKeeper and on a
target, must produce the same results, errors, Stats and watch events on both.

Why this shape:
- The sequence is generated from a seed, so a failure is replayed by its seed alone.
- Several sessions per side issue the operations, but one at a time in a seeded order, and
  after each operation every session makes a round trip (`sync`). ZooKeeper delivers a
  connection's notifications before later replies on it, so after that round trip every event
  the operation fired has arrived, and each operation's events are compared by themselves.
  On an ensemble the sessions sit on different members, and `sync` is also what a ZooKeeper
  client must do to read another session's write through a member that may lag: after it,
  the session's member has applied the operation, so the next operation, from any session,
  sees it. Both sides run the same round trips.
  Within one operation the several events a session receives (a multi, a session's
  ephemerals going at once) are compared as a multiset: ZooKeeper does not order them.
- What legitimately differs between two servers is left out: zxids and times (Stat relations
  that do not depend on their values, like "never modified" = mzxid == czxid, are kept) and
  session ids (an ephemeral owner is compared as the label of the session that owns it).
- Operations are chosen from a model of which nodes exist, fed by the reference's answers, and
  versions are read from the reference by an observer session: both sides always receive the
  identical operation, and the run stops at the first difference.
- Containers are never emptied and TTL nodes live for an hour, so the servers' background
  sweeps (whose timing is theirs to choose) never change the tree during a run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .diff_generator import Generator
from .diff_ops import Op
from .diff_sides import Side, apply


class DifferentialMismatch(AssertionError):
    pass


@dataclass
class Step:
    index: int
    op: Op
    reference: object
    target: object
    reference_events: dict
    target_events: dict


def compare_step(step: Step):
    """The differences between the two sides for one step (empty when they agree)."""
    found = []
    if step.reference != step.target:
        found.append(f"result:\n    reference: {step.reference!r}\n    target:    {step.target!r}")
    for label in sorted(set(step.reference_events) | set(step.target_events)):
        want = step.reference_events.get(label, [])
        got = step.target_events.get(label, [])
        if want != got:
            found.append(f"events of session {label}:\n    reference: {want}\n    target:    {got}")
    return found


def _describe(seed, n_ops, step, problems, history):
    recent = "\n".join(
        f"  #{s.index:>4} {s.op}\n         -> {s.reference!r}" for s in list(history)[-12:]
    )
    return (
        f"differential mismatch at step {step.index} of {n_ops} (seed {seed}; replay with "
        f"KEEPR_DIFF_SEEDS={seed} KEEPR_DIFF_OPS={n_ops})\n"
        f"op: {step.op}\n" + "\n".join(problems) + f"\nrecent steps (reference results):\n{recent}"
    )


def run(reference_endpoints, target_endpoints, seed: int, n_ops: int, base: str, perturb=None):
    """Run `n_ops` seeded operations on both servers (each given as the (host, port) of its
    members) and raise DifferentialMismatch at the first difference. `perturb(op) -> op`, if
    given, changes what the target receives (to prove that a difference is caught). Returns
    the steps (for statistics)."""
    sentinel_dir = f"{base}-sentinels"
    reference = Side("reference", list(reference_endpoints), sentinel_dir)
    target = Side("target", list(target_endpoints), sentinel_dir)
    steps = []
    history = deque(maxlen=12)
    try:
        for side in (reference, target):
            side.start()
            side.sessions[0].client.create(base)
            side.settle()
            side.take_events()
        generator = Generator(seed, base, reference.observer)
        for index in range(1, n_ops + 1):
            op = generator.next()
            if op.kind == "expire":
                # Both sides at once: expiry takes a session timeout.
                cut = [side.cut_session(op.slot) for side in (reference, target)]
                for side, gone in zip((reference, target), cut):
                    side.finish_expiry(op.slot, gone)
                ref_result = tgt_result = "ended"
            else:
                ref_result = apply(reference, op)
                tgt_result = apply(target, perturb(op) if perturb else op)
            reference.settle()
            target.settle()
            step = Step(
                index, op, ref_result, tgt_result, reference.take_events(), target.take_events()
            )
            problems = compare_step(step)
            if problems:
                raise DifferentialMismatch(_describe(seed, n_ops, step, problems, history))
            generator.observe(op, ref_result)
            history.append(step)
            steps.append(step)
    finally:
        reference.close()
        target.close()
    return steps
