"""Fault scenarios against a 3-member keepr ensemble in network namespaces, under load.

Each scenario is one epoch (see faultkit/runner.py): the workload runs on every member while
the faults happen, then the network is healed, every member restarted and caught up, the
final state read on every member, and every checker run on the history. A failure prints
the seed, the problems, and keeps the members' logs and the history under --artifacts.
"""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.client import KazooState
from kazoo.exceptions import ConnectionLoss, SessionExpiredError

from faultkit import membership
from faultkit.cluster import four_letter_word, wait_for
from faultkit.runner import Run, writes_acknowledged_by
from faultkit.workload import make_client


def run_epoch(keepr_bin, seed, artifacts, plan, duration, readers=0, env=None):
    with Run(binary=keepr_bin, seed=seed, artifacts=artifacts, env=env) as run:
        result = run.epoch_run(plan, duration=duration, readers=readers)
        return run, result


def assert_clean(result):
    assert result.ok, "\n".join([result.summary(), *result.problems])
    assert result.lin.checked_ops > 500, "too little history to judge"


def test_killed_members_and_damaged_disks_lose_no_acknowledged_write(keepr_bin, seed, artifacts):
    """SIGKILL the leader and random members and restart them, some with a torn or
    bit-flipped last log record or a damaged newest snapshot: every member restarts, the
    history is linearizable, nothing acknowledged is lost, and sessions survive (their
    clients reconnect to another member within the session timeout)."""
    def plan(n):
        return [n.apply(k) for k in ("kill-leader", "tear-log", "kill", "flip-log", "kill-leader")]
    _, result = run_epoch(keepr_bin, seed, artifacts, plan, duration=25)
    assert_clean(result)
    assert result.sessions_expired == 0, "a session expired although its clients reconnected in time"


def test_members_with_a_damaged_newest_snapshot_restart_and_lose_nothing(keepr_bin, seed,
                                                                        artifacts):
    """Kill members whose newest snapshot then gets bit flips: each restarts from the older
    snapshot plus the log (or its peers), and nothing acknowledged is lost."""
    def plan(n):
        return [n.apply("flip-snapshot") for _ in range(3)]
    _, result = run_epoch(keepr_bin, seed, artifacts, plan, duration=20)
    assert_clean(result)


def test_partitions_symmetric_and_one_way_lose_no_acknowledged_write(keepr_bin, seed, artifacts):
    """A member cut off from one or both others, and one-way packet loss (from the leader
    or any member), each healed after a few seconds: the history stays linearizable and
    every member ends with every acknowledged write."""
    def plan(n):
        return [n.apply(k) for k in ("partition", "one-way", "partition", "one-way")]
    _, result = run_epoch(keepr_bin, seed, artifacts, plan, duration=25)
    assert_clean(result)


def test_isolated_leader_stops_acknowledging_writes_and_the_majority_goes_on(keepr_bin, seed,
                                                                           artifacts):
    """The leader loses its peers but not its clients: the other two elect a new leader,
    the old one acknowledges no write after that, and once healed its uncommitted writes
    are gone (every member's final state fits the one linearization) and nothing
    acknowledged is lost."""
    facts = {}

    def plan(n):
        facts.update(n.isolate_leader(hold=5.0))
        return [facts]
    run, result = run_epoch(keepr_bin, seed, artifacts, plan, duration=20, readers=3)
    assert_clean(result)
    assert facts["new"] != facts["old"]
    acked = writes_acknowledged_by(run.last_history, facts["old"], facts["elected"],
                                   facts["healed"])
    assert not acked, f"the isolated old leader acknowledged writes: {acked[:5]}"


def test_clients_cut_off_from_their_member_move_and_keep_their_sessions(keepr_bin, seed,
                                                                      artifacts):
    """Clients lose their member (cut off by the network, or the member is killed) for less
    than a session timeout: they reconnect to another member with the same session, which
    did not expire, and their ephemerals never went away."""
    def plan(n):
        return [n.apply(k) for k in ("cut-clients", "cut-clients", "kill")]
    _, result = run_epoch(keepr_bin, seed, artifacts, plan, duration=20)
    assert_clean(result)
    assert result.session_moves > 0, "no session moved: the scenario did not cut anyone off"
    assert result.sessions_expired == 0, "a session expired although its clients moved in time"


@pytest.mark.parametrize("fault", ["sync-skips-read-index"])
def test_planted_stale_sync_bug_is_caught(keepr_bin, seed, artifacts, fault):
    """With a deliberately broken `sync` (KEEPR_TEST_FAULT, test-only), the same isolated-
    leader scenario makes the pinned reader on the old leader read stale values after a
    sync: the linearizability checker must report it. Proves the suite can fail."""
    def plan(n):
        return [n.isolate_leader(hold=6.0)]
    _, result = run_epoch(keepr_bin, seed, None, plan, duration=20, readers=3,
                          env={"KEEPR_TEST_FAULT": fault})
    assert not result.lin.ok, ("the planted bug went unnoticed:\n" + result.summary())
    print(result.lin.explain())


