#!/usr/bin/python3
"""Loads N znodes of S bytes under /bench (in sub-parents of 1000 children) into any
ZooKeeper-protocol server, with many creates in flight. Used to compare memory per znode.

usage: load_znodes.py HOST:PORT [N=1000000] [SIZE=100]
"""
import sys
import threading

from kazoo.client import KazooClient

def main():
    hosts = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    zk = KazooClient(hosts=hosts, timeout=30)
    zk.start(timeout=30)
    zk.ensure_path("/bench")
    data = b"x" * size
    window = threading.Semaphore(2000)
    errors = []

    def done(result):
        window.release()
        try:
            result.get()
        except Exception as e:  # noqa: BLE001 - report and stop below
            errors.append(e)

    per_parent = 1000
    for p in range((n + per_parent - 1) // per_parent):
        zk.create(f"/bench/p{p:04d}", b"")
        for i in range(min(per_parent, n - p * per_parent)):
            window.acquire()
            zk.create_async(f"/bench/p{p:04d}/n{i:04d}", data).rawlink(done)
        if errors:
            raise SystemExit(f"create failed: {errors[0]!r}")
    for _ in range(2000):
        window.acquire()
    if errors:
        raise SystemExit(f"create failed: {errors[0]!r}")
    print(zk.get_children("/bench").__len__(), "parents loaded")
    zk.stop()

if __name__ == "__main__":
    main()
