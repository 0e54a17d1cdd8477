//! Fast failover when the leader's process is gone.
//!
//! Raft alone notices a dead leader only by silence: followers refuse to vote while the
//! leader's lease runs (`election_timeout_max` after its last heartbeat) and then wait a
//! randomized election timeout, about two seconds in all. ZooKeeper's followers instead see
//! the leader's connections close and elect at once. keepr does the same: a follower that has
//! not heard from its leader for a few heartbeats checks the leader's peer port, and if the
//! connection is *refused* (nothing listens there: the process died or is restarting; a
//! partition drops packets and is left to Raft's timeouts) it stands for election at once,
//! with openraft's leadership-transfer flag so the other voters do not wait out the dead
//! leader's lease either.
//!
//! Safety does not depend on the lease: reads use a read index confirmed by a quorum, never a
//! lease, and a vote is still granted only to a candidate whose log is up to date. To keep
//! two followers from splitting the vote, they act one after another in id order.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::TransferLeaderRequest;
use openraft::ServerState;
use tokio::sync::watch;

use super::{chores::stopped, Inner};

/// Silence from the leader after which its port is checked: a few heartbeats.
const SILENCE: Duration = Duration::from_millis(300);
/// How long a connection attempt to the leader may take before it counts as "not refused".
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

pub(super) async fn replace_dead_leader(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(50));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let m = inner.raft.metrics().borrow_watched().clone();
        if m.state != ServerState::Follower {
            continue;
        }
        let Some(leader) = m.current_leader.filter(|l| *l != inner.raft_id) else {
            continue;
        };
        // Followers act in id order, each a silence later than the one before it.
        let Some(rank) = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|v| *v != leader)
            .position(|v| v == inner.raft_id)
        else {
            continue; // a learner never stands for election
        };
        let silent_for = inner.last_leader_contact.lock().elapsed();
        if silent_for < SILENCE * (rank as u32 + 1) {
            continue;
        }
        let Some(addr) = inner.peer_addr_of(leader) else {
            continue;
        };
        if !refused(&addr).await {
            continue;
        }
        // The vote must still be the one that named that leader: anything newer means an
        // election is already under way.
        let now = inner.raft.metrics().borrow_watched().clone();
        if now.vote != m.vote || now.state != ServerState::Follower {
            continue;
        }
        tracing::info!(
            leader,
            silent_ms = silent_for.as_millis() as u64,
            "the leader's peer port refuses connections: standing for election"
        );
        inner.shared.metrics.fast_elections.inc();
        // A transfer "from" the dead leader to this member: openraft then runs an election
        // whose vote requests voters grant despite the lease. No log id is named, as this
        // member votes on its own log like any candidate.
        let req = TransferLeaderRequest::new(m.vote, inner.raft_id, None);
        if let Err(e) = inner.raft.handle_transfer_leader(req).await {
            tracing::warn!(error = %e, "could not start an election");
        }
        // Give the election time to finish before looking again.
        tokio::time::sleep(SILENCE).await;
    }
}

/// Whether a TCP connection to `addr` is actively refused (as opposed to accepted, timed
/// out, or unresolvable).
async fn refused(addr: &str) -> bool {
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}
