"""Three-member ensembles on 127.0.0.1, and what tests do to their members: find the leader,
SIGKILL a member, restart it on its data directory.

An ensemble is a target like a single server (`hosts`, `endpoints`), so the suites run against
it unchanged; the failure tests also reach into its members. Two kinds exist: keepr (`keepr
server` with `--initial-members`) and, to check that a test asks only what ZooKeeper itself
guarantees, Apache ZooKeeper (`QuorumPeerMain` with a `server.N=` list), both configured like
the single servers in `servers.py`.

A member is SIGKILLed, never asked to stop, when a test wants a failure: that is the crash the
ensemble must survive. Every process is ours, stopped by its PID; a restarted member reuses its
ports and data directory, so it comes back as itself.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import servers

SIZE = 3
# Bound for a member (or a whole ensemble) to start, and for an election to end.
READY_DEADLINE_S = 90.0


@dataclass
class Member:
    """One member process; `argv` restarts it exactly as it was first started."""

    number: int  # 1-based, ZooKeeper's myid / keepr's --id
    kind: str  # "keepr" or "zookeeper"
    port: int  # client (ZooKeeper protocol) port
    argv: list
    work_dir: Path
    http_port: int | None = None  # keepr's /readyz
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "server.log"

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.process = servers.spawn(self.argv, self.work_dir, self.log_path)

    def mode(self) -> str | None:
        """ "leader" or "follower" as `srvr` reports it, None while it has no answer."""
        try:
            answer = servers.four_letter_word(self.host, self.port, "srvr", timeout=2.0)
        except OSError:
            return None
        for line in answer.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def ready(self) -> bool:
        """Serving clients as a member of a quorum: keepr's `/readyz`; for ZooKeeper, `srvr`
        names a role (it answers "not currently serving requests" while it has none)."""
        if self.kind == "keepr":
            return servers.keepr_ready(self.http_port)
        return self.mode() in ("leader", "follower")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what a crash or an OOM kill does."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=servers.STOP_DEADLINE_S)

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=servers.STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Ensemble:
    kind: str  # "keepr3" or "zookeeper3"
    members: list
    work_dir: Path

    @property
    def hosts(self) -> str:
        """The connect string naming every member (kazoo picks one at random)."""
        return ",".join(m.hosts for m in self.members)

    @property
    def endpoints(self) -> list:
        return [(m.host, m.port) for m in self.members]

    def wait_ready(self, members=None, deadline_s: float = READY_DEADLINE_S) -> None:
        """Poll until every given member (all by default) is ready; a member that exits is
        reported with its log."""
        waiting = list(members if members is not None else self.members)
        deadline = time.monotonic() + deadline_s
        while waiting:
            for member in list(waiting):
                if not member.alive:
                    raise servers.ServerStartError(
                        f"{self.kind} member {member.number} exited with "
                        f"{member.process.returncode}:\n{member.log_tail()}"
                    )
                if member.ready():
                    waiting.remove(member)
            if not waiting:
                return
            if time.monotonic() > deadline:
                tails = "\n".join(f"member {m.number}:\n{m.log_tail()}" for m in waiting)
                raise servers.ServerStartError(
                    f"{self.kind} members {[m.number for m in waiting]} not ready after "
                    f"{deadline_s}s:\n{tails}"
                )
            time.sleep(0.05)

    def leader(self, deadline_s: float = READY_DEADLINE_S) -> Member:
        """The member that reports itself leader, polled until exactly one live member does."""
        deadline = time.monotonic() + deadline_s
        while True:
            leaders = [m for m in self.members if m.alive and m.mode() == "leader"]
            if len(leaders) == 1:
                return leaders[0]
            if time.monotonic() > deadline:
                modes = {m.number: m.mode() if m.alive else "dead" for m in self.members}
                raise AssertionError(f"no single leader after {deadline_s}s: {modes}")
            time.sleep(0.05)

    def describe(self, log_lines: int = 15) -> str:
        """Each member's role and the end of its log, for failure messages."""
        parts = []
        for m in self.members:
            state = (m.mode() or "no role") if m.alive else "dead"
            parts.append(f"member {m.number} ({m.hosts}, {state}):\n{m.log_tail(log_lines)}")
        return "\n".join(parts)

    def restart(self, member: Member) -> None:
        """Start a killed member again on its data directory and wait until it serves."""
        member.start()
        self.wait_ready([member])

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _free_ports(count: int) -> list:
    ports: list = []
    while len(ports) < count:
        port = servers.free_port()
        if port not in ports:
            ports.append(port)
    return ports


def start_keepr(binary: str, size: int = SIZE) -> Ensemble:
    return _start_with_retries(lambda: _start_keepr_once(binary, size))


def _start_keepr_once(binary: str, size: int) -> Ensemble:
    work_dir = Path(tempfile.mkdtemp(prefix="keepr-clienttests-keepr3-"))
    names = ("zk", "grpc", "peer", "http")
    free = iter(_free_ports(len(names) * size))
    ports = [{name: next(free) for name in names} for _ in range(size)]
    initial = ",".join(f"{n + 1}=127.0.0.1:{p['peer']}" for n, p in enumerate(ports))
    members = []
    for n, member_ports in enumerate(ports, start=1):
        member_dir = work_dir / f"m{n}"
        (member_dir / "data").mkdir(parents=True)
        argv = servers.keepr_argv(binary, n, member_dir / "data", member_ports, initial)
        members.append(
            Member(n, "keepr", member_ports["zk"], argv, member_dir, member_ports["http"])
        )
    return _started(Ensemble("keepr3", members, work_dir))


def start_zookeeper(size: int = SIZE) -> Ensemble:
    if not servers.ZOOKEEPER_JAR.exists():
        raise servers.ServerStartError(
            f"{servers.ZOOKEEPER_JAR} is missing: install Debian's `zookeeper` package"
        )
    return _start_with_retries(lambda: _start_zookeeper_once(size))


def _start_zookeeper_once(size: int) -> Ensemble:
    work_dir = Path(tempfile.mkdtemp(prefix="keepr-clienttests-zk3-"))
    free = iter(_free_ports(3 * size))
    ports = [(next(free), next(free), next(free)) for _ in range(size)]
    quorum = [
        f"server.{n}=127.0.0.1:{quorum_port}:{election_port}"
        for n, (_, quorum_port, election_port) in enumerate(ports, start=1)
    ]
    extra = ("initLimit=10", "syncLimit=5", *quorum)
    members = []
    for n, (client_port, _, _) in enumerate(ports, start=1):
        member_dir = work_dir / f"m{n}"
        data_dir = member_dir / "data"
        data_dir.mkdir(parents=True)
        (data_dir / "myid").write_text(f"{n}\n")
        conf = member_dir / "zoo.cfg"
        conf.write_text(servers.zookeeper_config(data_dir, client_port, extra))
        argv = servers.zookeeper_argv(conf, "org.apache.zookeeper.server.quorum.QuorumPeerMain")
        members.append(Member(n, "zookeeper", client_port, argv, member_dir))
    return _started(Ensemble("zookeeper3", members, work_dir))


def _started(ensemble: Ensemble) -> Ensemble:
    try:
        for member in ensemble.members:
            member.start()
        ensemble.wait_ready()
    except BaseException:
        ensemble.stop()
        raise
    return ensemble


def _start_with_retries(start_once, attempts: int = 3) -> Ensemble:
    """Retry on fresh ports when a start fails: losing the race for a port `free_port`
    returned is the expected cause."""
    last_error = None
    for _ in range(attempts):
        try:
            return start_once()
        except servers.ServerStartError as e:
            last_error = e
    raise last_error
