"""Faults, each applied and then healed, with what happened written to the history's event
list (and so to the report). Every fault runs in the thread that owns the cluster (member
processes are started from it).

A fault returns a dict of facts the scenario's own checks use (which member was the leader,
when a new one was elected, ...).
"""

from __future__ import annotations

import random
import time

from . import disk, membership
from .cluster import Cluster, ClusterError
from .history import History, now_ns
from .netns import Network


class Nemesis:
    def __init__(self, cluster: Cluster, net: Network, history: History, rng: random.Random,
                 session_timeout: float):
        self.cluster, self.net, self.history, self.rng = cluster, net, history, rng
        self.session_timeout = session_timeout
        self.faults: list[str] = []
        # Things keepr must survive but did not (a member that cannot restart).
        self.anomalies: list[str] = []

    def _note(self, what: str) -> None:
        self.faults.append(what)
        self.history.event(what)

    def _pause(self, lo: float, hi: float) -> None:
        # The fault lasts this long: the workload keeps running meanwhile.
        time.sleep(self.rng.uniform(lo, hi))

    def _leader(self) -> int:
        return self.cluster.wait_leader(timeout=60)

    def _restart(self, m: int) -> None:
        self.cluster.members[m].start()
        self.cluster.wait_ready(timeout=90, ids=[m])
        self.cluster.wait_caught_up(m)
        self._note(f"member {m} restarted and caught up")

    def recover(self) -> None:
        """Heals the network, restarts every dead member and waits until all are ready."""
        self.net.heal()
        serving = self.cluster.serving
        for m in serving:
            if not self.cluster.members[m].alive:
                self.cluster.members[m].start()
        self.cluster.wait_ready(timeout=120, ids=serving)

    # -- the faults -----------------------------------------------------------------------

    def kill(self, leader: bool | None = None) -> dict:
        """SIGKILL a member (the leader if `leader`, a follower if False, else either), keep
        it down a while, restart it."""
        lead = self._leader()
        if leader is None:
            leader = self.rng.random() < 0.5
        victims = [lead] if leader else [m for m in self.cluster.live() if m != lead]
        m = self.rng.choice(victims)
        self.cluster.members[m].kill()
        self._note(f"killed member {m}{' (leader)' if m == lead else ''}")
        self._pause(1.0, 4.0)
        self._restart(m)
        return {"killed": m, "was_leader": m == lead}

    def restart_leader(self) -> dict:
        """SIGKILL the leader and start it again at once, before the others' leader lease
        runs out: it comes back while they still follow it."""
        lead = self._leader()
        self.cluster.members[lead].kill()
        self._note(f"killed member {lead} (leader), restarting it at once")
        self._restart(lead)
        return {"killed": lead}

    def damaged_restart(self, how: str) -> dict:
        """Kill a member, damage its files (`tear-log`, `flip-log`, `flip-snapshot`), restart."""
        lead = self._leader()
        candidates = self.cluster.live()
        if how == "flip-snapshot":
            with_snap = [m for m in candidates
                         if disk.newest_snapshot(self.cluster.members[m].data_dir)]
            if not with_snap:
                self._note("no member has a snapshot yet: killing and restarting instead")
            candidates = with_snap or candidates
        m = self.rng.choice(candidates)
        member = self.cluster.members[m]
        member.kill()
        backup = disk.backup(member.data_dir, self.cluster.workdir)
        if how == "tear-log":
            detail = disk.tear_log_tail(member.data_dir, self.rng)
        elif how == "flip-log":
            detail = disk.flip_log_tail(member.data_dir, self.rng)
        elif disk.newest_snapshot(member.data_dir):
            detail = disk.flip_snapshot(member.data_dir, self.rng)
        else:
            detail = "no snapshot to damage"
        self._note(f"killed member {m}{' (leader)' if m == lead else ''}, {how}: {detail}")
        try:
            self._restart(m)
        except ClusterError as e:
            # keepr must restart from this damage; it did not. Report it, then put the
            # files back as they were so the run can go on and find more.
            line = next((ln for ln in reversed(member.log_tail(20).splitlines())
                         if "keepr:" in ln or "ERROR" in ln), str(e).splitlines()[0])
            self.anomalies.append(f"member {m} could not restart after {how} ({detail}): {line.strip()}")
            self._note(f"member {m} did not restart; restoring its files from before the damage")
            member.kill()
            disk.restore(member.data_dir, backup)
            self._restart(m)
        disk.discard(backup)
        return {"member": m, "detail": detail}

    def partition(self) -> dict:
        """Symmetric: one member cut off from another, or from both others."""
        live = self.cluster.live()
        a = self.rng.choice(live)
        others = [m for m in live if m != a]
        cut = others if self.rng.random() < 0.5 else [self.rng.choice(others)]
        for b in cut:
            self.net.partition(a, b)
        self._note(f"partitioned member {a} from {cut}")
        self._pause(2.0, 6.0)
        self.net.heal()
        self._note("healed")
        return {"member": a, "from": cut}

    def one_way(self) -> dict:
        """Asymmetric: packets from a to b are dropped, b to a still flow."""
        live = self.cluster.live()
        lead = self._leader()
        a = lead if self.rng.random() < 0.5 else self.rng.choice(live)
        b = self.rng.choice([m for m in live if m != a])
        self.net.block(a, b)
        self._note(f"dropping packets from member {a}{' (leader)' if a == lead else ''} to {b}")
        self._pause(2.0, 6.0)
        self.net.heal()
        self._note("healed")
        return {"from": a, "to": b}

    def isolate_leader(self, hold: float | None = None) -> dict:
        """Cut the leader off from every other member (clients still reach it). The majority
        must elect a new leader; the old one must not acknowledge writes meanwhile."""
        old = self._leader()
        rest = [m for m in self.cluster.live() if m != old]
        t_isolated = now_ns()
        self.net.isolate(old, rest)
        self._note(f"isolated leader {old} from {rest}")
        new = self.cluster.wait_leader(timeout=60, among=rest)
        t_elected = now_ns()
        self._note(f"member {new} leads the majority "
                   f"({(t_elected - t_isolated) / 1e9:.2f}s after the isolation)")
        time.sleep(hold if hold is not None else self.rng.uniform(2.0, 5.0))
        t_heal = now_ns()
        self.net.heal()
        self._note("healed")
        return {"old": old, "new": new, "isolated": t_isolated, "elected": t_elected,
                "healed": t_heal}

    def cut_clients(self) -> dict:
        """Clients can no longer reach one member (its sessions must move elsewhere and keep
        going), for less than a session timeout."""
        m = self.rng.choice(self.cluster.live())
        self.net.cut_clients(m)
        self._note(f"clients cut off from member {m}")
        time.sleep(min(self.session_timeout * 0.8, self.rng.uniform(3.0, 6.0)))
        self.net.heal()
        self._note("healed")
        return {"member": m}

    def replace_wiped(self) -> dict:
        """A member (the leader as often as any other) loses its disk: killed, wiped, its old
        id removed, and it rejoins as a new incarnation; back to as many voters as before."""
        lead = self._leader()
        m = self.rng.choice(self.cluster.serving)
        old = self.cluster.ids[m]
        self._note(f"wiping member {m} ({old}){' (leader)' if m == lead else ''}")
        new = membership.replace_wiped(self.cluster, m, old, self.history)
        self.cluster.wait_caught_up(m)
        self._note(f"member {m} rejoined as {new} and caught up")
        return {"member": m, "old": old, "new": new, "was_leader": m == lead}

    def grow_shrink(self) -> dict:
        """Every spare member slot joins (3 -> 5 in the soak) and is promoted, then as many
        random members (the leader among them sometimes: leadership is moved off it first)
        are removed and stopped, so the member set changes."""
        c = self.cluster
        spare = [m for m in c.members if m not in c.serving]
        if not spare:
            raise ValueError("grow-shrink needs spare member slots (Run(members=...))")
        for m in spare:
            if c.members[m].starts:
                # Its disk holds its removed self: it joins as a new member.
                c.members[m].wipe()
            membership.grow(c, m, self.history, stale=c.ids.get(m))
            c.wait_caught_up(m)
        self._note(f"members {spare} joined: {c.serving} serve")
        lead = self._leader()
        gone = self.rng.sample(c.serving, len(spare))
        for m in gone:
            membership.shrink(c, m, c.ids, self.history)
        self._note(f"members {gone} removed{' (the leader among them)' if lead in gone else ''}: "
                   f"{c.serving} serve")
        return {"grown": spare, "removed": gone, "leader_removed": lead in gone}

    def random_fault(self, kinds: list[str]) -> tuple[str, dict]:
        kind = self.rng.choice(kinds)
        return kind, self.apply(kind)

    def apply(self, kind: str) -> dict:
        if kind == "kill":
            return self.kill()
        if kind == "kill-leader":
            return self.kill(leader=True)
        if kind == "restart-leader":
            return self.restart_leader()
        if kind in ("tear-log", "flip-log", "flip-snapshot"):
            return self.damaged_restart(kind)
        if kind == "partition":
            return self.partition()
        if kind == "one-way":
            return self.one_way()
        if kind == "isolate-leader":
            return self.isolate_leader()
        if kind == "cut-clients":
            return self.cut_clients()
        if kind == "replace-wiped":
            return self.replace_wiped()
        if kind == "grow-shrink":
            return self.grow_shrink()
        raise ValueError(f"unknown fault {kind!r}")


# grow-shrink needs spare member slots (the soak's run has two).
ALL_FAULTS = ["kill", "kill-leader", "restart-leader", "tear-log", "flip-log", "flip-snapshot", "partition",
              "one-way", "isolate-leader", "cut-clients", "replace-wiped", "grow-shrink"]
