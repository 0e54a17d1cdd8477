"""Linearizability of the registers' writes, conditional writes and reads-after-sync.

ZooKeeper promises linearizable writes and sequentially consistent reads. keepr's `sync`
goes further than ZooKeeper's (it asks the leader for a Raft read index, confirmed by a
quorum, and waits until the member applied it), so a read issued right after a `sync` on the
same session must be linearizable too. The checker therefore takes every register operation
except plain reads (those are judged per session, in `sessions.py`) and searches for a
linearization.

The search is Wing & Gong's, with Lowe's improvements (as in Knossos and Porcupine):

- **P-compositionality**: a history is linearizable iff each register's sub-history is, so
  each register is checked on its own (the search is exponential in concurrency, not in
  history length, and per-key histories are short).
- **Memoisation**: a (set of linearized operations, register state) pair that was explored
  once is never explored again; the set is a bitmask (a Python int).
- **Indeterminate operations**: an `info` operation may have taken effect at any point after
  its invocation, or never. It has no return event: the search may linearize it anywhere
  after its call, and the history is linearizable once every *completed* operation is. Only
  its effectful branch is tried; "had no effect" is the same as leaving it out.
- **Symmetry of anonymous indeterminate writes**: an indeterminate write whose value no
  sync-read ever returned can only show through the version it bumps, so two such writes of
  the same kind (same expected version) are interchangeable. The search only ever applies
  the earliest-invoked unused one of a kind, which is sound (if some set of them fits, the
  earliest ones fit at the same points) and turns 2^k subsets into k+1 counts. Without this
  a run with many ConnectionLoss writes takes exponential time.
- **Deadlines for observed indeterminate writes**: an indeterminate write whose value some
  sync-read returned must have taken effect before that read answered, so it gets a return
  event at the earliest such answer and is no longer pending forever. Sound for the same
  reason, and it keeps the writes that a leader crash leaves unanswered but committed from
  being re-tried at every later step.
- Definite errors (`fail`) are observations too: a BadVersion must be linearized at a point
  where the version differed, a NoNode where the node was absent.

The register model (`RegisterModel`) is ZooKeeper's: a node that is absent or holds
(data, version); setData increments the version and returns it (in the Stat: an ok result
is a dict with `data`, `version`, `czxid`, `mzxid`), a versioned
setData is compare-and-set on the version, create starts at version 0, delete removes it.
Every write in the workload writes a unique value, which makes the search tightly
constrained: a read of value v can only follow the write of v.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from .history import FAIL, INFO, OK, Op

# The ops this checker judges; plain `read`s are sequentially consistent only.
CHECKED = {"write", "cas", "sync-read", "create", "delete"}

ABSENT = None
# The data of a write no read ever returned: it can never match a read.
ANONYMOUS = object()


class RegisterModel:
    """Steps a register state (None = absent, else (data, version)) through one completed or
    indeterminate operation. Returns the new state, or `NotImplemented` when the operation
    cannot be linearized in this state."""

    @staticmethod
    def step(state, op: Op):
        f, kind, res = op.f, op.type, op.result
        present = state is not ABSENT
        if f == "write":
            if kind == FAIL:
                return state if (res == "NoNode" and not present) else NotImplemented
            if not present:
                return NotImplemented
            new = (_data(op, op.value), state[1] + 1)
            if kind == OK and res["version"] != new[1]:
                return NotImplemented
            return new
        if f == "cas":
            expected, data = op.value
            if kind == FAIL:
                if res == "NoNode":
                    return state if not present else NotImplemented
                if res == "BadVersion":
                    return state if (present and state[1] != expected) else NotImplemented
                return NotImplemented
            if not present or state[1] != expected:
                return NotImplemented
            new = (_data(op, data), expected + 1)
            if kind == OK and res["version"] != new[1]:
                return NotImplemented
            return new
        if f == "sync-read":
            if kind == FAIL:
                return state if (res == "NoNode" and not present) else NotImplemented
            return state if (present and state == (res["data"], res["version"])) else NotImplemented
        if f == "create":
            if kind == FAIL:
                return state if (res == "NodeExists" and present) else NotImplemented
            return (_data(op, op.value), 0) if not present else NotImplemented
        if f == "delete":
            expected = op.value
            if kind == FAIL:
                if res == "NoNode":
                    return state if not present else NotImplemented
                if res == "BadVersion":
                    ok = present and expected != -1 and state[1] != expected
                    return state if ok else NotImplemented
                return NotImplemented
            if present and (expected == -1 or state[1] == expected):
                return ABSENT
            return NotImplemented
        raise ValueError(f"the register model has no operation {f!r}")


def _data(op: Op, data):
    return ANONYMOUS if getattr(op, "anonymous", False) else data


def _symmetry_class(op: Op):
    """Indeterminate writes that are interchangeable for the search, or None."""
    if op.type != INFO:
        return None
    if op.f == "delete":
        return ("delete", op.value)
    if not getattr(op, "anonymous", False):
        return None
    if op.f == "cas":
        return ("cas", op.value[0])
    return (op.f,)


@dataclass
class KeyResult:
    key: str
    ok: bool
    ops: int
    explored: int
    # When not linearizable: the deepest consistent prefix found, the state it leaves,
    # and the completed operations none of which could come next.
    prefix: list[Op] = field(default_factory=list)
    state: Any = None
    stuck: list[Op] = field(default_factory=list)
    gave_up: bool = False

    def explain(self) -> str:
        if self.ok:
            return f"{self.key}: linearizable ({self.ops} ops, {self.explored} states)"
        if self.gave_up:
            return f"{self.key}: undecided after exploring {self.explored} states"
        lines = [f"{self.key}: NOT linearizable ({self.ops} ops)"]
        lines.append(f"  longest linearizable prefix ({len(self.prefix)} ops) ends with:")
        for op in self.prefix[-8:]:
            lines.append(f"    {describe(op)}")
        lines.append(f"  leaving state {self.state!r}; none of these can come next:")
        for op in self.stuck[:8]:
            lines.append(f"    {describe(op)}")
        return "\n".join(lines)


def describe(op: Op) -> str:
    end = "inf" if op.end is None else f"{op.end / 1e9:.6f}"
    return (f"#{op.id} {op.process} session={op.session and hex(op.session)} "
            f"{op.f}({op.key}, {op.value!r}) -> {op.type} {op.result!r} "
            f"[{op.start / 1e9:.6f}, {end}] zxid={op.zxid} member={op.member}")


class _Entry:
    __slots__ = ("op", "bit", "is_call", "match", "prev", "next", "cls", "rank")

    def __init__(self, op, bit, is_call):
        self.op, self.bit, self.is_call = op, bit, is_call
        self.match = None
        self.cls, self.rank = None, 0
        self.prev = self.next = None


def _build_list(ops: list[Op]) -> _Entry:
    """A doubly linked list of call and return events in time order, behind a sentinel.
    At equal times calls sort first, which treats the two ops as concurrent (the lenient
    reading). Indeterminate ops have a call only."""
    events = []
    ranks: dict = {}
    for bit, op in sorted(enumerate(ops), key=lambda p: p[1].start):
        call = _Entry(op, bit, True)
        call.cls = _symmetry_class(op)
        if call.cls is not None:
            call.rank = ranks.get(call.cls, 0)
            ranks[call.cls] = call.rank + 1
        events.append((op.start, 0, bit, call))
        end = op.end if op.type != INFO else getattr(op, "deadline", None)
        if end is not None:
            ret = _Entry(op, bit, False)
            call.match = ret
            events.append((end, 1, bit, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, -1, False)
    prev = head
    for *_, e in events:
        prev.next, e.prev = e, prev
        prev = e
    return head


def _lift(e: _Entry) -> None:
    e.prev.next = e.next
    if e.next:
        e.next.prev = e.prev
    m = e.match
    if m is not None:
        m.prev.next = m.next
        if m.next:
            m.next.prev = m.prev


def _unlift(e: _Entry) -> None:
    m = e.match
    if m is not None:
        m.prev.next = m
        if m.next:
            m.next.prev = m
    e.prev.next = e
    if e.next:
        e.next.prev = e


def check_key(key: str, ops: list[Op], initial=ABSENT, model=RegisterModel,
              max_states: int = 5_000_000) -> KeyResult:
    """Searches for a linearization of one register's operations."""
    observed: dict = {}  # value -> earliest answer of a sync-read that returned it
    for op in ops:
        if op.f == "sync-read" and op.type == OK and isinstance(op.result, dict):
            v = op.result.get("data")
            observed[v] = min(op.end, observed.get(v, op.end))
    for op in ops:
        seen_by = observed.get(_written(op)) if op.type == INFO else None
        op.anonymous = op.type == INFO and seen_by is None
        op.deadline = seen_by if seen_by is not None and seen_by > op.start else None
    head = _build_list(ops)
    used: dict = {}  # symmetry class -> how many of its ops are linearized
    # Ops with a return event must be linearized; the others (indeterminate) may be.
    remaining = sum(1 for op in ops if op.type != INFO or op.deadline is not None)
    state = initial
    linearized = 0
    seen: set = set()
    # Depth-first: each frame holds the entries that may come next (calls before the
    # first remaining return) and how many of them were tried. The entries that must be
    # linearized are tried before the optional (indeterminate) ones: the same search
    # space, but a history in which the unanswered writes never happened (the common
    # case after a crash) is found without first trying every combination of them.
    frames: list[list] = [[_candidates(head), 0, None, initial]]
    best: list[_Entry] = []
    best_state = initial
    explored = 0
    while remaining > 0:
        frame = frames[-1]
        cands, i = frame[0], frame[1]
        if i >= len(cands):
            frames.pop()
            if not frames:
                return KeyResult(key, False, len(ops), explored,
                                 prefix=[b.op for b in best], state=best_state,
                                 stuck=_stuck_after(ops, best, best_state, model))
            top, state = frame[2], frame[3]
            linearized &= ~(1 << top.bit)
            if top.match is not None:
                remaining += 1
            if top.cls is not None:
                used[top.cls] = top.rank
            _unlift(top)
            continue
        frame[1] = i + 1
        entry = cands[i]
        if entry.cls is not None and used.get(entry.cls, 0) != entry.rank:
            continue
        new = model.step(state, entry.op)
        if new is NotImplemented:
            continue
        lin = linearized | (1 << entry.bit)
        k = (lin, new)
        if k in seen:
            continue
        seen.add(k)
        explored += 1
        if explored > max_states:
            return KeyResult(key, False, len(ops), explored, gave_up=True)
        _lift(entry)
        if entry.match is not None:
            remaining -= 1
        if entry.cls is not None:
            used[entry.cls] = entry.rank + 1
        frames.append([_candidates(head), 0, entry, state])
        state, linearized = new, lin
        if len(frames) > len(best) + 1:
            best = [f[2] for f in frames[1:]]
            best_state = state
    return KeyResult(key, True, len(ops), explored)


