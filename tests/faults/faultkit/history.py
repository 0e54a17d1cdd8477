"""A history of client operations, as the checkers read it.

Every operation is an *invoke* event followed by exactly one completion:

- `ok`: the server answered with success; `result` holds what it returned.
- `fail`: the server answered with a definite error (BadVersion, NoNode, NodeExists...).
  The operation did not change anything, and the error itself is an observation that the
  checkers use (a BadVersion says the version differed when the write was applied).
- `info`: the outcome is unknown (ConnectionLoss, SessionExpired, a client-side timeout).
  The operation may have taken effect at any time after its invocation, or never.

Times come from one monotonic clock (`time.monotonic_ns`) in this process, so "A completed
before B was invoked" is a real-time order the linearizability checker may rely on.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"


def now_ns() -> int:
    return time.monotonic_ns()


@dataclass
class Op:
    """One operation with its completion. `end` is None while it runs (and stays None for
    `info`, which may take effect until the end of time)."""

    id: int
    process: str  # the worker; one operation at a time per process
    session: Optional[int]  # ZooKeeper session id the op was sent on, if known
    f: str  # read, sync-read, write, cas, create, delete, seq-create, seq-delete, ...
    key: str  # register name or node path
    value: Any  # what the op asked for (data written, expected version, ...)
    start: int
    end: Optional[int] = None
    type: str = INVOKE
    result: Any = None  # ok: what came back; fail: the error name; info: the reason
    zxid: Optional[int] = None  # the reply header's zxid, when there was a reply
    member: Optional[int] = None  # which member the session was connected to at invoke
    member_end: Optional[int] = None  # ... and when the answer came


class History:
    """Thread-safe recorder. Workers call `invoke`, then exactly one of `ok`, `fail`, `info`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self.ops: list[Op] = []
        # Nemesis events (kills, partitions) with times, for the report and availability.
        self.events: list[tuple[int, str]] = []

    def invoke(self, process, session, f, key, value, member=None) -> Op:
        op = Op(next(self._ids), process, session, f, key, value, now_ns(), member=member)
        with self._lock:
            self.ops.append(op)
        return op

    def _complete(self, op: Op, kind: str, result, zxid) -> Op:
        if op.type != INVOKE:
            raise ValueError(f"op {op.id} completed twice")
        op.result = result
        op.zxid = zxid
        op.type = kind
        op.end = None if kind == INFO else now_ns()
        return op

    def ok(self, op: Op, result=None, zxid=None) -> Op:
        return self._complete(op, OK, result, zxid)

    def fail(self, op: Op, error: str, zxid=None) -> Op:
        return self._complete(op, FAIL, error, zxid)

    def info(self, op: Op, reason: str) -> Op:
        return self._complete(op, INFO, reason, None)

    def event(self, what: str) -> None:
        with self._lock:
            self.events.append((now_ns(), what))

    def completed(self) -> list[Op]:
        """Every op, with any still running turned into `info` (the run ended before it did)."""
        with self._lock:
            ops = list(self.ops)
        for op in ops:
            if op.type == INVOKE:
                op.type, op.result = INFO, "still running at the end of the run"
        return ops

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.completed():
            out[op.type] = out.get(op.type, 0) + 1
        return out

    def dump(self, path: str) -> None:
        """Writes the history as JSON lines, for a failing run's artifacts."""
        with open(path, "w") as f:
            for op in self.completed():
                f.write(json.dumps(asdict(op), default=repr) + "\n")
            for t, what in self.events:
                f.write(json.dumps({"event": what, "time": t}) + "\n")
