//! A member whose own disk cannot rebuild its state fetches a peer's snapshot before Raft
//! starts, and keeps its identity, vote and log.
//!
//! The tree is rebuilt from the newest readable snapshot plus the log after it. The log is
//! purged only behind the older of two kept snapshots, so one damaged snapshot is survived
//! locally (see `raft::snapshot_store`). A member that caught up from a snapshot the leader
//! *sent*, though, has its log purged up to that snapshot and no older one of its own: if
//! that file is damaged, the log starts after every snapshot it can read, and nothing on
//! its disk fills the gap. Wiping the member would work (it rejoins as a new incarnation)
//! but costs an operator step and a voter until then. Instead, as a ZooKeeper follower
//! resynchronises from its leader, it asks its peers for a snapshot at or past the start of
//! its log.
//!
//! The log must then agree with the fetched snapshot S. If the log holds S's own entry at
//! S's index, it matches S up to there (log matching) and is kept whole. If it holds another
//! entry there, nothing after the purge point was ever committed: a committed entry past S
//! would imply S's entry before it. Those entries are dropped, and openraft purges the log
//! up to S when it starts. Either way nothing this member acknowledged that a quorum relies
//! on is lost, and its vote is untouched.

use std::time::{Duration, Instant};

use keepr_log::LogStore;
use keepr_proto::peer::FetchSnapshotRequest;
use openraft::storage::{RaftLogReader, RaftLogStorage};

use super::{Inner, StartError};
use crate::config::Config;
use crate::peer::client::{decode, PeerChannels};
use crate::peer::snapshot_transfer::{self, Received};
use crate::raft::snapshot_store::{SnapshotFile, SnapshotStore};
use crate::raft::types::{SnapshotMeta, TypeConfig};

/// How long a starting member keeps asking its peers before it gives up and exits (its
/// supervisor restarts it, and it asks again).
const FETCH_FOR: Duration = Duration::from_secs(120);
/// How long a member asked for a snapshot past its newest one waits for a new one to build.
const BUILD_FOR: Duration = Duration::from_secs(60);

fn storage(what: &str, e: impl std::fmt::Display) -> StartError {
    StartError::Snapshots(std::io::Error::other(format!("{what}: {e}")))
}

