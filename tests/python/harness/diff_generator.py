"""Seeded choice of differential operations.

The chooser keeps a model of which nodes exist (fed by the reference's answers) so that most
operations hit real nodes, and reads current versions from the reference through an observer
session, so "right" and "wrong" versions are both exercised. Both sides then receive the
identical operation. It never empties a container and never puts an ephemeral under one, so
the servers' container sweeps cannot change the tree during a run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kazoo.client import KazooClient

from . import zkext
from .diff_ops import ACLS, CREATE_MODES, Op
from .diff_sides import SESSIONS

NAMES = ["a", "b", "c", "d", "e"]
MAX_DEPTH = 3


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
