"""The harness does what the scenarios rely on: partitions cut exactly the traffic they
name, and a run leaves nothing behind (namespaces, links, processes, directories), also
when it fails."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from faultkit.netns import HOST, Network
from faultkit.runner import Run

PORT = 7999
LISTEN = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
          "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(16)\n"
          "while True:\n c,_=s.accept();c.sendall(b'hi');c.close()")
CONNECT = ("import socket,sys\ntry:\n c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1);"
           "print(c.recv(2).decode())\nexcept OSError as e: print('unreachable')")


def reaches(net: Network, src: int, dst: int) -> bool:
    """Whether a TCP connection from src (a member, or HOST) to dst's listener succeeds."""
    prefix = [] if src == HOST else ["ip", "netns", "exec", net.ns(src)]
    out = subprocess.run([*prefix, sys.executable, "-c", CONNECT, net.ip(dst), str(PORT)],
                         capture_output=True, text=True, timeout=20).stdout.strip()
    return out == "hi"


@pytest.fixture
def net_with_listeners(needs_namespaces):
    net = Network([1, 2, 3]).setup()
    procs = []
    try:
        for m in net.members:
            procs.append(subprocess.Popen(["ip", "netns", "exec", net.ns(m), sys.executable,
                                           "-c", LISTEN, net.ip(m), str(PORT)]))
        for m in net.members:
            assert _eventually(lambda: reaches(net, HOST, m)), f"member {m} never listened"
        yield net
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
        net.teardown()
    assert net.leftovers() == []


def _eventually(pred, tries=50):
    for _ in range(tries):
        if pred():
            return True
    return False


def test_every_member_and_the_clients_reach_each_other(net_with_listeners):
    net = net_with_listeners
    for a in net.members:
        for b in net.members:
            if a != b:
                assert reaches(net, a, b), (a, b)


def test_one_way_block_cuts_one_direction_only(net_with_listeners):
    net = net_with_listeners
    net.block(1, 2)  # 1 -> 2 dropped: no connection can be made either way (SYN or SYN-ACK)
    assert not reaches(net, 1, 2)
    assert reaches(net, 1, 3) and reaches(net, 3, 2) and reaches(net, HOST, 2)
    assert "-A INPUT -s" in net.rules(2) and "-A INPUT" not in net.rules(1)
    net.heal()
    assert reaches(net, 1, 2) and reaches(net, 2, 1)


def test_partition_and_isolation_leave_clients_connected(net_with_listeners):
    net = net_with_listeners
    net.isolate(1, [2, 3])
    assert not reaches(net, 1, 2) and not reaches(net, 3, 1)
    assert reaches(net, 2, 3) and reaches(net, HOST, 1)
    net.heal()
    assert reaches(net, 1, 2) and reaches(net, 3, 1)


def test_cut_clients_cuts_only_the_clients(net_with_listeners):
    net = net_with_listeners
    net.cut_clients(2)
    assert not reaches(net, HOST, 2)
    assert reaches(net, 1, 2) and reaches(net, HOST, 1)
    net.heal()
    assert reaches(net, HOST, 2)


def test_a_failing_run_removes_everything_it_made(keepr_bin, seed):
    made = {}
    with pytest.raises(RuntimeError, match="planted failure"):
        with Run(binary=keepr_bin, seed=seed) as run:
            made["net"] = run.net
            made["pids"] = [m.proc.pid for m in run.cluster.members.values()]
            made["workdir"] = run.workdir
            raise RuntimeError("planted failure")
    assert made["net"].leftovers() == []
    assert not made["workdir"].exists()
    for pid in made["pids"]:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), f"process {pid} survived"


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except OSError:
        return True
