//! [`LogReader`]: the clonable read side that openraft's replication and apply tasks use.
//!
//! A read takes a consistent picture under the lock (cached entries are cloned, the others
//! are located) and then reads located records with positional reads, outside the lock.
//! Records never move once written, so a location stays valid; the segment's file handle is
//! taken under the same lock, so even a purge that deletes the file meanwhile does not break
//! the read.

use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::RaftTypeConfig;

use crate::error::LogError;
use crate::frame;
use crate::memlog::Fetch;
use crate::memlog::Location;
use crate::record::decode_record;
use crate::record::Record;
use crate::shared::Shared;

/// Reads log entries and the vote; cheap to clone, usable while the store writes.
pub struct LogReader<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader {
            shared: self.shared.clone(),
        }
    }
}

impl<C> LogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    pub(crate) fn new(shared: Arc<Shared<C>>) -> Self {
        LogReader { shared }
    }

    /// Entries with index in `range` that the log holds, in order.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<C::Entry>, LogError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let fetched = self.shared.mem().fetch(start, end)?;
        fetched
            .into_iter()
            .map(|f| match f {
                Fetch::Cached(entry) => Ok(entry),
                Fetch::OnDisk { log_id, loc, file } => self.read_record(&file, loc, &log_id),
            })
            .collect()
    }

    /// The last saved vote.
    pub fn vote(&self) -> Option<VoteOf<C>> {
        self.shared.mem().vote.clone()
    }

    fn read_record(
        &self,
        file: &std::fs::File,
        loc: Location,
        log_id: &LogIdOf<C>,
    ) -> Result<C::Entry, LogError> {
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset).map_err(|e| {
            LogError::io(
                format!(
                    "reading entry {} from segment {} at offset {}",
                    log_id.index, loc.seq, loc.offset
                ),
                e,
            )
        })?;
        let corrupt = |reason: String| LogError::Corrupt {
            path: self.shared.dir.clone(),
            offset: loc.offset,
            reason: format!("entry {} in segment {}: {reason}", log_id.index, loc.seq),
            valid_record_at: None,
        };
        let f = frame::read_frame(&buf, 0).map_err(|bad| corrupt(bad.to_string()))?;
        let record: Record<C::Entry, VoteOf<C>, LogIdOf<C>> =
            decode_record(f.payload).map_err(corrupt)?;
        match record {
            Record::Entry(entry) if entry.log_id() == *log_id => Ok(entry),
            _ => Err(corrupt(format!("the record there is not entry {log_id}"))),
        }
    }
}

impl<C> RaftLogReader<C> for LogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.entries(range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.vote())
    }
}
