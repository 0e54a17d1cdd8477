//! Opening an existing log: verify every record, replay them, discard a torn tail.
//!
//! Segments are read in sequence order and every record's checksum is checked. What counts as
//! damage that may be dropped is narrow: only the end of the last segment, and only when no
//! valid record follows the first bad one. That is the shape a write interrupted by a crash
//! leaves (the writer appends, and a batch is acknowledged only after its fsync, so an
//! unfinished write is always the newest data and never acknowledged). Anything else, a bad
//! record in an earlier segment or one followed by valid records, means acknowledged data is
//! damaged, and recovery refuses to start rather than silently lose committed entries.
//!
//! Replay then checks the structure: every segment starts with a header that matches the state
//! the previous segments left (or, for the oldest one, seeds it), entries continue the log
//! index by index, and after the last record every entry between the purged and the last log
//! id is present somewhere.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use openraft::RaftTypeConfig;

use crate::error::LogError;
use crate::frame;
use crate::memlog::Location;
use crate::memlog::MemLog;
use crate::record::decode_record;
use crate::record::Record;
use crate::segment;
use crate::segment::SegmentId;

/// The segment the writer continues.
pub(crate) struct Tail {
    pub id: SegmentId,
    /// Its length after recovery.
    pub size: u64,
    /// Where its header ends: a segment holding only its header is never rolled.
    pub header_end: u64,
}

/// What recovery found.
pub(crate) struct Recovered<C: RaftTypeConfig> {
    pub mem: MemLog<C>,
    /// Segments present, oldest first.
    pub segments: Vec<SegmentId>,
    /// The last segment, or `None` for an empty directory.
    pub tail: Option<Tail>,
}

type OwnedRecord<C> = Record<<C as RaftTypeConfig>::Entry, VoteOf<C>, LogIdOf<C>>;

/// Replay state beyond what [`MemLog`] holds.
struct Replay<C: RaftTypeConfig> {
    mem: MemLog<C>,
    /// Whether a header has seeded the state yet.
    seeded: bool,
    /// Entries in `(purged, unknown_upto]` were in segments that are gone; a later truncate or
    /// purge must remove them, or they are missing.
    unknown_upto: Option<u64>,
}

fn next_index<C: RaftTypeConfig>(log_id: &Option<LogIdOf<C>>) -> u64 {
    log_id.as_ref().map_or(0, |l| l.index + 1)
}

/// Reads and replays every segment in `dir`.
pub(crate) fn recover<C>(dir: &Path, cache_bytes: usize) -> Result<Recovered<C>, LogError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    let mut ids = segment::list(dir)?;
    let mut replay = Replay::<C> {
        mem: MemLog::new(cache_bytes),
        seeded: false,
        unknown_upto: None,
    };
    let mut tail = None;
    let count = ids.len();
    let mut empty_last = None;
    for (i, id) in ids.iter().enumerate() {
        let is_last = i + 1 == count;
        let path = id.path(dir);
        let bytes = std::fs::read(&path)
            .map_err(|e| LogError::io(format!("reading segment {}", path.display()), e))?;
        let mut at = 0usize;
        let mut header_end = None;
        while at < bytes.len() {
            match frame::read_frame(&bytes, at) {
                Ok(f) => {
                    let record: OwnedRecord<C> =
                        decode_record(f.payload).map_err(|reason| LogError::Decode {
                            path: path.clone(),
                            offset: at as u64,
                            reason,
                        })?;
                    let loc = Location {
                        seq: id.seq,
                        offset: at as u64,
                        len: u32::try_from(f.end - at)
                            .map_err(|_| LogError::TooLarge(f.end - at))?,
                    };
                    replay.apply(record, header_end.is_none(), *id, loc, &path)?;
                    at = f.end;
                    header_end.get_or_insert(at as u64);
                }
                Err(bad) => {
                    let valid_record_at = frame::find_valid_after(&bytes, at);
                    if !is_last || valid_record_at.is_some() {
                        return Err(LogError::Corrupt {
                            path,
                            offset: at as u64,
                            reason: bad.to_string(),
                            valid_record_at: valid_record_at.map(|v| v as u64),
                        });
                    }
                    tracing::warn!(
                        segment = %path.display(),
                        offset = at,
                        discarded_bytes = bytes.len() - at,
                        reason = %bad,
                        "discarding torn tail of the last log segment (a write the crash interrupted)"
                    );
                    cut(&path, at as u64)?;
                    break;
                }
            }
        }
        match header_end {
            Some(header_end) => {
                replay
                    .mem
                    .add_file(id.seq, Arc::new(segment::open_read(dir, *id)?));
                tail = Some(Tail {
                    id: *id,
                    size: at as u64,
                    header_end,
                });
            }
            None if is_last => empty_last = Some(*id),
            None => {
                return Err(LogError::Corrupt {
                    path,
                    offset: 0,
                    reason: "segment has no header record".into(),
                    valid_record_at: None,
                });
            }
        }
    }
    if let Some(id) = empty_last {
        // A segment whose header never reached the disk was being created when the process
        // died; nothing in it was acknowledged, and the previous segment is complete.
        let path = id.path(dir);
        tracing::warn!(segment = %path.display(), "removing a log segment whose header was never written");
        std::fs::remove_file(&path)
            .map_err(|e| LogError::io(format!("removing {}", path.display()), e))?;
        segment::sync_dir(dir)?;
        ids.pop();
    }
    replay.finish()?;
    Ok(Recovered {
        mem: replay.mem,
        segments: ids,
        tail,
    })
}

