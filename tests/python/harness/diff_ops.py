"""What a differential operation is: its description, the request it sends, and the view of
its answer that is compared between servers."""

from __future__ import annotations

from dataclasses import dataclass

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

# TTL of every TTL node: long enough that none expires during a run.
LONG_TTL_MS = 3_600_000

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


def _stat_view(owners: dict, stat):
    if stat is None:
        return None
    owner = stat.ephemeralOwner
    return {
        "version": stat.version,
        "cversion": stat.cversion,
        "aversion": stat.aversion,
        "owner": 0 if owner == 0 else owners.get(owner, f"unknown session {owner:#x}"),
        "dataLength": stat.dataLength,
        "numChildren": stat.numChildren,
        "modified": stat.mzxid != stat.czxid,
        "children-changed": stat.pzxid != stat.czxid,
    }


def view(owners: dict, value, kind: str = ""):
    """A server answer with everything that may differ between servers taken out (`owners`
    maps session ids to the labels compared instead). Name lists
    are sorted (ZooKeeper keeps children in a hash set); multi results keep their order."""
    if isinstance(value, BaseException):
        return ("error", type(value).__name__)
    if isinstance(value, wire.ZnodeStat):
        return _stat_view(owners, value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], wire.ZnodeStat):
        first = value[0]
        if kind == "get-acl":
            first = [(a.perms, a.id.scheme, a.id.id) for a in first]
        elif kind == "children":
            first = sorted(first)
        return (first, _stat_view(owners, value[1]))
    if kind == "multi" and isinstance(value, list):
        return [view(owners, v) for v in value]
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


def request(op: Op):
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
