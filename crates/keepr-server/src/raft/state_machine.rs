//! openraft's state machine for keepr: committed commands applied to the in-memory tree, and
//! snapshots of it on disk.
//!
//! The tree lives in memory (openraft's "transient state machine" model): on restart,
//! openraft installs the newest snapshot through [`RaftStateMachine::install_snapshot`] and
//! re-applies the log up to the committed index the log store kept. Applying hands each
//! change's watch events to the connections while still holding the tree's write lock (see
//! [`crate::state`]), and answers the proposer with the encoded reply.
//!
//! Snapshots: the builder takes the tree's read lock and streams the tree to a file (writes
//! wait meanwhile; see `docs/decisions.md` on why this is acceptable for now).

use std::io;
use std::sync::Arc;

use futures::StreamExt;
use keepr_tree::{Tree, TreeConfig};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;

use super::snapshot_store::{SnapshotFile, SnapshotStore};
use super::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig, WriteReply};
use crate::state::{apply_and_deliver, write_reply, ApplyScratch, CloseReason, ConnSignal, Shared};

pub struct StateMachine {
    shared: Arc<Shared>,
    snapshots: SnapshotStore,
    tree_config: TreeConfig,
    /// Scratch space reused by every apply.
    scratch: ApplyScratch,
}

impl StateMachine {
    pub fn new(shared: Arc<Shared>, snapshots: SnapshotStore, tree_config: TreeConfig) -> Self {
        StateMachine {
            shared,
            snapshots,
            tree_config,
            scratch: ApplyScratch::default(),
        }
    }

    fn apply_one(&mut self, entry: super::types::Entry, want_reply: bool) -> WriteReply {
        let log_id = entry.log_id;
        let index = log_id.index;
        let mut st = self.shared.tree.write();
        let reply = match entry.payload {
            EntryPayload::Blank => WriteReply::default(),
            EntryPayload::Membership(m) => {
                st.membership = StoredMembership::new(Some(log_id), m);
                WriteReply::default()
            }
            EntryPayload::Normal(logged) => {
                let result = apply_and_deliver(
                    &mut st.tree,
                    &self.shared,
                    index as i64,
                    logged.command(),
                    &mut self.scratch,
                );
                if want_reply {
                    write_reply(&result)
                } else {
                    WriteReply::default()
                }
            }
        };
        st.last_applied = Some(log_id);
        drop(st);
        self.shared.applied.send_replace(index);
        reply
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let st = self.shared.tree.read();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let reply = self.apply_one(entry, responder.is_some());
            if let Some(r) = responder {
                r.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let config = self.tree_config.clone();
        let (file_meta, tree, snapshot) = tokio::task::spawn_blocking(move || {
            let (file_meta, reader) = snapshot.open_tree()?;
            let tree = Tree::decode_snapshot(reader, config)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Ok::<_, io::Error>((file_meta, tree, snapshot))
        })
        .await
        .map_err(io::Error::other)??;
        if file_meta.last_log_id != meta.last_log_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "snapshot file is at {:?}, expected {:?}",
                    file_meta.last_log_id, meta.last_log_id
                ),
            ));
        }
        let index = meta.last_log_id.as_ref().map(|l| l.index).unwrap_or(0);
        {
            let mut st = self.shared.tree.write();
            let replacing_live_state = st.last_applied.is_some();
            st.tree = tree;
            st.last_applied = meta.last_log_id;
            st.membership = meta.last_membership.clone();
            if replacing_live_state {
                // Watches refer to the old tree: make every client reconnect and re-register
                // them, which fires exactly the events it missed (setWatches catch-up).
                self.shared
                    .watches
                    .lock()
                    .broadcast(ConnSignal::Close(CloseReason::StateReplaced));
            }
        }
        self.shared.applied.send_replace(index);
        let snapshots = self.snapshots.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || snapshots.adopt(&snapshot.path, &meta))
            .await
            .map_err(io::Error::other)??;
        tracing::info!(index, "snapshot installed from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<SnapshotFile>>, io::Error> {
        let snapshots = self.snapshots.clone();
        let found = tokio::task::spawn_blocking(move || snapshots.newest_valid())
            .await
            .map_err(io::Error::other)??;
        Ok(found.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot<SnapshotFile>, io::Error> {
        let shared = self.shared.clone();
        let snapshots = self.snapshots.clone();
        let started = std::time::Instant::now();
        let (meta, file) = tokio::task::spawn_blocking(move || {
            let st = shared.tree.read();
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.membership.clone(),
            };
            let file = snapshots.write(&meta, |w| st.tree.encode_snapshot(w))?;
            Ok::<_, io::Error>((meta, file))
        })
        .await
        .map_err(io::Error::other)??;
        self.shared
            .metrics
            .snapshottime
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            index = meta.last_log_id.as_ref().map(|l| l.index).unwrap_or(0),
            path = %file.path.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        Ok(Snapshot {
            meta,
            snapshot: file,
        })
    }
}
