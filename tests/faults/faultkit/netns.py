"""A private network for one run: every member in its own network namespace with its own
address, all joined by a bridge that lives in a namespace of the run's own, and the test
process (clients, nemesis) in the root namespace reaching them through one more veth pair.

    root ns                 <prefix>-br                    <prefix>-m<i>
    <prefix>h  (10.a.b.1) ── host0 ── br0 ── vm<i> ── eth0 (10.a.b.<10+i>)

Why namespaces rather than ports on 127.0.0.1: a partition must cut one member off from
another without touching the rest, and a member must not see a partition as "connection
refused" (which loopback gives) but as silence, as a real network does. Each member gets its
own iptables, so faults are rules inside the member's namespace:

- `block(src, dst)`: drop every packet from `src` arriving at `dst` (INPUT in dst's
  namespace). One direction only: the asymmetric partition.
- `partition(a, b)`: both directions.
- `heal()`: flush every member's rules.

The clients' side is the host address: `block(HOST, m)` and `block(m, HOST)` cut clients
off one member.

Names carry a per-run prefix (`kf` + 5 hex digits) so parallel runs never collide, and each
run records what it made in `/run/keepr-faults/<prefix>.json` with its PID. `teardown()`
removes everything (deleting a namespace deletes the links in it); `reap_stale()` removes
what a run that died without cleaning up left behind. Needs root, iproute2 and iptables
(Debian's `iptables` package; `scripts/test.sh` is asked to install it).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

HOST = 0  # the "member id" of the root namespace, where clients run
STATE_DIR = Path("/run/keepr-faults")


class NetError(RuntimeError):
    pass


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    if check and p.returncode != 0:
        raise NetError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def available() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian packages iproute2, iptables)"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale() -> list[str]:
    """Removes namespaces, links and processes of runs whose owner died. Returns prefixes."""
    if not STATE_DIR.is_dir():
        return []
    reaped = []
    for f in STATE_DIR.glob("kf*.json"):
        try:
            state = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if _pid_alive(state.get("owner", 0)):
            continue
        Network._remove(state.get("namespaces", []), state.get("host_link"))
        f.unlink(missing_ok=True)
        reaped.append(f.stem)
    return reaped


class Network:
    def __init__(self, members: list[int]):
        self.members = list(members)
        self.prefix = f"kf{random.getrandbits(20):05x}"
        self.bridge_ns = f"{self.prefix}-br"
        self.host_link = f"{self.prefix}h"
        self.subnet: ipaddress.IPv4Network | None = None
        self._made_ns: list[str] = []
        self._state_file = STATE_DIR / f"{self.prefix}.json"

    # -- addresses ------------------------------------------------------------------------

    def ns(self, member: int) -> str:
        return f"{self.prefix}-m{member}"

    def ip(self, member: int) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + (1 if member == HOST else 10 + member))

    # -- life cycle -----------------------------------------------------------------------

    def setup(self) -> "Network":
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        reap_stale()
        # One run at a time picks a subnet and creates its host link, so two runs never
        # pick the same free subnet.
        with open(STATE_DIR / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = self._free_subnet()
            self._record()
            try:
                self._create()
            except Exception:
                self.teardown()
                raise
        return self

    def _free_subnet(self) -> ipaddress.IPv4Network:
        used = []
        for line in sh("ip", "-4", "-o", "addr").stdout.splitlines():
            for word in line.split():
                if "/" in word and word[0].isdigit():
                    used.append(ipaddress.ip_network(word, strict=False))
        for line in sh("ip", "-4", "route").stdout.splitlines():
            word = line.split()[0]
            if word[0].isdigit():
                used.append(ipaddress.ip_network(word, strict=False))
        rng = random.Random()
        for _ in range(1000):
            net = ipaddress.ip_network(f"10.{rng.randint(100, 254)}.{rng.randint(0, 255)}.0/24")
            if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                return net
        raise NetError("no free 10.x.y.0/24 subnet")

    def _record(self) -> None:
        state = {
            "owner": os.getpid(),
            "namespaces": [self.bridge_ns] + [self.ns(m) for m in self.members],
            "host_link": self.host_link,
        }
        self._state_file.write_text(json.dumps(state))

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self._made_ns.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _create(self) -> None:
        plen = self.subnet.prefixlen
        self._add_ns(self.bridge_ns)
        br = self.bridge_ns
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        sh("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", "host0", "netns", br)
        sh("ip", "-n", br, "link", "set", "host0", "master", "br0", "up")
        sh("ip", "addr", "add", f"{self.ip(HOST)}/{plen}", "dev", self.host_link)
        sh("ip", "link", "set", self.host_link, "up")
        for m in self.members:
            self.add_member(m)

    def add_member(self, m: int) -> None:
        """Creates member m's namespace and wires it to the bridge (also for members that
        join later)."""
        if m not in self.members:
            self.members.append(m)
            self._record()
        ns, br = self.ns(m), self.bridge_ns
        self._add_ns(ns)
        sh("ip", "-n", br, "link", "add", f"vm{m}", "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", br, "link", "set", f"vm{m}", "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{self.ip(m)}/{self.subnet.prefixlen}", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def teardown(self) -> None:
        self._remove(self._made_ns, self.host_link)
        self._made_ns = []
        self._state_file.unlink(missing_ok=True)

    @staticmethod
    def _remove(namespaces: list[str], host_link: str | None) -> None:
        existing = set(sh("ip", "netns", "list", check=False).stdout.split())
        for ns in namespaces:
            if ns not in existing:
                continue
            # Processes still inside (a run that died) would keep nothing alive but their
            # own sockets; they are ours (the namespace name is unique to the run).
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        if host_link:
            sh("ip", "link", "del", host_link, check=False)

    def leftovers(self) -> list[str]:
        """What of this run still exists (for the harness's own test)."""
        out = [ns for ns in sh("ip", "netns", "list").stdout.split() if ns.startswith(self.prefix)]
        if sh("ip", "link", "show", self.host_link, check=False).returncode == 0:
            out.append(self.host_link)
        return out

    # -- faults ---------------------------------------------------------------------------

    def _iptables(self, m: int, *rule: str) -> None:
        if m == HOST:
            raise NetError("the root namespace's firewall is not ours to change")
        sh("ip", "netns", "exec", self.ns(m), "iptables", "-w", *rule)

    def block(self, src: int, dst: int) -> None:
        """Packets from src no longer reach dst (dst must be a member). For src == HOST, the
        clients can no longer reach dst; for dst == HOST, use block on the member side."""
        self._iptables(dst, "-A", "INPUT", "-s", self.ip(src), "-j", "DROP")

    def block_out(self, src: int, dst: int) -> None:
        """Packets from member src to dst are dropped as they leave src."""
        self._iptables(src, "-A", "OUTPUT", "-d", self.ip(dst), "-j", "DROP")

    def partition(self, a: int, b: int) -> None:
        self.block(a, b)
        self.block(b, a)

    def isolate(self, m: int, others: list[int]) -> None:
        for o in others:
            if o != m:
                self.partition(m, o)

    def cut_clients(self, m: int) -> None:
        """Clients (the root namespace) and member m no longer hear each other."""
        self.block(HOST, m)
        self.block_out(m, HOST)

    def heal(self) -> None:
        for m in self.members:
            self._iptables(m, "-F", "INPUT")
            self._iptables(m, "-F", "OUTPUT")

    def rules(self, m: int) -> str:
        return sh("ip", "netns", "exec", self.ns(m), "iptables", "-S").stdout
