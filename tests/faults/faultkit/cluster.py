"""Ensemble member processes inside their network namespaces: keepr, or Apache ZooKeeper 3.8
(Debian's package) for the availability comparison.

Every member listens on its own address with the standard ports (2181 clients, 7071 peers,
9090 HTTP for keepr; 2181, 2888, 3888 for ZooKeeper). Processes are started from the
thread that owns the cluster, prefixed with `setpriv --pdeathsig KILL` so none outlives the
test process, and stopped by PID: SIGKILL for a crash, SIGTERM for a clean stop. A member's
log is appended to across restarts, with a marker line per start, and its tail goes into
failure reports.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .netns import Network

ZK_CLIENT_PORT = 2181
KEEPR_PEER_PORT = 7071
KEEPR_GRPC_PORT = 7070
KEEPR_HTTP_PORT = 9090
ZK_QUORUM_PORT, ZK_ELECTION_PORT = 2888, 3888
ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
ZK_LOG4J = """log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %p %c{1}: %m%n
"""


class ClusterError(RuntimeError):
    pass


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    """Polls `pred` until it returns a true value (returned) or the deadline passes. Used
    only for states of other processes that have no event to wait on (a member becoming
    ready, a leader being elected)."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def four_letter_word(ip: str, word: str, timeout: float = 1.0) -> str:
    try:
        with socket.create_connection((ip, ZK_CLIENT_PORT), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def _setpriv(argv: list[str]) -> list[str]:
    tool = shutil.which("setpriv")
    return [tool, "--pdeathsig", "KILL", "--", *argv] if tool else argv


class Member:
    """One member process (kind "keepr" or "zookeeper")."""

    def __init__(self, cluster: "Cluster", mid: int):
        self.cluster = cluster
        self.id = mid
        self.data_dir = cluster.workdir / f"m{mid}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = cluster.workdir / f"m{mid}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        # keepr only: peer addresses to `--join` through instead of bootstrapping.
        self.join: list[str] | None = None

    @property
    def ip(self) -> str:
        return self.cluster.net.ip(self.id)

    @property
    def addr(self) -> str:
        return f"{self.ip}:{ZK_CLIENT_PORT}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        c = self.cluster
        if c.kind == "keepr":
            if self.join is not None:
                membership = ["--join", ",".join(self.join)]
            else:
                membership = ["--initial-members", ",".join(
                    f"{m}={c.net.ip(m)}:{KEEPR_PEER_PORT}" for m in c.initial)]
            return [
                c.binary, "server", "--id", str(self.id), "--data-dir", str(self.data_dir),
                "--zk", self.addr, "--grpc", f"{self.ip}:{KEEPR_GRPC_PORT}",
                "--peer", f"{self.ip}:{KEEPR_PEER_PORT}", "--http", f"{self.ip}:{KEEPR_HTTP_PORT}",
                *membership, "--cluster-token", c.net.prefix,
                "--four-letter-words", "*", "--tick-ms", str(c.tick_ms),
                "--snapshot-every", str(c.snapshot_every), *c.extra_args,
            ]
        cfg = self.data_dir / "zoo.cfg"
        (self.data_dir / "myid").write_text(str(self.id))
        lines = [
            f"tickTime={c.tick_ms}", "initLimit=10", "syncLimit=5", f"dataDir={self.data_dir}",
            f"clientPort={ZK_CLIENT_PORT}", f"clientPortAddress={self.ip}",
            "4lw.commands.whitelist=*", "maxClientCnxns=0", "admin.enableServer=false",
        ] + [f"server.{m}={c.net.ip(m)}:{ZK_QUORUM_PORT}:{ZK_ELECTION_PORT}" for m in c.initial]
        cfg.write_text("\n".join(lines) + "\n")
        return ["java", "-Xmx512m", "-cp", f"{c.workdir}:{ZK_CLASSPATH}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]

    def start(self) -> None:
        if self.alive:
            raise ClusterError(f"member {self.id} is already running")
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} "
                      f"(monotonic {time.monotonic():.3f}) =====\n")
            log.flush()
            env = dict(os.environ)
            env.update(self.cluster.env)
            self.proc = subprocess.Popen(
                _setpriv(["ip", "netns", "exec", self.cluster.net.ns(self.id), *self.argv()]),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    @property
    def peer(self) -> str:
        return f"{self.ip}:{KEEPR_PEER_PORT}"

    def wipe(self) -> None:
        """Deletes the data directory (the member must be stopped): a lost disk."""
        if self.alive:
            raise ClusterError(f"member {self.id} is running")
        shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    # -- status ---------------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """keepr's /metrics as name -> value (unlabelled series only); {} if unreachable."""
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{KEEPR_HTTP_PORT}/metrics", timeout=1) as r:
                text = r.read().decode()
        except (OSError, urllib.error.URLError):
            return {}
        out = {}
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(2))
                except ValueError:
                    pass
        return out

    def ready(self) -> bool:
        if not self.alive:
            return False
        if self.cluster.kind == "keepr":
            try:
                with urllib.request.urlopen(f"http://{self.ip}:{KEEPR_HTTP_PORT}/readyz", timeout=1) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False
        return self.mode() in ("leader", "follower")

    def mode(self) -> str:
        text = four_letter_word(self.ip, "srvr")
        m = re.search(r"Mode: (\w+)", text)
        return m.group(1) if m else ""


