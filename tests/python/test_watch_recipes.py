"""kazoo's DataWatch and ChildrenWatch: called at once with the current state, then on every
change, and they catch up after a lost connection (kazoo re-reads on reconnect).

When the watched node was made by another session, the watching client calls `sync` first, so
that its first call shows the node even if its member of an ensemble lagged."""

import queue

from kazoo.protocol.states import KazooState

from harness.clients import WAIT_S, StateLog, settle


def next_call(calls, what):
    try:
        return calls.get(timeout=WAIT_S)
    except queue.Empty:
        raise AssertionError(f"timed out waiting for {what}") from None


def data_calls(client, path, stop_after=None):
    calls = queue.Queue()
    made = []

    def on_data(data, stat):
        made.append(data)
        calls.put((data, stat.version if stat else None))
        return stop_after is None or len(made) < stop_after

    client.DataWatch(path, on_data)
    return calls


def test_data_watch_is_called_at_once_and_on_every_change(clients, client, base):
    writer = clients.new()
    path = writer.create(f"{base}/n", b"v0")
    client.sync(path)
    calls = data_calls(client, path)
    assert next_call(calls, "the initial call") == (b"v0", 0)
    writer.set(path, b"v1")
    assert next_call(calls, "the call for a change") == (b"v1", 1)
    writer.delete(path)
    assert next_call(calls, "the call for a delete") == (None, None)
    writer.create(path, b"v2")
    assert next_call(calls, "the call for a re-create") == (b"v2", 0)


def test_data_watch_on_a_missing_node_waits_for_it(clients, client, base):
    calls = data_calls(client, f"{base}/later")
    assert next_call(calls, "the initial call") == (None, None)
    clients.new().create(f"{base}/later", b"here")
    assert next_call(calls, "the call for the create") == (b"here", 0)


def test_data_watch_stops_when_its_function_returns_false(clients, client, base):
    writer = clients.new()
    path = writer.create(f"{base}/n", b"v0")
    client.sync(path)
    calls = data_calls(client, path, stop_after=2)
    next_call(calls, "the initial call")
    writer.set(path, b"v1")
    assert next_call(calls, "the call for a change") == (b"v1", 1)
    writer.set(path, b"v2")
    settle(client)
    assert calls.empty()


def test_data_watch_catches_up_after_a_lost_connection(proxied, clients, base):
    writer = clients.new()
    path = writer.create(f"{base}/n", b"before")
    watcher, proxy = proxied()
    states = StateLog(watcher)
    watcher.sync(path)
    calls = data_calls(watcher, path)
    assert next_call(calls, "the initial call") == (b"before", 0)
    proxy.cut()
    states.wait_for(KazooState.SUSPENDED)
    writer.set(path, b"while-away")
    proxy.restore()
    assert next_call(calls, "the change made while disconnected") == (b"while-away", 1)


def children_calls(client, path, send_event=False):
    calls = queue.Queue()

    def on_children(children, event=None):
        calls.put((sorted(children), event.type if event else None))

    if send_event:
        client.ChildrenWatch(path, on_children, send_event=True)
    else:
        client.ChildrenWatch(path, lambda children: on_children(children))
    return calls


def test_children_watch_follows_membership_not_data(clients, client, base):
    writer = clients.new()
    calls = children_calls(client, base)
    assert next_call(calls, "the initial call") == ([], None)
    writer.create(f"{base}/a")
    assert next_call(calls, "a child added") == (["a"], None)
    writer.create(f"{base}/b")
    assert next_call(calls, "another child added") == (["a", "b"], None)
    writer.set(f"{base}/a", b"data")
    writer.delete(f"{base}/a")
    assert next_call(calls, "a child removed") == (["b"], None)
    settle(client)
    assert calls.empty()


def test_children_watch_can_pass_the_event(clients, client, base):
    calls = children_calls(client, base, send_event=True)
    assert next_call(calls, "the initial call") == ([], None)
    clients.new().create(f"{base}/a")
    assert next_call(calls, "a child added") == (["a"], "CHILD")


def test_children_watch_catches_up_after_a_lost_connection(proxied, clients, base):
    writer = clients.new()
    watcher, proxy = proxied()
    states = StateLog(watcher)
    watcher.sync(base)
    calls = children_calls(watcher, base)
    assert next_call(calls, "the initial call") == ([], None)
    proxy.cut()
    states.wait_for(KazooState.SUSPENDED)
    writer.create(f"{base}/joined-while-away")
    proxy.restore()
    assert next_call(calls, "the child added while disconnected") == (["joined-while-away"], None)
