"""The plain node API through kazoo: reads, versioned writes and deletes, the Stat counters
applications use for optimistic concurrency, and the smaller queries (getEphemerals,
getAllChildrenNumber, whoAmI, sync, server version, four-letter words)."""

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoNodeError,
    NotEmptyError,
)

from harness import zkext


def test_set_with_the_right_version_bumps_it_and_a_stale_one_fails(client, base):
    path = client.create(f"{base}/n", b"v0")
    stat = client.set(path, b"v1", version=0)
    assert stat.version == 1 and stat.dataLength == 2
    with pytest.raises(BadVersionError):
        client.set(path, b"v2", version=0)
    assert client.get(path)[0] == b"v1"
    # -1 means "any version".
    assert client.set(path, b"v2", version=-1).version == 2


def test_setting_identical_data_still_counts_as_a_change(client, base):
    path = client.create(f"{base}/n", b"same")
    before = client.exists(path)
    after = client.set(path, b"same")
    assert after.version == before.version + 1
    assert after.mzxid > before.mzxid


def test_delete_checks_version_emptiness_and_existence(client, base):
    path = client.create(f"{base}/n")
    client.create(f"{path}/kid")
    with pytest.raises(NotEmptyError):
        client.delete(path)
    client.delete(f"{path}/kid")
    with pytest.raises(BadVersionError):
        client.delete(path, version=3)
    client.delete(path, version=0)
    with pytest.raises(NoNodeError):
        client.delete(path)


def test_recursive_delete_removes_a_subtree(client, base):
    client.create(f"{base}/t/a/b", makepath=True)
    client.create(f"{base}/t/c", makepath=True)
    client.delete(f"{base}/t", recursive=True)
    assert client.get_children(base) == []


def test_parent_stat_counts_child_creates_and_deletes(client, base):
    created = client.exists(base)
    client.create(f"{base}/a")
    client.create(f"{base}/b")
    client.delete(f"{base}/a")
    stat = client.exists(base)
    assert stat.cversion == 3
    assert stat.numChildren == 1
    assert stat.version == 0
    assert stat.pzxid > created.pzxid
    assert stat.mzxid == created.mzxid


def test_get_children_returns_names_and_optionally_the_stat(client, base):
    for name in ("x", "y", "z"):
        client.create(f"{base}/{name}")
    assert sorted(client.get_children(base)) == ["x", "y", "z"]
    children, stat = client.get_children(base, include_data=True)
    assert sorted(children) == ["x", "y", "z"]
    assert stat.numChildren == 3 and stat.cversion == 3


def test_reads_of_a_missing_node(client, base):
    assert client.exists(f"{base}/none") is None
    with pytest.raises(NoNodeError):
        client.get(f"{base}/none")
    with pytest.raises(NoNodeError):
        client.get_children(f"{base}/none")
    with pytest.raises(NoNodeError):
        client.set(f"{base}/none", b"x")
    with pytest.raises(NoNodeError):
        client.get_acls(f"{base}/none")


def test_system_nodes_exist_and_cannot_be_deleted(clients):
    admin = clients.new_super()
    assert admin.exists("/zookeeper") is not None
    assert admin.exists("/zookeeper/quota") is not None
    with pytest.raises(BadArgumentsError):
        admin.delete("/zookeeper/quota")


def test_large_data_round_trips(client, base):
    blob = bytes(range(256)) * 2048  # 512 KiB, well under the 1 MiB frame limit
    path = client.create(f"{base}/big", blob)
    data, stat = client.get(path)
    assert data == blob and stat.dataLength == len(blob)


def test_sync_answers_with_the_path(client, base):
    assert client.sync(base) == base


def test_get_ephemerals_lists_only_the_callers_ephemerals(clients, client, base):
    other = clients.new()
    client.create(f"{base}/mine-1", ephemeral=True)
    client.create(f"{base}/dir/mine-2", ephemeral=True, makepath=True)
    other.create(f"{base}/theirs", ephemeral=True)
    assert sorted(zkext.call(client, zkext.GetEphemerals(base))) == [
        f"{base}/dir/mine-2",
        f"{base}/mine-1",
    ]
    # The prefix is a plain string prefix, not a path.
    assert zkext.call(client, zkext.GetEphemerals(f"{base}/mine")) == [f"{base}/mine-1"]
    assert zkext.call(other, zkext.GetEphemerals(base)) == [f"{base}/theirs"]


def test_get_all_children_number_counts_every_descendant(client, base):
    client.create(f"{base}/a/b/c", makepath=True)
    client.create(f"{base}/a/d")
    client.create(f"{base}/e")
    assert zkext.call(client, zkext.GetAllChildrenNumber(base)) == 5
    assert zkext.call(client, zkext.GetAllChildrenNumber(f"{base}/e")) == 0
    with pytest.raises(NoNodeError):
        zkext.call(client, zkext.GetAllChildrenNumber(f"{base}/none"))


def test_whoami_reports_the_address_then_added_identities(clients):
    anonymous = clients.new()
    assert zkext.call(anonymous, zkext.WhoAmI()) == [("ip", "127.0.0.1")]
    alice = clients.new(auth=[("digest", "alice:pw")])
    assert sorted(zkext.call(alice, zkext.WhoAmI())) == [("digest", "alice"), ("ip", "127.0.0.1")]


def test_server_version_is_a_zookeeper_3_version(client):
    # kazoo reads it from the `envi` four-letter word; applications gate features on it.
    version = client.server_version()
    assert isinstance(version, tuple) and all(isinstance(part, int) for part in version)
    assert version[0] == 3 and version >= (3, 6)


def test_ruok_answers_imok(client):
    assert client.command(b"ruok") == "imok"
