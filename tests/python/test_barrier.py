"""kazoo's Barrier and DoubleBarrier: waiters are held while the barrier stands and released
when it goes; double-barrier members enter together and leave together.

A client checking a barrier that another session put up calls `sync` first: on an ensemble its
member may not have applied the create yet, and the barrier would look cleared."""

import threading

from harness.clients import WAIT_S, children_reach, wait_until

MEMBERS = 3


def test_barrier_holds_waiters_until_it_is_removed(clients, base):
    owner = clients.new()
    barrier = owner.Barrier(f"{base}/barrier")
    barrier.create()
    # While the barrier stands, waiting without patience reports "not cleared".
    impatient = clients.new()
    impatient.sync(f"{base}/barrier")
    assert impatient.Barrier(f"{base}/barrier").wait(timeout=0) is False

    results = []
    returned = threading.Event()
    lock = threading.Lock()

    def wait(zk):
        zk.sync(f"{base}/barrier")
        cleared = zk.Barrier(f"{base}/barrier").wait(timeout=WAIT_S * 2)
        with lock:
            results.append(cleared)
            if len(results) == MEMBERS:
                returned.set()

    waiters = [clients.new() for _ in range(MEMBERS)]
    threads = [threading.Thread(target=wait, args=(zk,), daemon=True) for zk in waiters]
    for t in threads:
        t.start()
    assert results == []
    barrier.remove()
    wait_until(returned, "every waiter to pass the removed barrier")
    assert results == [True] * MEMBERS


def test_barrier_that_does_not_exist_does_not_block(client, base):
    assert client.Barrier(f"{base}/never").wait(timeout=0) is True


def test_double_barrier_members_enter_together_and_leave_together(clients, base):
    path = f"{base}/double"
    guard = threading.Lock()
    entering = []  # members that have called enter()
    leaving = []  # members that have called leave()
    seen_at_entry = {}  # how many had called enter() when a member's enter() returned
    seen_at_exit = {}
    done = threading.Event()

    def member(n, zk):
        barrier = zk.DoubleBarrier(path, MEMBERS, identifier=f"m{n}")
        with guard:
            entering.append(n)
        barrier.enter()
        with guard:
            seen_at_entry[n] = len(entering)
            leaving.append(n)
        barrier.leave()
        with guard:
            seen_at_exit[n] = len(leaving)
            if len(seen_at_exit) == MEMBERS:
                done.set()

    zks = [clients.new() for _ in range(MEMBERS)]
    threads = []
    for n, zk in enumerate(zks):
        t = threading.Thread(target=member, args=(n, zk), daemon=True)
        threads.append(t)
        t.start()
    wait_until(done, "all members to pass through the double barrier")
    assert seen_at_entry == {n: MEMBERS for n in range(MEMBERS)}
    assert seen_at_exit == {n: MEMBERS for n in range(MEMBERS)}
    checker = clients.new()
    checker.sync(path)
    assert checker.get_children(path) == []


def test_double_barrier_waits_for_the_last_member(clients, base):
    path = f"{base}/double"
    first_in = threading.Event()

    def early(zk):
        zk.DoubleBarrier(path, 2, identifier="early").enter()
        first_in.set()

    early_client = clients.new()
    t = threading.Thread(target=early, args=(early_client,), daemon=True)
    t.start()
    # The early member is alone: its node shows up, but it may not pass.
    wait_until(children_reach(clients.new(), path, 1), "the early member to register")
    assert not first_in.is_set()
    clients.new().DoubleBarrier(path, 2, identifier="late").enter()
    wait_until(first_in, "the early member to pass once the last one entered")
