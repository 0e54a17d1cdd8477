"""Recipes keep their guarantees while ensemble members are SIGKILLed and restarted under them.

Each test runs a kazoo recipe from clients on every member of its own 3-member ensemble, then,
while the recipe runs, kills the leader and later the follower with the most clients, each
time waiting for the recipe to go on without the member and again after its restart. Through
all of it the recipe's guarantee must hold: one lock holder at a time, one election leader at a
time, every queue item consumed exactly once. The clients of a killed member must resume their
sessions on another member (their ephemeral nodes survive), and a restarted member must catch
up: after `sync`, every member shows the same final state.

A request in flight when its member dies has no known outcome (ConnectionLoss): the server may
or may not have applied it, and may apply it later. The workers handle that as a ZooKeeper
application has to: kazoo's recipes retry what is idempotent, the lock holders' writes are
idempotent (retried), and the queue workers resolve what they cannot retry (see
`test_locking_queue_consumes_each_item_exactly_once_while_members_die`).
"""

import threading
from collections import Counter

import pytest
from kazoo.exceptions import CancelledError, NoNodeError
from kazoo.retry import ForceRetryError

from harness.clients import WAIT_S, stop_client
from harness.failover import (
    DOUBLE_CONTENDER,
    UNKNOWN_OUTCOME,
    Progress,
    busiest_follower,
    kill_and_restart,
    member_client,
    on_every_member,
    retrying,
    watch_for_double_contenders,
)

# Progress wanted while a member is down and again after its restart.
STEPS = 6


def disrupt(ensemble, crew, progress):
    """Kill and restart the leader, then the follower with the most clients."""
    kill_and_restart(ensemble, crew, progress, ensemble.leader(), STEPS)
    kill_and_restart(ensemble, crew, progress, busiest_follower(ensemble, crew), STEPS)


class Workers:
    """Runs `work(k, client)` in a thread per client until stopped; collects errors and
    aborts `progress` with them. `on_stop()`, if given, wakes workers that wait inside a
    recipe."""

    def __init__(self, crew, work, progress, on_stop=None):
        self.stop = threading.Event()
        self.on_stop = on_stop
        self.progress = progress
        self.errors = []
        self.threads = [
            threading.Thread(target=self._run, args=(work, k, c), daemon=True)
            for k, c in enumerate(crew.clients)
        ]

    def start(self):
        for t in self.threads:
            t.start()

    def _run(self, work, k, client):
        try:
            work(k, client)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append((k, repr(e)))
            self.progress.abort(f"worker {k}: {e!r}")

    def finish(self):
        self.stop.set()
        if self.on_stop is not None:
            self.on_stop()
        for t in self.threads:
            t.join(WAIT_S * 3)
        assert not any(t.is_alive() for t in self.threads), "a worker never finished"


def test_lock_stays_exclusive_while_members_die(crew):
    ensemble, base = crew.ensemble, crew.base
    counter = f"{base}/counter"
    crew.clients[0].create(counter, b"0")
    guard = threading.Lock()
    inside = []
    overlaps = []
    rounds = Progress()

    locks = [zk.Lock(f"{base}/lock", f"worker-{k}") for k, zk in enumerate(crew.clients)]

    def work(k, zk):
        lock = locks[k]
        while not workers.stop.is_set():
            try:
                assert lock.acquire(timeout=WAIT_S * 3), f"worker {k} never got the lock"
            except CancelledError:
                assert workers.stop.is_set(), f"worker {k} cancelled before the end"
                return
            try:
                with guard:
                    inside.append(k)
                    if len(inside) > 1:
                        overlaps.append(list(inside))
                # An unversioned read-modify-write, lost without mutual exclusion. Both
                # calls are idempotent, so they are retried across a lost connection.
                value = int(zk.retry(zk.get, counter)[0])
                zk.retry(zk.set, counter, str(value + 1).encode())
                with guard:
                    inside.remove(k)
            finally:
                lock.release()
            rounds.add()

    def stop_contending():
        for lock in locks:
            lock.cancel()

    observer = member_client(ensemble, 0)
    watch_for_double_contenders(observer, f"{base}/lock", rounds)
    workers = Workers(crew, work, rounds, stop_contending)
    workers.start()
    try:
        rounds.wait_for_more(STEPS, "the first lock rounds")
        disrupt(ensemble, crew, rounds)
    finally:
        workers.finish()
        stop_client(observer)
    assert workers.errors == []
    assert overlaps == []
    values = on_every_member(ensemble, lambda zk: int(zk.get(counter)[0]))
    assert values == {m.number: rounds.count for m in ensemble.members}
    crew.check_sessions_kept()


