"""zkCli, the Java client, against the target: a scripted session whose transcript must match
the same script run on ZooKeeper, and a reconnect during which the Java client must get its
watches back (it re-sends them with SetWatches, which kazoo 2.8 never does)."""

import uuid

import pytest
from kazoo.security import make_digest_acl_credential

from harness import zkcli
from harness.proxy import TcpProxy


def script(base):
    alice = make_digest_acl_credential("alice", "pw")
    return [
        f"create {base}",
        f"create {base}/p data1",
        f"create -s {base}/seq- s1",
        f"create -s {base}/seq- s2",
        f"create -e {base}/eph e",
        f"create -e -s {base}/eseq- x",
        f"create -c {base}/cont",
        f"create {base}/cont/kid k",
        f"create -t 3600000 {base}/ttl t",
        f"create -t 3600000 -s {base}/ttlseq- t",
        f"create {base}/p dup",
        f"create {base}/missing/child",
        f"ls {base}",
        f"ls -s {base}",
        f"ls -R {base}",
        f"ls -s -R {base}",
        f"get {base}/p",
        f"get -s {base}/p",
        f"set {base}/p data2",
        f"set -v 1 {base}/p data3",
        f"set -v 1 {base}/p data4",
        f"set -s {base}/p data5",
        f"stat {base}/p",
        f"stat {base}/eph",
        f"stat {base}/cont",
        f"stat {base}/ttl",
        f"stat {base}/missing",
        f"getAllChildrenNumber {base}",
        f"getEphemerals {base}",
        "getEphemerals",
        f"sync {base}",
        f"get -w {base}/p",
        f"set {base}/p data6",
        f"ls -w {base}",
        f"create {base}/w",
        f"stat -w {base}/later",
        f"create {base}/later",
        f"get -w {base}/later",
        f"addWatch {base}/pw",
        f"create {base}/pw",
        f"create {base}/pw/x",
        f"set {base}/pw/x v",
        f"addWatch -m PERSISTENT {base}/pw2",
        f"create {base}/pw2",
        f"create {base}/pw2/k",
        f"delete {base}/pw2/k",
        f"removewatches {base}/pw",
        f"set {base}/pw/x v2",
        f"removewatches {base}/later -d",
        f"removewatches {base}/none",
        f"delete -v 5 {base}/w",
        f"delete {base}/w",
        f"delete {base}/cont",
        f"deleteall {base}/pw",
        f"ls {base}/pw",
        f"create {base}/acl a",
        f"setAcl {base}/acl world:anyone:r",
        f"getAcl {base}/acl",
        f"set {base}/acl x",
        "addauth digest alice:pw",
        f"create {base}/alice a digest:{alice}:cdrwa",
        f"getAcl {base}/alice",
        f"setAcl {base}/alice auth::cdrwa",
        f"getAcl -s {base}/alice",
        f"setAcl -v 9 {base}/alice world:anyone:cdrwa",
        "whoami",
        "version",
        "config",
        "ls /zookeeper",
        f"get {base}/p",
    ]


def unordered(base):
    # Recursive listings walk children in the server's (unspecified) child order.
    return {f"ls -R {base}", f"ls -s -R {base}"}


def expected_events(base):
    """The watch events the script must produce, in order (checked on the reference, so a
    script that silently stopped exercising watches would fail)."""
    event = "WatchedEvent state:SyncConnected type:{} path:{}".format
    return [
        event("None", "null"),
        event("NodeDataChanged", f"{base}/p"),
        event("NodeChildrenChanged", base),
        event("NodeCreated", f"{base}/later"),
        event("NodeCreated", f"{base}/pw"),
        event("NodeCreated", f"{base}/pw/x"),
        event("NodeDataChanged", f"{base}/pw/x"),
        event("NodeCreated", f"{base}/pw2"),
        event("NodeChildrenChanged", f"{base}/pw2"),
        event("NodeChildrenChanged", f"{base}/pw2"),
        event("PersistentWatchRemoved", f"{base}/pw"),
        event("DataWatchRemoved", f"{base}/later"),
    ]


def test_zkcli_session_transcript_matches_zookeeper(target, reference_zookeeper):
    base = f"/zkcli-{uuid.uuid4().hex[:8]}"
    commands = script(base)
    reference = zkcli.run_script(reference_zookeeper.hosts, base, commands, unordered(base))
    # The reference itself shows the script exercised what it claims to.
    sections = dict(reference.sections)
    assert sections[f"create -s {base}/seq- s2"] == [f"Created {base}/seq-0000000002"]
    assert sections[f"set -v 1 {base}/p data4"] == [f"version No is not valid : {base}/p"]
    assert "ephemeralOwner = <session>" in sections[f"stat {base}/eph"]
    assert sections[f"set {base}/acl x"] == [f"Insufficient permission : {base}/acl"]
    assert reference.events == expected_events(base)

    actual = zkcli.run_script(target.hosts, base, commands, unordered(base))
    # An ensemble's /zookeeper/config is its own business (a ZooKeeper ensemble lists its
    # members there); the standalone reference's is empty.
    ignore = {"config"} if len(target.endpoints) > 1 else set()
    assert zkcli.differences(reference, actual, ignore) == []


@pytest.fixture
def zkcli_through_proxy(placement, base):
    proxy = TcpProxy(*placement.member())
    session = zkcli.InteractiveSession(proxy.hosts, base)
    yield session, proxy
    session.close()
    proxy.close()


def test_java_client_gets_its_watches_back_after_a_reconnect(zkcli_through_proxy, client, base):
    session, proxy = zkcli_through_proxy
    client.create(f"{base}/data", b"v0")
    client.create(f"{base}/quiet", b"q")
    session.wait_for_line("type:None path:null")  # connected
    # The nodes were created through another connection, maybe on another member.
    session.run(f"sync {base}")
    session.run(f"get -w {base}/data")
    session.run(f"stat -w {base}/born")
    session.run(f"get -w {base}/quiet")
    session.run(f"ls -w {base}")

    proxy.cut()
    session.wait_for_line("state:Disconnected")
    # Changes made while the Java client is away: on reconnect its SetWatches tells the server
    # which watches it holds and since which zxid; the server fires the missed ones at once.
    client.set(f"{base}/data", b"v1")
    client.create(f"{base}/born")
    proxy.restore()
    session.wait_for_line("state:SyncConnected type:None")
    session.wait_for_line(f"type:NodeDataChanged path:{base}/data")
    # Fired when the session is re-established, exists-watch catch-up.
    session.wait_for_line(f"type:NodeCreated path:{base}/born")
    # A watch whose node did not change is re-armed, and fires on the next change.
    client.set(f"{base}/quiet", b"changed later")
    session.wait_for_line(f"type:NodeDataChanged path:{base}/quiet")
