"""Clients and checks for tests that SIGKILL ensemble members while recipes run.

A client here names every member, its own first, with kazoo's host shuffling off: it connects
to its own member, and when that member dies kazoo tries the next one in the list and resumes
the same session there (session id and password). Its session timeout is long enough for that
move and for an election, so no session may expire: the tests assert that none did.

What a test waits for is progress (a count the worker threads raise) or a client being
connected again (a request blocks in kazoo until it is); polling is left only for what has no
event, a restarted process becoming ready, and every wait has a deadline.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, OperationTimeoutError
from kazoo.protocol.states import KazooState
from kazoo.recipe.watchers import ChildrenWatch
from kazoo.retry import KazooRetry

from .clients import WAIT_S, StateLog, fast_reconnect, stop_client
from .ensemble import Ensemble, Member

# Long enough for a client to move to another member, and for an election, with a margin; at
# most ZooKeeper's largest (20 ticks of 2 s).
SESSION_TIMEOUT_S = 20.0
# Bound for a recipe to make progress after a member was killed or restarted: an election
# plus a session move, with a wide margin for a loaded two-core machine.
PROGRESS_WAIT_S = WAIT_S * 3

# Outcomes of a request that say nothing about whether the server applied it: the connection
# went away while it was in flight.
UNKNOWN_OUTCOME = (ConnectionLoss, OperationTimeoutError)


def retrying() -> KazooRetry:
    """Retries of idempotent calls across a lost connection, bounded."""
    return KazooRetry(
        max_tries=-1,
        delay=0.05,
        backoff=1.5,
        max_delay=0.5,
        max_jitter=0.1,
        deadline=PROGRESS_WAIT_S,
    )


def member_client(ensemble: Ensemble, first: int, **kwargs) -> KazooClient:
    """A started client on member `first` that fails over to the others in order."""
    order = ensemble.members[first:] + ensemble.members[:first]
    client = KazooClient(
        hosts=",".join(m.hosts for m in order),
        randomize_hosts=False,
        timeout=SESSION_TIMEOUT_S,
        connection_retry=fast_reconnect(),
        command_retry=retrying(),
        **kwargs,
    )
    client.start(timeout=WAIT_S)
    return client


def single_member_client(member: Member) -> KazooClient:
    """A client of this member only, to read what this member has."""
    client = KazooClient(
        hosts=member.hosts, connection_retry=fast_reconnect(), command_retry=retrying()
    )
    client.start(timeout=WAIT_S)
    return client


def connected_port(client: KazooClient) -> int | None:
    """The client port of the member the client is connected to right now (kazoo 2.8 keeps
    its socket in a private attribute; the suites are pinned to that version)."""
    sock = getattr(client._connection, "_socket", None)
    if sock is None:
        return None
    try:
        return sock.getpeername()[1]
    except OSError:
        return None


class Progress:
    """A count that worker threads raise and the test waits on. A worker that fails calls
    `abort`, so that the test stops waiting and reports why."""

    def __init__(self):
        self._cond = threading.Condition()
        self.count = 0
        self.failures: list = []

    def add(self, n: int = 1) -> None:
        with self._cond:
            self.count += n
            self._cond.notify_all()

    def abort(self, failure: str) -> None:
        with self._cond:
            self.failures.append(failure)
            self._cond.notify_all()

    def wait_for_more(self, n: int, what: str, timeout: float = PROGRESS_WAIT_S) -> None:
        with self._cond:
            target = self.count + n
            self._cond.wait_for(lambda: self.count >= target or self.failures, timeout)
            if self.failures:
                raise AssertionError(f"while waiting for {what}: {self.failures}")
            if self.count < target:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what} "
                    f"(progress {self.count}, wanted {target})"
                )


class Crew:
    """The clients of one test, `per_member` on each member, with their sessions recorded, and
    an ephemeral presence node each under `base`/presence, to show that sessions survive."""

    def __init__(self, ensemble: Ensemble, base: str, per_member: int = 2):
        self.ensemble = ensemble
        self.base = base
        size = len(ensemble.members)
        self.clients: list = []
        self.states: list = []
        self.sessions: list = []
        try:
            for k in range(size * per_member):
                client = member_client(ensemble, k % size)
                self.clients.append(client)
                self.states.append(StateLog(client))
                self.sessions.append(client.client_id[0])
                client.create(f"{self.presence}/c{k}", ephemeral=True, makepath=True)
        except BaseException:
            self.close()
            raise

    @property
    def presence(self) -> str:
        return f"{self.base}/presence"

    def on(self, member: Member) -> list:
        """Indexes of the clients connected to `member` right now."""
        return [k for k, c in enumerate(self.clients) if connected_port(c) == member.port]

    def kill(self, member: Member) -> list:
        """SIGKILL `member`; returns the clients that were connected to it."""
        victims = self.on(member)
        member.kill()
        return victims

    def wait_moved(self, victims: list, dead: Member) -> None:
        """Each victim client is connected to another member with its old session."""
        for k in victims:
            client = self.clients[k]
            # A request waits in kazoo until the client is connected again.
            retrying()(client.sync, "/")
            port = connected_port(client)
            assert (
                port is not None and port != dead.port
            ), f"client {k} should have moved off member {dead.number}, is on port {port}"
            assert client.client_id[0] == self.sessions[k], f"client {k} lost its session"

    def check_sessions_kept(self) -> None:
        """No session was lost, and every presence node is there, on every member, owned by
        the session that made it."""
        for k, client in enumerate(self.clients):
            assert (
                KazooState.LOST not in self.states[k].states
            ), f"client {k} lost its session: {self.states[k].states}"
            assert client.client_id[0] == self.sessions[k]
        for member, owners in on_every_member(self.ensemble, self._presence_owners).items():
            assert owners == dict(enumerate(self.sessions)), (
                f"member {member}: presence nodes and owners {owners}, "
                f"sessions {dict(enumerate(self.sessions))}"
            )

    def _presence_owners(self, client: KazooClient) -> dict:
        owners = {}
        for name in client.get_children(self.presence):
            owners[int(name[1:])] = client.exists(f"{self.presence}/{name}").ephemeralOwner
        return owners

    def close(self) -> None:
        for client in self.clients:
            try:
                stop_client(client)
            except Exception:  # noqa: BLE001 - teardown must reach every client
                pass


def on_every_member(ensemble: Ensemble, read) -> dict:
    """`read(client)` through a client of each member alone, after `sync`: what each member
    shows once it has caught up with the leader. Keyed by member number."""
    seen = {}
    for member in ensemble.members:
        client = single_member_client(member)
        try:
            retrying()(client.sync, "/")
            seen[member.number] = read(client)
        finally:
            stop_client(client)
    return seen


def kill_and_restart(ensemble: Ensemble, crew: Crew, progress: Progress, victim: Member, steps):
    """SIGKILL `victim` while the recipe runs; the recipe must go on without it (`steps` more
    progress) and the clients that were on it must move with their sessions; then restart it
    and see the recipe go on again. Returns the seconds the progress took without the member
    and the seconds the member took to be ready again (measured, not asserted)."""
    victims = crew.kill(victim)
    killed = time.monotonic()
    _progress(ensemble, progress, steps, f"progress with member {victim.number} killed")
    without = time.monotonic() - killed
    crew.wait_moved(victims, victim)
    started = time.monotonic()
    ensemble.restart(victim)
    ready = time.monotonic() - started
    _progress(ensemble, progress, steps, f"progress after member {victim.number} restarted")
    return without, ready


def kill_all_and_restart(ensemble: Ensemble, progress: Progress, steps) -> None:
    """SIGKILL every member at once (a power cut), restart them all on their data
    directories, and see the recipe go on: what was acknowledged before must all be there,
    and sessions get a fresh timeout from the new leader, so none expires."""
    for member in ensemble.members:
        member.kill()
    for member in ensemble.members:
        member.start()
    ensemble.wait_ready()
    _progress(ensemble, progress, steps, "progress after every member was restarted")


def _progress(ensemble: Ensemble, progress: Progress, steps: int, what: str) -> None:
    """Wait for progress; a failure tells each member's role and the end of its log."""
    try:
        progress.wait_for_more(steps, what)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{ensemble.describe()}") from None


