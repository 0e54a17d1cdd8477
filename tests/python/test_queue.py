"""kazoo's Queue and LockingQueue: FIFO order within a priority, lower priority numbers first,
each item handed out once even to concurrent consumers, and (LockingQueue) an item taken but
not consumed goes back to the queue when its taker's session ends.

A consumer that must see items another session put before it starts calls `sync` first (on an
ensemble its member may lag); LockingQueue.get waits for items with a watch and needs none."""

import threading

from harness.clients import WAIT_S, children_reach, wait_until

ITEMS = 30
CONSUMERS = 3


def test_queue_is_fifo(client, base):
    queue = client.Queue(f"{base}/q")
    items = [f"item-{n}".encode() for n in range(10)]
    for item in items:
        queue.put(item)
    assert len(queue) == 10
    assert [queue.get() for _ in items] == items
    assert queue.get() is None


def test_queue_serves_lower_priority_numbers_first(client, base):
    queue = client.Queue(f"{base}/q")
    queue.put(b"later", priority=500)
    queue.put(b"urgent-1", priority=1)
    queue.put(b"normal")
    queue.put(b"urgent-2", priority=1)
    assert [queue.get() for _ in range(4)] == [b"urgent-1", b"urgent-2", b"normal", b"later"]


def test_concurrent_consumers_get_each_item_once(clients, base):
    path = f"{base}/q"
    producer = clients.new().Queue(path)
    items = {f"item-{n}".encode() for n in range(ITEMS)}
    for item in sorted(items):
        producer.put(item)
    taken = []
    guard = threading.Lock()
    errors = []

    def consume():
        zk = clients.new()
        zk.sync(path)
        queue = zk.Queue(path)
        try:
            while (item := queue.get()) is not None:
                with guard:
                    taken.append(item)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=consume, daemon=True) for _ in range(CONSUMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 2)
    assert errors == []
    assert sorted(taken) == sorted(items)


def test_locking_queue_hands_a_taken_item_to_nobody_else(clients, base):
    path = f"{base}/lq"
    clients.new().LockingQueue(path).put_all([b"a", b"b"])
    first, second = clients.new().LockingQueue(path), clients.new().LockingQueue(path)
    assert first.get(timeout=WAIT_S) == b"a"
    assert second.get(timeout=WAIT_S) == b"b"
    # Until consumed, an item stays in the queue; get() returns the item already held.
    assert first.get(timeout=WAIT_S) == b"a"
    assert len(first) == 2
    assert first.consume() and second.consume()
    first.client.sync(path)
    assert len(first) == 0


def test_locking_queue_item_returns_when_its_takers_session_ends(clients, base):
    path = f"{base}/lq"
    clients.new().LockingQueue(path).put(b"job")
    taker_client = clients.new()
    assert taker_client.LockingQueue(path).get(timeout=WAIT_S) == b"job"
    taker_client.stop()
    rescuer = clients.new().LockingQueue(path)
    assert rescuer.get(timeout=WAIT_S) == b"job"
    assert rescuer.consume()


def test_locking_queue_release_puts_the_item_back(clients, base):
    path = f"{base}/lq"
    clients.new().LockingQueue(path).put(b"job")
    taker = clients.new().LockingQueue(path)
    assert taker.get(timeout=WAIT_S) == b"job"
    assert taker.holds_lock()
    assert taker.release()
    other = clients.new().LockingQueue(path)
    assert other.get(timeout=WAIT_S) == b"job"


def test_locking_queue_get_waits_for_an_item(clients, base):
    path = f"{base}/lq"
    consumer = clients.new().LockingQueue(path)
    got = []
    done = threading.Event()

    def take():
        got.append(consumer.get(timeout=WAIT_S * 2))
        done.set()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    assert not done.is_set()
    clients.new().LockingQueue(path).put(b"late", priority=7)
    wait_until(done, "the waiting consumer to receive the new item")
    assert got == [b"late"]


def test_locking_queue_priorities(clients, base):
    queue = clients.new().LockingQueue(f"{base}/lq")
    queue.put(b"low", priority=900)
    queue.put_all([b"high-1", b"high-2"], priority=10)
    order = []
    for _ in range(3):
        order.append(queue.get(timeout=WAIT_S))
        queue.consume()
    assert order == [b"high-1", b"high-2", b"low"]


def test_queue_entries_are_visible_as_sequential_children(clients, base):
    queue = clients.new().Queue(f"{base}/q")
    queue.put(b"x")
    wait_until(children_reach(clients.new(), f"{base}/q", 1), "the entry to appear")
    reader = clients.new()
    reader.sync(f"{base}/q")
    (name,) = reader.get_children(f"{base}/q")
    assert name == "entry-100-0000000000"
