//! Shared by the integration tests: a type config, deterministic entries, and a durable append.
#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::path::PathBuf;

use keepr_log::LogConfig;
use keepr_log::LogStore;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::TypeConfigExt;

openraft::declare_raft_types!(
    pub TestConfig:
        D = String,
        R = String,
);

pub type Entry = EntryOf<TestConfig>;
pub type Store = LogStore<TestConfig>;

/// The log id of `index` written by the leader of `term` (node 1).
pub fn log_id(term: u64, index: u64) -> LogIdOf<TestConfig> {
    openraft::testing::log_id::<TestConfig>(term, 1, index)
}

/// The payload entry `index` carries: derived from the index alone, of varying length, so a
/// reader can check any entry's content without remembering it.
pub fn payload(index: u64) -> String {
    let filler = "x".repeat((index * 7 % 61) as usize);
    format!("entry-{index}-{filler}")
}

pub fn entry(term: u64, index: u64) -> Entry {
    Entry::new_normal(log_id(term, index), payload(index))
}

pub fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|i| entry(term, i)).collect()
}

/// Small segments, so tests cross segment boundaries with few entries.
pub fn small_segments() -> LogConfig {
    LogConfig {
        segment_size: 1024,
        cache_bytes: 1024 * 1024,
    }
}

pub fn open(dir: &Path, config: LogConfig) -> Store {
    LogStore::open(dir, config).expect("open log store")
}

/// Appends and waits until the store reports the entries durable.
pub async fn append_durably(store: &mut Store, entries: Vec<Entry>) {
    let (tx, rx) = TestConfig::oneshot();
    store
        .append(entries, IOFlushed::signal(tx))
        .await
        .expect("append");
    rx.await.expect("callback dropped").expect("flush failed");
}

/// Segment files of `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Every entry the store returns for `range`, as `(index, payload)`.
pub async fn read_all(store: &mut Store, range: std::ops::Range<u64>) -> Vec<(u64, String)> {
    use openraft::RaftLogReader;
    store
        .try_get_log_entries(range)
        .await
        .expect("read")
        .into_iter()
        .map(|e| {
            let data = match &e.payload {
                openraft::EntryPayload::Normal(d) => d.clone(),
                other => format!("{other:?}"),
            };
            (e.index(), data)
        })
        .collect()
}
