//! What the rest of the member asks of it: the connection-facing [`Backend`], the HTTP
//! status, and a few Raft questions.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use keepr_tree::Command;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;
use tokio::sync::oneshot;

use super::Inner;
use crate::http::MemberStatus;
use crate::metrics::Snapshot as MetricsSnapshot;
use crate::peer::forward::InFlight;
use crate::sessions::{SessionIds, SessionTracker};
use crate::state::Shared;
use crate::zk::backend::{Applied, Backend, Mode, ProposeError, ZkSettings};

/// A follower that has not heard from its leader for this long is not ready: it may have been
/// cut off, and what it serves may be old.
const READY_SILENCE: std::time::Duration = std::time::Duration::from_secs(3);

impl Inner {
    pub fn peer_addr_of(&self, node: u64) -> Option<String> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .get_node(&node)
            .map(|n| n.peer.clone())
    }

    /// On the leader: an index that covers every write committed before this call, after
    /// confirming with a quorum that this member still leads.
    pub async fn leader_read_index(&self) -> Result<u64, ProposeError> {
        let (read, _applied) = self
            .raft
            .get_read_log_id(openraft::raft::ReadPolicy::ReadIndex)
            .await
            .map_err(|e| ProposeError::Unknown(e.to_string()))?;
        Ok(read.log_id().index)
    }
}

impl Backend for Inner {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn settings(&self) -> &ZkSettings {
        &self.settings
    }

    fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    fn session_ids(&self) -> &SessionIds {
        &self.session_ids
    }

    fn mode(&self) -> Mode {
        let m = self.raft.metrics().borrow_watched().clone();
        let voters = m.membership_config.membership().voter_ids().count();
        match m.state {
            ServerState::Leader if voters <= 1 => Mode::Standalone,
            ServerState::Leader => Mode::Leader,
            ServerState::Follower | ServerState::Learner if m.current_leader.is_some() => {
                Mode::Follower
            }
            _ => Mode::Looking,
        }
    }

    fn read_only(&self) -> bool {
        self.read_only.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn propose(&self, cmd: Command) -> BoxFuture<'static, Result<Applied, ProposeError>> {
        let (tx, rx) = oneshot::channel();
        let queued = self.proposals.send((cmd, tx)).is_ok();
        let shared = self.shared.clone();
        async move {
            if !queued {
                return Err(ProposeError::Unknown("member is shutting down".into()));
            }
            let in_flight = rx
                .await
                .map_err(|_| ProposeError::Unknown("member is shutting down".into()))??;
            let forwarded = matches!(in_flight, InFlight::Forwarded(_));
            let applied = in_flight.outcome().await?;
            if forwarded {
                // Answer only once this member shows the write (and has queued its events).
                shared.wait_applied(applied.index).await;
            }
            Ok(applied)
        }
        .boxed()
    }

    fn reconfig(
        &self,
        req: keepr_wire::ReconfigRequest,
    ) -> BoxFuture<'static, Result<String, keepr_wire::ErrorCode>> {
        let this = self.this.get().and_then(std::sync::Weak::upgrade);
        async move {
            match this {
                Some(inner) => super::reconfig::reconfig(inner, req).await,
                None => Err(keepr_wire::ErrorCode::SystemError),
            }
        }
        .boxed()
    }

    fn sync(&self) -> BoxFuture<'static, Result<(), ProposeError>> {
        let shared = self.shared.clone();
        let leader = self.raft.metrics().borrow_watched().current_leader;
        let me = self.config.id;
        let raft = self.raft.clone();
        let target = leader
            .filter(|l| *l != me)
            .and_then(|l| self.peer_addr_of(l))
            .map(|addr| self.channels.client(&addr));
        async move {
            let index = match (leader, target) {
                (Some(l), _) if l == me => {
                    let (read, _) = raft
                        .get_read_log_id(openraft::raft::ReadPolicy::ReadIndex)
                        .await
                        .map_err(|e| ProposeError::Unknown(e.to_string()))?;
                    read.log_id().index
                }
                (Some(_), Some(Ok(mut client))) => {
                    client
                        .read_index(keepr_proto::peer::ReadIndexRequest {})
                        .await
                        .map_err(|s| ProposeError::Unknown(s.message().to_string()))?
                        .into_inner()
                        .index
                }
                _ => return Err(ProposeError::NoLeader),
            };
            shared.wait_applied(index).await;
            Ok(())
        }
        .boxed()
    }
}

impl MemberStatus for Inner {
    fn metrics_snapshot(&self) -> MetricsSnapshot {
        let m = self.raft.metrics().borrow_watched().clone();
        let tree = self.shared.tree.read().tree.metrics();
        let (conns, watches) = {
            let w = self.shared.watches.lock();
            (w.connection_count(), w.manager.watch_count())
        };
        let membership = m.membership_config.membership();
        let leader_last = m.last_log_index.unwrap_or(0);
        let follower_lag = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != self.config.id)
                    .map(|(id, matched)| {
                        let idx = matched.as_ref().map(|l| l.index).unwrap_or(0);
                        (*id, leader_last.saturating_sub(idx) as i64)
                    })
                    .collect()
            })
            .unwrap_or_default();
        MetricsSnapshot {
            znode_count: tree.znode_count as i64,
            watch_count: watches as i64,
            ephemerals_count: tree.ephemerals_count as i64,
            approximate_data_size: tree.approximate_data_size as i64,
            num_alive_connections: conns as i64,
            outstanding_requests: self.shared.metrics.proposals_in_flight.get(),
            global_sessions: tree.global_sessions as i64,
            raft_term: m.current_term as i64,
            raft_leader: m.current_leader.unwrap_or(0) as i64,
            raft_is_leader: m.state == ServerState::Leader,
            raft_commit_index: m.local_committed.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_applied_index: m.last_applied.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_last_log_index: leader_last as i64,
            raft_snapshot_index: m.snapshot.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_purged_index: m.purged.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_voters: membership.voter_ids().count() as i64,
            raft_learners: membership.learner_ids().count() as i64,
            follower_lag,
        }
    }

    fn readiness(&self) -> Result<(), String> {
        let m = self.raft.metrics().borrow_watched().clone();
        if m.current_leader.is_none() {
            return Err("no leader known".into());
        }
        let committed = m.local_committed.as_ref().map(|l| l.index).unwrap_or(0);
        let applied = m.last_applied.as_ref().map(|l| l.index).unwrap_or(0);
        if applied < committed {
            return Err(format!("applied {applied} < committed {committed}"));
        }
        if m.current_leader == Some(self.raft_id) {
            return Ok(());
        }
        // A follower's own commit index only covers the log it holds: a member that restarted
        // far behind would look caught up. It must have applied what its leader has committed,
        // as the leader last said, and have heard from the leader recently.
        let Some(leader_commit) = *self.leader_commit_seen.lock() else {
            return Err("not heard from the leader since start".into());
        };
        let silent = self.last_leader_contact.lock().elapsed();
        if silent > READY_SILENCE {
            return Err(format!("not heard from the leader for {silent:?}"));
        }
        if applied < leader_commit {
            return Err(format!(
                "catching up: applied {applied} of the leader's commit {leader_commit}"
            ));
        }
        Ok(())
    }
}
