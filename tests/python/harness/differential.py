"""Differential testing: one randomized operation sequence, run on a reference ZooKeeper and on a
target, must produce the same results, errors, Stats and watch events on both.

Why this shape:
- The sequence is generated from a seed, so a failure is replayed by its seed alone.
- Several sessions per side issue the operations, but one at a time in a seeded order, and
  after each operation every session makes a round trip (`sync`). ZooKeeper delivers a
  connection's notifications before later replies on it, so after that round trip every event
  the operation fired has arrived, and each operation's events are compared by themselves.
  Within one operation the several events a session receives (a multi, a session's
  ephemerals going at once) are compared as a multiset: ZooKeeper does not order them.
- What legitimately differs between two servers is left out: zxids and times (Stat relations
  that do not depend on their values, like "never modified" = mzxid == czxid, are kept) and
  session ids (an ephemeral owner is compared as the label of the session that owns it).
- Operations are chosen from a model of which nodes exist, fed by the reference's answers, and
  versions are read from the reference by an observer session: both sides always receive the
  identical operation, and the run stops at the first difference.
- Containers are never emptied and TTL nodes live for an hour, so the servers' background
  sweeps (whose timing is theirs to choose) never change the tree during a run.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

from kazoo.client import KazooClient
from kazoo.protocol import serialization as wire
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_digest_acl,
)

from . import zkext
from .clients import WAIT_S, NotificationLog, fast_reconnect, super_auth, wait_until
from .proxy import TcpProxy

SESSIONS = 3
# Session timeout of the compared sessions: expiring one takes about this long, and a stall of
# two thirds of it on a loaded machine would expire one by accident.
SESSION_TIMEOUT_S = 6.0
EXPIRY_WAIT_S = SESSION_TIMEOUT_S * 5 + WAIT_S
LONG_TTL_MS = 3_600_000

# Each slot's identity, kept across the sessions that occupy it.
SLOT_AUTH = [[("digest", "alice:alice-pw")], [("digest", "bob:bob-pw")], []]

ACLS = {
    "open": OPEN_ACL_UNSAFE,
    "world-read": READ_ACL_UNSAFE,
    "alice": [make_digest_acl("alice", "alice-pw", all=True)],
    "alice+world-read": [
        make_digest_acl("alice", "alice-pw", all=True),
        ACL(Permissions.READ, Id("world", "anyone")),
    ],
    "bob-no-delete": [
        make_digest_acl("bob", "bob-pw", read=True, write=True, create=True, admin=True)
    ],
    "creator": CREATOR_ALL_ACL,
    "world-create": [ACL(Permissions.READ | Permissions.CREATE, Id("world", "anyone"))],
    "bad-ip": [ACL(Permissions.ALL, Id("ip", "300.1.2.3"))],
    "empty": [],
}

CREATE_MODES = {
    "persistent": zkext.PERSISTENT,
    "ephemeral": zkext.EPHEMERAL,
    "persistent-seq": zkext.PERSISTENT_SEQUENTIAL,
    "ephemeral-seq": zkext.EPHEMERAL_SEQUENTIAL,
    "container": zkext.CONTAINER,
    "ttl": zkext.PERSISTENT_WITH_TTL,
    "ttl-seq": zkext.PERSISTENT_SEQUENTIAL_WITH_TTL,
}
NAMES = ["a", "b", "c", "d", "e"]
MAX_DEPTH = 3


class DifferentialMismatch(AssertionError):
    pass


@dataclass(frozen=True)
class Op:
    kind: str
    slot: int
    args: tuple = ()

    def __str__(self):
        shown = " ".join(f"{k}={v!r}" for k, v in self.args)
        return f"s{self.slot} {self.kind} {shown}".rstrip()

    def arg(self, name, default=None):
        for k, v in self.args:
            if k == name:
                return v
        return default


def _ignore(_event):
    """Watch callback for kazoo's own tables; events are compared from the wire log."""


# --- one side: a server and its sessions ---------------------------------------------------


@dataclass
class Session:
    label: str
    client: KazooClient
    log: NotificationLog
    proxy: TcpProxy
    sentinel: str


