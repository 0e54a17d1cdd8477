"""Start and stop local 3-member ensembles of Apache ZooKeeper 3.8 (Debian's package) and of
keepr on 127.0.0.1, for side-by-side benchmarks. Every process is ours and stopped by PID.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
LOG4J = """log4j.rootLogger=WARN, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d %p %c{1}: %m%n
"""


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def four_letter(port, word, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
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


class Ensemble:
    """A set of member processes; `hosts` is the client connection string."""

    def __init__(self, name, procs, client_ports, workdir):
        self.name = name
        self.procs = procs
        self.client_ports = client_ports
        self.workdir = workdir

    @property
    def hosts(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def pids(self):
        return [p.pid for p in self.procs]

    def rss_kb(self):
        out = []
        for p in self.procs:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out.append(int(line.split()[1]))
            except OSError:
                out.append(0)
        return out

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 20
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def spawn(cmd, member_dir):
    """Starts one member with its output in `member_dir`/server.log."""
    log = open(os.path.join(member_dir, "server.log"), "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def all_answer(urls, body_ok=lambda body: True):
    """Whether every URL answers 200 with a body `body_ok` accepts."""
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status != 200 or not body_ok(r.read()):
                    return False
        except OSError:
            return False
    return True


def started(ens, ready, timeout=60):
    """`ens` once `ready()` holds; stopped if it does not within `timeout` seconds."""
    try:
        wait_until(ready, timeout, f"{ens.name} ensemble")
    except Exception:
        ens.stop()
        raise
    return ens


def start_zookeeper(n=3, heap=None):
    work = tempfile.mkdtemp(prefix="zk-ens-")
    ports = free_ports(3 * n)
    client, quorum, election = ports[:n], ports[n:2 * n], ports[2 * n:]
    with open(os.path.join(work, "log4j.properties"), "w") as f:
        f.write(LOG4J)
    procs = []
    for i in range(1, n + 1):
        d = os.path.join(work, f"zk{i}")
        os.makedirs(d)
        with open(os.path.join(d, "myid"), "w") as f:
            f.write(str(i))
        cfg = [
            "tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={d}",
            f"clientPort={client[i - 1]}", "clientPortAddress=127.0.0.1",
            "4lw.commands.whitelist=*", "maxClientCnxns=0", "admin.enableServer=false",
        ]
        if n > 1:
            for j in range(1, n + 1):
                cfg.append(f"server.{j}=127.0.0.1:{quorum[j - 1]}:{election[j - 1]}")
        path = os.path.join(d, "zoo.cfg")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        cmd = ["java"]
        if heap:
            cmd.append(f"-Xmx{heap}")
        cmd += ["-cp", f"{work}:{ZK_CLASSPATH}", "-Dzookeeper.extendedTypesEnabled=true",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", path]
        procs.append(spawn(cmd, d))

    def ready():
        modes = [four_letter(p, "srvr") for p in client]
        return all("Mode:" in m for m in modes) and any(
            "leader" in m or "standalone" in m for m in modes)
    return started(Ensemble("zookeeper", procs, client, work), ready, timeout=90)


def start_keepr(binary, n=3, extra=()):
    work = tempfile.mkdtemp(prefix="keepr-ens-")
    ports = free_ports(4 * n)
    zk, grpc, peer, http = ports[:n], ports[n:2 * n], ports[2 * n:3 * n], ports[3 * n:]
    initial = ",".join(f"{i}=127.0.0.1:{peer[i - 1]}" for i in range(1, n + 1))
    procs = []
    for i in range(1, n + 1):
        d = os.path.join(work, f"m{i}")
        os.makedirs(d)
        cmd = [binary, "server", "--id", str(i), "--data-dir", d,
               "--zk", f"127.0.0.1:{zk[i - 1]}", "--grpc", f"127.0.0.1:{grpc[i - 1]}",
               "--peer", f"127.0.0.1:{peer[i - 1]}", "--http", f"127.0.0.1:{http[i - 1]}",
               "--initial-members", initial, *extra]
        procs.append(spawn(cmd, d))
    return started(Ensemble("keepr", procs, zk, work),
                   lambda: all_answer([f"http://127.0.0.1:{p}/readyz" for p in http]))


ETCD = "/usr/bin/etcd"


def start_etcd(n=3):
    """A static n-member etcd cluster (Debian's `etcd-server`) with its default durability:
    every write fsynced by a quorum, as ZooKeeper and keepr do."""
    work = tempfile.mkdtemp(prefix="etcd-ens-")
    ports = free_ports(2 * n)
    client, peer = ports[:n], ports[n:]
    initial = ",".join(f"e{i}=http://127.0.0.1:{peer[i - 1]}" for i in range(1, n + 1))
    procs = []
    for i in range(1, n + 1):
        d = os.path.join(work, f"e{i}")
        os.makedirs(d)
        cmd = [ETCD, "--name", f"e{i}", "--data-dir", os.path.join(d, "data"),
               "--listen-client-urls", f"http://127.0.0.1:{client[i - 1]}",
               "--advertise-client-urls", f"http://127.0.0.1:{client[i - 1]}",
               "--listen-peer-urls", f"http://127.0.0.1:{peer[i - 1]}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer[i - 1]}",
               "--initial-cluster", initial, "--initial-cluster-state", "new",
               "--initial-cluster-token", os.path.basename(work), "--log-level", "warn"]
        procs.append(spawn(cmd, d))
    return started(Ensemble("etcd", procs, client, work),
                   lambda: all_answer([f"http://127.0.0.1:{p}/health" for p in client],
                                      lambda body: b'"true"' in body))
