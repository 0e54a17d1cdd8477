"""Sessions: what survives a lost connection, what a session's end takes with it, and how a
client learns that its session expired. Connections are cut with a proxy between the client
and the server, so the server sees exactly what a network failure would show it."""

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import SessionExpiredError
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

from harness.clients import (
    WAIT_S,
    StateLog,
    deletion_of,
    fast_reconnect,
    settle,
    stop_client,
    wait_until,
)

# The shortest session ZooKeeper grants with tickTime 2000 (2 ticks). Expiry takes about this long.
SHORT_SESSION_S = 4.0
# A cut-off session must be gone well within this; it bounds the wait, it is not a deadline
# the server is held to.
EXPIRY_WAIT_S = SHORT_SESSION_S * 5 + WAIT_S


def test_connection_loss_keeps_the_session_and_its_ephemerals(proxied, client, base):
    victim, proxy = proxied(timeout=10.0)
    states = StateLog(victim)
    session = victim.client_id
    path = victim.create(f"{base}/e", ephemeral=True)
    proxy.drop()
    after = states.wait_for(KazooState.SUSPENDED)
    states.wait_for(KazooState.CONNECTED, after)
    assert victim.client_id == session
    client.sync(path)  # the victim's write, maybe through another member
    assert client.exists(path).ephemeralOwner == session[0]
    assert victim.get(path)[0] == b""


def test_cut_off_session_expires_and_its_ephemerals_go(proxied, client, base):
    victim, proxy = proxied(timeout=SHORT_SESSION_S)
    states = StateLog(victim)
    path = victim.create(f"{base}/e", ephemeral=True)
    gone = deletion_of(client, path)
    proxy.cut()
    wait_until(gone, "the cut-off session to expire and its ephemeral to go", EXPIRY_WAIT_S)
    assert client.get_children(base) == []
    proxy.restore()
    # The client learns of the expiry when it reconnects.
    states.wait_for(KazooState.LOST, timeout=EXPIRY_WAIT_S)


def test_expired_client_gets_a_new_session_without_the_old_ephemerals(proxied, client, base):
    victim, proxy = proxied(timeout=SHORT_SESSION_S)
    states = StateLog(victim)
    old_session = victim.client_id[0]
    path = victim.create(f"{base}/e", ephemeral=True)
    gone = deletion_of(client, path)
    proxy.cut()
    wait_until(gone, "the cut-off session to expire", EXPIRY_WAIT_S)
    proxy.restore()
    lost = states.wait_for(KazooState.LOST, timeout=EXPIRY_WAIT_S)
    states.wait_for(KazooState.CONNECTED, lost, timeout=EXPIRY_WAIT_S)
    assert victim.client_id[0] != old_session
    victim.sync(path)  # the new session learns of the old one's end like any other session
    assert victim.exists(path) is None


def test_closing_a_session_from_a_second_connection_ends_it(target, clients, client, base):
    # The session id and password are all a client needs to take a session over; closing it
    # from there ends it for the original client too (ZooKeeper FAQ: how to test expiry).
    victim = clients.new()
    states = StateLog(victim)
    path = victim.create(f"{base}/e", ephemeral=True)
    gone = deletion_of(client, path)
    session_id, password = victim.client_id
    thief = KazooClient(
        hosts=target.hosts,
        client_id=(session_id, password),
        connection_retry=fast_reconnect(),
    )
    thief.start(timeout=WAIT_S)
    assert thief.client_id[0] == session_id
    thief.sync(path)  # the thief may be on another member than the victim was
    assert thief.exists(path).ephemeralOwner == session_id
    stop_client(thief)
    wait_until(gone, "the ephemeral of the closed session to go")
    states.wait_for(KazooState.LOST)


def test_resuming_with_a_wrong_password_gets_a_new_session(target, client, base):
    session_id, password = client.client_id
    wrong = bytes(b ^ 0xFF for b in password)
    impostor = KazooClient(
        hosts=target.hosts, client_id=(session_id, wrong), connection_retry=fast_reconnect()
    )
    states = StateLog(impostor)
    impostor.start_async()
    try:
        # The server answers "expired"; kazoo then starts a new session of its own.
        states.wait_for(KazooState.CONNECTED)
        assert impostor.client_id[0] != session_id
    finally:
        stop_client(impostor)
    # ZooKeeper drops the owner's connection when anyone presents its session id, before it
    # checks the password; the owner reconnects and keeps its session.
    KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5, deadline=WAIT_S)(client.sync, "/")
    assert client.client_id == (session_id, password)
    assert client.exists(base) is not None


def test_calls_fail_with_session_expired_once_the_session_is_gone(proxied, client, base):
    victim, proxy = proxied(timeout=SHORT_SESSION_S)
    victim.create(f"{base}/e", ephemeral=True)
    gone = deletion_of(client, f"{base}/e")
    proxy.cut()
    wait_until(gone, "the cut-off session to expire", EXPIRY_WAIT_S)
    # Reconnecting is refused for now; the pending call learns the session is gone as soon
    # as the client is let back in.
    pending = victim.exists_async(f"{base}/e")
    proxy.restore()
    with pytest.raises(SessionExpiredError):
        pending.get(timeout=EXPIRY_WAIT_S)


def test_closing_a_client_deletes_its_ephemerals_before_close_returns(clients, client, base):
    owner = clients.new()
    owner.create(f"{base}/e1", ephemeral=True)
    owner.create(f"{base}/e2", ephemeral=True)
    owner.stop()
    settle(client)
    assert client.get_children(base) == []