@dataclass
class Side:
    name: str
    host: str
    port: int
    sentinel_dir: str
    observer: KazooClient = None
    sessions: list = field(default_factory=list)
    owners: dict = field(default_factory=dict)  # session id -> slot label
    generations: list = field(default_factory=lambda: [0] * SESSIONS)

    def start(self) -> None:
        self.observer = KazooClient(
            hosts=f"{self.host}:{self.port}",
            auth_data=super_auth(),
            connection_retry=fast_reconnect(),
        )
        self.observer.start(timeout=WAIT_S)
        self.observer.ensure_path(self.sentinel_dir)
        self.sessions = [self.open_session(slot) for slot in range(SESSIONS)]

    def open_session(self, slot: int) -> Session:
        self.generations[slot] += 1
        label = f"s{slot}.{self.generations[slot]}"
        proxy = TcpProxy(self.host, self.port)
        client = KazooClient(
            hosts=proxy.hosts,
            timeout=SESSION_TIMEOUT_S,
            auth_data=SLOT_AUTH[slot],
            connection_retry=fast_reconnect(),
        )
        client.start(timeout=WAIT_S)
        self.owners[client.client_id[0]] = label
        sentinel = client.create(f"{self.sentinel_dir}/{label}", ephemeral=True)
        return Session(label, client, NotificationLog(client), proxy, sentinel)

    def close(self) -> None:
        for session in self.sessions:
            _stop(session.client)
            session.proxy.close()
        if self.observer is not None:
            _stop(self.observer)

    def settle(self) -> None:
        for session in self.sessions:
            session.client.sync("/")

    def take_events(self) -> dict:
        return {s.label: sorted(s.log.take()) for s in self.sessions}

    def close_session(self, slot: int) -> None:
        """Close the slot's session (its ephemerals go before close returns) and put a new
        session in the slot."""
        self._replace(slot)

    def cut_session(self, slot: int) -> threading.Event:
        """Cut the slot's session off from the server; the Event is set once the server has
        expired it (its sentinel ephemeral is deleted)."""
        session = self.sessions[slot]
        gone = threading.Event()
        self.observer.exists(session.sentinel, watch=lambda e: gone.set())
        session.proxy.cut()
        return gone

    def finish_expiry(self, slot: int, gone: threading.Event) -> None:
        label = self.sessions[slot].label
        wait_until(gone, f"{self.name}: session {label} to expire", EXPIRY_WAIT_S)
        self._replace(slot)

    def _replace(self, slot: int) -> None:
        session = self.sessions[slot]
        _stop(session.client)
        session.proxy.close()
        self.sessions[slot] = self.open_session(slot)


def _stop(client: KazooClient) -> None:
    try:
        client.stop()
    finally:
        client.close()


# --- applying an operation and describing its result ---------------------------------------


def _stat_view(side: Side, stat):
    if stat is None:
        return None
    owner = stat.ephemeralOwner
    return {
        "version": stat.version,
        "cversion": stat.cversion,
        "aversion": stat.aversion,
        "owner": 0 if owner == 0 else side.owners.get(owner, f"unknown session {owner:#x}"),
        "dataLength": stat.dataLength,
        "numChildren": stat.numChildren,
        "modified": stat.mzxid != stat.czxid,
        "children-changed": stat.pzxid != stat.czxid,
    }


def _view(side: Side, value, kind: str = ""):
    """A server answer with everything that may differ between servers taken out. Name lists
    are sorted (ZooKeeper keeps children in a hash set); multi results keep their order."""
    if isinstance(value, BaseException):
        return ("error", type(value).__name__)
    if isinstance(value, wire.ZnodeStat):
        return _stat_view(side, value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], wire.ZnodeStat):
        first = value[0]
        if kind == "get-acl":
            first = [(a.perms, a.id.scheme, a.id.id) for a in first]
        elif kind == "children":
            first = sorted(first)
        return (first, _stat_view(side, value[1]))
    if kind == "multi" and isinstance(value, list):
        return [_view(side, v) for v in value]
    if isinstance(value, list):
        return sorted(value)
    return value


def _create_request(path, data, acl, mode, create2):
    flags = CREATE_MODES[mode]
    if mode == "container":
        return zkext.CreateContainer(path, data, acl)
    if mode in ("ttl", "ttl-seq"):
        return zkext.CreateTTL(path, data, acl, flags, LONG_TTL_MS)
    if create2:
        return wire.Create2(path, data, acl, flags)
    return zkext.Create(path, data, acl, flags)


def _multi_request(specs):
    ops = []
    for spec in specs:
        kind = spec[0]
        if kind == "create":
            _, path, data, mode = spec
            ops.append(_create_request(path, data, OPEN_ACL_UNSAFE, mode, create2=False))
        elif kind == "delete":
            ops.append(zkext.Delete(spec[1], spec[2]))
        elif kind == "set":
            ops.append(zkext.SetData(spec[1], spec[2], spec[3]))
        elif kind == "check":
            ops.append(zkext.Check(spec[1], spec[2]))
    return zkext.Multi(ops)


