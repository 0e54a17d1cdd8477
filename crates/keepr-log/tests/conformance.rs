//! openraft's own storage conformance suite, run against the real store on disk (a fresh
//! temporary directory per case), with a tiny in-memory state machine written here because
//! the suite needs one.

use std::io;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::Mutex;

use futures_util::Stream;
use futures_util::TryStreamExt;
use keepr_log::LogConfig;
use keepr_log::LogStore;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::StoredMembershipOf;
use openraft::type_config::TypeConfigExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::StorageError;
use tempfile::TempDir;

openraft::declare_raft_types!(
    pub TestConfig:
        D = String,
        R = String,
);

#[derive(Default)]
struct SmState {
    applied: Option<LogIdOf<TestConfig>>,
    membership: StoredMembershipOf<TestConfig>,
    data: Vec<String>,
    snapshot: Option<(SnapshotMetaOf<TestConfig>, Vec<u8>)>,
}

/// Applies entries to a list of strings; snapshots are that list, one line per item.
#[derive(Clone, Default)]
struct MemStateMachine(Arc<Mutex<SmState>>);

impl MemStateMachine {
    fn state(&self) -> std::sync::MutexGuard<'_, SmState> {
        self.0.lock().unwrap()
    }
}

impl RaftSnapshotBuilder<TestConfig> for MemStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(
        &mut self,
    ) -> Result<SnapshotOf<TestConfig, Self::SnapshotData>, io::Error> {
        let mut st = self.state();
        let data = st.data.join("\n").into_bytes();
        let meta = SnapshotMetaOf::<TestConfig> {
            last_log_id: st.applied,
            last_membership: st.membership.clone(),
        };
        st.snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<TestConfig, Self::SnapshotData> {
            meta,
            snapshot: Cursor::new(data),
        })
    }
}

impl RaftStateMachine<TestConfig> for MemStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TestConfig>>, StoredMembershipOf<TestConfig>), io::Error> {
        let st = self.state();
        Ok((st.applied, st.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TestConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let mut st = self.state();
            st.applied = Some(entry.log_id);
            let response = match &entry.payload {
                EntryPayload::Blank => String::new(),
                EntryPayload::Normal(d) => {
                    st.data.push(d.clone());
                    d.clone()
                }
                EntryPayload::Membership(m) => {
                    st.membership =
                        StoredMembershipOf::<TestConfig>::new(Some(entry.log_id), m.clone());
                    String::new()
                }
            };
            drop(st);
            if let Some(r) = responder {
                r.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TestConfig>,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let bytes = snapshot.into_inner();
        let text = String::from_utf8(bytes.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut st = self.state();
        st.data = text.lines().map(str::to_string).collect();
        st.applied = meta.last_log_id;
        st.membership = meta.last_membership.clone();
        st.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TestConfig, Self::SnapshotData>>, io::Error> {
        Ok(self
            .state()
            .snapshot
            .clone()
            .map(
                |(meta, data)| SnapshotOf::<TestConfig, Self::SnapshotData> {
                    meta,
                    snapshot: Cursor::new(data),
                },
            ))
    }
}

struct DiskBuilder;

impl StoreBuilder<TestConfig, LogStore<TestConfig>, MemStateMachine, TempDir> for DiskBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<TestConfig>, MemStateMachine), StorageError<TestConfig>> {
        let dir =
            tempfile::tempdir().map_err(|e| StorageError::read(TestConfig::err_from_error(&e)))?;
        // Small segments so the suite's logs span several files.
        let config = LogConfig {
            segment_size: 512,
            cache_bytes: 256,
        };
        let store = LogStore::open(dir.path(), config)
            .map_err(|e| StorageError::read(TestConfig::err_from_error(&e)))?;
        Ok((dir, store, MemStateMachine::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_openraft_log_storage_conformance_suite(
) -> Result<(), StorageError<TestConfig>> {
    Suite::test_all(DiskBuilder).await
}
