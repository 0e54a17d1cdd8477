"""kazoo's TreeCache: an initial load of the whole subtree that ends with INITIALIZED, then an
event for every node created, updated or removed, and a local view that matches the server."""

import queue

from kazoo.recipe.cache import TreeCache, TreeEvent

from harness.clients import WAIT_S

NAMES = {
    TreeEvent.NODE_ADDED: "added",
    TreeEvent.NODE_UPDATED: "updated",
    TreeEvent.NODE_REMOVED: "removed",
    TreeEvent.INITIALIZED: "initialized",
}


class CacheEvents:
    def __init__(self, client, path):
        self.events = queue.Queue()
        self.cache = TreeCache(client, path)
        self.cache.listen(self._on_event)
        self.cache.start()

    def _on_event(self, event):
        name = NAMES.get(event.event_type)
        if name is None:
            return  # connection state events are not under test here
        path = event.event_data.path if event.event_data else None
        self.events.put((name, path))

    def take(self, count, what):
        got = []
        for _ in range(count):
            try:
                got.append(self.events.get(timeout=WAIT_S))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {what}; got {got}") from None
        return got


def test_tree_cache_loads_the_subtree_then_reports_initialized(client, base):
    root = f"{base}/tree"
    client.create(f"{root}/a/b", b"ab", makepath=True)
    client.create(f"{root}/c", b"c")
    watched = CacheEvents(client, root)
    try:
        events = watched.take(5, "the initial load")
        assert events[-1] == ("initialized", None)
        assert sorted(events[:-1]) == [
            ("added", root),
            ("added", f"{root}/a"),
            ("added", f"{root}/a/b"),
            ("added", f"{root}/c"),
        ]
        cache = watched.cache
        assert cache.get_data(f"{root}/a/b").data == b"ab"
        assert cache.get_data(f"{root}/c").stat.version == 0
        assert sorted(cache.get_children(root)) == ["a", "c"]
    finally:
        watched.cache.close()


def test_tree_cache_reports_creates_updates_and_removals(clients, client, base):
    root = client.create(f"{base}/tree")
    watched = CacheEvents(client, root)
    writer = clients.new()
    try:
        assert watched.take(2, "the initial load") == [("added", root), ("initialized", None)]
        writer.create(f"{root}/x", b"1")
        assert watched.take(1, "the create") == [("added", f"{root}/x")]
        writer.set(f"{root}/x", b"2")
        assert watched.take(1, "the update") == [("updated", f"{root}/x")]
        assert watched.cache.get_data(f"{root}/x").data == b"2"
        writer.create(f"{root}/x/y")
        assert watched.take(1, "the nested create") == [("added", f"{root}/x/y")]
        writer.delete(f"{root}/x", recursive=True)
        assert sorted(watched.take(2, "the subtree removal")) == [
            ("removed", f"{root}/x"),
            ("removed", f"{root}/x/y"),
        ]
        assert watched.cache.get_children(root) == frozenset()
    finally:
        watched.cache.close()
