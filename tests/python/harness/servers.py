"""Start and stop the ZooKeeper-protocol servers the suites talk to.

Every suite is written against "a ZooKeeper-protocol endpoint". Two kinds exist: Apache
ZooKeeper 3.8 (Debian's package), which is the reference for behaviour, and keepr. Both are
started here as child processes bound to 127.0.0.1 on free ports, with their own temporary data
directory, and stopped by their PID when the fixture that owns them is torn down.

Readiness is polled (the `ruok` four-letter word, or keepr's `/readyz`) with a deadline: a
process that is still starting has no event to wait for, and a process that dies while starting
is reported with the tail of its log instead of a timeout.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# The super user every server is configured with; its digest lets a test bypass every ACL.
SUPER_USER = "super"
SUPER_PASSWORD = "secret"

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# slf4j-simple gives ZooKeeper a log (on stderr, captured in the data dir) to read on failure.
SLF4J_SIMPLE_JAR = Path("/usr/share/java/slf4j-simple.jar")
ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")

# ZooKeeper's tick; sessions may ask for 2..20 ticks (4 s to 40 s).
TICK_MS = 2000
# How often ZooKeeper's ContainerManager deletes empty containers and expired TTL nodes. The
# default (60 s) would make the container and TTL tests slow; 1 s keeps them quick.
CONTAINER_CHECK_MS = 1000

STARTUP_DEADLINE_S = 60.0
STOP_DEADLINE_S = 15.0


def digest(user: str, password: str) -> str:
    """ZooKeeper's digest of `user:password`: `user:base64(sha1("user:password"))`."""
    raw = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(raw).decode()}"


def free_port() -> int:
    """A port nobody listens on right now (the server may still lose a race for it, so
    starting retries on a fresh port when the process dies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter_word(host: str, port: int, word: str, timeout: float = 5.0) -> str:
    """Send a four-letter word and read the text answer until the server closes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _die_with_parent(argv: list[str]) -> list[str]:
    """Prefix `argv` so that, if pytest itself is killed, the kernel sends the server SIGTERM and
    no server outlives the run that started it. util-linux's setpriv sets the parent-death
    signal and then execs, so the PID stays the server's (a preexec_fn would do the same but is
    unsafe in a process that already runs threads, as pytest with kazoo clients does)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


@dataclass
class Server:
    """One running server process and how to reach it."""

    kind: str  # "zookeeper" or "keepr"
    port: int
    process: subprocess.Popen
    work_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    # keepr's other listeners by name: grpc, peer, http.
    ports: dict = field(default_factory=dict)

    @property
    def hosts(self) -> str:
        """The connect string clients use."""
        return f"{self.host}:{self.port}"

    @property
    def endpoints(self) -> list:
        """(host, port) of every member that serves clients: just this one."""
        return [(self.host, self.port)]

    def four_letter_word(self, word: str) -> str:
        return four_letter_word(self.host, self.port, word)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL if it lingers) and delete its
        working directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_DEADLINE_S)
        shutil.rmtree(self.work_dir, ignore_errors=True)


class ServerStartError(RuntimeError):
    pass


def spawn(argv: list[str], work_dir: Path, log_path: Path):
    """Start `argv` in `work_dir` with its output appended to `log_path` (a restarted member
    keeps the log of its earlier lives)."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            _die_with_parent(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
            # Plain text logs (keepr's tracing colours them otherwise), quoted in failures.
            env=dict(os.environ, NO_COLOR="1"),
        )
    finally:
        log.close()


def _wait_ready(server: Server, is_ready) -> None:
    """Poll `is_ready()` until it answers True, the process exits, or the deadline passes."""
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerStartError(
                f"{server.kind} exited with {server.process.returncode} while starting:\n"
                f"{server.log_tail()}"
            )
        try:
            if is_ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise ServerStartError(
        f"{server.kind} not ready after {STARTUP_DEADLINE_S}s:\n{server.log_tail()}"
    )


def _ruok(server: Server) -> bool:
    return server.four_letter_word("ruok") == "imok"


def _serving(server: Server) -> bool:
    """ZooKeeper answers `ruok` before its server runs (a session then is refused with
    "ZooKeeperServer not running"); `srvr` names a mode only once it serves."""
    return "Mode:" in server.four_letter_word("srvr")


def _start_with_retries(start_once, attempts: int = 3) -> Server:
    """Retry on a fresh port when a start fails: the only expected cause is losing the race for
    a port that `free_port` returned."""
    last_error = None
    for _ in range(attempts):
        try:
            return start_once()
        except ServerStartError as e:
            last_error = e
    raise last_error