def test_one_election_leader_at_a_time_while_members_die(crew):
    ensemble, base = crew.ensemble, crew.base
    path = f"{base}/election"
    guard = threading.Condition()
    reigning = set()
    overlaps = []
    terms = []  # who led, in order
    step_down = [threading.Event() for _ in crew.clients]
    terms_done = Progress()

    def lead(k):
        with guard:
            if reigning:
                overlaps.append((k, set(reigning)))
            reigning.add(k)
            terms.append(k)
            guard.notify_all()
        step_down[k].wait(WAIT_S * 4)
        step_down[k].clear()
        with guard:
            reigning.discard(k)

    elections = [zk.Election(path, f"c{k}") for k, zk in enumerate(crew.clients)]

    def work(k, zk):
        while not workers.stop.is_set():
            try:
                elections[k].run(lead, k)
            except CancelledError:
                assert workers.stop.is_set(), f"contender {k} cancelled before the end"

    def stop_contending():
        for election in elections:
            election.cancel()
        for event in step_down:
            event.set()

    def rotate():
        """The test's driver: each leader is told to step down once it leads, so leadership
        keeps passing between sessions on all members while members are killed."""
        seen = 0
        while not rotation_stop.is_set():
            with guard:
                if not guard.wait_for(
                    lambda: len(terms) > seen or rotation_stop.is_set(), WAIT_S * 3
                ):
                    rotation_errors.append(f"no new leader within {WAIT_S * 3}s after {terms}")
                    return
                if rotation_stop.is_set():
                    return
                leader = terms[seen]
                seen += 1
            terms_done.add()
            step_down[leader].set()

    observer = member_client(ensemble, 0)
    watch_for_double_contenders(observer, path, terms_done)
    workers = Workers(crew, work, terms_done, stop_contending)
    workers.start()
    rotation_stop = threading.Event()
    rotation_errors = []
    driver = threading.Thread(target=rotate, daemon=True)
    driver.start()
    try:
        terms_done.wait_for_more(STEPS, "the first leadership terms")
        disrupt(ensemble, crew, terms_done)
    finally:
        rotation_stop.set()
        with guard:
            guard.notify_all()
        driver.join(WAIT_S)
        workers.finish()
        stop_client(observer)
    assert rotation_errors == []
    assert workers.errors == []
    assert overlaps == []
    # Leadership went round: sessions on every member led.
    assert set(terms) == set(range(len(crew.clients)))
    crew.check_sessions_kept()


