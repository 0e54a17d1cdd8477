"""Transactions (multi): all or nothing, later ops see earlier ones, and a failure is reported
per op the way kazoo applications read it (RolledBackError before the failing op, the real
error at it, RuntimeInconsistency after it)."""

from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import OPEN_ACL_UNSAFE

from harness import zkext


def test_committed_transaction_applies_every_op(client, base):
    client.create(f"{base}/old", b"1")
    client.create(f"{base}/gone")
    tx = client.transaction()
    tx.create(f"{base}/new", b"n")
    tx.set_data(f"{base}/old", b"2", version=0)
    tx.delete(f"{base}/gone")
    tx.check(f"{base}/old", 1)
    results = tx.commit()
    assert results[0] == f"{base}/new"
    assert isinstance(results[1], ZnodeStat) and results[1].version == 1
    assert results[2:] == [True, True]
    assert client.get(f"{base}/new")[0] == b"n"
    assert client.get(f"{base}/old")[0] == b"2"
    assert client.exists(f"{base}/gone") is None


def test_failed_transaction_changes_nothing_and_marks_each_op(client, base):
    client.create(f"{base}/x", b"x")
    tx = client.transaction()
    tx.create(f"{base}/a")
    tx.set_data(f"{base}/x", b"y")
    tx.check(f"{base}/x", 7)
    tx.create(f"{base}/b")
    results = tx.commit()
    assert [type(r) for r in results] == [
        RolledBackError,
        RolledBackError,
        BadVersionError,
        RuntimeInconsistency,
    ]
    assert client.get_children(base) == ["x"]
    data, stat = client.get(f"{base}/x")
    assert data == b"x" and stat.version == 0


def test_failure_on_the_first_op_marks_the_rest_inconsistent(client, base):
    tx = client.transaction()
    tx.delete(f"{base}/missing")
    tx.create(f"{base}/a")
    results = tx.commit()
    assert [type(r) for r in results] == [NoNodeError, RuntimeInconsistency]
    assert client.get_children(base) == []


def test_later_ops_see_the_effects_of_earlier_ones(client, base):
    tx = client.transaction()
    tx.create(f"{base}/p")
    tx.create(f"{base}/p/c", b"child")
    tx.set_data(f"{base}/p/c", b"changed", version=0)
    tx.check(f"{base}/p/c", 1)
    assert tx.commit()[:2] == [f"{base}/p", f"{base}/p/c"]
    assert client.get(f"{base}/p/c")[0] == b"changed"

    tx = client.transaction()
    tx.delete(f"{base}/p/c")
    tx.delete(f"{base}/p")
    tx.create(f"{base}/p/c")
    assert [type(r) for r in tx.commit()] == [RolledBackError, RolledBackError, NoNodeError]
    assert client.exists(f"{base}/p/c") is not None


def test_conflicting_ops_in_one_transaction_fail_it(client, base):
    tx = client.transaction()
    tx.create(f"{base}/dup")
    tx.create(f"{base}/dup")
    assert [type(r) for r in tx.commit()] == [RolledBackError, NodeExistsError]
    client.create(f"{base}/parent")
    client.create(f"{base}/parent/kid")
    tx = client.transaction()
    tx.delete(f"{base}/parent")
    assert [type(r) for r in tx.commit()] == [NotEmptyError]


def test_all_ops_of_a_transaction_share_one_zxid(client, base):
    tx = client.transaction()
    tx.create(f"{base}/one")
    tx.create(f"{base}/two")
    tx.commit()
    one, two = client.exists(f"{base}/one"), client.exists(f"{base}/two")
    assert one.czxid == two.czxid
    assert client.exists(base).pzxid == one.czxid


def test_sequential_creates_in_a_transaction_count_up(client, base):
    tx = client.transaction()
    tx.create(f"{base}/s-", sequence=True)
    tx.create(f"{base}/s-", sequence=True)
    assert tx.commit() == [f"{base}/s-0000000000", f"{base}/s-0000000001"]


def test_container_and_ttl_creates_in_a_multi_return_path_and_stat(client, base):
    results = zkext.call(
        client,
        zkext.Multi(
            [
                zkext.CreateContainer(f"{base}/c", b"", OPEN_ACL_UNSAFE),
                zkext.CreateTTL(
                    f"{base}/t", b"tt", OPEN_ACL_UNSAFE, zkext.PERSISTENT_WITH_TTL, 3_600_000
                ),
                zkext.Create(f"{base}/c/kid", b"", OPEN_ACL_UNSAFE, zkext.PERSISTENT),
            ]
        ),
    )
    (c_path, c_stat), (t_path, t_stat), kid = results
    assert (c_path, t_path, kid) == (f"{base}/c", f"{base}/t", f"{base}/c/kid")
    assert c_stat.ephemeralOwner == 0 and t_stat.ephemeralOwner == 0
    assert t_stat.dataLength == 2
    # Both were created in the same transaction as the child.
    assert c_stat.czxid == t_stat.czxid == client.exists(f"{base}/c/kid").czxid


def test_ephemeral_created_in_a_transaction_belongs_to_the_session(clients, client, base):
    owner = clients.new()
    tx = owner.transaction()
    tx.create(f"{base}/e", ephemeral=True)
    tx.commit()
    client.sync(f"{base}/e")  # another session's write, maybe through another member
    assert client.exists(f"{base}/e").ephemeralOwner == owner.client_id[0]
