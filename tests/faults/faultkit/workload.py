"""The client workload: many kazoo sessions on different members doing register reads and
writes, compare-and-set, sequential creates and deletes, and holding ephemerals, while the
nemesis breaks things. Every operation goes into the `History`.

- Registers `/kf/registers/r<k>` start as ("init", version 0). Operations: plain `get`
  (`read`), `sync` then `get` on the same session (`sync-read`), `set` (`write`), `set` with
  the version this worker last saw (`cas`), and rarely `delete` and `create`. Every value
  written is unique (`<worker>:<n>`), which the checker relies on.
- `/kf/queue/n-`: sequential creates whose data names the operation, and deletes of nodes
  the worker created.
- `/kf/eph/<worker>-<session>`: one ephemeral per session a worker holds; the checker later
  expects it present while the session lives and gone once it ended (kazoo reports LOST on
  expiry; some workers close and reopen their session on purpose).

Each worker's client lists its preferred member first (`randomize_hosts=False`), then the
others, so sessions start spread over the members and move elsewhere when their member dies
or is cut off. Replies' header zxids are captured per request (kazoo does not expose them)
for the session checker.

Outcomes: success is `ok`; BadVersion/NoNode/NodeExists/NotEmpty are `fail` (definite);
ConnectionLoss, SessionExpired, OperationTimeout and a client-side timeout are `info`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadVersionError, ConnectionLoss, KazooException, NodeExistsError,
                              NoNodeError, NotEmptyError, OperationTimeoutError,
                              SessionExpiredError)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from .history import History, Op

INITIAL = ("init", 0)

DEFINITE = {
    BadVersionError: "BadVersion",
    NoNodeError: "NoNode",
    NodeExistsError: "NodeExists",
    NotEmptyError: "NotEmpty",
}
INDETERMINATE = (ConnectionLoss, SessionExpiredError, OperationTimeoutError, KazooTimeoutError)


def stat_result(data: bytes | None, stat) -> dict:
    return {
        "data": None if data is None else data.decode(),
        "version": stat.version,
        "czxid": stat.czxid,
        "mzxid": stat.mzxid,
    }


def capture_reply_zxids(client: KazooClient) -> None:
    """Makes every reply's header zxid available as `async_result.zxid`. kazoo pops the
    request at the head of `_pending` for each reply, so the head is the one answered."""
    conn = client._connection
    original = conn._read_response

    def read_response(header, buffer, offset):
        if client._pending and client._pending[0][1] is not None:
            client._pending[0][1].zxid = header.zxid
        return original(header, buffer, offset)

    conn._read_response = read_response


def make_client(hosts: list[str], timeout: float) -> KazooClient:
    client = KazooClient(
        hosts=",".join(hosts), timeout=timeout, randomize_hosts=False,
        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5,
                                    max_jitter=0.1))
    capture_reply_zxids(client)
    return client


def connected_member(client: KazooClient, members_by_ip: dict[str, int]):
    try:
        return members_by_ip.get(client._connection._socket.getpeername()[0])
    except (AttributeError, OSError, TypeError):
        return None


@dataclass
class Config:
    # Everything of one run (or one soak epoch) lives under this node.
    root: str = "/kf"
    registers: int = 3
    session_timeout: float = 6.0
    op_timeout: float = 12.0
    # Relative weights of the operations.
    weights: dict = field(default_factory=lambda: {
        "read": 20, "sync-read": 15, "write": 15, "cas": 30, "delete": 1, "create": 2,
        "seq-create": 8, "seq-delete": 4, "reconnect": 0.3,
    })

    @property
    def queue(self) -> str:
        return f"{self.root}/queue"

    @property
    def ephemerals(self) -> str:
        return f"{self.root}/eph"

    def register(self, key: str) -> str:
        return f"{self.root}/registers/{key}"


def setup_tree(hosts: str, config: Config) -> dict:
    """Creates the workload's nodes; returns the registers' initial states."""
    c = KazooClient(hosts=hosts, timeout=10)
    c.start(timeout=30)
    try:
        for p in (config.queue, config.ephemerals, f"{config.root}/registers"):
            c.ensure_path(p)
        initial = {}
        for k in range(config.registers):
            key = f"r{k}"
            c.create(config.register(key), INITIAL[0].encode())
            initial[key] = INITIAL
        return initial
    finally:
        c.stop()
        c.close()


class Worker(threading.Thread):
    def __init__(self, name: str, hosts: list[str], members_by_ip: dict[str, int],
                 history: History, config: Config, seed: int, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.process = name
        self.hosts = hosts
        self.members_by_ip = members_by_ip
        self.history = history
        self.config = config
        self.rng = random.Random(seed)
        self.stop_event = stop
        self.client: KazooClient | None = None
        self.counter = 0
        self.last_version: dict[str, int] = {}
        self.my_seq_nodes: list[str] = []
        # Ephemerals: path -> session, for sessions alive / ended.
        self.ephemerals_alive: dict[str, int] = {}
        self.ephemerals_gone: dict[str, int] = {}
        self.sessions_seen: list[int] = []
        self.session_members: dict[int, set] = {}
        self.expired = 0
        self.error: BaseException | None = None
        self._lost = threading.Event()
        self._closing = False
        self.ops_done = 0

    # -- session handling -----------------------------------------------------------------

    def _open(self) -> None:
        client = make_client(self.hosts, self.config.session_timeout)

        def listener(state):
            # LOST also comes from our own stop(); only this client's expiry counts.
            if state == KazooState.LOST and self.client is client and not self._closing:
                self._lost.set()
            return False

        self.client = client
        self.client.add_listener(listener)
        self.client.start(timeout=60)
        self._on_new_session()

    def _session(self):
        return self.client._session_id if self.client else None

    def _on_new_session(self) -> None:
        sid = self._session()
        if sid is None or sid in self.sessions_seen:
            return
        self.sessions_seen.append(sid)
        path = f"{self.config.ephemerals}/{self.process}-{sid:x}"
        try:
            self.client.create(path, b"", ephemeral=True)
            if self._session() == sid:
                self.ephemerals_alive[path] = sid
        except NodeExistsError:
            pass
        except (KazooException, KazooTimeoutError):
            pass  # unknown outcome: this ephemeral is not checked

    def _check_session(self) -> None:
        """After an expiry kazoo has a new session: its ephemerals moved to `gone`."""
        if self._lost.is_set():
            self._lost.clear()
            self.expired += 1
            for path, sid in list(self.ephemerals_alive.items()):
                if sid != self._session():
                    self.ephemerals_gone[path] = self.ephemerals_alive.pop(path)
        sid = self._session()
        if sid is not None and sid not in self.sessions_seen and self.client.connected:
            self._on_new_session()

    def _reconnect(self) -> None:
        """Closes the session on purpose (its ephemerals must go) and opens a new one."""
        old = self._session()
        self._closing = True
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # noqa: BLE001 - a failed close leaves the session to expire
            pass
        self._closing = False
        for path, sid in list(self.ephemerals_alive.items()):
            if sid == old:
                self.ephemerals_gone[path] = self.ephemerals_alive.pop(path)
        self._open()

    def close(self) -> None:
        self._closing = True
        if self.client is not None:
            try:
                self.client.stop()
                self.client.close()
            except Exception:  # noqa: BLE001
                pass

    # -- operations -----------------------------------------------------------------------

    def _value(self) -> str:
        self.counter += 1
        return f"{self.process}:{self.counter}"

    def _invoke(self, f, key, value) -> Op:
        return self.history.invoke(self.process, self._session(), f, key, value,
                                   member=connected_member(self.client, self.members_by_ip))

    def _wait(self, op: Op, async_result):
        """Waits for a reply; records fail/info itself and returns None unless ok."""
        try:
            value = async_result.get(timeout=self.config.op_timeout)
        except tuple(DEFINITE) as e:
            op.session = self._session()
            op.member_end = connected_member(self.client, self.members_by_ip)
            self.history.fail(op, DEFINITE[type(e)], getattr(async_result, "zxid", None))
            return None, False
        except INDETERMINATE as e:
            self.history.info(op, type(e).__name__)
            return None, False
        op.session = self._session()
        op.member_end = connected_member(self.client, self.members_by_ip)
        return value, True

    def run(self) -> None:
        try:
            self._open()
            ops = list(self.config.weights)
            weights = [self.config.weights[o] for o in ops]
            while not self.stop_event.is_set():
                self._check_session()
                f = self.rng.choices(ops, weights)[0]
                key = f"r{self.rng.randrange(self.config.registers)}"
                getattr(self, "_do_" + f.replace("-", "_"))(key)
                self.ops_done += 1
        except BaseException as e:  # noqa: BLE001 - reported by the runner
            self.error = e

    def _do_read(self, key):
        op = self._invoke("read", key, None)
        r = self.client.get_async(self.config.register(key))
        value, ok = self._wait(op, r)
        if ok:
            data, stat = value
            self.last_version[key] = stat.version
            self.history.ok(op, stat_result(data, stat), getattr(r, "zxid", None))

    def _do_sync_read(self, key):
        op = self._invoke("sync-read", key, None)
        s = self.client.sync_async(self.config.register(key))
        _, ok = self._wait(op, s)
        if not ok:
            if op.type == "fail":  # sync itself never fails definitely; treat as unknown
                op.type, op.end = "info", None
            return
        r = self.client.get_async(self.config.register(key))
        value, ok = self._wait(op, r)
        if ok:
            data, stat = value
            self.last_version[key] = stat.version
            self.history.ok(op, stat_result(data, stat), getattr(r, "zxid", None))

    def _do_write(self, key):
        v = self._value()
        op = self._invoke("write", key, v)
        r = self.client.set_async(self.config.register(key), v.encode(), -1)
        stat, ok = self._wait(op, r)
        if ok:
            self.last_version[key] = stat.version
            self.history.ok(op, stat_result(v.encode(), stat), getattr(r, "zxid", None))

    def _do_cas(self, key):
        v = self._value()
        expected = self.last_version.get(key, 0)
        op = self._invoke("cas", key, (expected, v))
        r = self.client.set_async(self.config.register(key), v.encode(), expected)
        stat, ok = self._wait(op, r)
        if ok:
            self.last_version[key] = stat.version
            self.history.ok(op, stat_result(v.encode(), stat), getattr(r, "zxid", None))
        elif op.result == "BadVersion":
            self.last_version.pop(key, None)
            self._do_read(key)

    def _do_delete(self, key):
        expected = self.last_version.get(key, -1)
        op = self._invoke("delete", key, expected)
        r = self.client.delete_async(self.config.register(key), expected)
        _, ok = self._wait(op, r)
        if ok:
            self.history.ok(op, None, getattr(r, "zxid", None))

    def _do_create(self, key):
        v = self._value()
        op = self._invoke("create", key, v)
        r = self.client.create_async(self.config.register(key), v.encode(), include_data=True)
        value, ok = self._wait(op, r)
        if ok:
            _, stat = value
            self.last_version[key] = stat.version
            self.history.ok(op, stat_result(v.encode(), stat), getattr(r, "zxid", None))

    def _do_seq_create(self, _key):
        v = self._value()
        op = self._invoke("seq-create", self.config.queue, v)
        r = self.client.create_async(f"{self.config.queue}/n-", v.encode(), sequence=True)
        path, ok = self._wait(op, r)
        if ok:
            self.my_seq_nodes.append(path)
            self.history.ok(op, path, getattr(r, "zxid", None))

    def _do_seq_delete(self, _key):
        if not self.my_seq_nodes:
            return
        path = self.my_seq_nodes.pop(self.rng.randrange(len(self.my_seq_nodes)))
        op = self._invoke("seq-delete", self.config.queue, path)
        r = self.client.delete_async(path)
        _, ok = self._wait(op, r)
        if ok:
            self.history.ok(op, None, getattr(r, "zxid", None))

    def _do_reconnect(self, _key):
        self._reconnect()


def members_by_ip(cluster) -> dict[str, int]:
    return {m.ip: i for i, m in cluster.members.items()}


# Pinned readers only read, each on one member it never leaves: they keep observing a
# member that is cut off from its peers (a stale-read bug shows there first).
READER_WEIGHTS = {"sync-read": 3, "read": 1}


def start_workers(cluster, history: History, config: Config, n: int, seed: int,
                  stop: threading.Event, readers: int = 0) -> list[Worker]:
    """`n` read-write workers spread over the members (each lists its preferred member
    first and the others after it), plus `readers` pinned readers."""
    ids = sorted(cluster.members)
    # Preferred (and pinned) members are serving ones: with spare member slots the others
    # are down. Those stay listed after them, as members may join there later.
    serving = sorted(cluster.serving)
    by_ip = members_by_ip(cluster)
    workers = []
    for w in range(n + readers):
        first = serving[w % len(serving)]
        if w < n:
            order = [first] + [i for i in ids if i != first]
            name, cfg = f"w{w}", config
        else:
            order = [first]
            name, cfg = f"reader{w - n}-m{first}", replace(config, weights=READER_WEIGHTS)
        hosts = [cluster.members[i].addr for i in order]
        worker = Worker(name, hosts, by_ip, history, cfg, seed * 1000 + w, stop)
        worker.start()
        workers.append(worker)
    return workers