/// Truncates a segment at `len` and makes that durable.
fn cut(path: &Path, len: u64) -> Result<(), LogError> {
    let file = OpenOptions::new().write(true).open(path).map_err(|e| {
        LogError::io(
            format!("opening {} to cut its torn tail", path.display()),
            e,
        )
    })?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| LogError::io(format!("cutting the torn tail of {}", path.display()), e))
}

impl<C> Replay<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    fn apply(
        &mut self,
        record: OwnedRecord<C>,
        first_in_segment: bool,
        id: SegmentId,
        loc: Location,
        path: &Path,
    ) -> Result<(), LogError> {
        let broken = |reason: String| LogError::BrokenChain {
            path: path.to_path_buf(),
            reason,
        };
        match record {
            Record::Header {
                seq,
                last_log_id,
                vote,
                committed,
                purged,
            } => {
                if !first_in_segment {
                    return Err(broken(format!("a header record at offset {}", loc.offset)));
                }
                if seq != id.seq {
                    return Err(broken(format!("its header says sequence number {seq}")));
                }
                if next_index::<C>(&last_log_id) != id.first_index {
                    return Err(broken(format!(
                        "its header's last log id {last_log_id:?} does not precede its first index {}",
                        id.first_index
                    )));
                }
                self.seed_or_check(last_log_id, vote, committed, purged)
                    .map_err(|field| {
                        broken(format!(
                            "its header's {field} differs from the one the previous segments left"
                        ))
                    })
            }
            _ if first_in_segment => Err(broken("its first record is not a header".into())),
            Record::Entry(entry) => {
                let size = loc.len as usize;
                let index = entry.index();
                self.mem.check_next(index).map_err(|_| {
                    broken(format!(
                        "entry {index} at offset {} does not follow the last log id {:?}",
                        loc.offset, self.mem.last
                    ))
                })?;
                let generation = self.mem.push(entry, size)?;
                self.mem.place(index, generation, loc);
                self.mem.evict();
                Ok(())
            }
            Record::Vote(vote) => {
                self.mem.vote = Some(vote);
                Ok(())
            }
            Record::Committed(committed) => {
                self.mem.committed = committed;
                Ok(())
            }
            Record::TruncateAfter(after) => {
                let keep = after.as_ref().map(|l| l.index);
                self.unknown_upto = match (self.unknown_upto, keep) {
                    (Some(u), Some(k)) => Some(u.min(k)),
                    _ => None,
                };
                self.mem.truncate_after(after.as_ref());
                self.forget_purged_unknowns();
                Ok(())
            }
            Record::Purge(upto) => {
                self.mem.purge(&upto);
                self.forget_purged_unknowns();
                Ok(())
            }
        }
    }

    /// The oldest segment's header seeds the state; every later one must match it.
    fn seed_or_check(
        &mut self,
        last: Option<LogIdOf<C>>,
        vote: Option<VoteOf<C>>,
        committed: Option<LogIdOf<C>>,
        purged: Option<LogIdOf<C>>,
    ) -> Result<(), &'static str> {
        if !self.seeded {
            self.seeded = true;
            let purged_next = next_index::<C>(&purged);
            self.unknown_upto = last.as_ref().map(|l| l.index).filter(|&l| l >= purged_next);
            self.mem.vote = vote;
            self.mem.committed = committed;
            self.mem.purged = purged;
            self.mem.last = last;
            return Ok(());
        }
        if self.mem.last != last {
            return Err("last log id");
        }
        if self.mem.vote != vote {
            return Err("vote");
        }
        if self.mem.committed != committed {
            return Err("committed log id");
        }
        if self.mem.purged != purged {
            return Err("purged log id");
        }
        Ok(())
    }

    /// Unknown entries at or below the purged index are not missing: they are gone anyway.
    fn forget_purged_unknowns(&mut self) {
        if self
            .unknown_upto
            .is_some_and(|u| u < next_index::<C>(&self.mem.purged))
        {
            self.unknown_upto = None;
        }
    }

    fn finish(&self) -> Result<(), LogError> {
        if let Some(upto) = self.unknown_upto {
            return Err(LogError::MissingEntries {
                first: next_index::<C>(&self.mem.purged),
                last: upto,
            });
        }
        Ok(())
    }
}
