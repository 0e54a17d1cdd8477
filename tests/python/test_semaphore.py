"""kazoo's Semaphore: never more holders than max_leases, leases pass on when released or when
a holder's session ends, and all users must agree on max_leases."""

import threading

import pytest

from harness.clients import WAIT_S, wait_until

WORKERS = 5
ROUNDS = 5
LEASES = 2


def test_semaphore_never_exceeds_its_leases(clients, base):
    path = f"{base}/sem"
    guard = threading.Lock()
    holding = set()
    most = []
    errors = []

    def worker(n):
        zk = clients.new()
        semaphore = zk.Semaphore(path, f"w{n}", max_leases=LEASES)
        try:
            for _ in range(ROUNDS):
                assert semaphore.acquire(timeout=WAIT_S * 2)
                with guard:
                    holding.add(n)
                    most.append(len(holding))
                zk.sync(path)  # hold the lease across a server round trip
                with guard:
                    holding.discard(n)
                semaphore.release()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 4)
    assert not any(t.is_alive() for t in threads), "a semaphore worker never finished"
    assert errors == []
    assert len(most) == WORKERS * ROUNDS
    assert max(most) <= LEASES


def test_lease_holders_and_passing_a_lease_on_session_end(clients, base):
    path = f"{base}/sem"
    holders = [clients.new() for _ in range(LEASES)]
    semaphores = [zk.Semaphore(path, f"h{n}", max_leases=LEASES) for n, zk in enumerate(holders)]
    for semaphore in semaphores:
        assert semaphore.acquire(timeout=WAIT_S)
    holders[0].sync(path)  # h1 took its lease through another member
    assert sorted(semaphores[0].lease_holders()) == ["h0", "h1"]

    waiter = clients.new().Semaphore(path, "waiter", max_leases=LEASES)
    assert waiter.acquire(blocking=False) is False
    got = threading.Event()

    def wait_for_lease():
        if waiter.acquire(timeout=WAIT_S * 2):
            got.set()

    threading.Thread(target=wait_for_lease, daemon=True).start()
    holders[0].stop()
    wait_until(got, "the waiter to get the lease freed by the closed session")
    holders[1].sync(path)
    assert sorted(semaphores[1].lease_holders()) == ["h1", "waiter"]


def test_semaphore_users_must_agree_on_max_leases(clients, base):
    path = f"{base}/sem"
    assert clients.new().Semaphore(path, max_leases=2).acquire(timeout=WAIT_S)
    latecomer = clients.new()
    latecomer.sync(path)
    with pytest.raises(ValueError):
        latecomer.Semaphore(path, max_leases=3).acquire(timeout=WAIT_S)
