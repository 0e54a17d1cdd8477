"""Every create mode, as applications see it through kazoo: what the node looks like, how
sequential names are formed, when ephemerals, containers and TTL nodes disappear."""

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
)
from kazoo.security import OPEN_ACL_UNSAFE

from harness import zkext
from harness.clients import WAIT_S, deletion_of, wait_until

# Empty containers and expired TTL nodes are removed by a periodic sweep (ZooKeeper's is set to
# one second by the harness; its default is a minute). This bounds the wait for it.
SWEEP_WAIT_S = WAIT_S + 90


def test_persistent_node_stores_data_and_starts_at_version_zero(client, base):
    path = client.create(f"{base}/p", b"hello")
    assert path == f"{base}/p"
    data, stat = client.get(path)
    assert data == b"hello"
    assert (stat.version, stat.cversion, stat.aversion) == (0, 0, 0)
    assert stat.ephemeralOwner == 0
    assert stat.dataLength == 5 and stat.numChildren == 0
    assert stat.czxid == stat.mzxid == stat.pzxid
    assert stat.ctime == stat.mtime


def test_create_returns_stat_when_asked(client, base):
    path, stat = client.create(f"{base}/p", b"xy", include_data=True)
    assert path == f"{base}/p"
    assert stat == client.exists(path)


def test_empty_data_reads_back_empty(client, base):
    client.create(f"{base}/empty", b"")
    data, stat = client.get(f"{base}/empty")
    assert data == b""
    assert stat.dataLength == 0


def test_create_on_existing_path_is_node_exists(client, base):
    client.create(f"{base}/p")
    with pytest.raises(NodeExistsError):
        client.create(f"{base}/p")


def test_create_without_parent_is_no_node_unless_makepath(client, base):
    with pytest.raises(NoNodeError):
        client.create(f"{base}/a/b/c")
    assert client.create(f"{base}/a/b/c", b"deep", makepath=True) == f"{base}/a/b/c"
    assert client.get(f"{base}/a/b/c")[0] == b"deep"


def test_sequential_names_count_every_create_under_the_parent(client, base):
    first = client.create(f"{base}/job-", sequence=True)
    second = client.create(f"{base}/job-", sequence=True)
    # A plain create and a delete: creates advance the parent's counter, deletes do not.
    client.create(f"{base}/plain")
    client.delete(f"{base}/plain")
    third = client.create(f"{base}/other-", sequence=True)
    assert first == f"{base}/job-0000000000"
    assert second == f"{base}/job-0000000001"
    assert third == f"{base}/other-0000000003"


def test_sequential_name_may_be_only_the_counter(client, base):
    client.create(f"{base}/q")
    assert client.create(f"{base}/q/", sequence=True) == f"{base}/q/0000000000"


def test_ephemeral_node_belongs_to_its_session(clients, base):
    owner = clients.new()
    path = owner.create(f"{base}/e", b"x", ephemeral=True)
    stat = owner.exists(path)
    assert stat.ephemeralOwner == owner.client_id[0]


def test_ephemeral_node_vanishes_when_its_session_closes(clients, client, base):
    owner = clients.new()
    owner.create(f"{base}/e", ephemeral=True)
    owner.create(f"{base}/es-", ephemeral=True, sequence=True)
    gone = deletion_of(client, f"{base}/e")
    owner.stop()
    wait_until(gone, "the ephemeral node's NodeDeleted after its session closed")
    assert client.get_children(base) == []


def test_ephemeral_node_cannot_have_children(client, base):
    client.create(f"{base}/e", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        client.create(f"{base}/e/child")


def test_ephemeral_sequential_name_and_owner(client, base):
    path = client.create(f"{base}/lease-", ephemeral=True, sequence=True)
    assert path == f"{base}/lease-0000000000"
    assert client.exists(path).ephemeralOwner == client.client_id[0]


def test_container_reports_no_owner_and_accepts_children(client, base):
    path, stat = zkext.call(client, zkext.CreateContainer(f"{base}/c", b"", OPEN_ACL_UNSAFE))
    assert path == f"{base}/c"
    assert stat.ephemeralOwner == 0
    client.create(f"{base}/c/child")
    assert client.get_children(f"{base}/c") == ["child"]


def test_container_is_deleted_after_its_last_child_goes(client, base):
    zkext.call(client, zkext.CreateContainer(f"{base}/c", b"", OPEN_ACL_UNSAFE))
    client.create(f"{base}/c/child")
    gone = deletion_of(client, f"{base}/c")
    client.delete(f"{base}/c/child")
    wait_until(gone, "the emptied container to be deleted", SWEEP_WAIT_S)
    assert client.exists(f"{base}/c") is None


def test_ttl_node_reports_no_owner(client, base):
    path, stat = zkext.call(
        client,
        zkext.CreateTTL(f"{base}/t", b"v", OPEN_ACL_UNSAFE, zkext.PERSISTENT_WITH_TTL, 3_600_000),
    )
    assert path == f"{base}/t"
    assert stat.ephemeralOwner == 0
    assert client.get(path)[0] == b"v"


def test_sequential_ttl_node_gets_a_counter_suffix(client, base):
    path, _ = zkext.call(
        client,
        zkext.CreateTTL(
            f"{base}/t-", b"", OPEN_ACL_UNSAFE, zkext.PERSISTENT_SEQUENTIAL_WITH_TTL, 3_600_000
        ),
    )
    assert path == f"{base}/t-0000000000"


def test_ttl_node_is_deleted_once_its_ttl_has_passed(client, base):
    zkext.call(
        client, zkext.CreateTTL(f"{base}/t", b"", OPEN_ACL_UNSAFE, zkext.PERSISTENT_WITH_TTL, 1)
    )
    gone = deletion_of(client, f"{base}/t")
    wait_until(gone, "the TTL node to be deleted", SWEEP_WAIT_S)


@pytest.mark.parametrize("ttl", [0, -1, 0x10000000000])
def test_ttl_out_of_range_is_bad_arguments(client, base, ttl):
    with pytest.raises(BadArgumentsError):
        zkext.call(
            client,
            zkext.CreateTTL(f"{base}/t", b"", OPEN_ACL_UNSAFE, zkext.PERSISTENT_WITH_TTL, ttl),
        )
