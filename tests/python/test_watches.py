"""Watches as applications rely on them: which change fires which watch, one-shot watches fire
exactly once, events arrive before the data they announce, persistent and recursive watches
keep firing, and removed watches stay silent.

"Did not fire" is proven with `settle()`: after a round trip and a drained callback queue,
every event caused by an earlier change has been delivered.

A client that sets a watch on a node another session created calls `sync` first: on an
ensemble its member may not have applied the create yet.
"""

import threading

import pytest

from harness import zkext
from harness.clients import NotificationLog, settle, wait_until


class Recorder:
    """A watch callback that records the events it receives."""

    def __init__(self):
        self.events = []
        self.fired = threading.Event()

    def __call__(self, event):
        self.events.append((event.type, event.path))
        self.fired.set()


def test_data_watch_fires_once_for_two_changes(clients, client, base):
    writer = clients.new()
    path = client.create(f"{base}/n", b"0")
    watch = Recorder()
    client.get(path, watch=watch)
    writer.set(path, b"1")
    writer.set(path, b"2")
    wait_until(watch.fired, "NodeDataChanged")
    settle(client)
    assert watch.events == [("CHANGED", path)]


def test_exists_watch_on_a_missing_node_fires_on_create(clients, client, base):
    writer = clients.new()
    watch = Recorder()
    assert client.exists(f"{base}/later", watch=watch) is None
    writer.create(f"{base}/later")
    wait_until(watch.fired, "NodeCreated")
    settle(client)
    assert watch.events == [("CREATED", f"{base}/later")]


def test_child_watch_fires_on_child_create_not_on_child_data(clients, client, base):
    writer = clients.new()
    writer.create(f"{base}/kid")
    watch = Recorder()
    client.sync(base)
    assert client.get_children(base, watch=watch) == ["kid"]
    writer.set(f"{base}/kid", b"data")
    settle(client)
    assert watch.events == []
    writer.create(f"{base}/kid2")
    wait_until(watch.fired, "NodeChildrenChanged")
    settle(client)
    assert watch.events == [("CHILD", base)]


def test_delete_fires_data_and_child_watches_on_the_node_and_child_watch_on_parent(
    clients, client, base
):
    writer = clients.new()
    path = writer.create(f"{base}/doomed")
    data_watch, child_watch, parent_watch = Recorder(), Recorder(), Recorder()
    client.sync(path)
    client.get(path, watch=data_watch)
    client.get_children(path, watch=child_watch)
    client.get_children(base, watch=parent_watch)
    writer.delete(path)
    for watch in (data_watch, child_watch, parent_watch):
        wait_until(watch.fired, "events for a deleted node")
    settle(client)
    assert data_watch.events == [("DELETED", path)]
    assert child_watch.events == [("DELETED", path)]
    assert parent_watch.events == [("CHILD", base)]


def test_one_notification_per_connection_for_data_and_child_watch_on_a_deleted_node(
    clients, client, base
):
    writer = clients.new()
    path = writer.create(f"{base}/doomed")
    log = NotificationLog(client)
    client.sync(path)
    client.get(path, watch=Recorder())
    client.get_children(path, watch=Recorder())
    writer.delete(path)
    settle(client)
    assert log.take() == [("NodeDeleted", path)]


def test_set_acl_fires_no_watch(clients, client, base):
    writer = clients.new()
    path = writer.create(f"{base}/n")
    watch = Recorder()
    client.sync(path)
    client.get(path, watch=watch)
    writer.set_acls(path, writer.get_acls(path)[0])
    settle(client)
    assert watch.events == []


def test_watch_event_arrives_before_the_change_is_readable(clients, client, base):
    # ZooKeeper's guarantee: a client sees the event for a node before it can read the change.
    writer = clients.new()
    path = writer.create(f"{base}/n", b"old")
    log = NotificationLog(client)
    client.sync(path)
    client.get(path, watch=Recorder())
    writer.set(path, b"new")
    # Reads on `client` may be served before the change reaches them; read until it shows.
    reads = 0
    while client.get(path)[0] != b"new":
        reads += 1
        assert reads < 10_000, "the change never became readable"
    assert log.take() == [("NodeDataChanged", path)]


def test_watches_fire_only_for_the_session_that_set_them(clients, client, base):
    other = clients.new()
    path = client.create(f"{base}/n")
    mine = Recorder()
    client.get(path, watch=mine)
    other_log = NotificationLog(other)
    client.set(path, b"x")
    wait_until(mine.fired, "own watch")
    settle(other)
    assert other_log.take() == []


def test_persistent_watch_fires_for_every_change_and_stays(clients, client, base):
    writer = clients.new()
    path = writer.create(f"{base}/p")
    log = NotificationLog(client)
    # Without it, a member that applies the create after the watch is set would report it.
    client.sync(path)
    zkext.call(client, zkext.AddWatch(path, zkext.ADD_WATCH_PERSISTENT))
    writer.set(path, b"1")
    writer.set(path, b"2")
    writer.create(f"{path}/kid")
    writer.set(f"{path}/kid", b"not watched")
    writer.delete(f"{path}/kid")
    writer.delete(path)
    writer.create(path)
    settle(client)
    assert log.take() == [
        ("NodeDataChanged", path),
        ("NodeDataChanged", path),
        ("NodeChildrenChanged", path),
        ("NodeChildrenChanged", path),
        ("NodeDeleted", path),
        ("NodeCreated", path),
    ]


def test_persistent_watch_may_be_set_on_a_missing_node(client, base):
    zkext.call(client, zkext.AddWatch(f"{base}/nothing-yet", zkext.ADD_WATCH_PERSISTENT))


def test_recursive_watch_sees_the_whole_subtree_without_child_events(clients, client, base):
    writer = clients.new()
    log = NotificationLog(client)
    zkext.call(client, zkext.AddWatch(base, zkext.ADD_WATCH_PERSISTENT_RECURSIVE))
    writer.create(f"{base}/a")
    writer.create(f"{base}/a/b", b"")
    writer.set(f"{base}/a/b", b"deep")
    writer.delete(f"{base}/a/b")
    writer.set(base, b"top")
    settle(client)
    assert log.take() == [
        ("NodeCreated", f"{base}/a"),
        ("NodeCreated", f"{base}/a/b"),
        ("NodeDataChanged", f"{base}/a/b"),
        ("NodeDeleted", f"{base}/a/b"),
        ("NodeDataChanged", base),
    ]


def test_removed_data_watch_no_longer_fires(clients, client, base):
    writer = clients.new()
    path = writer.create(f"{base}/n")
    log = NotificationLog(client)
    client.sync(path)
    client.get(path, watch=Recorder())
    zkext.call(client, zkext.RemoveWatches(path, zkext.WATCHER_DATA))
    writer.set(path, b"x")
    settle(client)
    assert log.take() == []


def test_removing_a_watch_that_does_not_exist_is_no_watcher(client, base):
    path = client.create(f"{base}/n")
    with pytest.raises(zkext.NoWatcherError):
        zkext.call(client, zkext.RemoveWatches(path, zkext.WATCHER_ANY))


def test_removing_child_watches_keeps_data_watches(clients, client, base):
    writer = clients.new()
    path = writer.create(f"{base}/n")
    log = NotificationLog(client)
    client.sync(path)
    client.get(path, watch=Recorder())
    client.get_children(path, watch=Recorder())
    zkext.call(client, zkext.RemoveWatches(path, zkext.WATCHER_CHILDREN))
    writer.create(f"{path}/kid")
    writer.set(path, b"x")
    settle(client)
    assert log.take() == [("NodeDataChanged", path)]
