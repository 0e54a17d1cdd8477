"""Write availability across a leader crash: the time from SIGKILL of the leader to the next
acknowledged write, for keepr and for Apache ZooKeeper 3.8 on the same machine, in the same
network namespaces, under the same kill.

One writer per member, each pinned to its member, sets its own node in a loop. For each
round: wait for a leader, kill it, and take the earliest completion among writes *sent*
after the kill; restart the killed member and wait until the ensemble is whole again.

    /usr/bin/python3 -m faultkit.availability --kind keepr --keepr-bin PATH --kills 20
    /usr/bin/python3 -m faultkit.availability --kind zookeeper --kills 20
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import threading
import time

from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from .cluster import wait_for
from .runner import Run
from .workload import make_client


class Writer(threading.Thread):
    def __init__(self, addr: str, path: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.addr, self.path, self.stop = addr, path, stop
        self.acks: list[tuple[int, int]] = []  # (sent, acknowledged), monotonic ns
        self.lock = threading.Lock()

    def run(self) -> None:
        client = make_client([self.addr], 10.0)
        client.start(timeout=60)
        client.ensure_path(self.path)
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                sent = time.monotonic_ns()
                try:
                    client.set_async(self.path, str(n).encode()).get(timeout=15)
                except (KazooException, KazooTimeoutError):
                    time.sleep(0.01)  # not connected yet: kazoo reconnects meanwhile
                    continue
                with self.lock:
                    self.acks.append((sent, time.monotonic_ns()))
        finally:
            client.stop()
            client.close()

    def first_ack_sent_after(self, t: int):
        with self.lock:
            return min((done for sent, done in self.acks if sent >= t), default=None)


def measure(kind: str, kills: int, binary: str | None = None, seed: int | None = None,
            log=print) -> list[float]:
    gaps: list[float] = []
    with Run(kind=kind, binary=binary, seed=seed) as run:
        c = run.cluster
        stop = threading.Event()
        writers = [Writer(c.members[m].addr, f"/avail-{m}", stop) for m in c.members]
        for w in writers:
            w.start()
        try:
            for i in range(kills):
                c.wait_ready(timeout=120, ids=list(c.members))
                lead = c.wait_leader(timeout=60)
                # Every writer is acknowledged again before the next kill.
                t_ready = time.monotonic_ns()
                wait_for(lambda: all(w.first_ack_sent_after(t_ready) for w in writers), 60,
                         "every writer acknowledged")
                t_kill = time.monotonic_ns()
                c.members[lead].kill()
                first = wait_for(lambda: _first(writers, t_kill), 120,
                                 "a write acknowledged after the leader was killed")
                gap = (first - t_kill) / 1e9
                gaps.append(gap)
                log(f"[availability] {kind} kill {i + 1}/{kills}: leader {lead} killed, "
                    f"next acknowledged write after {gap * 1000:.0f} ms")
                c.members[lead].start()
        finally:
            stop.set()
            for w in writers:
                w.join(timeout=30)
    return gaps


def _first(writers, t):
    done = [d for d in (w.first_ack_sent_after(t) for w in writers) if d is not None]
    return min(done) if done else None


def summary(gaps: list[float]) -> dict:
    return {
        "kills": len(gaps),
        "median_ms": round(statistics.median(gaps) * 1000),
        "max_ms": round(max(gaps) * 1000),
        "min_ms": round(min(gaps) * 1000),
        "all_ms": [round(g * 1000) for g in gaps],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["keepr", "zookeeper"], required=True)
    p.add_argument("--keepr-bin")
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int)
    args = p.parse_args()
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    gaps = measure(args.kind, args.kills, args.keepr_bin, args.seed)
    print(json.dumps({"kind": args.kind, **summary(gaps)}))


if __name__ == "__main__":
    main()
