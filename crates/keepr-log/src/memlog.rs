//! The in-memory view of the log that readers see: vote, committed, purged, and one slot per
//! present entry with the entry itself (while cached) and where its record is on disk (once
//! written).
//!
//! `append` puts entries here before the writer thread has seen them, which is what makes them
//! readable as soon as `append` returns. The writer fills in locations after each fsync; only
//! then may an entry leave the cache, so a read finds every entry either in memory or on disk.
//! Recovery builds the same structure by replaying records, through the same methods, so the
//! rules for truncate and purge exist once.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use openraft::RaftTypeConfig;

use crate::error::LogError;

/// Where a record is: segment sequence number, byte offset, and frame length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
}

/// One present log entry.
struct Slot<C: RaftTypeConfig> {
    log_id: LogIdOf<C>,
    /// The entry, while it is cached.
    entry: Option<C::Entry>,
    /// Frame bytes, for cache accounting.
    size: usize,
    /// Where its record is, once written and synced.
    loc: Option<Location>,
    /// Which append put it here; a location is only accepted for the same append, so a record
    /// of an entry that was truncated and appended again is never mistaken for the new one.
    generation: u64,
}

/// What a read needs for one entry.
pub(crate) enum Fetch<C: RaftTypeConfig> {
    Cached(C::Entry),
    OnDisk {
        log_id: LogIdOf<C>,
        loc: Location,
        file: Arc<File>,
    },
}

/// The shared in-memory state of the log.
pub(crate) struct MemLog<C: RaftTypeConfig> {
    pub vote: Option<VoteOf<C>>,
    pub committed: Option<LogIdOf<C>>,
    pub purged: Option<LogIdOf<C>>,
    /// The last present entry's id, or `purged` when there is none.
    pub last: Option<LogIdOf<C>>,
    /// Set once the writer failed: every later call errors.
    pub failure: Option<String>,
    slots: VecDeque<Slot<C>>,
    cached_bytes: usize,
    cache_budget: usize,
    /// Entries below this index have been considered for eviction already.
    evict_cursor: u64,
    next_generation: u64,
    /// Read handles of the segments, by sequence number.
    files: BTreeMap<u64, Arc<File>>,
}

fn index_of<C: RaftTypeConfig>(log_id: &Option<LogIdOf<C>>) -> Option<u64> {
    log_id.as_ref().map(|l| l.index)
}

/// The last log id after `truncate_after(after)`: unchanged when nothing is after `after`,
/// and never below the purged log id.
pub(crate) fn last_after_truncate<C: RaftTypeConfig>(
    last: &Option<LogIdOf<C>>,
    purged: &Option<LogIdOf<C>>,
    after: Option<&LogIdOf<C>>,
) -> Option<LogIdOf<C>> {
    let after_index = after.map(|a| a.index);
    if index_of::<C>(last) <= after_index {
        return last.clone();
    }
    if index_of::<C>(purged) > after_index {
        return purged.clone();
    }
    after.cloned()
}