def wait_serving_writes(run, ids):
    """Until each member says it serves read-write clients (`isro` answers rw): a member
    that has not yet confirmed a quorum since it started refuses them."""
    wait_for(lambda: all(four_letter_word(run.cluster.members[i].ip, "isro") == "rw" for i in ids),
             60, f"members {ids} serving read-write clients")


@pytest.mark.parametrize("kind", ["zookeeper", "keepr"])
@pytest.mark.parametrize("role", ["follower", "leader"])
def test_clients_of_a_member_cut_off_from_the_quorum_move_and_keep_their_sessions(
        request, seed, artifacts, needs_namespaces, kind, role):
    """A client that only reads, on a member that gets cut off from its peers (clients still
    reach it) for twice the session timeout, must be moved to a member of the majority in
    time to keep its session and its ephemeral (a lock holder must never be silently
    replaced). Run against ZooKeeper too, which proves the expectation."""
    binary = request.getfixturevalue("keepr_bin") if kind == "keepr" else None
    timeout = 6.0
    with Run(kind=kind, binary=binary, seed=seed, artifacts=artifacts) as run:
        c = run.cluster
        lead = c.wait_leader()
        m = lead if role == "leader" else next(i for i in c.members if i != lead)
        others = [i for i in c.members if i != m]
        wait_serving_writes(run, list(c.members))
        client = make_client([c.members[i].addr for i in [m] + others], timeout)
        lost = threading.Event()
        client.add_listener(lambda s: lost.set() if s == KazooState.LOST else None)
        client.start(timeout=60)
        try:
            sid = client._session_id
            client.create("/lock-holder", b"", ephemeral=True)
            run.net.isolate(m, others)
            read_for(client, 2 * timeout)
            run.net.heal()
            c.wait_ready(timeout=60)
            client.sync("/")
            assert not lost.is_set(), "the client's session expired"
            assert client._session_id == sid
            assert client.exists("/lock-holder") is not None
        finally:
            client.stop()
            client.close()


def read_for(client, seconds):
    """A reader: nothing but reads (and kazoo's pings) for that long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client.exists("/")
        except (ConnectionLoss, SessionExpiredError):
            pass
        time.sleep(0.2)


@pytest.mark.parametrize("kind", [
    "zookeeper",
    "keepr",
])
def test_sessions_on_the_majority_survive_the_leader_being_cut_off(
        request, seed, artifacts, needs_namespaces, kind):
    """Clients connected to the two followers (only reading) while the leader is cut off
    from them for twice the session timeout: the followers elect a new leader and every
    one of those sessions and their ephemerals must survive."""
    binary = request.getfixturevalue("keepr_bin") if kind == "keepr" else None
    timeout = 6.0
    with Run(kind=kind, binary=binary, seed=seed, artifacts=artifacts) as run:
        c = run.cluster
        lead = c.wait_leader()
        followers = [i for i in c.members if i != lead]
        wait_serving_writes(run, list(c.members))
        clients, lost = [], threading.Event()
        try:
            for f in followers:
                client = make_client([c.members[f].addr], timeout)
                client.add_listener(lambda s: lost.set() if s == KazooState.LOST else None)
                client.start(timeout=60)
                client.create(f"/holder-{f}", b"", ephemeral=True)
                clients.append((client, client._session_id))
            run.net.isolate(lead, followers)
            readers = [threading.Thread(target=read_for, args=(cl, 2 * timeout)) for cl, _ in clients]
            for r in readers:
                r.start()
            for r in readers:
                r.join(timeout=4 * timeout)
            run.net.heal()
            c.wait_ready(timeout=60)
            for client, sid in clients:
                client.sync("/")
            assert not lost.is_set(), "a session on the majority side expired"
            for (client, sid), f in zip(clients, followers):
                assert client._session_id == sid
                assert client.exists(f"/holder-{f}") is not None
        finally:
            for client, _ in clients:
                client.stop()
                client.close()


def test_membership_changes_under_load_lose_no_acknowledged_write(keepr_bin, seed, artifacts):
    """Grow 1 -> 3 -> 5 (members join with --join, are added as learners and promoted),
    kill the leader of five, replace a member whose disk was wiped (it returns as a new
    incarnation), then shrink 5 -> 3 -> 1 (leadership moved off a member before its
    removal), all under load: linearizable, nothing acknowledged lost, and the last member
    standing holds every acknowledged write."""
    ids = {1: "1"}

    def plan(n):
        c, h = n.cluster, n.history
        for m in (2, 3):
            ids[m] = membership.grow(c, m, h)
        for m in (4, 5):
            ids[m] = membership.grow(c, m, h)
        n.apply("kill-leader")
        ids[3] = membership.replace_wiped(c, 3, ids[3], h)
        for m in (5, 4, 3, 2):
            membership.shrink(c, m, ids, h)
        return [dict(ids)]
    with Run(binary=keepr_bin, seed=seed, artifacts=artifacts, members=5, initial=[1]) as run:
        result = run.epoch_run(plan, duration=20)
        assert run.cluster.serving == [1]
    assert_clean(result)
