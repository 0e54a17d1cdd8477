//! The durable Raft log of a keepr member: openraft's [`RaftLogStorage`] and
//! [`RaftLogReader`] over segmented, checksummed, append-only files with group commit.
//!
//! The crate knows nothing about znodes: [`LogStore`] is generic over any openraft type
//! config whose entries, votes and log ids serialize with serde (openraft's `serde` feature).
//! Records are encoded with postcard (see `docs/decisions.md`).
//!
//! # On disk
//!
//! A log directory holds a `LOCK` file (held with `flock` while a store has it open) and
//! segment files named `<seq>-<first index>.log` (16 hex digits each). A segment is a sequence
//! of records:
//!
//! ```text
//! [u32 len LE][u32 crc32c LE][payload: len bytes]
//! ```
//!
//! where the checksum covers the length bytes and the payload. Payloads are postcard-encoded
//! records: every write the store accepts (an entry, a vote, a committed log id, a truncation,
//! a purge) is one record, appended in the order the calls were made. Each segment begins with
//! a header record that repeats the state the earlier segments left (vote, committed, purged,
//! last log id), so the oldest segments can be deleted once purged without losing the vote.
//! A segment is closed when the next record would take it past [`LogConfig::segment_size`].
//!
//! # Why an acknowledged write cannot be lost
//!
//! - One writer thread appends every record, in submission order, to the one open segment,
//!   then calls `fdatasync` once for the whole batch, and only then completes the batch's
//!   callbacks (`append`'s `IOFlushed`, `save_vote`, `save_committed`). So anything
//!   acknowledged was on stable storage before it was acknowledged.
//! - Because the file is only ever appended to, what a crash can leave is a prefix of the
//!   submitted records plus at most a damaged tail of the last unsynced batch. Hence a later
//!   write never becomes durable before an earlier one, and a durable vote or commit implies
//!   every entry appended before it is durable too. Truncations and purges are records in the
//!   same stream, so they are ordered the same way and need no separate wait.
//! - Before a new segment receives records, the full one is synced; the new one's directory
//!   entry is synced before anything in it is acknowledged. So only the last segment can have a
//!   damaged tail, and a segment's existence is as durable as its contents.
//! - A purge deletes whole segments only after the purge record, and the header of the oldest
//!   segment kept, are durable.
//! - On open, recovery checks every record. It drops only a damaged end of the last segment
//!   with nothing valid after it, the shape an interrupted write leaves, and refuses to start
//!   on any other damage, or on missing segments or entries, rather than serve a log with
//!   acknowledged entries silently gone.
//!
//! # Reads
//!
//! `append` puts entries in an in-memory index before queueing them, so they are readable when
//! it returns, before they are durable. Recent entries stay cached (up to
//! [`LogConfig::cache_bytes`], and always until written); older ones are read back from their
//! segment with a positional read and checked against their checksum again.
//!
//! # Metrics
//!
//! [`LogStore::metrics`] exposes fsync counts and durations, bytes written and batch sizes for
//! the server to export.
//!
//! [`RaftLogStorage`]: openraft::storage::RaftLogStorage
//! [`RaftLogReader`]: openraft::RaftLogReader

mod config;
mod error;
mod frame;
mod memlog;
mod metrics;
mod reader;
mod record;
mod recovery;
mod segment;
mod shared;
mod store;
mod writer;

pub use config::LogConfig;
pub use error::LogError;
pub use metrics::HistogramSnapshot;
pub use metrics::LogMetrics;
pub use metrics::LogMetricsSnapshot;
pub use reader::LogReader;
pub use store::LogStore;