def busiest_follower(ensemble: Ensemble, crew: Crew) -> Member:
    """The live non-leader member with the most clients connected to it."""
    leader = ensemble.leader()
    followers = [m for m in ensemble.members if m is not leader and m.alive]
    return max(followers, key=lambda m: len(crew.on(m)))


# What `abort` says when a lock contender queued twice (see `watch_for_double_contenders`).
DOUBLE_CONTENDER = "a lock contender has two nodes"


def watch_for_double_contenders(client: KazooClient, path: str, progress: Progress) -> None:
    """Abort `progress` as soon as one kazoo Lock contender has two nodes under `path`.

    kazoo's Lock names its node `<uuid>__lock__<sequence>`, one uuid per Lock object. After a
    lost reply to its create it looks for a node with its uuid and, finding none, creates
    another. Two nodes with one uuid mean the first create was applied after that look: the
    contender then waits on its own node, or leaves an orphan everyone waits on, forever.
    (ZooKeeper refuses such a late request once the session reconnected elsewhere.)"""

    def check(children):
        uuids = Counter(name.split("__", 1)[0] for name in children)
        doubled = sorted(name for name in children if uuids[name.split("__", 1)[0]] > 1)
        if doubled:
            progress.abort(f"{DOUBLE_CONTENDER}: {doubled}")
            return False
        return True

    client.ensure_path(path)
    ChildrenWatch(client, path, check)
