"""ACLs with digest authentication, as applications use them: who may read, write, create,
delete and administer a node, and the super user who may do anything.

A client that reads a node another session created calls `sync` first: on an ensemble its
member may not have applied the create yet (a read would be NoNode, not the NoAuth under test).
Writes need no sync: they are checked where they are ordered."""

import pytest
from kazoo.exceptions import AuthFailedError, BadVersionError, InvalidACLError, NoAuthError
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    Id,
    Permissions,
    make_digest_acl,
)

from harness import servers, zkext

ALICE = ("digest", "alice:alice-pw")
BOB = ("digest", "bob:bob-pw")
ALICE_ALL = [make_digest_acl("alice", "alice-pw", all=True)]


@pytest.fixture
def alice(clients):
    return clients.new(auth=[ALICE])


@pytest.fixture
def bob(clients):
    return clients.new(auth=[BOB])


def test_digest_acl_admits_only_its_user(alice, bob, client, base):
    path = alice.create(f"{base}/secret", b"s3", acl=ALICE_ALL)
    assert alice.get(path)[0] == b"s3"
    alice.set(path, b"s4")
    for other in (bob, client):
        other.sync(path)
        with pytest.raises(NoAuthError):
            other.get(path)
        with pytest.raises(NoAuthError):
            other.set(path, b"x")
        with pytest.raises(NoAuthError):
            other.get_children(path)
        with pytest.raises(NoAuthError):
            other.create(f"{path}/child")
        with pytest.raises(NoAuthError):
            other.set_acls(path, OPEN_ACL_UNSAFE)


def test_wrong_password_authenticates_but_grants_nothing(alice, clients, base):
    path = alice.create(f"{base}/secret", acl=ALICE_ALL)
    impostor = clients.new()
    assert impostor.add_auth("digest", "alice:wrong") is True
    impostor.sync(path)
    with pytest.raises(NoAuthError):
        impostor.get(path)


def test_credentials_added_after_connecting_take_effect(alice, client, base):
    path = alice.create(f"{base}/secret", b"v", acl=ALICE_ALL)
    client.sync(path)
    with pytest.raises(NoAuthError):
        client.get(path)
    client.add_auth(*ALICE)
    assert client.get(path)[0] == b"v"


def test_super_digest_bypasses_every_acl(alice, clients, base):
    path = alice.create(
        f"{base}/locked", b"v", acl=[make_digest_acl("alice", "alice-pw", read=True)]
    )
    admin = clients.new_super()
    admin.sync(path)
    assert admin.get(path)[0] == b"v"
    admin.set(path, b"changed")
    admin.create(f"{path}/child")
    admin.delete(f"{path}/child")
    admin.set_acls(path, OPEN_ACL_UNSAFE)
    admin.delete(path)
    assert admin.exists(path) is None


def test_super_password_must_match(clients, alice, base):
    path = alice.create(f"{base}/secret", acl=ALICE_ALL)
    not_super = clients.new(auth=[("digest", f"{servers.SUPER_USER}:wrong")])
    not_super.sync(path)
    with pytest.raises(NoAuthError):
        not_super.get(path)


def test_auth_acl_becomes_the_creators_digest_identity(alice, base):
    path = alice.create(f"{base}/mine", acl=CREATOR_ALL_ACL)
    acls, stat = alice.get_acls(path)
    user, password = ALICE[1].split(":")
    assert acls == [make_digest_acl(user, password, all=True)]
    assert stat.aversion == 0


def test_auth_acl_without_credentials_is_invalid(client, base):
    with pytest.raises(InvalidACLError):
        client.create(f"{base}/mine", acl=CREATOR_ALL_ACL)


def test_empty_acl_is_invalid(client, base):
    with pytest.raises(InvalidACLError):
        zkext.call(client, zkext.Create(f"{base}/none", b"", [], zkext.PERSISTENT))


def test_unknown_acl_scheme_is_invalid(client, base):
    with pytest.raises(InvalidACLError):
        client.create(f"{base}/odd", acl=[ACL(Permissions.ALL, Id("nosuchscheme", "x"))])


def test_create_and_delete_are_checked_on_the_parent(alice, client, base):
    # World may create children but not delete them; alice may do everything.
    acl = ALICE_ALL + [ACL(Permissions.READ | Permissions.CREATE, Id("world", "anyone"))]
    parent = alice.create(f"{base}/parent", acl=acl)
    child = client.create(f"{parent}/child", acl=OPEN_ACL_UNSAFE)
    with pytest.raises(NoAuthError):
        client.delete(child)
    # The child's own open ACL does not matter for deleting it; the parent's does.
    alice.delete(child)


def test_acls_are_not_inherited(alice, client, base):
    parent = alice.create(f"{base}/parent", acl=ALICE_ALL)
    child = alice.create(f"{parent}/child", b"public", acl=OPEN_ACL_UNSAFE)
    client.sync(child)
    assert client.get(child)[0] == b"public"
    with pytest.raises(NoAuthError):
        client.get(parent)


def test_read_only_acl_allows_reads_and_refuses_writes(alice, client, base):
    acl = ALICE_ALL + [ACL(Permissions.READ, Id("world", "anyone"))]
    path = alice.create(f"{base}/ro", b"v", acl=acl)
    client.sync(path)
    assert client.get(path)[0] == b"v"
    assert client.get_children(path) == []
    with pytest.raises(NoAuthError):
        client.set(path, b"w")


def test_set_acls_checks_and_bumps_the_acl_version(client, base):
    path = client.create(f"{base}/n")
    stat = client.set_acls(path, OPEN_ACL_UNSAFE, version=0)
    assert stat.aversion == 1
    with pytest.raises(BadVersionError):
        client.set_acls(path, OPEN_ACL_UNSAFE, version=0)
    # setACL leaves the data version alone.
    assert client.exists(path).version == 0


def test_ip_acl_matches_the_clients_address(client, base):
    loopback = client.create(f"{base}/lo", b"v", acl=[ACL(Permissions.ALL, Id("ip", "127.0.0.1"))])
    assert client.get(loopback)[0] == b"v"
    elsewhere = client.create(
        f"{base}/far", b"v", acl=[ACL(Permissions.ALL, Id("ip", "10.1.2.0/24"))]
    )
    with pytest.raises(NoAuthError):
        client.get(elsewhere)


def test_unknown_auth_scheme_fails_authentication(clients):
    victim = clients.new()
    with pytest.raises(AuthFailedError):
        victim.add_auth("nosuchscheme", "whatever")
