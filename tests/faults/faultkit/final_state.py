"""What must hold once the faults are healed and every member has caught up (each is read
after a `sync` on a session connected to that member alone):

- Registers: the final value of each register, read on every member, is appended to the
  history as a sync-read after everything else, so the linearizability checker proves that
  the last acknowledged write survived (and that members agree: they must all fit one
  linearization at the same point).
- Sequential nodes (`check_sequential`, `check_sequential_present`): two acknowledged creates
  never got the same name, a create that began after another was acknowledged got a higher
  sequence number, every acknowledged create that no delete may have removed is present on
  every member, every acknowledged delete stuck, and every node present was asked for by
  some create (its data names the operation).
- Ephemerals (`check_ephemerals`): those of sessions still alive are present, owned by
  their session, on every member; those of sessions closed or expired are gone everywhere.
"""

from __future__ import annotations

from typing import Iterable

from .history import INFO, OK, Op


def _seq(path: str) -> int:
    return int(path[-10:])


def check_sequential(ops: Iterable[Op]) -> list[str]:
    """Names of acknowledged sequential creates: unique, and ordered like real time."""
    problems: list[str] = []
    by_parent: dict[str, list[Op]] = {}
    for op in ops:
        if op.f == "seq-create" and op.type == OK:
            by_parent.setdefault(op.key, []).append(op)
    for parent, creates in by_parent.items():
        names: dict[str, Op] = {}
        for op in creates:
            other = names.get(op.result)
            if other is not None:
                problems.append(f"{op.result} was handed out twice (ops #{other.id} and #{op.id})")
            names[op.result] = op
        # Sweep by time: when B starts, every op that ended before it must have a lower seq.
        by_end = sorted(creates, key=lambda o: o.end)
        best = None  # the op with the highest seq among those ended so far
        i = 0
        for b in sorted(creates, key=lambda o: o.start):
            while i < len(by_end) and by_end[i].end < b.start:
                a = by_end[i]
                if best is None or _seq(a.result) > _seq(best.result):
                    best = a
                i += 1
            if best is not None and _seq(b.result) <= _seq(best.result):
                problems.append(
                    f"{parent}: {b.result} (op #{b.id}) is not after {best.result} (op #{best.id}), "
                    f"which was acknowledged before #{b.id} was sent")
    return problems


def check_sequential_present(ops: Iterable[Op], seen: dict[int, dict[str, dict[str, str]]]) -> list[str]:
    """`seen[member][parent][child name] = data` as read on each member at the end."""
    ops = list(ops)
    creates = [o for o in ops if o.f == "seq-create"]
    deletes = [o for o in ops if o.f == "seq-delete"]
    acked_deleted = {o.value for o in deletes if o.type == OK}
    maybe_deleted = {o.value for o in deletes if o.type == INFO} | acked_deleted
    data_known = {(o.key, o.value) for o in creates}
    problems: list[str] = []
    for member, parents in sorted(seen.items()):
        present = {f"{parent}/{name}" for parent, children in parents.items() for name in children}
        for o in creates:
            if o.type == OK and o.result not in maybe_deleted and o.result not in present:
                problems.append(f"member {member}: acknowledged create {o.result} (op #{o.id}) is missing")
        for path in sorted(acked_deleted & present):
            problems.append(f"member {member}: {path} is present although its delete was acknowledged")
        for parent, children in parents.items():
            for name, data in children.items():
                if (parent, data) not in data_known:
                    problems.append(
                        f"member {member}: {parent}/{name} holds {data!r}, which no create sent")
    return problems


def check_ephemerals(alive: dict[str, int], gone: dict[str, int],
                     seen: dict[int, dict[str, int]]) -> list[str]:
    """`alive`/`gone`: ephemeral path -> owner session; `seen[member][path] = owner`."""
    problems: list[str] = []
    for member, nodes in sorted(seen.items()):
        for path, owner in sorted(alive.items()):
            if path not in nodes:
                problems.append(f"member {member}: ephemeral {path} of live session {owner:#x} is missing")
            elif nodes[path] != owner:
                problems.append(f"member {member}: ephemeral {path} is owned by {nodes[path]:#x}, not {owner:#x}")
        for path, owner in sorted(gone.items()):
            if path in nodes:
                problems.append(
                    f"member {member}: ephemeral {path} of ended session {owner:#x} is still there")
    return problems
