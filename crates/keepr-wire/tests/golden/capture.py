#!/usr/bin/python3
"""Capture real ZooKeeper traffic as golden frames for keepr-wire's tests.

Runs real clients (kazoo, zkCli, and a small Java API program when a JDK is present)
against a running ZooKeeper through a logging TCP proxy on 127.0.0.1, and writes one
fixture file per client: every frame in both directions, with the opcode each frame
belongs to. Replies do not say which request they answer, so the proxy remembers the
opcode of every request by connection and xid and labels the reply with it.

Fixture format, one frame per line (lines starting with '#' are comments):

    <connection> <direction> <context> <payload hex>

direction is c>s or s>c; context is "connect" for the handshake frames, otherwise
"<opcode>:<name>" of the request (for a reply: of the request it answers; 0 for watch
notifications). The payload excludes the 4-byte length prefix.

Run it with Debian's interpreter (/usr/bin/python3, which has python3-kazoo):

    /usr/bin/python3 capture.py --zookeeper 127.0.0.1:2181 --out-dir DIR

The keepr-wire test `golden_live` starts a ZooKeeper, runs this, and checks every frame;
with KEEPR_WRITE_GOLDEN=1 it also refreshes the committed fixtures.
"""

import argparse
import collections
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

C2S = "c>s"
S2C = "s>c"

OP_NAMES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
    5: "setData", 6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping",
    12: "getChildren2", 13: "check", 14: "multi", 15: "create2", 16: "reconfig",
    17: "checkWatches", 18: "removeWatches", 19: "createContainer", 20: "deleteContainer",
    21: "createTTL", 22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch",
    107: "whoAmI", -10: "createSession", -11: "closeSession",
}

WAIT = 30.0  # seconds any single awaited event may take before the capture fails


class Frame:
    __slots__ = ("conn", "direction", "op", "xid", "payload")

    def __init__(self, conn, direction, op, xid, payload):
        self.conn = conn
        self.direction = direction
        self.op = op  # "connect", an int opcode, or None when a reply matched no request
        self.xid = xid
        self.payload = payload

    def context(self):
        if self.op == "connect":
            return "connect"
        if self.op is None:
            return "?"
        return "%d:%s" % (self.op, OP_NAMES.get(self.op, "?"))


class Connection:
    def __init__(self, conn_id, client, server):
        self.id = conn_id
        self.client = client
        self.server = server
        self.handshake_seen = {C2S: False, S2C: False}
        self.pending = collections.defaultdict(collections.deque)  # xid -> opcodes


