//! The state one member shares between the Raft state machine (which writes it) and the
//! client connections (which read it and hold watches on it).
//!
//! Two locks, always taken in this order: the tree ([`Shared::tree`]) and then the watches
//! ([`Shared::watches`]). Applying a command holds the tree's write lock while it hands the
//! watch events it raised to the connections' queues; a read that registers a watch holds
//! the tree's read lock while it registers. Hence a watch is never registered between a
//! change and the events that change raises, and a connection always has the event queued
//! before it can send any reply that reflects the change: ZooKeeper's ordering guarantee.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use keepr_tree::{
    Command, EventType, Tree, Triggers, TxnOp, TxnResult, WatchEvent, WatchManager, WatcherId,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::raft::types::{LogId, StoredMembership, WriteReply};
use crate::zk::reply;

/// The replicated state as this member has applied it.
pub struct TreeState {
    pub tree: Tree,
    /// The last log entry applied (of any kind); its index is the zxid clients see.
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl TreeState {
    pub fn applied_index(&self) -> u64 {
        self.last_applied.as_ref().map(|l| l.index).unwrap_or(0)
    }
}

/// Something a connection must act on that did not come from its own socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnSignal {
    /// A watch fired: send a notification with this zxid (-1 for setWatches catch-up).
    Event {
        zxid: i64,
        event: EventType,
        path: Arc<str>,
    },
    /// Close the connection (session closed or moved, snapshot installed, shutdown).
    Close(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The session expired or was closed.
    SessionClosed,
    /// The client reconnected to this member with the same session on another socket.
    SessionMoved,
    /// The tree was replaced by a snapshot from the leader; the client reconnects and
    /// re-registers its watches, which fires what it missed.
    StateReplaced,
    /// The member lost or regained its quorum: its read-write (or read-only) clients move.
    ModeChanged,
    Shutdown,
}

/// Per-connection counters, for `cons` and `stat`.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub established: std::time::SystemTime,
    session: AtomicI64,
    timeout_ms: AtomicI64,
    received: AtomicU64,
    sent: AtomicU64,
    /// Established while the member had no quorum: reads only.
    read_only: std::sync::atomic::AtomicBool,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr) -> ConnInfo {
        ConnInfo {
            peer,
            established: std::time::SystemTime::now(),
            session: AtomicI64::new(0),
            timeout_ms: AtomicI64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            read_only: std::sync::atomic::AtomicBool::new(false),
        }
    }
    pub fn set_read_only(&self, ro: bool) {
        self.read_only.store(ro, Ordering::Relaxed);
    }
    pub fn read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }
    pub fn set_session(&self, session: i64, timeout_ms: i32) {
        self.session.store(session, Ordering::Relaxed);
        self.timeout_ms.store(timeout_ms as i64, Ordering::Relaxed);
    }
    pub fn session(&self) -> i64 {
        self.session.load(Ordering::Relaxed)
    }
    pub fn timeout_ms(&self) -> i64 {
        self.timeout_ms.load(Ordering::Relaxed)
    }
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    pub fn received_count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    pub fn sent_count(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Server-wide request counters and latency, as `srvr` reports them.
#[derive(Debug, Default)]
pub struct ServerStats {
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

impl ServerStats {
    pub fn record_latency(&self, d: std::time::Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let count = self.latency_count.fetch_add(1, Ordering::Relaxed);
        if count == 0 {
            self.latency_min_us.store(us, Ordering::Relaxed);
        } else {
            self.latency_min_us.fetch_min(us, Ordering::Relaxed);
        }
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// (min, avg, max) in milliseconds.
    pub fn latency_ms(&self) -> (f64, f64, f64) {
        let count = self.latency_count.load(Ordering::Relaxed);
        if count == 0 {
            return (0.0, 0.0, 0.0);
        }
        let min = self.latency_min_us.load(Ordering::Relaxed) as f64 / 1000.0;
        let max = self.latency_max_us.load(Ordering::Relaxed) as f64 / 1000.0;
        let avg = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1000.0 / count as f64;
        (min, avg, max)
    }

    pub fn requests(&self) -> u64 {
        self.latency_count.load(Ordering::Relaxed)
    }
}

struct ConnEntry {
    tx: mpsc::UnboundedSender<ConnSignal>,
    info: Arc<ConnInfo>,
}

/// Watches plus the queues of the connections that hold them.
#[derive(Default)]
pub struct Watches {
    pub manager: WatchManager,
    conns: HashMap<WatcherId, ConnEntry>,
    /// Which local connection serves each session.
    owners: HashMap<i64, WatcherId>,
}

impl Watches {
    pub fn register_conn(
        &mut self,
        id: WatcherId,
        tx: mpsc::UnboundedSender<ConnSignal>,
        info: Arc<ConnInfo>,
    ) {
        self.conns.insert(id, ConnEntry { tx, info });
    }

    /// Forgets a closed connection and every watch it held.
    pub fn unregister_conn(&mut self, id: WatcherId) {
        self.conns.remove(&id);
        self.manager.remove_watcher(id);
    }

    /// Records that `conn` now serves `session`; returns the connection that served it
    /// before, if another.
    pub fn set_owner(&mut self, session: i64, conn: WatcherId) -> Option<WatcherId> {
        self.owners.insert(session, conn).filter(|old| *old != conn)
    }

    pub fn clear_owner(&mut self, session: i64, conn: WatcherId) {
        if self.owners.get(&session) == Some(&conn) {
            self.owners.remove(&session);
        }
    }

    /// The session was closed: its connection here, if any, must close.
    pub fn session_closed(&mut self, session: i64) {
        if let Some(conn) = self.owners.remove(&session) {
            self.signal(conn, ConnSignal::Close(CloseReason::SessionClosed));
        }
    }

    pub fn connections(&self) -> Vec<Arc<ConnInfo>> {
        let mut v: Vec<Arc<ConnInfo>> = self.conns.values().map(|c| c.info.clone()).collect();
        v.sort_by_key(|c| c.peer);
        v
    }

    /// Queues events on their connections. A connection that has gone away is skipped; its
    /// watches go when it unregisters.
    pub fn deliver(&self, zxid: i64, events: &[WatchEvent], metrics: &Metrics) {
        for e in events {
            if let Some(c) = self.conns.get(&e.watcher) {
                match e.event {
                    EventType::NodeCreated => metrics.node_created_watch_count.inc(),
                    EventType::NodeDeleted => metrics.node_deleted_watch_count.inc(),
                    EventType::NodeDataChanged => metrics.node_changed_watch_count.inc(),
                    EventType::NodeChildrenChanged => metrics.node_children_watch_count.inc(),
                }
                let _ = c.tx.send(ConnSignal::Event {
                    zxid,
                    event: e.event,
                    path: e.path.clone(),
                });
            }
        }
    }

    /// Sends `signal` to every connection.
    pub fn broadcast(&self, signal: ConnSignal) {
        for c in self.conns.values() {
            let _ = c.tx.send(signal.clone());
        }
    }

    /// Closes the connections established in the given mode.
    pub fn close_mode(&self, read_only: bool) {
        for c in self.conns.values() {
            if c.info.read_only() == read_only {
                let _ = c.tx.send(ConnSignal::Close(CloseReason::ModeChanged));
            }
        }
    }

    pub fn signal(&self, id: WatcherId, signal: ConnSignal) {
        if let Some(c) = self.conns.get(&id) {
            let _ = c.tx.send(signal);
        }
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
}

pub struct Shared {
    /// See [`Shared::owner_of`].
    owner_base: u64,
    pub node_id: u64,
    pub tree: RwLock<TreeState>,
    pub watches: Mutex<Watches>,
    /// The index of the last applied entry, for waiters (sync, follower replies).
    pub applied: watch::Sender<u64>,
    pub metrics: Arc<Metrics>,
    pub stats: ServerStats,
    next_conn_id: AtomicU64,
}

impl Shared {
    pub fn new(node_id: u64, tree: Tree, metrics: Arc<Metrics>) -> Shared {
        // Owner ids of this process's connections: member ordinal, a per-process random part
        // (connection numbers restart with the process), the connection number.
        let epoch = rand::random::<u16>() as u64;
        Shared {
            owner_base: (node_id << 56) | (epoch << 40),
            node_id,
            tree: RwLock::new(TreeState {
                tree,
                last_applied: None,
                membership: StoredMembership::default(),
            }),
            watches: Mutex::new(Watches::default()),
            applied: watch::channel(0).0,
            metrics,
            stats: ServerStats::default(),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// The ensemble-unique id of this member's connection `conn` as a session owner
    /// (`keepr_tree::Command::owner`).
    pub fn owner_of(&self, conn: WatcherId) -> u64 {
        self.owner_base | (conn & ((1 << 40) - 1))
    }

    pub fn next_conn_id(&self) -> WatcherId {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits until this member has applied `index`.
    pub async fn wait_applied(&self, index: u64) {
        let mut rx = self.applied.subscribe();
        // The sender lives as long as `self`, so this only ends when the index is reached.
        let _ = rx.wait_for(|applied| *applied >= index).await;
    }
}

/// Space reused by every apply, so applying allocates only for what it produces.
#[derive(Default)]
pub struct ApplyScratch {
    triggers: Triggers,
    events: Vec<WatchEvent>,
}

/// Applies `cmd` (time already stamped) at `zxid` to `tree`, which the caller holds through
/// `shared.tree`'s write lock, and queues the watch events it fires on their connections
/// before returning: the lock is still held, so no read can observe the change before its
/// events are queued (see [`crate::state`]). A successful closeSession also closes the
/// connection that served the session.
pub fn apply_and_deliver(
    tree: &mut Tree,
    shared: &Shared,
    zxid: i64,
    cmd: &Command,
    scratch: &mut ApplyScratch,
) -> TxnResult {
    scratch.triggers.clear();
    let result = tree.apply_at(zxid, cmd, &mut scratch.triggers);
    let session_closed = matches!(cmd.op, TxnOp::CloseSession) && result.is_ok();
    if !scratch.triggers.is_empty() || session_closed {
        let mut w = shared.watches.lock();
        scratch.events.clear();
        w.manager.process(&scratch.triggers, &mut scratch.events);
        w.deliver(zxid, &scratch.events, &shared.metrics);
        if session_closed {
            w.session_closed(cmd.session);
        }
    }
    result
}

/// What the proposer of a write is answered: the error code, or 0 and the encoded body.
pub fn write_reply(result: &TxnResult) -> WriteReply {
    match result {
        Ok(r) => {
            let mut body = BytesMut::new();
            reply::write_body(r).write(&mut body);
            WriteReply {
                err: 0,
                body: body.to_vec(),
            }
        }
        Err(code) => WriteReply {
            err: code.code(),
            body: Vec::new(),
        },
    }
}