def start_zookeeper() -> Server:
    """A standalone Apache ZooKeeper 3.8 with every four-letter word enabled, TTL nodes enabled
    (extended types), tickTime 2000, and the super digest of `super:secret`."""
    if not ZOOKEEPER_JAR.exists():
        raise ServerStartError(f"{ZOOKEEPER_JAR} is missing: install Debian's `zookeeper` package")
    return _start_with_retries(_start_zookeeper_once)


def zookeeper_config(data_dir: Path, client_port: int, extra: tuple = ()) -> str:
    """zoo.cfg for one server on 127.0.0.1: tickTime 2000, every four-letter word, no admin
    server (it would bind 8080 for every instance); `extra` adds lines (an ensemble's
    `server.N=` list)."""
    lines = [
        f"tickTime={TICK_MS}",
        f"dataDir={data_dir}",
        f"clientPort={client_port}",
        "clientPortAddress=127.0.0.1",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def zookeeper_argv(conf: Path, main_class: str) -> list:
    """The JVM command line of a ZooKeeper server: TTL nodes enabled (extended types), the
    super digest of `super:secret`, a 1 s container/TTL sweep."""
    classpath = str(ZOOKEEPER_JAR)
    if SLF4J_SIMPLE_JAR.exists():
        classpath += os.pathsep + str(SLF4J_SIMPLE_JAR)
    return [
        "java",
        "-Xmx512m",
        "-XX:+UseSerialGC",
        "-Dzookeeper.extendedTypesEnabled=true",
        f"-Dzookeeper.DigestAuthenticationProvider.superDigest={digest(SUPER_USER, SUPER_PASSWORD)}",
        f"-Dznode.container.checkIntervalMs={CONTAINER_CHECK_MS}",
        "-cp",
        classpath,
        main_class,
        str(conf),
    ]


def _start_zookeeper_once() -> Server:
    work_dir = Path(tempfile.mkdtemp(prefix="keepr-clienttests-zk-"))
    data_dir = work_dir / "data"
    data_dir.mkdir()
    port = free_port()
    conf = work_dir / "zoo.cfg"
    conf.write_text(zookeeper_config(data_dir, port))
    argv = zookeeper_argv(conf, "org.apache.zookeeper.server.ZooKeeperServerMain")
    log_path = work_dir / "server.log"
    server = Server("zookeeper", port, spawn(argv, work_dir, log_path), work_dir, log_path)
    try:
        _wait_ready(server, lambda: _serving(server))
    except ServerStartError:
        server.stop()
        raise
    return server


def start_keepr(binary: str) -> Server:
    """A one-member keepr cluster, configured like the ZooKeeper above."""
    return _start_with_retries(lambda: _start_keepr_once(binary))


def keepr_argv(binary: str, member_id: int, data_dir: Path, ports: dict, members: str) -> list:
    """`keepr server` for one member listening on 127.0.0.1 `ports` (zk, grpc, peer, http),
    configured like the ZooKeeper above: the super digest, every four-letter word (kazoo's
    server_version reads `envi`), and a one-second container/TTL sweep. `members` is the
    `--initial-members` list."""
    return [
        binary,
        "server",
        "--id",
        str(member_id),
        "--data-dir",
        str(data_dir),
        "--zk",
        f"127.0.0.1:{ports['zk']}",
        "--grpc",
        f"127.0.0.1:{ports['grpc']}",
        "--peer",
        f"127.0.0.1:{ports['peer']}",
        "--http",
        f"127.0.0.1:{ports['http']}",
        "--initial-members",
        members,
        "--super-digest",
        digest(SUPER_USER, SUPER_PASSWORD),
        "--four-letter-words",
        "*",
        "--reap-interval-ms",
        str(CONTAINER_CHECK_MS),
    ]


def keepr_ready(http_port: int) -> bool:
    """keepr's readiness: `/readyz` answers 200 once the member knows a leader and has applied
    what it knows to be committed."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start_keepr_once(binary: str) -> Server:
    work_dir = Path(tempfile.mkdtemp(prefix="keepr-clienttests-keepr-"))
    data_dir = work_dir / "data"
    data_dir.mkdir()
    ports = {name: free_port() for name in ("zk", "grpc", "peer", "http")}
    argv = keepr_argv(binary, 1, data_dir, ports, f"1=127.0.0.1:{ports['peer']}")
    log_path = work_dir / "server.log"
    server = Server(
        "keepr",
        ports["zk"],
        spawn(argv, work_dir, log_path),
        work_dir,
        log_path,
        ports={name: port for name, port in ports.items() if name != "zk"},
    )
    try:
        _wait_ready(server, lambda: keepr_ready(ports["http"]) or _ruok(server))
    except ServerStartError:
        server.stop()
        raise
    return server