def _request(op: Op):
    a = op.arg
    kind = op.kind
    if kind == "create":
        return _create_request(a("path"), a("data"), ACLS[a("acl")], a("mode"), a("create2"))
    if kind == "delete":
        return wire.Delete(a("path"), a("version"))
    if kind == "set":
        return wire.SetData(a("path"), a("data"), a("version"))
    if kind == "exists":
        return wire.Exists(a("path"), _ignore if a("watch") else None)
    if kind == "get":
        return wire.GetData(a("path"), _ignore if a("watch") else None)
    if kind == "children":
        request = wire.GetChildren2 if a("stat") else wire.GetChildren
        return request(a("path"), _ignore if a("watch") else None)
    if kind == "get-acl":
        return wire.GetACL(a("path"))
    if kind == "set-acl":
        return wire.SetACL(a("path"), ACLS[a("acl")], a("version"))
    if kind == "multi":
        return _multi_request(a("ops"))
    if kind == "sync":
        return wire.Sync(a("path"))
    if kind == "add-watch":
        return zkext.AddWatch(a("path"), a("mode"))
    if kind == "remove-watches":
        return zkext.RemoveWatches(a("path"), a("type"))
    if kind == "ephemerals":
        return zkext.GetEphemerals(a("prefix"))
    if kind == "count":
        return zkext.GetAllChildrenNumber(a("path"))
    raise ValueError(f"unknown op kind {kind}")


def apply(side: Side, op: Op):
    """Run `op` on `side` and return its comparable view."""
    if op.kind == "close":
        side.close_session(op.slot)
        return "ended"
    client = side.sessions[op.slot].client
    try:
        answer = zkext.call(client, _request(op))
    except Exception as e:  # noqa: BLE001 - every error is part of the compared result
        answer = e
    return _view(side, answer, op.kind)


# --- choosing operations ------------------------------------------------------------------


@dataclass
class NodeInfo:
    ephemeral_slot: int | None = None
    container: bool = False


