#!/usr/bin/python3
"""Memory of a member holding N znodes of S bytes: keepr (3-member ensemble, RSS of each
member) against Apache ZooKeeper 3.8 (3-member ensemble, RSS and live heap after a full GC
of each server), loaded the same way (bench/load_znodes.py, 1000 children per parent).

usage: bench/memory.py [--keepr target/release/keepr] [--znodes 1000000] [--size 100]
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ensembles  # noqa: E402


def load(hosts, n, size):
    # One member's address is enough: writes reach every member.
    first = hosts.split(",")[0]
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "load_znodes.py"), first, str(n), str(size)],
                   check=True, timeout=3600)


def live_heap_bytes(pid):
    """jmap -histo:live forces a full GC and sums what is still reachable."""
    out = subprocess.run(["jmap", "-histo:live", str(pid)], capture_output=True, text=True, timeout=600)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("Total"):
            return int(line.split()[2])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keepr", default="target/release/keepr")
    p.add_argument("--znodes", type=int, default=1_000_000)
    p.add_argument("--size", type=int, default=100)
    args = p.parse_args()
    rows = []
    ens = ensembles.start_keepr(args.keepr, 3, extra=("--snapshot-every", "200000"))
    try:
        load(ens.hosts, args.znodes, args.size)
        # Every member applied everything once sync answers on it.
        for port in ens.client_ports:
            subprocess.run(["/usr/bin/python3", "-c",
                            "import sys; from kazoo.client import KazooClient as K; "
                            f"z=K(hosts='127.0.0.1:{port}'); z.start(); z.sync('/'); "
                            "print(z.get_children('/bench').__len__(), file=sys.stderr); z.stop()"],
                           check=True, timeout=120)
        rss = ens.rss_kb()
        rows.append(("keepr", rss, None))
    finally:
        ens.stop()
    ens = ensembles.start_zookeeper(3)
    try:
        load(ens.hosts, args.znodes, args.size)
        heaps = [live_heap_bytes(pid) for pid in ens.pids()]
        rss = ens.rss_kb()
        rows.append(("zookeeper", rss, heaps))
    finally:
        ens.stop()
    print(f"{args.znodes} znodes of {args.size} bytes, 3-member ensembles")
    print("| server | RSS per member (MB) | bytes per znode (RSS, mean) | live heap per member after full GC (MB) |")
    print("|---|---|---:|---|")
    for name, rss, heaps in rows:
        mean = sum(rss) / len(rss) * 1024
        per = mean / args.znodes
        heap = " / ".join(f"{h / 1e6:.0f}" for h in heaps) if heaps else "n/a (no GC heap)"
        print(f"| {name} | {' / '.join(f'{r / 1024:.0f}' for r in rss)} | {per:.0f} | {heap} |")


if __name__ == "__main__":
    main()
