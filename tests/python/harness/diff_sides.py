"""One server's side of a differential run: the compared sessions (each behind its own proxy,
so it can be cut off and expired), what they were notified of, an observer session, and the
map from session ids to the labels that are compared instead of ids.

On an ensemble the sessions are spread over the members: the session in slot s, in its g-th
generation, connects to member (s + g - 1) mod n, so that sessions on different members meet
in every run and a replaced session moves to another member."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kazoo.client import KazooClient

from . import zkext
from .clients import WAIT_S, NotificationLog, fast_reconnect, super_auth, wait_until
from .diff_ops import Op, request, view
from .proxy import TcpProxy

SESSIONS = 3
# Session timeout of the compared sessions: expiring one takes about this long, and a stall of
# two thirds of it on a loaded machine would expire one by accident.
SESSION_TIMEOUT_S = 6.0
EXPIRY_WAIT_S = SESSION_TIMEOUT_S * 5 + WAIT_S

# Each slot's identity, kept across the sessions that occupy it.
SLOT_AUTH = [[("digest", "alice:alice-pw")], [("digest", "bob:bob-pw")], []]


@dataclass
class Session:
    label: str
    client: KazooClient
    log: NotificationLog
    proxy: TcpProxy
    sentinel: str


@dataclass
class Side:
    name: str
    endpoints: list  # (host, port) of every member
    sentinel_dir: str
    observer: KazooClient = None
    sessions: list = field(default_factory=list)
    owners: dict = field(default_factory=dict)  # session id -> slot label
    generations: list = field(default_factory=lambda: [0] * SESSIONS)

    def start(self) -> None:
        self.observer = KazooClient(
            hosts=",".join(f"{host}:{port}" for host, port in self.endpoints),
            auth_data=super_auth(),
            connection_retry=fast_reconnect(),
        )
        self.observer.start(timeout=WAIT_S)
        self.observer.ensure_path(self.sentinel_dir)
        self.sessions = [self.open_session(slot) for slot in range(SESSIONS)]

    def open_session(self, slot: int) -> Session:
        self.generations[slot] += 1
        label = f"s{slot}.{self.generations[slot]}"
        member = (slot + self.generations[slot] - 1) % len(self.endpoints)
        proxy = TcpProxy(*self.endpoints[member])
        client = KazooClient(
            hosts=proxy.hosts,
            timeout=SESSION_TIMEOUT_S,
            auth_data=SLOT_AUTH[slot],
            connection_retry=fast_reconnect(),
        )
        client.start(timeout=WAIT_S)
        self.owners[client.client_id[0]] = label
        sentinel = client.create(f"{self.sentinel_dir}/{label}", ephemeral=True)
        return Session(label, client, NotificationLog(client), proxy, sentinel)

    def close(self) -> None:
        for session in self.sessions:
            _stop(session.client)
            session.proxy.close()
        if self.observer is not None:
            _stop(self.observer)

    def settle(self) -> None:
        for session in self.sessions:
            session.client.sync("/")

    def take_events(self) -> dict:
        return {s.label: sorted(s.log.take()) for s in self.sessions}

    def close_session(self, slot: int) -> None:
        """Close the slot's session (its ephemerals go before close returns) and put a new
        session in the slot."""
        self._replace(slot)

    def cut_session(self, slot: int) -> threading.Event:
        """Cut the slot's session off from the server; the Event is set once the server has
        expired it (its sentinel ephemeral is deleted)."""
        session = self.sessions[slot]
        gone = threading.Event()
        self.observer.sync(session.sentinel)
        self.observer.exists(session.sentinel, watch=lambda e: gone.set())
        session.proxy.cut()
        return gone

    def finish_expiry(self, slot: int, gone: threading.Event) -> None:
        label = self.sessions[slot].label
        wait_until(gone, f"{self.name}: session {label} to expire", EXPIRY_WAIT_S)
        self._replace(slot)

    def _replace(self, slot: int) -> None:
        session = self.sessions[slot]
        _stop(session.client)
        session.proxy.close()
        self.sessions[slot] = self.open_session(slot)


def _stop(client: KazooClient) -> None:
    try:
        client.stop()
    finally:
        client.close()


def apply(side: Side, op: Op):
    """Run `op` on `side` and return its comparable view."""
    if op.kind == "close":
        side.close_session(op.slot)
        return "ended"
    client = side.sessions[op.slot].client
    try:
        answer = zkext.call(client, request(op))
    except Exception as e:  # noqa: BLE001 - every error is part of the compared result
        answer = e
    return view(side.owners, answer, op.kind)
