"""kazoo clients for the suites, and ways to wait on what they observe.

Tests never sleep to let something happen: they wait, with a bound, for the event that says it
happened. Three tools make that possible:

- `wait_until(event, what)`: wait on a threading.Event (set by a watch callback, a listener, a
  recipe callback) and fail with a message naming what did not happen.
- `settle(client)`: ZooKeeper delivers a connection's watch notifications before any later reply
  on that connection, and kazoo runs watch callbacks in order on one callback thread. So after a
  round trip (`sync`) and a marker callback queued behind it, every callback caused by an earlier
  change has run. This is how a test proves that something did *not* fire.
- `NotificationLog`: records every watch notification as it arrives on the wire, before kazoo's
  own (one-shot, client-side) watcher tables see it, so persistent-watch events, which kazoo 2.8
  cannot dispatch, are observable too.
"""

from __future__ import annotations

import threading
from collections import deque

from kazoo.client import KazooClient
from kazoo.protocol.serialization import Watch
from kazoo.recipe.watchers import ChildrenWatch
from kazoo.protocol.states import Callback
from kazoo.retry import KazooRetry

from . import servers

# Bound for anything a test waits for that should happen promptly.
WAIT_S = 30.0

# kazoo event type numbers on the wire (Watcher.Event.EventType).
EVENT_NAMES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}


def fast_reconnect() -> KazooRetry:
    """Reconnect retries with a short, capped delay so a restored connection is used at once
    (kazoo's default backs off up to a minute)."""
    return KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5, max_jitter=0.1)


def make_client(hosts: str, timeout: float = 10.0, auth=None, **kwargs) -> KazooClient:
    """A started kazoo client. `auth` is a list of (scheme, credential) sent on connect."""
    client = KazooClient(
        hosts=hosts,
        timeout=timeout,
        auth_data=auth,
        connection_retry=fast_reconnect(),
        **kwargs,
    )
    client.start(timeout=WAIT_S)
    return client


def super_auth():
    return [("digest", f"{servers.SUPER_USER}:{servers.SUPER_PASSWORD}")]


def stop_client(client: KazooClient) -> None:
    try:
        client.stop()
    finally:
        client.close()


def wait_until(event: threading.Event, what: str, timeout: float = WAIT_S) -> None:
    if not event.wait(timeout):
        raise AssertionError(f"timed out after {timeout}s waiting for: {what}")


def settle(client: KazooClient, timeout: float = WAIT_S) -> None:
    """Return once every watch callback caused by changes made before this call has run."""
    client.sync("/")
    ran = threading.Event()
    client.handler.dispatch_callback(Callback("watch", ran.set, ()))
    wait_until(ran, "kazoo's callback queue to drain", timeout)


def deletion_of(client: KazooClient, path: str) -> threading.Event:
    """An Event set when the existing node `path` is deleted (an exists watch on it). `path`
    may have been created by another session: `sync` first brings the client's server up to
    date."""
    gone = threading.Event()
    client.sync(path)

    def on_event(event):
        if event.type == "DELETED":
            gone.set()

    if client.exists(path, watch=on_event) is None:
        raise AssertionError(f"{path} does not exist, so its deletion cannot be awaited")
    return gone


def children_reach(client: KazooClient, path: str, count: int) -> threading.Event:
    """An Event set once `path` has at least `count` children (a ChildrenWatch, no polling).
    `path` is created if missing: kazoo's ChildrenWatch gives up on a node that does not exist."""
    client.ensure_path(path)
    reached = threading.Event()

    def on_children(children):
        if len(children) >= count:
            reached.set()
            return False
        return True

    ChildrenWatch(client, path, on_children)
    return reached


class StateLog:
    """Records a client's KazooState changes and lets a test wait for one."""

    def __init__(self, client: KazooClient):
        self._cond = threading.Condition()
        self.states: list[str] = []
        client.add_listener(self._on_state)

    def _on_state(self, state):
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()

    def wait_for(self, state: str, after: int = 0, timeout: float = WAIT_S) -> int:
        """Wait until `state` is recorded at an index >= `after`; return that index + 1."""
        with self._cond:

            def found():
                return state in self.states[after:]

            if not self._cond.wait_for(found, timeout):
                raise AssertionError(f"timed out waiting for {state}; states so far: {self.states}")
            return self.states.index(state, after) + 1


class NotificationLog:
    """Every watch notification that arrives on a client's connection, in arrival order, as
    (event name, path) pairs. Recorded on kazoo's reader thread, so after any round trip on the
    same client, every notification the server sent before that reply is in the log. It wraps
    the connection's `_read_watch_event`, a private method of kazoo 2.8 (the version Debian 12
    ships, which the suites are pinned to)."""

    def __init__(self, client: KazooClient):
        self._lock = threading.Lock()
        self._events: deque = deque()
        connection = client._connection
        original = connection._read_watch_event

        def record(buffer, offset):
            watch, _ = Watch.deserialize(buffer, offset)
            with self._lock:
                self._events.append((EVENT_NAMES.get(watch.type, str(watch.type)), watch.path))
            return original(buffer, offset)

        connection._read_watch_event = record

    def take(self) -> list:
        """Remove and return everything recorded so far."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events


class Placement:
    """Which server each new client of a test connects to.

    On a single server, that server. On an ensemble, clients are spread so that followers
    serve them too: the k-th client pinned to one member connects to member (start + k) mod n
    only, and every fourth client gets the connect string of all members instead (kazoo picks
    one at random), as applications are usually configured. `start` varies per test, so the
    first client of a test is not always on the same member.

    A client on one member reads that member's state, which may lag behind another member's
    (ZooKeeper's reads are sequentially consistent): a test that reads what another session
    wrote calls `sync` first, as a ZooKeeper application has to.
    """

    FULL_EVERY = 4

    def __init__(self, endpoints: list, start: int = 0):
        self.endpoints = list(endpoints)
        self._next_member = start
        self._made = 0

    @property
    def all_hosts(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.endpoints)

    def member(self) -> tuple:
        """(host, port) of the member the next pinned client uses."""
        endpoint = self.endpoints[self._next_member % len(self.endpoints)]
        self._next_member += 1
        return endpoint

    def hosts(self) -> str:
        """The connect string of the next client."""
        self._made += 1
        if len(self.endpoints) > 1 and self._made % self.FULL_EVERY == 0:
            return self.all_hosts
        host, port = self.member()
        return f"{host}:{port}"


class ClientPool:
    """Creates clients for one test, placed by a `Placement`, and stops every one of them at
    teardown."""

    def __init__(self, placement: Placement):
        self.placement = placement
        self._clients: list[KazooClient] = []

    def new(self, **kwargs) -> KazooClient:
        client = make_client(self.placement.hosts(), **kwargs)
        self._clients.append(client)
        return client

    def new_super(self, **kwargs) -> KazooClient:
        return self.new(auth=super_auth(), **kwargs)

    def close_all(self) -> None:
        for client in self._clients:
            try:
                stop_client(client)
            except Exception:  # noqa: BLE001 - teardown must reach every client
                pass
        self._clients.clear()