class Generator:
    """Seeded operation chooser with a model of the reference's tree."""

    WEIGHTS = {
        "create": 26,
        "delete": 10,
        "set": 12,
        "exists": 7,
        "get": 7,
        "children": 7,
        "get-acl": 3,
        "set-acl": 4,
        "multi": 8,
        "sync": 2,
        "add-watch": 3,
        "remove-watches": 3,
        "ephemerals": 1,
        "count": 1,
        "close": 2,
        "expire": 0.4,
    }

    def __init__(self, seed: int, base: str, observer: KazooClient):
        self.rng = random.Random(seed)
        self.base = base
        self.observer = observer
        self.nodes = {base: NodeInfo()}
        self.generation = [1] * SESSIONS

    # model queries
    def _paths(self, predicate=lambda path, info: True):
        return sorted(p for p, info in self.nodes.items() if predicate(p, info))

    def _parent(self, path):
        return path.rsplit("/", 1)[0]

    def _under_container(self, path):
        parent = self.nodes.get(self._parent(path))
        return parent is not None and parent.container

    def _deletable(self, path, info):
        return path != self.base and not self._under_container(path)

    def _existing(self, include_base=True):
        paths = self._paths(lambda p, i: include_base or p != self.base)
        if not paths or self.rng.random() < 0.08:
            return f"{self.base}/missing/{self.rng.choice(NAMES)}"
        return self.rng.choice(paths)

    def _deletable_path(self):
        paths = self._paths(self._deletable)
        if not paths or self.rng.random() < 0.08:
            return f"{self.base}/{self.rng.choice(NAMES)}-gone"
        return self.rng.choice(paths)

    def _new_child(self, ephemeral_ok=True):
        """(path prefix for a new node, whether its parent is a container)."""
        parents = self._paths(lambda p, i: p.count("/") - self.base.count("/") < MAX_DEPTH)
        parent = self.rng.choice(parents)
        if self.rng.random() < 0.05:
            parent = f"{self.base}/missing"
        name = self.rng.choice(NAMES)
        return f"{parent}/{name}", self._under_container(f"{parent}/{name}")

    def _version(self, path, field_name="version"):
        roll = self.rng.random()
        if roll < 0.4:
            return -1
        stat = self.observer.exists(path)
        current = getattr(stat, field_name) if stat else 0
        return current if roll < 0.8 else current + self.rng.choice([1, 2, 5])

    def _data(self):
        return self.rng.choice(
            [b"", b"x", b"hello", b"z" * 300, bytes(self.rng.randrange(256) for _ in range(8))]
        )

    # op construction
    def next(self) -> Op:
        kinds = list(self.WEIGHTS)
        kind = self.rng.choices(kinds, weights=[self.WEIGHTS[k] for k in kinds])[0]
        slot = self.rng.randrange(SESSIONS)
        return getattr(self, "_op_" + kind.replace("-", "_"))(slot)

    def _op_create(self, slot):
        path, under_container = self._new_child()
        modes = list(CREATE_MODES)
        if under_container:
            # An ephemeral child would empty the container when its session ends.
            modes = [m for m in modes if not m.startswith("ephemeral")]
        mode = self.rng.choice(modes)
        if mode.endswith("-seq"):
            path += "-"
        acl = "open" if self.rng.random() < 0.8 else self.rng.choice(sorted(ACLS))
        return Op(
            "create",
            slot,
            (
                ("path", path),
                ("data", self._data()),
                ("mode", mode),
                ("acl", acl),
                ("create2", self.rng.random() < 0.5),
            ),
        )

    def _op_delete(self, slot):
        path = self._deletable_path()
        return Op("delete", slot, (("path", path), ("version", self._version(path))))

    def _op_set(self, slot):
        path = self._existing()
        return Op(
            "set", slot, (("path", path), ("data", self._data()), ("version", self._version(path)))
        )

    def _op_exists(self, slot):
        path = self._existing() if self.rng.random() < 0.7 else self._new_child()[0]
        return Op("exists", slot, (("path", path), ("watch", self.rng.random() < 0.6)))

    def _op_get(self, slot):
        return Op("get", slot, (("path", self._existing()), ("watch", self.rng.random() < 0.6)))

    def _op_children(self, slot):
        return Op(
            "children",
            slot,
            (
                ("path", self._existing()),
                ("watch", self.rng.random() < 0.6),
                ("stat", self.rng.random() < 0.5),
            ),
        )

    def _op_get_acl(self, slot):
        return Op("get-acl", slot, (("path", self._existing()),))

    def _op_set_acl(self, slot):
        path = self._existing(include_base=False)
        acl = self.rng.choice(sorted(ACLS))
        return Op(
            "set-acl",
            slot,
            (("path", path), ("acl", acl), ("version", self._version(path, "aversion"))),
        )

    def _op_multi(self, slot):
        specs = []
        for _ in range(self.rng.randint(1, 4)):
            roll = self.rng.random()
            if roll < 0.4:
                path, under_container = self._new_child()
                modes = ["persistent", "persistent-seq", "container", "ttl"]
                if not under_container:
                    modes.append("ephemeral")
                mode = self.rng.choice(modes)
                if mode.endswith("-seq"):
                    path += "-"
                specs.append(("create", path, self._data(), mode))
            elif roll < 0.6:
                path = self._deletable_path()
                specs.append(("delete", path, self._version(path)))
            elif roll < 0.85:
                path = self._existing()
                specs.append(("set", path, self._data(), self._version(path)))
            else:
                path = self._existing()
                specs.append(("check", path, self._version(path)))
        return Op("multi", slot, (("ops", tuple(specs)),))

    def _op_sync(self, slot):
        return Op("sync", slot, (("path", self._existing()),))

    def _op_add_watch(self, slot):
        mode = self.rng.choice([zkext.ADD_WATCH_PERSISTENT, zkext.ADD_WATCH_PERSISTENT_RECURSIVE])
        roll = self.rng.random()
        if roll < 0.3:
            path = self.base  # a watch on the whole test tree sees most later changes
        elif roll < 0.85:
            path = self._existing()
        else:
            path = self._new_child()[0]
        return Op("add-watch", slot, (("path", path), ("mode", mode)))

    def _op_remove_watches(self, slot):
        watcher_type = self.rng.choice(
            [zkext.WATCHER_CHILDREN, zkext.WATCHER_DATA, zkext.WATCHER_ANY]
        )
        return Op("remove-watches", slot, (("path", self._existing()), ("type", watcher_type)))

    def _op_ephemerals(self, slot):
        prefix = self.rng.choice([self.base, self._existing()])
        return Op("ephemerals", slot, (("prefix", prefix),))

    def _op_count(self, slot):
        return Op("count", slot, (("path", self._existing()),))

    def _op_close(self, slot):
        return Op("close", slot)

    def _op_expire(self, slot):
        return Op("expire", slot)

    # model updates from the reference's answers
    def observe(self, op: Op, result) -> None:
        if op.kind == "create":
            self._observe_create(op.slot, op.arg("mode"), result)
        elif op.kind == "delete":
            if result is True or result == ("error", "NoNodeError"):
                self._forget(op.arg("path"))
        elif op.kind in ("set", "get", "exists", "children") and result in (
            None,
            ("error", "NoNodeError"),
        ):
            self._forget(op.arg("path"))
        elif op.kind == "multi" and isinstance(result, list):
            if all(not (isinstance(r, tuple) and r and r[0] == "error") for r in result):
                for spec, answer in zip(op.arg("ops"), result):
                    if spec[0] == "create":
                        self._observe_create(op.slot, spec[3], answer)
                    elif spec[0] == "delete":
                        self._forget(spec[1])
        elif op.kind in ("close", "expire"):
            for path in self._paths(lambda p, i: i.ephemeral_slot == op.slot):
                self._forget(path)

    def _observe_create(self, slot, mode, answer):
        if isinstance(answer, tuple) and answer and answer[0] == "error":
            return
        path = answer[0] if isinstance(answer, tuple) else answer
        if not isinstance(path, str):
            return
        self.nodes[path] = NodeInfo(
            ephemeral_slot=slot if mode.startswith("ephemeral") else None,
            container=mode == "container",
        )

    def _forget(self, path):
        self.nodes.pop(path, None)


