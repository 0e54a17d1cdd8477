"""ZooKeeper requests that kazoo 2.8 cannot send, sent through a kazoo connection.

kazoo 2.8 (Debian 12's) predates containers, TTL nodes, persistent watches, removeWatches,
getEphemerals, getAllChildrenNumber and whoAmI, and its multi reader does not understand
create2-type results (which container and TTL creates return inside a multi). Applications on
other clients use all of these, so the suites must exercise them too. kazoo's connection sends
any object with an opcode `type`, `serialize()` and `deserialize()`, so each request here is
just its record layout from zookeeper.jute; kazoo still does framing, xids and error mapping.
"""

from __future__ import annotations

import struct
from collections import namedtuple

from kazoo.exceptions import EXCEPTIONS, ZookeeperError
from kazoo.protocol.serialization import (
    int_struct,
    read_string,
    stat_struct,
    write_buffer,
    write_string,
)
from kazoo.protocol.states import ZnodeStat

REQUEST_TIMEOUT_S = 15.0

# CreateMode flags (zookeeper's CreateMode.toFlag).
PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# AddWatchMode and WatcherType values.
ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1
WATCHER_CHILDREN = 1
WATCHER_DATA = 2
WATCHER_ANY = 3

_long_struct = struct.Struct("!q")


# Error codes newer than kazoo 2.8. kazoo looks every reply's error code up in EXCEPTIONS and an
# unknown code raises inside its reader thread, killing the connection, so they are registered.
class EphemeralOnLocalSessionError(ZookeeperError):
    code = -120


class NoWatcherError(ZookeeperError):
    code = -121


class RequestTimeoutError(ZookeeperError):
    code = -122


class ReconfigDisabledError(ZookeeperError):
    code = -123


class SessionClosedRequireSaslError(ZookeeperError):
    code = -124


class QuotaExceededError(ZookeeperError):
    code = -125


class ThrottledOpError(ZookeeperError):
    code = -127


for _error in (
    EphemeralOnLocalSessionError,
    NoWatcherError,
    RequestTimeoutError,
    ReconfigDisabledError,
    SessionClosedRequireSaslError,
    QuotaExceededError,
    ThrottledOpError,
):
    EXCEPTIONS.setdefault(_error.code, _error)


def _write_acls(acls) -> bytes:
    out = bytearray(int_struct.pack(len(acls)))
    for acl in acls:
        out += int_struct.pack(acl.perms)
        out += write_string(acl.id.scheme)
        out += write_string(acl.id.id)
    return bytes(out)


def _read_stat(buf, offset):
    return ZnodeStat._make(stat_struct.unpack_from(buf, offset)), offset + stat_struct.size


def _read_strings(buf, offset):
    count = int_struct.unpack_from(buf, offset)[0]
    offset += int_struct.size
    items = []
    for _ in range(max(count, 0)):
        item, offset = read_string(buf, offset)
        items.append(item)
    return items, offset


class CreateContainer(namedtuple("CreateContainer", "path data acl")):
    type = 19

    def serialize(self):
        return (
            write_string(self.path)
            + write_buffer(self.data)
            + _write_acls(self.acl)
            + int_struct.pack(CONTAINER)
        )

    @classmethod
    def deserialize(cls, buf, offset):
        path, offset = read_string(buf, offset)
        stat, _ = _read_stat(buf, offset)
        return path, stat


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        return (
            write_string(self.path)
            + write_buffer(self.data)
            + _write_acls(self.acl)
            + int_struct.pack(self.flags)
            + _long_struct.pack(self.ttl)
        )

    @classmethod
    def deserialize(cls, buf, offset):
        return CreateContainer.deserialize(buf, offset)


class Create(namedtuple("Create", "path data acl flags")):
    """Plain create (opcode 1) sent exactly as given: kazoo's own create replaces an empty ACL
    list with its default."""

    type = 1

    def serialize(self):
        return (
            write_string(self.path)
            + write_buffer(self.data)
            + _write_acls(self.acl)
            + int_struct.pack(self.flags)
        )

    @classmethod
    def deserialize(cls, buf, offset):
        return read_string(buf, offset)[0]


class Delete(namedtuple("Delete", "path version")):
    type = 2

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.version)


class SetData(namedtuple("SetData", "path data version")):
    type = 5

    def serialize(self):
        return write_string(self.path) + write_buffer(self.data) + int_struct.pack(self.version)


class Check(namedtuple("Check", "path version")):
    type = 13

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.version)


class Multi(namedtuple("Multi", "ops")):
    """multi (opcode 14). The result is one entry per op: a path (create), a (path, stat)
    pair (create2-type: container and TTL creates), a Stat (setData), True (delete, check) or
    an exception instance (every op of a failed multi, as kazoo reports them)."""

    type = 14

    def serialize(self):
        out = bytearray()
        for op in self.ops:
            out += struct.pack("!iBi", op.type, 0, -1)
            out += op.serialize()
        out += struct.pack("!iBi", -1, 1, -1)
        return bytes(out)

    @classmethod
    def deserialize(cls, buf, offset):
        results = []
        while True:
            op_type, done, _err = struct.unpack_from("!iBi", buf, offset)
            offset += 9
            if done:
                return results
            if op_type == 1:
                path, offset = read_string(buf, offset)
                results.append(path)
            elif op_type == 15:
                path, offset = read_string(buf, offset)
                stat, offset = _read_stat(buf, offset)
                results.append((path, stat))
            elif op_type in (2, 13):
                results.append(True)
            elif op_type == 5:
                stat, offset = _read_stat(buf, offset)
                results.append(stat)
            elif op_type == -1:
                code = int_struct.unpack_from(buf, offset)[0]
                offset += int_struct.size
                results.append(EXCEPTIONS[code]())
            else:
                raise ValueError(f"unexpected multi result type {op_type}")


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = 106

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.mode)

    @classmethod
    def deserialize(cls, buf, offset):
        # The reply body is an ErrorResponse{err}; kazoo only calls this when the header's err
        # is 0.
        return True


class RemoveWatches(namedtuple("RemoveWatches", "path watcher_type")):
    type = 18

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.watcher_type)

    @classmethod
    def deserialize(cls, buf, offset):
        return True


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    type = 103

    def serialize(self):
        return write_string(self.prefix)

    @classmethod
    def deserialize(cls, buf, offset):
        return _read_strings(buf, offset)[0]


class GetAllChildrenNumber(namedtuple("GetAllChildrenNumber", "path")):
    type = 104

    def serialize(self):
        return write_string(self.path)

    @classmethod
    def deserialize(cls, buf, offset):
        return int_struct.unpack_from(buf, offset)[0]


class WhoAmI:
    # Not an empty namedtuple: kazoo drops the reply of a request object that is falsy.
    type = 107

    def serialize(self):
        return b""

    @classmethod
    def deserialize(cls, buf, offset):
        count = int_struct.unpack_from(buf, offset)[0]
        offset += int_struct.size
        infos = []
        for _ in range(max(count, 0)):
            scheme, offset = read_string(buf, offset)
            user, offset = read_string(buf, offset)
            infos.append((scheme, user))
        return infos


def call(client, request, timeout: float = REQUEST_TIMEOUT_S):
    """Send `request` on `client`'s connection and wait (bounded) for its answer; ZooKeeper
    errors raise the same kazoo exceptions as kazoo's own calls."""
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=timeout)