class Proxy:
    """Forwards 127.0.0.1:<port> to the upstream server and records every frame."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.entries = []  # Frame or comment string, in the order they passed
        self.cond = threading.Condition()
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def note(self, text):
        with self.cond:
            self.entries.append(text)

    def frames(self):
        with self.cond:
            return [e for e in self.entries if isinstance(e, Frame)]

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=WAIT)
                server.settimeout(None)
            except OSError:
                # The server is not up yet: the client sees a refused connection and retries.
                client.close()
                continue
            with self.cond:
                conn = Connection(len(self.connections) + 1, client, server)
                self.connections.append(conn)
            for src, dst, direction in ((client, server, C2S), (server, client, S2C)):
                threading.Thread(
                    target=self._pump, args=(conn, src, dst, direction), daemon=True
                ).start()

    def _pump(self, conn, src, dst, direction):
        buf = bytearray()
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            # A request is recorded before it is forwarded, so that it is known before its
            # reply can exist; a reply is forwarded before it is recorded, so that whoever
            # waits for it knows the client has it.
            if direction == S2C and not self._forward(dst, chunk):
                break
            buf += chunk
            while len(buf) >= 4:
                length = struct.unpack(">i", buf[:4])[0]
                if length < 0 or len(buf) < 4 + length:
                    break
                payload = bytes(buf[4 : 4 + length])
                del buf[: 4 + length]
                self._record(conn, direction, payload)
            if direction == C2S and not self._forward(dst, chunk):
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _forward(dst, chunk):
        try:
            dst.sendall(chunk)
            return True
        except OSError:
            return False

    def _record(self, conn, direction, payload):
        with self.cond:
            if not conn.handshake_seen[direction]:
                conn.handshake_seen[direction] = True
                frame = Frame(conn.id, direction, "connect", None, payload)
            elif direction == C2S:
                xid, op = struct.unpack(">ii", payload[:8])
                conn.pending[xid].append(op)
                frame = Frame(conn.id, direction, op, xid, payload)
            else:
                xid = struct.unpack(">i", payload[:4])[0]
                if xid == -1:
                    op = 0
                else:
                    queue = conn.pending.get(xid)
                    op = queue.popleft() if queue else None
                frame = Frame(conn.id, direction, op, xid, payload)
            self.entries.append(frame)
            self.cond.notify_all()

    def drop_connections(self):
        """Cuts every open connection, as a network failure would; clients reconnect."""
        with self.cond:
            conns = list(self.connections)
        for conn in conns:
            for s in (conn.client, conn.server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def connection_count(self):
        with self.cond:
            return len(self.connections)

    def wait_for(self, predicate, what):
        with self.cond:
            ok = self.cond.wait_for(
                lambda: any(predicate(e) for e in self.entries if isinstance(e, Frame)), WAIT
            )
        if not ok:
            raise TimeoutError("waited %.0fs for %s" % (WAIT, what))

    def wait_reply(self, request_predicate, what):
        """Waits for a request matching the predicate and then for its reply."""
        request = []

        def find_request(f):
            if f.direction == C2S and f.op != "connect" and request_predicate(f):
                request.append(f)
                return True
            return False

        self.wait_for(find_request, what)
        req = request[0]
        self.wait_for(
            lambda f: f.direction == S2C and f.conn == req.conn and f.xid == req.xid
            and f.op == req.op,
            "the reply to " + what,
        )

    def write(self, path, header_lines):
        with self.cond:
            entries = list(self.entries)
        with open(path, "w") as out:
            for line in header_lines:
                out.write("# %s\n" % line)
            out.write("# format: <connection> <c>s|s>c> <connect|opcode:name> <payload hex>\n")
            for e in entries:
                if isinstance(e, Frame):
                    out.write("%d %s %s %s\n" % (e.conn, e.direction, e.context(), e.payload.hex()))
                else:
                    out.write("# step: %s\n" % e)


def four_letter_word(host, port, word):
    with socket.create_connection((host, port), timeout=WAIT) as s:
        s.sendall(word)
        chunks = []
        while True:
            data = s.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


# --- kazoo ------------------------------------------------------------------------------------


def drive_kazoo(proxy):
    import kazoo
    from kazoo.client import KazooClient, KazooState
    from kazoo.exceptions import (
        AuthFailedError, BadVersionError, InvalidACLError, NoAuthError,
        NoChildrenForEphemeralsError, NodeExistsError, NoNodeError, NotEmptyError,
    )
    from kazoo.security import ACL, Id, make_digest_acl

    def client():
        zk = KazooClient(
            hosts=proxy.address,
            timeout=10.0,
            connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=1.0),
        )
        zk.start(timeout=WAIT)
        return zk

    def expect(exc, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except exc:
            return
        raise AssertionError("expected %s from %s%r" % (exc.__name__, fn.__name__, args))

    def awaited(event, what):
        if not event.wait(WAIT):
            raise TimeoutError("waited %.0fs for %s" % (WAIT, what))

    zk = client()
    root = "/kazoo"

    proxy.note("create: persistent with data, empty data, every mode, create2")
    zk.create(root, b"root-data")
    zk.create(root + "/empty", b"")
    zk.create(root + "/eph", b"e", ephemeral=True)
    zk.create(root + "/seq-", b"s", sequence=True)
    zk.create(root + "/eseq-", b"es", ephemeral=True, sequence=True)
    zk.create(root + "/with-stat", b"x", include_data=True)

    proxy.note("errors: node exists, no node, ephemeral parent, bad version, not empty")
    expect(NodeExistsError, zk.create, root)
    expect(NoNodeError, zk.get, root + "/missing")
    assert zk.exists(root + "/missing") is None
    expect(NoChildrenForEphemeralsError, zk.create, root + "/eph/child")
    expect(BadVersionError, zk.set, root, b"v", version=42)
    expect(NotEmptyError, zk.delete, root)

    proxy.note("read and write: exists, get, set, get_children with and without stat")
    zk.exists(root)
    zk.get(root)
    zk.get(root + "/empty")
    zk.set(root, b"second")
    zk.set(root, b"third", version=1)
    zk.get_children(root)
    zk.get_children(root, include_data=True)
    zk.delete(root + "/with-stat", version=0)

    proxy.note("acl: digest auth, create with digest ACL, get/set ACLs, no auth, invalid ACL")
    zk.add_auth("digest", "alice:secret")
    alice = make_digest_acl("alice", "secret", all=True)
    zk.create(root + "/secret", b"s", acl=[alice])
    zk.get_acls(root + "/secret")
    zk.set_acls(root + "/secret", [alice, ACL(1, Id("world", "anyone"))], version=0)
    other = client()
    expect(NoAuthError, other.set, root + "/secret", b"nope")
    other.get(root + "/secret")
    other.stop()
    other.close()
    expect(InvalidACLError, zk.create, root + "/bad-acl", acl=[ACL(31, Id("digest", "nocolon"))])

    proxy.note("sync")
    zk.sync(root)

    proxy.note("transactions: one that commits, one that fails on its second op")
    t = zk.transaction()
    t.create(root + "/tx", b"1")
    t.set_data(root + "/tx", b"2")
    t.check(root + "/tx", 1)
    t.delete(root + "/tx")
    results = t.commit()
    assert len(results) == 4, results
    t = zk.transaction()
    t.create(root + "/tx2", b"")
    t.delete(root + "/does-not-exist")
    t.create(root + "/tx3", b"")
    results = t.commit()
    assert any(isinstance(r, NoNodeError) for r in results), results

    proxy.note("watches: data, child, exists (created), exists (deleted)")
    fired = threading.Event()
    zk.get(root, watch=lambda e: fired.set())
    zk.set(root, b"watched")
    awaited(fired, "a NodeDataChanged event")
    fired.clear()
    zk.get_children(root, watch=lambda e: fired.set())
    zk.create(root + "/child", b"")
    awaited(fired, "a NodeChildrenChanged event")
    fired.clear()
    zk.exists(root + "/later", watch=lambda e: fired.set())
    zk.create(root + "/later", b"")
    awaited(fired, "a NodeCreated event")
    fired.clear()
    zk.exists(root + "/later", watch=lambda e: fired.set())
    zk.delete(root + "/later")
    awaited(fired, "a NodeDeleted event")

    proxy.note("reconnect: the connection is cut; kazoo resumes its session")
    reconnected = threading.Event()
    lost = threading.Event()

    def on_state(state):
        if state == KazooState.SUSPENDED:
            lost.set()
        elif state == KazooState.CONNECTED and lost.is_set():
            reconnected.set()

    zk.add_listener(on_state)
    connections_before = proxy.connection_count()
    proxy.drop_connections()
    awaited(reconnected, "kazoo to reconnect")
    assert proxy.connection_count() > connections_before
    zk.get(root + "/eph")

    proxy.note("auth failure: unknown scheme; the server answers AUTHFAILED and closes")
    doomed = client()
    expect(AuthFailedError, doomed.add_auth, "nosuchscheme", "x")
    doomed.stop()
    doomed.close()

    proxy.note("close session")
    zk.stop()
    zk.close()
    return "kazoo %s" % getattr(kazoo, "__version__", "?")


# --- zkCli ------------------------------------------------------------------------------------


class ZkCli:
    """One zkCli.sh session fed commands on stdin (it runs them one by one, in order)."""

    def __init__(self, zkcli, proxy, log_dir, extra_args=()):
        self.proxy = proxy
        self.marks = 0
        self.log = open(os.path.join(log_dir, "zkcli-%d.log" % proxy.port), "ab")
        # The smallest timeout ZooKeeper grants (2 ticks): an idle client pings after a
        # third of it, so the capture can wait for a ping instead of sleeping.
        self.proc = subprocess.Popen(
            [zkcli, "-waitforconnection", "-timeout", "4000", *extra_args,
             "-server", proxy.address],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def run(self, *commands):
        for c in commands:
            self.proc.stdin.write((c + "\n").encode())
        self.proc.stdin.flush()

    def settle(self, label):
        """Waits until zkCli has executed everything sent so far, by sending a sync with a
        unique path and waiting for its reply (sync succeeds whether the path exists or
        not, so zkCli's exit status still reflects the last real command)."""
        self.marks += 1
        path = "/zkcli-mark-%d" % self.marks
        self.run("sync " + path)
        self.proxy.wait_reply(
            lambda f: f.op == 9 and path.encode() in f.payload, "zkCli to finish " + label
        )

    def quit(self):
        self.run("quit")
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        if self.proc.returncode != 0:
            raise RuntimeError("zkCli exited with %d" % self.proc.returncode)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def drive_zkcli(proxy, zkcli, log_dir, register):
    cli = ZkCli(zkcli, proxy, log_dir)
    register(cli)
    root = "/zkcli"

    proxy.note("create: every flag zkCli has (-s -e -c -t), null data, an ACL argument")
    cli.run(
        "create %s data" % root,
        "create %s/nodata" % root,
        "create -e %s/eph e" % root,
        "create -s %s/seq- s" % root,
        "create -e -s %s/eseq- es" % root,
        "create -c %s/cont" % root,
        "create %s/cont/child c" % root,
        "create -t 600000 %s/ttl t" % root,
        "create -s -t 600000 %s/ttlseq- ts" % root,
        "create %s/open x world:anyone:cdrwa" % root,
        "create %s data" % root,  # node exists
    )
    cli.settle("creates")

    proxy.note("reads: getAllChildrenNumber, getEphemerals, get -s, stat, ls -s, whoami, config")
    cli.run(
        "getAllChildrenNumber %s" % root,
        "getEphemerals %s" % root,
        "getEphemerals",
        "get -s %s" % root,
        "get %s/nodata" % root,
        "stat %s" % root,
        "ls -s %s" % root,
        "ls %s/missing" % root,
        "whoami",
        "config",
    )
    cli.settle("reads")

    proxy.note("writes: set, set -v, bad version, delete errors, sync")
    cli.run(
        "set %s newdata" % root,
        "set -v 1 %s again" % root,
        "set -v 99 %s stale" % root,
        "delete %s/missing" % root,
        "delete %s/cont" % root,  # not empty
        "sync %s" % root,
    )
    cli.settle("writes")

    proxy.note("acl: addauth digest, whoami, setAcl auth::cdrwa, getAcl, reconfig refused")
    cli.run(
        "addauth digest bob:pw",
        "whoami",
        "setAcl %s/nodata auth::cdrwa" % root,
        "getAcl %s/nodata" % root,
        "setAcl -v 7 %s/nodata world:anyone:r" % root,  # bad acl version
        "reconfig -add server.5=127.0.0.1:2888:3888;2181",
    )
    cli.settle("acl")

    proxy.note("one-shot watches: stat -w, ls -s -w, get -w")
    cli.run(
        "stat -w %s/nodata" % root,
        "ls -s -w %s" % root,
        "get -w %s/eph" % root,
        "stat -w %s/not-yet" % root,
    )
    cli.settle("watches")

    proxy.note("reconnect: the connection is cut; the Java client re-arms with setWatches")
    proxy.drop_connections()
    proxy.wait_reply(lambda f: f.op == 101, "setWatches after reconnect")

    proxy.note("watches firing after the reconnect")
    cli.run(
        "set %s/nodata fire" % root,
        "create %s/not-yet" % root,
        "create %s/another" % root,
        "set %s/eph changed" % root,
    )
    cli.settle("watch triggers")

    proxy.note("persistent watches: addWatch -m PERSISTENT and PERSISTENT_RECURSIVE")
    cli.run(
        "addWatch -m PERSISTENT %s/pw" % root,
        "addWatch -m PERSISTENT_RECURSIVE %s/prw" % root,
        "addWatch %s/default-mode" % root,
    )
    cli.settle("addWatch")

    proxy.note("reconnect with persistent watches: setWatches2")
    proxy.drop_connections()
    proxy.wait_reply(lambda f: f.op == 105, "setWatches2 after reconnect")

    proxy.note("persistent watches firing; removewatches; deleteall (multi)")
    cli.run(
        "create %s/pw x" % root,
        "set %s/pw y" % root,
        "create %s/prw x" % root,
        "create %s/prw/deep y" % root,
        "delete %s/prw/deep" % root,
        "removewatches %s/pw" % root,
        "removewatches %s/no-watch-here" % root,
        "deleteall %s/prw" % root,
    )
    cli.settle("persistent watches")

    proxy.note("idle: the client pings")
    proxy.wait_reply(lambda f: f.op == 11, "a ping")
    cli.quit()

    proxy.note("read-only client: zkCli -r sends readOnly=true in its ConnectRequest")
    ro = ZkCli(zkcli, proxy, log_dir, extra_args=("-r",))
    register(ro)
    ro.run("ls /")
    ro.settle("read-only session")
    ro.quit()
    return "zkCli (ZooKeeper Java client)"


# --- Java API program ------------------------------------------------------------------------


def jdk_compiler_available(java):
    try:
        out = subprocess.run([java, "--list-modules"], capture_output=True, timeout=WAIT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"jdk.compiler" in out.stdout


def drive_java(proxy, java, classpath, log_dir, register):
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "JavaOps.java")
    with open(os.path.join(log_dir, "java-ops.log"), "ab") as log:
        proc = subprocess.Popen(
            [java, "-cp", classpath, source, proxy.address],
            stdout=log, stderr=subprocess.STDOUT,
        )
        register(proc)
        try:
            code = proc.wait(timeout=WAIT * 2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        raise RuntimeError("JavaOps exited with %d (see %s)" % (code, log.name))
    return "ZooKeeper Java API (JavaOps.java)"


# --- main -------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zookeeper", required=True, help="host:port of a running ZooKeeper")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--clients", default="kazoo,zkcli,java",
                    help="comma-separated subset of kazoo,zkcli,java")
    ap.add_argument("--zkcli", default="/usr/share/zookeeper/bin/zkCli.sh")
    ap.add_argument("--java", default=shutil.which("java") or "/usr/bin/java")
    ap.add_argument("--classpath", default="/usr/share/java/zookeeper.jar")
    ap.add_argument("--deadline", type=float, default=240.0,
                    help="seconds after which the capture gives up and exits non-zero")
    args = ap.parse_args()
    # kazoo warns about every dropped connection; here they are dropped on purpose.
    logging.basicConfig(level=logging.ERROR)

    host, port = args.zookeeper.rsplit(":", 1)
    upstream = (host, int(port))
    os.makedirs(args.out_dir, exist_ok=True)
    log_dir = tempfile.mkdtemp(prefix="keepr-capture-")
    children = []

    def give_up():
        sys.stderr.write("capture: deadline of %.0fs passed, giving up\n" % args.deadline)
        for c in children:
            c.kill()
        os._exit(3)

    watchdog = threading.Timer(args.deadline, give_up)
    watchdog.daemon = True
    watchdog.start()

    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    version = None
    for name in clients:
        proxy = Proxy(upstream)
        if name == "kazoo":
            described = drive_kazoo(proxy)
        elif name == "zkcli":
            described = drive_zkcli(proxy, args.zkcli, log_dir, children.append)
        elif name == "java":
            if not jdk_compiler_available(args.java):
                print("capture: skipped the Java API client: %s has no jdk.compiler module"
                      % args.java)
                continue
            described = drive_java(proxy, args.java, args.classpath, log_dir, children.append)
        else:
            ap.error("unknown client %r" % name)
        if version is None:
            srvr = four_letter_word(upstream[0], upstream[1], b"srvr")
            version = srvr.splitlines()[0] if srvr else "unknown version"
        unmatched = [f for f in proxy.frames() if f.op is None]
        if unmatched:
            raise RuntimeError("%d replies matched no request" % len(unmatched))
        out = os.path.join(args.out_dir, name + ".frames")
        proxy.write(out, [
            "keepr-wire golden frames: real traffic captured by capture.py",
            "server: Apache ZooKeeper (%s)" % version,
            "client: %s" % described,
        ])
        print("capture: %s: %d frames -> %s" % (name, len(proxy.frames()), out))
    watchdog.cancel()
    shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
