"""kazoo's Counter: concurrent increments from many sessions add up (the version check on each
write turns lost updates into retries), and pre/post values are reported."""

import threading

from harness.clients import WAIT_S

WORKERS = 4
INCREMENTS = 25


def test_concurrent_increments_add_up(clients, base):
    path = f"{base}/counter"
    errors = []

    def worker():
        counter = clients.new().Counter(path)
        try:
            for _ in range(INCREMENTS):
                counter += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 4)
    assert not any(t.is_alive() for t in threads), "a counter worker never finished"
    assert errors == []
    reader = clients.new()
    reader.sync(path)  # the increments came through other members
    assert reader.Counter(path).value == WORKERS * INCREMENTS


def test_counter_reports_values_before_and_after_each_change(client, base):
    counter = client.Counter(f"{base}/counter")
    assert counter.value == 0
    counter += 5
    assert (counter.pre_value, counter.post_value) == (0, 5)
    counter -= 2
    assert (counter.pre_value, counter.post_value) == (5, 3)
    assert client.get(f"{base}/counter")[0] == b"3"


def test_float_counter(client, base):
    counter = client.Counter(f"{base}/counter", default=0.5)
    counter += 1.25
    assert counter.value == 1.75


def test_curator_compatible_counter_stores_a_big_endian_int(client, base):
    counter = client.Counter(f"{base}/counter", support_curator=True)
    counter += 258
    assert client.get(f"{base}/counter")[0] == (258).to_bytes(4, "big")
    assert counter.value == 258
