"""Per-session sequential consistency of reads.

ZooKeeper's reads are not linearizable, but every session sees one order of states that
never goes back, even when the session moves to another member (the handshake refuses a
member that has not seen the session's last zxid), and it sees its own writes. With the
zxids ZooKeeper puts on everything this is checkable exactly:

- a node's `mzxid` is the zxid of the write that gave it its current data; its `czxid` the
  zxid of the create;
- every reply carries the zxid of the member's state when it answered (for a write, the
  write's own zxid).

So, per session and register, the checker keeps a floor:

- `seen_mzxid`: the newest mzxid the session has seen for the register (from its reads and
  from the Stat its own setData/create returned). A later read must not show an older one,
  and a NoNode answer must come from a state at least that new (reply zxid >= floor).
- `absent_at`: the newest state (reply zxid) in which the session saw the node absent (a
  NoNode read, or its own delete). A later read that shows the node must show one created
  after that (czxid > absent_at); an older incarnation would be the past coming back.

and, per session, reply zxids never decrease. Only answered operations count; `info` ones
tell nothing. Violations are reported with both observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .history import FAIL, OK, Op
from .linearizability import describe


@dataclass
class Violation:
    rule: str
    earlier: Op
    later: Op

    def explain(self) -> str:
        return f"{self.rule}:\n    earlier {describe(self.earlier)}\n    later   {describe(self.later)}"


# Ops whose replies carry a Stat of the register they touched.
_STAT_WRITES = {"write", "cas", "create"}
_READS = {"read", "sync-read"}


def check(ops: Iterable[Op]) -> list[Violation]:
    by_session: dict[int, list[Op]] = {}
    for op in ops:
        if op.session is None or op.type not in (OK, FAIL):
            continue
        by_session.setdefault(op.session, []).append(op)
    violations: list[Violation] = []
    for session_ops in by_session.values():
        # One process drives a session, one op at a time: invocation order is session order.
        session_ops.sort(key=lambda op: op.start)
        violations.extend(_check_session(session_ops))
    return violations


def _check_session(ops: list[Op]) -> list[Violation]:
    out: list[Violation] = []
    last_reply = None  # (zxid, op)
    seen_mzxid: dict[str, tuple[int, Op]] = {}
    absent_at: dict[str, tuple[int, Op]] = {}
    for op in ops:
        if op.zxid is not None and op.zxid > 0:
            if last_reply and op.zxid < last_reply[0]:
                out.append(Violation("reply zxid went backwards in one session", last_reply[1], op))
            if not last_reply or op.zxid >= last_reply[0]:
                last_reply = (op.zxid, op)
        stat = _stat_of(op)
        if op.f in _READS:
            if op.type == OK and stat is not None:
                czxid, mzxid = stat
                floor = seen_mzxid.get(op.key)
                if floor and mzxid < floor[0]:
                    rule = ("read does not show the session's own acknowledged write"
                            if floor[1].f in _STAT_WRITES else
                            "read shows an older version than the session saw before")
                    out.append(Violation(rule, floor[1], op))
                gone = absent_at.get(op.key)
                if gone and czxid <= gone[0]:
                    out.append(Violation(
                        "read shows a node the session had already seen deleted or absent",
                        gone[1], op))
            elif op.type == FAIL and op.result == "NoNode" and op.zxid:
                floor = seen_mzxid.get(op.key)
                if floor and op.zxid < floor[0]:
                    out.append(Violation(
                        "NoNode from a state older than one the session saw", floor[1], op))
        if stat is not None:
            _raise(seen_mzxid, op.key, stat[1], op)
        if op.type == FAIL and op.result == "NoNode" and op.zxid:
            _raise(absent_at, op.key, op.zxid, op)
        if op.f == "delete" and op.type == OK and op.zxid:
            _raise(absent_at, op.key, op.zxid, op)
    return out


def _raise(floors, key, zxid, op):
    cur = floors.get(key)
    if cur is None or zxid > cur[0]:
        floors[key] = (zxid, op)


def _stat_of(op: Op):
    """(czxid, mzxid) from an ok op's result, when it returned a Stat."""
    if op.type != OK:
        return None
    r = op.result
    if isinstance(r, dict) and "mzxid" in r:
        return r["czxid"], r["mzxid"]
    return None