impl<C> MemLog<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    pub fn new(cache_budget: usize) -> Self {
        MemLog {
            vote: None,
            committed: None,
            purged: None,
            last: None,
            failure: None,
            slots: VecDeque::new(),
            cached_bytes: 0,
            cache_budget,
            evict_cursor: 0,
            next_generation: 0,
            files: BTreeMap::new(),
        }
    }

    /// Errors if the writer failed earlier.
    pub fn check_healthy(&self) -> Result<(), LogError> {
        match &self.failure {
            Some(msg) => Err(LogError::Failed(msg.clone())),
            None => Ok(()),
        }
    }

    /// Checks that entries starting at `first` would continue the log.
    pub fn check_next(&self, first: u64) -> Result<(), LogError> {
        match index_of::<C>(&self.last) {
            Some(last) if first != last + 1 => Err(LogError::NotContiguous {
                got: first,
                expected_after: last,
            }),
            _ => Ok(()),
        }
    }

    /// Adds an entry at the end; returns the generation its location must be reported with.
    pub fn push(&mut self, entry: C::Entry, size: usize) -> Result<u64, LogError> {
        let log_id = entry.log_id();
        self.check_next(log_id.index)?;
        let generation = self.next_generation;
        self.next_generation += 1;
        self.cached_bytes += size;
        self.last = Some(log_id.clone());
        self.slots.push_back(Slot {
            log_id,
            entry: Some(entry),
            size,
            loc: None,
            generation,
        });
        Ok(generation)
    }

    /// Removes entries after `after` (all of them when `None`).
    pub fn truncate_after(&mut self, after: Option<&LogIdOf<C>>) {
        let keep = after.map(|l| l.index);
        while let Some(back) = self.slots.back() {
            if keep.is_some_and(|k| back.log_id.index <= k) {
                break;
            }
            if let Some(slot) = self.slots.pop_back() {
                self.uncache(&slot);
            }
        }
        self.last = last_after_truncate::<C>(&self.last, &self.purged, after);
        self.evict_cursor = self.evict_cursor.min(keep.map_or(0, |k| k + 1));
    }

    /// Removes entries up to and including `upto`; the purged id never goes backwards.
    pub fn purge(&mut self, upto: &LogIdOf<C>) {
        if index_of::<C>(&self.purged).is_some_and(|p| p >= upto.index) {
            return;
        }
        while let Some(front) = self.slots.front() {
            if front.log_id.index > upto.index {
                break;
            }
            if let Some(slot) = self.slots.pop_front() {
                self.uncache(&slot);
            }
        }
        self.purged = Some(upto.clone());
        if index_of::<C>(&self.last).is_none_or(|l| l < upto.index) {
            self.last = Some(upto.clone());
        }
    }

    fn uncache(&mut self, slot: &Slot<C>) {
        if slot.entry.is_some() {
            self.cached_bytes = self.cached_bytes.saturating_sub(slot.size);
        }
    }

    fn slot_mut(&mut self, index: u64) -> Option<&mut Slot<C>> {
        let first = self.slots.front()?.log_id.index;
        let pos = usize::try_from(index.checked_sub(first)?).ok()?;
        self.slots.get_mut(pos)
    }

    /// Records where the entry of append `generation` at `index` was written.
    pub fn place(&mut self, index: u64, generation: u64, loc: Location) {
        if let Some(slot) = self.slot_mut(index) {
            if slot.generation == generation {
                slot.loc = Some(loc);
            }
        }
    }

    /// Drops cached entries, oldest first, while the cache is over budget; only entries whose
    /// record is on disk can go.
    pub fn evict(&mut self) {
        let Some(first) = self.slots.front().map(|s| s.log_id.index) else {
            return;
        };
        let mut pos =
            usize::try_from(self.evict_cursor.saturating_sub(first)).unwrap_or(usize::MAX);
        while self.cached_bytes > self.cache_budget {
            let Some(slot) = self.slots.get_mut(pos) else {
                break;
            };
            if slot.loc.is_none() {
                break;
            }
            if slot.entry.take().is_some() {
                self.cached_bytes = self.cached_bytes.saturating_sub(slot.size);
            }
            pos += 1;
        }
        self.evict_cursor = first + pos as u64;
    }

    /// Bytes of entries held in memory.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }

    /// Registers the read handle of a segment.
    pub fn add_file(&mut self, seq: u64, file: Arc<File>) {
        self.files.insert(seq, file);
    }

    /// Forgets the read handle of a deleted segment.
    pub fn remove_file(&mut self, seq: u64) {
        self.files.remove(&seq);
    }

    /// Present entries with index in `[start, end)`: cached ones cloned, others located.
    pub fn fetch(&self, start: u64, end: u64) -> Result<Vec<Fetch<C>>, LogError> {
        let Some(first) = self.slots.front().map(|s| s.log_id.index) else {
            return Ok(Vec::new());
        };
        let from = usize::try_from(start.saturating_sub(first)).unwrap_or(usize::MAX);
        let to = usize::try_from(end.saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(self.slots.len());
        let mut out = Vec::with_capacity(to.saturating_sub(from));
        for slot in self.slots.range(from.min(to)..to) {
            let fetch = match (&slot.entry, &slot.loc) {
                (Some(entry), _) => Fetch::Cached(entry.clone()),
                (None, Some(loc)) => {
                    let file = self.files.get(&loc.seq).cloned().ok_or_else(|| {
                        LogError::Failed(format!(
                            "entry {} is in segment {} which is not open",
                            slot.log_id.index, loc.seq
                        ))
                    })?;
                    Fetch::OnDisk {
                        log_id: slot.log_id.clone(),
                        loc: *loc,
                        file,
                    }
                }
                (None, None) => {
                    return Err(LogError::Failed(format!(
                        "entry {} is neither cached nor written",
                        slot.log_id.index
                    )));
                }
            };
            out.push(fetch);
        }
        Ok(out)
    }

    /// `(index, location)` of every present entry, in order.
    pub fn locations(&self) -> impl Iterator<Item = (u64, Option<Location>)> + '_ {
        self.slots.iter().map(|s| (s.log_id.index, s.loc))
    }
}
