"""One run: a private network, an ensemble in it, the workload, a fault plan, recovery, the
final reads on every member, and every checker. `Run` is a context manager that removes
everything it made (processes, namespaces, links, temporary directories) on the way out,
also when a check fails or the test is interrupted.

A run is made of *epochs*: an epoch sets up fresh nodes under `/kf/e<n>`, runs the workload
while the fault plan executes, recovers, reads the final state and checks that epoch's
history on its own. CI scenarios are one epoch on a fresh ensemble; the soak is many epochs
on one long-lived ensemble (its log and snapshots keep growing across them).
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from kazoo.exceptions import NoNodeError

from . import final_state, linearizability, sessions
from .cluster import Cluster
from .history import OK, History
from .nemesis import Nemesis
from .netns import Network
from .workload import Config, Worker, make_client, setup_tree, start_workers

WRITES = {"write", "cas", "create", "delete", "seq-create", "seq-delete"}

# A session that a separate process opens, creates an ephemeral with, and then dies with
# (SIGKILL): its session must expire and the ephemeral go, on every member.
DOOMED_SCRIPT = """
import sys
from kazoo.client import KazooClient
c = KazooClient(hosts=sys.argv[1], timeout=float(sys.argv[3]))
c.start(timeout=60)
c.create(sys.argv[2], b"", ephemeral=True)
print(c.client_id[0], flush=True)
sys.stdin.read()
"""


@dataclass
class EpochResult:
    epoch: int
    ops: int
    counts: dict
    faults: list[str]
    problems: list[str] = field(default_factory=list)
    lin: linearizability.Report | None = None
    seconds_checking: float = 0.0
    seconds_linearizability: float = 0.0
    seconds_waiting_for_expiry: float = 0.0
    session_moves: int = 0
    sessions_expired: int = 0
    facts: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        c = self.counts
        return (f"epoch {self.epoch}: {self.ops} ops (ok {c.get('ok', 0)}, fail {c.get('fail', 0)}, "
                f"info {c.get('info', 0)}), {len(self.faults)} faults, "
                f"{self.session_moves} session moves, {self.sessions_expired} sessions expired, "
                f"checked in {self.seconds_checking:.1f}s (linearizability "
                f"{self.seconds_linearizability:.1f}s, waiting for expiries "
                f"{self.seconds_waiting_for_expiry:.1f}s): "
                + ("OK" if self.ok else f"{len(self.problems)} PROBLEMS"))


class Run:
    def __init__(self, kind: str = "keepr", members: int = 3, binary: str | None = None,
                 initial: list[int] | None = None,
                 seed: int | None = None, workers: int = 6, config: Config | None = None,
                 env: dict | None = None, artifacts: str | None = None, tick_ms: int = 1000,
                 snapshot_every: int = 500):
        self.kind = kind
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.n_workers = workers
        self.config = config or Config()
        self.members = list(range(1, members + 1))
        self.initial = initial or self.members
        self.binary = binary
        self.env = env or {}
        self.tick_ms = tick_ms
        self.snapshot_every = snapshot_every
        self.workdir = Path(tempfile.mkdtemp(prefix=f"keepr-faults-{self.seed}-"))
        self.artifacts = Path(artifacts) if artifacts else None
        self.net: Network | None = None
        self.cluster: Cluster | None = None
        self.epoch = 0
        self._doomed: list[subprocess.Popen] = []
        self._keep_workdir = False
        self.log = print

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> "Run":
        self.log(f"[faults] seed={self.seed} kind={self.kind} workdir={self.workdir}")
        self._old_term = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self.net = Network(self.members).setup()
            self.cluster = Cluster(self.kind, self.net, self.workdir, self.initial,
                                   binary=self.binary, env=self.env, tick_ms=self.tick_ms,
                                   snapshot_every=self.snapshot_every)
            self.cluster.start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _on_sigterm(self, *_):
        raise KeyboardInterrupt("SIGTERM")

    def __exit__(self, exc_type, exc, tb) -> None:
        for p in self._doomed:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        if self.cluster is not None:
            if exc_type is not None:
                self.log(self.cluster.logs(40))
            self.cluster.stop()
        if self.net is not None:
            self.net.teardown()
        if self.artifacts and (exc_type is not None or self._keep_workdir):
            self.artifacts.mkdir(parents=True, exist_ok=True)
            dest = self.artifacts / self.workdir.name
            shutil.copytree(self.workdir, dest, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("log", "snapshots", "version-2"))
            self.log(f"[faults] logs and history kept in {dest}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, self._old_term)

    # -- one epoch ------------------------------------------------------------------------

    def _doomed_session(self, path: str) -> tuple[subprocess.Popen, int]:
        m = self.rng.choice(self.cluster.serving)
        p = subprocess.Popen(
            ["/usr/bin/python3", "-c", DOOMED_SCRIPT, self.cluster.members[m].addr, path,
             str(self.config.session_timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._doomed.append(p)
        line = p.stdout.readline()
        if not line.strip():
            raise RuntimeError("the doomed session's process did not start")
        return p, int(line)

    def epoch_run(self, plan, duration: float | None = None, name: str = "",
                  readers: int = 0) -> EpochResult:
        """Runs the workload while `plan(nemesis)` executes (it returns a list of fact
        dicts), then recovers and checks. `duration` keeps the workload running at least
        that long."""
        self.epoch += 1
        config = replace(self.config, root=f"/kf/e{self.epoch}")
        history = History()
        initial = setup_tree(self.cluster.hosts(), config)
        stop = threading.Event()
        doomed = [self._doomed_session(f"{config.ephemerals}/doomed-{i}") for i in range(2)]
        workers = start_workers(self.cluster, history, config, self.n_workers,
                                self.rng.randrange(1 << 30), stop, readers=readers)
        nemesis = Nemesis(self.cluster, self.net, history, self.rng, config.session_timeout)
        started = time.monotonic()
        facts = []
        try:
            time.sleep(1.0)  # some history before the first fault
            # The doomed sessions' processes die at once: their expiry overlaps the faults.
            for p, _ in doomed:
                p.kill()
                p.wait(timeout=10)
            history.event("killed the doomed sessions' processes")
            facts = plan(nemesis) or []
            nemesis.recover()
            history.event("recovered: network healed, every member ready")
            rest = (duration or 0) - (time.monotonic() - started)
            time.sleep(max(2.0, rest))
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=config.op_timeout + config.session_timeout + 30)
        try:
            self._finish_epoch(config, history, initial, workers, doomed, nemesis, facts, name)
        finally:
            # The workers' sessions stay open through the final reads: their ephemerals
            # must be there.
            for w in workers:
                w.close()
        return self.last_result

    def _finish_epoch(self, config, history, initial, workers, doomed, nemesis, facts, name):
        stuck = [w.name for w in workers if w.is_alive()]
        result = EpochResult(self.epoch, len(history.ops), history.counts(), nemesis.faults,
                             facts=facts)
        result.problems += nemesis.anomalies
        result.problems += [f"worker {w.name} crashed: {w.error!r}" for w in workers if w.error]
        result.problems += [f"worker {n} did not stop" for n in stuck]
        t0 = time.monotonic()
        self._final_checks(config, history, initial, workers,
                           {p[1]: f"{config.ephemerals}/doomed-{i}" for i, p in enumerate(doomed)},
                           result)
        result.seconds_checking = time.monotonic() - t0
        result.session_moves = sum(len(ms) - 1 for w in workers for ms in _session_members(history, w))
        result.sessions_expired = sum(w.expired for w in workers)
        if self.artifacts is not None:
            history.dump(str(self.workdir / f"history-e{self.epoch}.jsonl"))
            if not result.ok:
                self._keep_workdir = True
        self.last_history = history
        self.last_result = result
        self.log(f"[faults] {name} {result.summary()}")
        for p in result.problems:
            self.log(f"[faults]   {p}")

    # -- final state ----------------------------------------------------------------------

    def _read_member(self, m: int, config: Config, history: History):
        """Sync, then read every register, the queue and the ephemerals on member m alone.
        The register reads join the history as sync-reads after everything else."""
        c = make_client([self.cluster.members[m].addr], 10.0)
        c.start(timeout=60)
        try:
            c.sync("/")
            for k in range(config.registers):
                key = f"r{k}"
                op = history.invoke(f"final-m{m}", c._session_id, "sync-read", key, None, member=m)
                c.sync(config.register(key))
                try:
                    data, stat = c.get(config.register(key))
                    history.ok(op, {"data": data.decode(), "version": stat.version,
                                    "czxid": stat.czxid, "mzxid": stat.mzxid})
                except NoNodeError:
                    history.fail(op, "NoNode")
            queue = {}
            for child in c.get_children(config.queue):
                try:
                    queue[child] = c.get(f"{config.queue}/{child}")[0].decode()
                except NoNodeError:
                    pass
            eph = {}
            for child in c.get_children(config.ephemerals):
                st = c.exists(f"{config.ephemerals}/{child}")
                if st is not None:
                    eph[f"{config.ephemerals}/{child}"] = st.ephemeralOwner
            return {config.queue: queue}, eph
        finally:
            c.stop()
            c.close()

    def _final_checks(self, config, history, initial, workers, doomed, result) -> None:
        queues, ephs = {}, {}
        final_members = self.cluster.serving
        for m in final_members:
            queues[m], ephs[m] = self._read_member(m, config, history)
        ops = history.completed()
        t0 = time.monotonic()
        lin = linearizability.check(ops, initial)
        result.seconds_linearizability = time.monotonic() - t0
        result.lin = lin
        if not lin.ok:
            result.problems.append("linearizability:\n" + lin.explain())
        for v in sessions.check(ops):
            result.problems.append("session consistency: " + v.explain())
        result.problems += final_state.check_sequential(ops)
        result.problems += final_state.check_sequential_present(ops, queues)
        serving = {self.cluster.members[m].addr for m in final_members}
        alive = {p: s for w in workers if serving.intersection(w.hosts)
                 for p, s in w.ephemerals_alive.items()}
        gone = {p: s for w in workers for p, s in w.ephemerals_gone.items()}
        gone.update({path: sid for sid, path in doomed.items()})
        # A pinned reader whose member was removed reaches no member any more: its session
        # must expire like a dead client's.
        gone.update({p: s for w in workers if not serving.intersection(w.hosts)
                     for p, s in w.ephemerals_alive.items()})
        problems = final_state.check_ephemerals(alive, gone, ephs)
        if problems:
            # Ended sessions' ephemerals go when the leader expires them: a session timeout
            # (plus a new leader's grace of one more) after the end. Wait for that, bounded.
            t0 = time.monotonic()
            deadline = t0 + 3 * config.session_timeout + 10
            while problems and time.monotonic() < deadline:
                time.sleep(0.5)
                ephs = {m: self._read_member(m, config, History())[1] for m in final_members}
                problems = final_state.check_ephemerals(alive, gone, ephs)
            result.seconds_waiting_for_expiry = time.monotonic() - t0
        result.problems += problems


def _session_members(history: History, worker: Worker):
    """Per session of a worker: the members it was seen connected to."""
    by_session: dict[int, set] = {}
    for op in history.ops:
        if op.process == worker.process and op.session is not None:
            s = by_session.setdefault(op.session, set())
            for m in (op.member, op.member_end):
                if m is not None:
                    s.add(m)
    return [s for s in by_session.values() if s]


def writes_acknowledged_by(history: History, member: int, start_ns: int, end_ns: int):
    """Writes sent to and answered by `member` (the session was on it at both ends) that
    were invoked at or after start_ns and answered successfully before end_ns."""
    return [op for op in history.completed()
            if op.f in WRITES and op.type == OK and op.member == member
            and op.member_end == member and op.start >= start_ns and op.end <= end_ns]
