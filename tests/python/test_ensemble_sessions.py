"""A session that moved to another member of an ensemble is served there only.

A client whose connection to a member is slow or broken reconnects to another member with the
same session; a request it sent through the first member may still arrive there afterwards.
ZooKeeper refuses such a request (SESSIONMOVED; the old member closes the connection) instead
of applying it behind the client's back: its programmer's guide describes exactly this case.
Without that, a request the client gave up on can be applied after the client, on its new
member, already read that it was not, and recipes that resolve a lost reply by looking for
their own node (kazoo's Lock, Curator's protected creates) make a second node and wait on their
first forever.
"""

import signal
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import SessionMovedError

from harness.clients import WAIT_S, fast_reconnect, stop_client
from harness.failover import UNKNOWN_OUTCOME


def followers(ensemble):
    leader = ensemble.leader()
    return [m for m in ensemble.members if m is not leader]


def test_a_write_through_a_member_the_session_moved_off_is_refused(fresh_ensemble):
    first, second = followers(fresh_ensemble)
    base = f"/moved-{uuid.uuid4().hex[:8]}"
    original = KazooClient(hosts=first.hosts, connection_retry=fast_reconnect())
    original.start(timeout=WAIT_S)
    taker = None
    try:
        original.create(base)
        session = original.client_id
        # The session moves: the same id and password connect through the second member.
        taker = KazooClient(hosts=second.hosts, client_id=session, connection_retry=None)
        taker.start(timeout=WAIT_S)
        assert taker.client_id[0] == session[0]
        # The original connection, on the first member, writes as if nothing happened.
        try:
            original.create(f"{base}/late")
            outcome = "applied"
        except (SessionMovedError, *UNKNOWN_OUTCOME) as e:
            outcome = type(e).__name__
        taker.sync(base)
        assert taker.exists(f"{base}/late") is None, f"the late write was {outcome}"
        assert outcome != "applied"
    finally:
        for client in (taker, original):
            if client is not None:
                stop_client(client)


def test_a_session_resumes_on_a_member_that_has_not_applied_its_creation_yet(fresh_ensemble):
    # A member that lags (here: stopped while the session is created and used elsewhere)
    # must catch up with the leader before it calls a session unknown; answering "expired"
    # ends a live session and its ephemerals for a client that did nothing wrong.
    first, second = followers(fresh_ensemble)
    base = f"/lagging-{uuid.uuid4().hex[:8]}"
    original = KazooClient(hosts=first.hosts, connection_retry=fast_reconnect())
    taker = None
    second.process.send_signal(signal.SIGSTOP)
    try:
        original.start(timeout=WAIT_S)
        original.create(base, ephemeral=True)
        session = original.client_id
    finally:
        second.process.send_signal(signal.SIGCONT)
    try:
        taker = KazooClient(hosts=second.hosts, client_id=session, connection_retry=None)
        taker.start(timeout=WAIT_S)
        assert taker.client_id[0] == session[0], "the member called a live session expired"
        assert taker.exists(base) is not None
    finally:
        for client in (taker, original):
            if client is not None:
                stop_client(client)
