//! The member's background work: accepting clients, the leader's session expiry and
//! container/TTL reaping, and followers' liveness reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keepr_tree::{Command, TxnOp};
use openraft::async_runtime::watch::WatchReceiver;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{now_ms, Inner};
use crate::zk::backend::Backend;

/// Resolves once shutdown was requested.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

pub(super) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let backend: Arc<dyn Backend> = inner;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(crate::zk::connection::serve(backend.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// While this member leads: expire sessions not heard from within their timeout, and
/// delete empty containers and expired TTL nodes.
pub(super) async fn leader_chores(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let tick = inner.config.tick;
    let mut interval = tokio::time::interval((tick / 4).max(Duration::from_millis(50)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The term in which this member last took over as leader. Keyed on the term, not on
    // seeing itself lose leadership: an isolated leader may never observe itself as a
    // follower before it wins a later election, and its liveness data is stale by then.
    let mut led_term = None;
    let mut last_reap = Instant::now();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let (leader, term) = {
            let m = inner.raft.metrics().borrow_watched().clone();
            (m.current_leader == Some(inner.raft_id), m.current_term)
        };
        if !leader {
            led_term = None;
            continue;
        }
        let now = Instant::now();
        let live = inner.shared.tree.read().tree.sessions();
        inner.sessions.reconcile(&live, now);
        if led_term != Some(term) {
            // A new leadership: nothing is known of recent activity, so everyone gets a
            // full timeout.
            inner.sessions.reset_all(now);
            led_term = Some(term);
        }
        for session in inner.sessions.take_expired(now) {
            inner.shared.metrics.stale_sessions_expired.inc();
            tracing::info!(session = format_args!("{session:#x}"), "session expired");
            let cmd = Command {
                zxid: 0,
                time: 0,
                session,
                owner: 0,
                auth: Vec::new(),
                op: TxnOp::CloseSession,
            };
            let fut = inner.propose(cmd);
            let inner2 = inner.clone();
            tokio::spawn(async move {
                if fut.await.is_err() {
                    inner2.sessions.close_failed(session);
                }
            });
        }
        if now.duration_since(last_reap) >= inner.config.reap_interval {
            last_reap = now;
            let paths = inner.shared.tree.read().tree.reapable(now_ms());
            for path in paths {
                let cmd = Command {
                    zxid: 0,
                    time: 0,
                    session: 0,
                    owner: 0,
                    auth: Vec::new(),
                    op: TxnOp::DeleteContainer { path },
                };
                drop(inner.propose(cmd));
            }
        }
    }
}

/// On a follower: tells the leader which sessions this member's clients were heard from,
/// twice a tick, so the leader (which alone expires sessions) sees them alive.
pub(super) async fn report_sessions(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut interval =
        tokio::time::interval((inner.config.tick / 2).max(Duration::from_millis(50)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let leader = inner.raft.metrics().borrow_watched().current_leader;
        let Some(leader) = leader.filter(|l| *l != inner.raft_id) else {
            // No leader to tell (an election): keep the touches for the next one.
            continue;
        };
        let Some(addr) = inner.peer_addr_of(leader) else {
            continue;
        };
        let Ok(mut client) = inner.channels.client(&addr) else {
            continue;
        };
        let touched = inner.sessions.take_touched();
        if touched.is_empty() {
            continue;
        }
        let touches = keepr_proto::peer::SessionTouches {
            touches: touched
                .iter()
                .map(|&(session, timeout_ms)| keepr_proto::peer::SessionTouch {
                    session,
                    timeout_ms,
                })
                .collect(),
        };
        // A leader cut off by a partition drops packets instead of refusing them: without a
        // deadline the call would hang until HTTP/2 keepalive gives up, long after the next
        // leader has expired these sessions for want of news. A failed report is re-queued
        // so that the next leader hears of these sessions too.
        let sent = tokio::time::timeout(REPORT_DEADLINE, client.touch_sessions(touches)).await;
        let failed = match sent {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        if let Some(error) = failed {
            tracing::debug!(%error, leader, "session report failed; re-queued");
            inner.sessions.requeue_touched(&touched);
        }
    }
}

/// How long a follower waits for the leader to take a liveness report.
const REPORT_DEADLINE: Duration = Duration::from_secs(1);

/// Every member tells the others who it is, every two seconds: the Raft id and address it
/// answers at. A member that lost its data and came back as a new incarnation, or a new
/// member waiting to be added, shows up this way in `Status` (as a stale id to remove, or a
/// candidate to add).
pub(super) async fn announce(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(2));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let mut targets: Vec<String> = inner
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != inner.raft_id)
            .map(|(_, n)| n.peer.clone())
            .collect();
        targets.extend(inner.config.join.iter().cloned());
        targets.extend(
            inner
                .config
                .initial_members
                .iter()
                .filter(|(o, _)| **o != inner.config.id)
                .map(|(_, a)| a.clone()),
        );
        targets.sort();
        targets.dedup();
        for addr in targets {
            let Ok(mut client) = inner.channels.client(&addr) else {
                continue;
            };
            let req = keepr_proto::peer::ProbeRequest {
                id: inner.raft_id,
                peer_address: inner.advertised_peer.clone(),
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), client.probe(req)).await;
        }
    }
}

/// Whether this member can reach a quorum: a leader confirms its leadership with a quorum
/// round trip (Raft's read index), a follower hears from its leader. Without one for
/// [`QUORUM_SILENCE`] it can commit nothing, so it serves only clients that asked for
/// read-only mode, as ZooKeeper's partitioned servers do; on every change of mode the
/// clients of the old mode are disconnected and reconnect where (or how) they can be
/// served. The grace period keeps a brief election from disconnecting everyone.
pub(super) async fn watch_quorum(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    use std::sync::atomic::Ordering;
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_quorum = Instant::now();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let m = inner.raft.metrics().borrow_watched().clone();
        let has_quorum = if m.state == openraft::ServerState::Leader {
            let confirm = inner
                .raft
                .get_read_log_id(openraft::raft::ReadPolicy::ReadIndex);
            matches!(
                tokio::time::timeout(QUORUM_SILENCE, confirm).await,
                Ok(Ok(_))
            )
        } else {
            m.current_leader.is_some()
                && inner.last_leader_contact.lock().elapsed() < QUORUM_SILENCE
        };
        let now = Instant::now();
        if has_quorum {
            last_quorum = now;
        }
        let read_only = now.duration_since(last_quorum) >= QUORUM_SILENCE;
        if inner.read_only.swap(read_only, Ordering::Relaxed) != read_only {
            tracing::warn!(
                read_only,
                "quorum {}; disconnecting clients of the previous mode",
                if read_only { "lost" } else { "regained" }
            );
            inner.shared.watches.lock().close_mode(!read_only);
        }
    }
}

/// How long a member may be without a quorum before it turns read-only.
const QUORUM_SILENCE: Duration = Duration::from_secs(3);

/// Purges the log up to the oldest snapshot kept on disk, after each new snapshot. Keeping
/// the log back to the older snapshot (not just the newest) is what lets a member whose
/// newest snapshot is damaged start from the older one and replay the rest.
pub(super) async fn purge_behind_snapshots(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purged = 0u64;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let store = inner.snapshots.clone();
        let oldest = tokio::task::spawn_blocking(move || store.oldest_kept_index())
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        let Some(upto) = oldest.filter(|i| *i > purged) else {
            continue;
        };
        match inner.raft.trigger().purge_log(upto).await {
            Ok(()) => purged = upto,
            Err(e) => tracing::warn!(error = %e, upto, "purging the log failed"),
        }
    }
}