def _candidates(head: _Entry) -> list[_Entry]:
    """The calls before the first remaining return, obligatory ones first."""
    must, may = [], []
    e = head.next
    while e is not None and e.is_call:
        (must if e.match is not None else may).append(e)
        e = e.next
    return must + may


def _written(op: Op):
    if op.f == "cas":
        return op.value[1]
    if op.f in ("write", "create"):
        return op.value
    return None


def _stuck_after(ops, best, state, model) -> list[Op]:
    """The completed ops outside the best prefix that were due first (earliest return):
    the ones a reader should look at."""
    done = {id(e.op) for e in best}
    left = [op for op in ops if id(op) not in done and op.type != INFO]
    left.sort(key=lambda op: op.end)
    return left[:8]


@dataclass
class Report:
    results: list[KeyResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def checked_ops(self) -> int:
        return sum(r.ops for r in self.results)

    def explain(self) -> str:
        return "\n".join(r.explain() for r in self.results if not r.ok) or "linearizable"


def check(ops: Iterable[Op], initial: Optional[dict] = None,
          max_states: int = 5_000_000) -> Report:
    """Checks every register in the history; `initial` maps keys to their state before the
    history (absent when not given)."""
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        if op.f not in CHECKED:
            continue
        if op.f == "sync-read" and op.type == INFO:
            continue  # a read with no answer constrains nothing
        by_key.setdefault(op.key, []).append(op)
    initial = initial or {}
    return Report([check_key(k, v, initial.get(k, ABSENT), max_states=max_states)
                   for k, v in sorted(by_key.items())])