# --- the run ------------------------------------------------------------------------------


@dataclass
class Step:
    index: int
    op: Op
    reference: object
    target: object
    reference_events: dict
    target_events: dict


def compare_step(step: Step):
    """The differences between the two sides for one step (empty when they agree)."""
    found = []
    if step.reference != step.target:
        found.append(f"result:\n    reference: {step.reference!r}\n    target:    {step.target!r}")
    for label in sorted(set(step.reference_events) | set(step.target_events)):
        want = step.reference_events.get(label, [])
        got = step.target_events.get(label, [])
        if want != got:
            found.append(f"events of session {label}:\n    reference: {want}\n    target:    {got}")
    return found


def _describe(seed, n_ops, step, problems, history):
    recent = "\n".join(
        f"  #{s.index:>4} {s.op}\n         -> {s.reference!r}" for s in list(history)[-12:]
    )
    return (
        f"differential mismatch at step {step.index} of {n_ops} (seed {seed}; replay with "
        f"KEEPR_DIFF_SEEDS={seed} KEEPR_DIFF_OPS={n_ops})\n"
        f"op: {step.op}\n" + "\n".join(problems) + f"\nrecent steps (reference results):\n{recent}"
    )


def run(reference_hosts, target_hosts, seed: int, n_ops: int, base: str, perturb=None) -> list:
    """Run `n_ops` seeded operations on both servers and raise DifferentialMismatch at the
    first difference. `perturb(op) -> op`, if given, changes what the target receives (to prove
    that a difference is caught). Returns the steps (for statistics)."""
    ref_host, ref_port = reference_hosts
    tgt_host, tgt_port = target_hosts
    sentinel_dir = f"{base}-sentinels"
    reference = Side("reference", ref_host, ref_port, sentinel_dir)
    target = Side("target", tgt_host, tgt_port, sentinel_dir)
    steps = []
    history = deque(maxlen=12)
    try:
        for side in (reference, target):
            side.start()
            side.sessions[0].client.create(base)
            side.settle()
            side.take_events()
        generator = Generator(seed, base, reference.observer)
        for index in range(1, n_ops + 1):
            op = generator.next()
            if op.kind == "expire":
                # Both sides at once: expiry takes a session timeout.
                cut = [side.cut_session(op.slot) for side in (reference, target)]
                for side, gone in zip((reference, target), cut):
                    side.finish_expiry(op.slot, gone)
                ref_result = tgt_result = "ended"
            else:
                ref_result = apply(reference, op)
                tgt_result = apply(target, perturb(op) if perturb else op)
            reference.settle()
            target.settle()
            step = Step(
                index, op, ref_result, tgt_result, reference.take_events(), target.take_events()
            )
            problems = compare_step(step)
            if problems:
                raise DifferentialMismatch(_describe(seed, n_ops, step, problems, history))
            generator.observe(op, ref_result)
            history.append(step)
            steps.append(step)
    finally:
        reference.close()
        target.close()
    return steps
