//! The member's background work: accepting clients, the leader's session expiry and
//! container/TTL reaping, and followers' liveness reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keepr_tree::{Command, TxnOp};
use openraft::async_runtime::watch::WatchReceiver;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{now_ms, Inner};
use crate::quorum::{Continuity, Leading, QuorumContinuity};
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
/// delete empty containers and expired TTL nodes; both only while the quorum has held for
/// the whole of the timeout in question (see [`crate::quorum`]).
pub(super) async fn leader_chores(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let pass_every = (inner.config.tick / 4).max(Duration::from_millis(50));
    // The quorum is looked at more often than sessions are: a lapse shorter than a pass must
    // still be seen (as a gap between two acknowledgements).
    let mut interval = tokio::time::interval(pass_every.min(QUORUM_SAMPLE));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut continuity = QuorumContinuity::new(quorum_lapse(&inner.config));
    let mut last_pass: Option<Instant> = None;
    let mut last_reap = Instant::now();
    // Whether the last observation was a lapse (for logging its start and end once).
    let mut lapsed = false;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let now = Instant::now();
        let since = match continuity.observe(leading(&inner), now) {
            Continuity::NotLeading => continue,
            Continuity::Lapsed => {
                if !lapsed {
                    tracing::warn!("leading without a quorum: no session expires until it returns");
                    lapsed = true;
                }
                continue;
            }
            Continuity::Began => {
                // A new leadership, or the quorum back after a lapse: nothing is known of
                // what clients did meanwhile (they could not reach a quorum), so everyone
                // gets a full timeout, as after an election.
                let live = inner.shared.tree.read().tree.sessions();
                inner.sessions.reconcile(&live, now);
                inner.sessions.reset_all(now);
                if std::mem::take(&mut lapsed) {
                    tracing::info!("quorum regained: every session gets a full timeout");
                }
                last_pass = Some(now);
                last_reap = now;
                continue;
            }
            Continuity::Held { since } => since,
        };
        if last_pass.is_some_and(|p| now.duration_since(p) < pass_every) {
            continue;
        }
        last_pass = Some(now);
        let live = inner.shared.tree.read().tree.sessions();
        inner.sessions.reconcile(&live, now);
        let expired = inner.sessions.take_expired(now);
        let reap = now.duration_since(last_reap) >= inner.config.reap_interval;
        if expired.is_empty() && !reap {
            continue;
        }
        // The conclusion rests on the quorum having held until now: confirm it with a
        // quorum round trip right before proposing, so no expiry is proposed by a leader
        // that has just lost its quorum (such a proposal would wait in its log and commit
        // when the quorum returned, before the client could resume).
        if !confirm_quorum(&inner).await {
            for &session in &expired {
                inner.sessions.close_failed(session);
            }
            continuity.broken();
            continue;
        }
        for session in expired {
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
        if reap {
            last_reap = now;
            // A TTL counts from the later of the node's last change and the start of the
            // quorum's current period: nobody could change the node without a quorum.
            let now_wall = now_ms();
            let since_wall = now_wall - now.duration_since(since).as_millis() as i64;
            let paths = inner
                .shared
                .tree
                .read()
                .tree
                .reapable_since(now_wall, since_wall);
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

/// How often the leader looks at its quorum's acknowledgements.
const QUORUM_SAMPLE: Duration = Duration::from_millis(100);

/// How long the quorum may be silent before its continuity is broken: half the smallest
/// session timeout (so a client heard from until the quorum went away cannot reach its
/// deadline unnoticed), at most the longest election timeout (after which the followers
/// would have elected someone else anyway).
fn quorum_lapse(config: &crate::config::Config) -> Duration {
    (config.min_session_timeout / 2).clamp(Duration::from_millis(200), Duration::from_millis(1200))
}

/// This member's leadership as Raft reports it, with when a quorum last acknowledged it. A
/// sole voter is its own quorum, at every instant.
fn leading(inner: &Inner) -> Option<Leading> {
    let m = inner.raft.metrics().borrow_watched().clone();
    if m.current_leader != Some(inner.raft_id) {
        return None;
    }
    let membership = m.membership_config.membership();
    let sole_voter = membership.voter_ids().eq([inner.raft_id]);
    let quorum_acked = if sole_voter {
        Some(Instant::now())
    } else {
        m.last_quorum_acked
            .map(|acked| Instant::now() - openraft::Instant::elapsed(&*acked))
    };
    Some(Leading {
        term: m.current_term,
        quorum_acked,
    })
}

/// A quorum round trip (Raft's read index), bounded.
async fn confirm_quorum(inner: &Inner) -> bool {
    let confirm = inner
        .raft
        .get_read_log_id(openraft::raft::ReadPolicy::ReadIndex);
    matches!(
        tokio::time::timeout(QUORUM_CONFIRM, confirm).await,
        Ok(Ok(_))
    )
}

/// How long a confirmation of the quorum may take before it counts as failed.
const QUORUM_CONFIRM: Duration = Duration::from_secs(1);

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
