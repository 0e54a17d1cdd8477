"""kazoo's Party and ShallowParty: members are listed while they participate and vanish when
they leave or their session ends."""

import pytest

from harness.clients import settle


@pytest.mark.parametrize("kind", ["Party", "ShallowParty"])
def test_party_lists_members_until_they_leave_or_their_session_ends(clients, base, kind):
    path = f"{base}/party"
    members = {}
    for name in ("ann", "bob", "cid"):
        zk = clients.new()
        party = getattr(zk, kind)(path, name)
        party.join()
        members[name] = (zk, party)
    observer = getattr(clients.new(), kind)(path)
    observer.client.sync(path)  # the members joined through other members
    assert len(observer) == 3
    assert sorted(observer) == ["ann", "bob", "cid"]

    members["bob"][1].leave()
    members["cid"][0].stop()
    settle(observer.client)
    assert sorted(observer) == ["ann"]
    assert len(observer) == 1


def test_joining_twice_is_one_membership(client, base):
    party = client.Party(f"{base}/party", "me")
    party.join()
    party.join()
    assert list(client.Party(f"{base}/party")) == ["me"]