class QueueConsumer:
    """Takes items from a kazoo LockingQueue and consumes them, resolving what a lost
    connection leaves unknown the way an application must:

    - `get` may lose the reply to the create of an item's lock node. The lock may then exist
      (now or once the server applies it later), held by this session, hiding its item from
      everyone else. So after an unknown outcome, and whenever nothing is available, the
      consumer looks for lock nodes carrying its own id and takes their items back (or deletes
      the lock of an item that is gone).
    - `consume` may lose the reply to its transaction. Retrying is safe: `holds_lock` finds
      the lock gone (NoNode) if the transaction was applied, since only this session's consume
      or its end can remove its lock.
    """

    def __init__(self, zk, path):
        self.zk = zk
        self.queue = zk.LockingQueue(path)

    def take(self):
        try:
            item = self.queue.get(timeout=1.0)
        except UNKNOWN_OUTCOME:
            item = None
        return item if item is not None else self._reclaim()

    def _reclaim(self):
        zk, queue = self.zk, self.queue
        zk.retry(zk.sync, queue._lock_path)
        for name in zk.retry(zk.get_children, queue._lock_path):
            lock = f"{queue._lock_path}/{name}"
            try:
                owner, _ = zk.retry(zk.get, lock)
            except NoNodeError:
                continue
            if owner != queue.id:
                continue
            try:
                value, _ = zk.retry(zk.get, f"{queue._entries_path}/{name}")
            except NoNodeError:
                # Our lock on an item that was consumed before we locked it.
                zk.retry(_delete_if_there, zk, lock)
                continue
            queue.processing_element = (name, value)
            return value
        return None

    def consume(self):
        while True:
            try:
                assert self.queue.consume(), "the consumer lost its lock on a held item"
                return
            except NoNodeError:
                # Our earlier consume transaction was applied and took the lock with it.
                self.queue.processing_element = None
                return
            except UNKNOWN_OUTCOME:
                continue


def _delete_if_there(zk, path):
    try:
        zk.delete(path)
    except NoNodeError:
        pass


def test_locking_queue_consumes_each_item_exactly_once_while_members_die(crew):
    ensemble, base = crew.ensemble, crew.base
    path = f"{base}/queue"
    crew.clients[0].LockingQueue(path).put(b"first")
    acked = {b"first"}
    unknown = set()  # puts whose outcome the producer never learned
    guard = threading.Condition()
    holding = {}  # item -> consumer holding it now
    double_holds = []
    consumed = Counter()
    consumptions = Progress()
    producing = threading.Event()
    producing.set()
    size = len(ensemble.members)

    def produce(k, zk):
        queue = zk.LockingQueue(path)
        n = 0
        while producing.is_set():
            item = f"p{k}-{n}".encode()
            n += 1
            try:
                queue.put(item)
            except UNKNOWN_OUTCOME:
                with guard:
                    unknown.add(item)
                continue
            with guard:
                acked.add(item)

    def consume(k, zk):
        consumer = QueueConsumer(zk, path)
        while not workers.stop.is_set():
            item = consumer.take()
            if item is None:
                continue
            with guard:
                if item in holding:
                    double_holds.append((item, holding[item], k))
                holding[item] = k
            consumer.consume()
            with guard:
                del holding[item]
                consumed[item] += 1
                guard.notify_all()
            consumptions.add()

    # One producer and one consumer on each member.
    workers = Workers(crew, lambda k, zk: (produce if k < size else consume)(k, zk), consumptions)
    workers.start()
    try:
        consumptions.wait_for_more(STEPS, "the first consumptions")
        disrupt(ensemble, crew, consumptions)
        producing.clear()
        with guard:
            drained = guard.wait_for(lambda: acked <= set(consumed), WAIT_S * 3)
        assert drained, f"acknowledged items never consumed: {sorted(acked - set(consumed))}"
        # Puts with an unknown outcome may still be in the queue: wait until it is empty.
        checker = crew.clients[0]
        queue = checker.LockingQueue(path)
        retrying()(_until_empty, checker, queue)
    finally:
        producing.clear()
        workers.finish()
    assert workers.errors == []
    assert double_holds == []
    assert [item for item, n in consumed.items() if n > 1] == []
    assert set(consumed) <= acked | unknown
    left = on_every_member(
        ensemble,
        lambda zk: (
            zk.get_children(f"{path}/entries"),
            zk.get_children(f"{path}/taken"),
        ),
    )
    assert left == {m.number: ([], []) for m in ensemble.members}
    crew.check_sessions_kept()


def _until_empty(zk, queue):
    """Raise a retryable error until the queue is empty (LockingQueue counts its entries)."""
    zk.sync(queue.path)
    if len(queue) != 0:
        raise ForceRetryError()