/// Fetches a peer's snapshot if the log starts after every snapshot this member can read;
/// does nothing otherwise (the common case: one directory listing and one verification).
pub(super) async fn restore_missing_snapshot(
    config: &Config,
    log: &mut LogStore<TypeConfig>,
    snapshots: &SnapshotStore,
    channels: &PeerChannels,
) -> Result<(), StartError> {
    let state = log
        .get_log_state()
        .await
        .map_err(|e| storage("reading the log state", e))?;
    let Some(purged) = state.last_purged_log_id else {
        return Ok(());
    };
    let store = snapshots.clone();
    let have = tokio::task::spawn_blocking(move || store.newest_valid())
        .await
        .map_err(|e| storage("checking snapshots", e))?
        .map_err(StartError::Snapshots)?
        .and_then(|(meta, _)| meta.last_log_id)
        .map(|l| l.index);
    if have >= Some(purged.index) {
        return Ok(());
    }
    tracing::warn!(
        log_starts_after = purged.index,
        newest_readable_snapshot = ?have,
        "no readable snapshot reaches the start of the log: fetching one from a peer"
    );
    let peers: Vec<&String> = config
        .initial_members
        .iter()
        .filter(|(ordinal, _)| **ordinal != config.id)
        .map(|(_, addr)| addr)
        .chain(config.join.iter())
        .collect();
    let deadline = Instant::now() + FETCH_FOR;
    let received = 'fetch: loop {
        for addr in &peers {
            match fetch(channels, addr, snapshots, purged.index).await {
                Ok(received) => break 'fetch received,
                Err(e) => {
                    tracing::info!(peer = %addr, error = %e, "no usable snapshot from this peer")
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(storage(
                "restoring the state",
                format!(
                    "no readable snapshot reaches index {} where the log starts, and no peer \
                     ({} asked) supplied one",
                    purged.index,
                    peers.len()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let Some(fetched) = received.meta.last_log_id else {
        received.discard();
        return Err(storage(
            "restoring the state",
            "the fetched snapshot is empty",
        ));
    };
    // First make the log agree with the snapshot, durably; only then adopt the snapshot, so
    // a crash in between leaves a member that simply fetches again.
    let at = match state.last_log_id {
        Some(last) if last.index >= fetched.index => log
            .get_log_reader()
            .await
            .try_get_log_entries(fetched.index..fetched.index + 1)
            .await
            .map_err(|e| storage("reading the log", e))?
            .first()
            .map(|e| e.log_id),
        _ => None,
    };
    if at.is_some_and(|id| id != fetched) {
        tracing::warn!(
            index = fetched.index,
            "the log holds another entry where the fetched snapshot ends: dropping the \
             uncommitted entries after the purge point"
        );
        log.truncate_after(Some(purged))
            .await
            .map_err(|e| storage("truncating the log", e))?;
        // The vote record is written and fsynced behind the truncation: it makes it durable.
        if let Some(vote) = log
            .read_vote()
            .await
            .map_err(|e| storage("reading the vote", e))?
        {
            log.save_vote(&vote)
                .await
                .map_err(|e| storage("syncing the log", e))?;
        }
    }
    let store = snapshots.clone();
    let Received { meta, file, .. } = received;
    tokio::task::spawn_blocking(move || store.adopt(&file.path, &meta))
        .await
        .map_err(|e| storage("adopting the fetched snapshot", e))?
        .map_err(StartError::Snapshots)?;
    tracing::info!(
        index = fetched.index,
        "restored from a peer's snapshot; the log after it is kept"
    );
    Ok(())
}

/// One peer's snapshot at or past `min_index`, received whole and verified.
async fn fetch(
    channels: &PeerChannels,
    addr: &str,
    snapshots: &SnapshotStore,
    min_index: u64,
) -> Result<Received, String> {
    let mut client = channels.client(addr)?;
    let chunks = client
        .fetch_snapshot(FetchSnapshotRequest { min_index })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let received = snapshot_transfer::receive(snapshots, chunks)
        .await
        .map_err(|s| s.message().to_string())?;
    let header: Result<SnapshotMeta, String> = decode(&received.header);
    let reaches = received
        .meta
        .last_log_id
        .is_some_and(|l| l.index >= min_index);
    match header {
        Ok(meta) if meta.last_log_id == received.meta.last_log_id && reaches => Ok(received),
        Ok(_) => {
            received.discard();
            Err("the snapshot does not match its header or ends before the log".into())
        }
        Err(e) => {
            received.discard();
            Err(format!("snapshot header: {e}"))
        }
    }
}

impl Inner {
    /// This member's newest snapshot at or past `min_index`, building one if it has applied
    /// that far but its newest snapshot is older.
    pub async fn snapshot_at_least(
        &self,
        min_index: u64,
    ) -> Result<(SnapshotMeta, SnapshotFile), String> {
        if let Some(found) = self.newest_snapshot_at_least(min_index).await? {
            return Ok(found);
        }
        let applied = *self.shared.applied.borrow();
        if applied < min_index {
            return Err(format!(
                "this member has applied up to index {applied}, short of {min_index}"
            ));
        }
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| e.to_string())?;
        self.raft
            .wait(Some(BUILD_FOR))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= min_index),
                "a snapshot past the asked index",
            )
            .await
            .map_err(|e| e.to_string())?;
        self.newest_snapshot_at_least(min_index)
            .await?
            .ok_or_else(|| "the new snapshot could not be read back".to_string())
    }

    async fn newest_snapshot_at_least(
        &self,
        min_index: u64,
    ) -> Result<Option<(SnapshotMeta, SnapshotFile)>, String> {
        let store = self.snapshots.clone();
        let newest = tokio::task::spawn_blocking(move || store.newest_valid())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(newest.filter(|(meta, _)| meta.last_log_id.is_some_and(|l| l.index >= min_index)))
    }
}
