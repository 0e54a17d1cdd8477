"""kazoo's Lock, ReadLock and WriteLock: mutual exclusion between sessions, release when the
holder's session ends, the (non-)reentrancy rules, and the contender list.

The lock itself needs no `sync` on an ensemble: a contender acts on what its own member shows
after its own create, which orders it after every earlier holder. Reading a result (the
counter, the contender list) through another session's member is preceded by `sync`."""

import threading

import pytest
from kazoo.exceptions import CancelledError

from harness.clients import WAIT_S, children_reach, wait_until

WORKERS = 4
ROUNDS = 25


def test_lock_gives_mutual_exclusion_under_contention(clients, base):
    counter = clients.new().create(f"{base}/counter", b"0")
    inside = []
    overlaps = []
    errors = []
    guard = threading.Lock()

    def worker(n):
        zk = clients.new()
        lock = zk.Lock(f"{base}/lock", f"worker-{n}")
        try:
            for _ in range(ROUNDS):
                with lock:
                    with guard:
                        inside.append(n)
                        if len(inside) > 1:
                            overlaps.append(list(inside))
                    # An unversioned read-modify-write: without mutual exclusion updates are lost.
                    value = int(zk.get(counter)[0])
                    zk.set(counter, str(value + 1).encode())
                    with guard:
                        inside.remove(n)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 4)
    assert not any(t.is_alive() for t in threads), "a lock worker never finished"
    assert errors == []
    assert overlaps == []
    reader = clients.new()
    reader.sync(counter)
    assert int(reader.get(counter)[0]) == WORKERS * ROUNDS


def test_lock_passes_to_the_next_contender_when_the_holder_closes(clients, base):
    holder = clients.new()
    holder_lock = holder.Lock(f"{base}/lock", "holder")
    assert holder_lock.acquire(timeout=WAIT_S)
    waiter = clients.new()
    waiter_lock = waiter.Lock(f"{base}/lock", "waiter")
    got_it = threading.Event()

    def wait_for_lock():
        if waiter_lock.acquire(timeout=WAIT_S * 2):
            got_it.set()

    queued = children_reach(clients.new(), f"{base}/lock", 2)
    t = threading.Thread(target=wait_for_lock)
    t.start()
    wait_until(queued, "the waiter to queue behind the holder")
    assert not got_it.is_set()
    holder.stop()
    wait_until(got_it, "the lock to pass when the holder's session closed")
    t.join(WAIT_S)
    assert waiter_lock.contenders() == ["waiter"]


def test_lock_passes_on_when_the_holders_session_expires(proxied, clients, base):
    holder, proxy = proxied(timeout=4.0)
    assert holder.Lock(f"{base}/lock", "holder").acquire(timeout=WAIT_S)
    waiter_lock = clients.new().Lock(f"{base}/lock", "waiter")
    proxy.cut()
    # Bounded by the expiry of a 4 s session, with a wide margin.
    assert waiter_lock.acquire(timeout=WAIT_S * 2)
    assert waiter_lock.contenders() == ["waiter"]


def test_released_lock_can_be_taken_again(clients, base):
    lock = clients.new().Lock(f"{base}/lock")
    assert lock.acquire(timeout=WAIT_S)
    assert lock.release()
    other = clients.new().Lock(f"{base}/lock")
    assert other.acquire(blocking=False)
    other.release()
    assert lock.acquire(blocking=False)


def test_lock_is_not_reentrant(clients, base):
    zk = clients.new()
    lock = zk.Lock(f"{base}/lock", "me")
    assert lock.acquire(timeout=WAIT_S)
    # The same Lock object does not count re-acquisitions: it refuses and stays held.
    assert lock.acquire(blocking=False) is False
    assert lock.is_acquired
    # A second Lock object in the same session is a separate contender.
    same_session = zk.Lock(f"{base}/lock", "me-again")
    assert same_session.acquire(blocking=False) is False
    assert lock.contenders() == ["me"]
    lock.release()
    assert same_session.acquire(blocking=False) is True


def test_contenders_lists_holder_then_waiters_and_cancel_leaves_the_queue(clients, base):
    holder_lock = clients.new().Lock(f"{base}/lock", "first")
    assert holder_lock.acquire(timeout=WAIT_S)
    threads = []
    waiters = []
    outcomes = []

    def acquire(lock):
        try:
            outcomes.append(lock.acquire(timeout=WAIT_S * 2))
        except CancelledError:
            outcomes.append("cancelled")

    for name in ("second", "third"):
        lock = clients.new().Lock(f"{base}/lock", name)
        waiters.append(lock)
        queued = children_reach(clients.new(), f"{base}/lock", len(waiters) + 1)
        t = threading.Thread(target=acquire, args=(lock,))
        t.start()
        threads.append(t)
        wait_until(queued, f"{name} to queue")
    holder_lock.client.sync(f"{base}/lock")
    assert holder_lock.contenders() == ["first", "second", "third"]
    for lock in waiters:
        lock.cancel()
    for t in threads:
        t.join(WAIT_S)
    assert outcomes == ["cancelled", "cancelled"]
    holder_lock.client.sync(f"{base}/lock")
    assert holder_lock.contenders() == ["first"]
    holder_lock.release()


def test_readers_share_and_writers_exclude(clients, base):
    readers = [clients.new().ReadLock(f"{base}/rw", f"r{n}") for n in range(2)]
    writer = clients.new().WriteLock(f"{base}/rw", "w")
    assert all(r.acquire(blocking=False) for r in readers)
    assert writer.acquire(blocking=False) is False
    for r in readers:
        r.release()
    assert writer.acquire(blocking=False) is True
    late_reader = clients.new().ReadLock(f"{base}/rw", "late")
    assert late_reader.acquire(blocking=False) is False


@pytest.mark.parametrize("ephemeral", [True, False])
def test_lock_node_is_ephemeral_unless_asked_otherwise(clients, base, ephemeral):
    zk = clients.new()
    lock = zk.Lock(f"{base}/lock")
    assert lock.acquire(timeout=WAIT_S, ephemeral=ephemeral)
    (node,) = zk.get_children(f"{base}/lock")
    owner = zk.exists(f"{base}/lock/{node}").ephemeralOwner
    assert (owner == zk.client_id[0]) if ephemeral else (owner == 0)
    lock.release()