class Cluster:
    def __init__(self, kind: str, net: Network, workdir: Path, initial: list[int],
                 binary: str | None = None, tick_ms: int = 1000, snapshot_every: int = 500,
                 env: dict | None = None, extra_args: tuple = ()):
        if kind not in ("keepr", "zookeeper"):
            raise ValueError(kind)
        if kind == "keepr" and not binary:
            raise ValueError("a keepr cluster needs the binary")
        self.kind, self.net, self.workdir = kind, net, Path(workdir)
        self.initial = list(initial)
        self.binary = binary
        self.tick_ms = tick_ms
        self.snapshot_every = snapshot_every
        self.env = dict(env or {})
        self.extra_args = tuple(extra_args)
        if kind == "zookeeper":
            (self.workdir / "log4j.properties").write_text(ZK_LOG4J)
        # Every member the network has; only `initial` ones start with the ensemble, the
        # others can join later. `retired` ones were removed on purpose and stay down.
        self.members = {m: Member(self, m) for m in net.members}
        self.retired: set[int] = set()
        # keepr's id of each member (`keepr members` takes ids): the initial ones are their
        # ordinals, a member that joined gets a new incarnation. A retired member's stays,
        # as its announcements are still listed among the candidates for a while.
        self.ids: dict[int, str] = {m: str(m) for m in self.initial}

    def start(self, timeout: float = 90.0) -> "Cluster":
        for m in self.initial:
            self.members[m].start()
        self.wait_ready(timeout, ids=self.initial)
        return self

    @property
    def serving(self) -> list[int]:
        """Members that should be running: started once and not retired."""
        return [i for i, m in self.members.items() if m.starts and i not in self.retired]

    def admin(self, *args: str, via: int | None = None, timeout: float = 60.0) -> str:
        """`keepr members --endpoint <via's admin address> ARGS`; its output, or an error
        with what it printed."""
        via = via if via is not None else self.wait_leader(timeout=60)
        ep = f"{self.members[via].ip}:{KEEPR_GRPC_PORT}"
        p = subprocess.run([self.binary, "members", "--endpoint", ep, *args],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise ClusterError(f"keepr members {' '.join(args)} via {via}: "
                               f"{p.stderr.strip() or p.stdout.strip()}")
        return p.stdout

    def stop(self) -> None:
        for m in self.members.values():
            m.stop()

    def hosts(self, ids=None) -> str:
        ids = self.serving if ids is None else ids
        return ",".join(self.members[i].addr for i in ids)

    def live(self) -> list[int]:
        return [i for i, m in self.members.items() if m.alive]

    def wait_ready(self, timeout: float = 60.0, ids=None) -> None:
        ids = self.live() if ids is None else ids

        def ready():
            for i in ids:
                m = self.members[i]
                if not m.alive:
                    raise ClusterError(f"member {i} exited while starting:\n{m.log_tail()}")
                if not m.ready():
                    return False
            return True
        wait_for(ready, timeout, f"members {ids} ready")

    def leader(self, among=None) -> int | None:
        """The member that leads now, as the members themselves report it: for keepr the
        leader with the highest term among those that say they lead; None if none does."""
        among = self.live() if among is None else among
        best = None
        for i in among:
            m = self.members[i]
            if self.kind == "keepr":
                x = m.metrics()
                if x.get("keepr_raft_is_leader") == 1:
                    term = x.get("keepr_raft_term", 0)
                    if best is None or term > best[0]:
                        best = (term, i)
            elif m.mode() in ("leader", "standalone"):
                best = (0, i)
        return best[1] if best else None

    def wait_leader(self, timeout: float = 60.0, among=None, not_=None) -> int:
        def found():
            lead = self.leader(among)
            return lead if lead is not None and lead != not_ else None
        return wait_for(found, timeout, f"a leader among {among or self.live()} other than {not_}")

    def wait_caught_up(self, m: int, timeout: float = 90.0) -> None:
        """keepr: waits until member m applied everything the leader had committed when the
        wait began, so a quorum holds every acknowledged entry again before the next fault."""
        if self.kind != "keepr":
            return self.wait_ready(timeout, ids=[m])
        lead = self.wait_leader(timeout=timeout)
        target = wait_for(lambda: self.members[lead].metrics().get("keepr_raft_commit_index"),
                          timeout, f"the commit index of leader {lead}")
        wait_for(lambda: self.members[m].metrics().get("keepr_raft_applied_index", -1) >= target,
                 timeout, f"member {m} applying up to {target:.0f}")

    def logs(self, lines: int = 30) -> str:
        return "\n".join(f"--- member {i} ({m.log_path}) ---\n{m.log_tail(lines)}"
                         for i, m in self.members.items())
