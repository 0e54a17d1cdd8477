//! The I/O thread: every write, in submission order, group-committed.
//!
//! One `std::thread` owns the segment files. It takes whatever is queued, appends all of it to
//! the current segment with one `write`, makes it durable with one `fdatasync`, then publishes
//! the new records' locations and completes every callback of the batch, in order. A blocking
//! fsync therefore never parks a tokio worker, and many appends share one fsync.
//!
//! Order is preserved because there is one queue, one thread and one file being appended to at
//! a time: a record is written after every record submitted before it, and a torn write can
//! only lose a suffix. When a segment is full the thread first syncs it, then creates the next
//! one (whose header repeats the state so far) and syncs the directory before acknowledging
//! anything written there. A purge deletes whole segments, and only after the purge record and
//! the header of the oldest segment kept are durable.
//!
//! After a failed write or fsync the thread fails every later request: after a failed fsync
//! the kernel may have dropped the dirty pages, so retrying could report durability that does
//! not exist.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::IOFlushed;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use openraft::RaftTypeConfig;

use crate::error::LogError;
use crate::memlog::last_after_truncate;
use crate::memlog::Location;
use crate::record::append_record;
use crate::record::Record;
use crate::recovery::Tail;
use crate::segment;
use crate::segment::SegmentId;
use crate::shared::Shared;

/// One encoded entry on its way to disk.
pub(crate) struct EntryFrame<C: RaftTypeConfig> {
    pub log_id: LogIdOf<C>,
    pub generation: u64,
    pub bytes: Vec<u8>,
}

/// A write request; `frame` is the already encoded record.
pub(crate) enum Op<C: RaftTypeConfig> {
    Append {
        entries: Vec<EntryFrame<C>>,
        done: IOFlushed<C>,
    },
    Vote {
        vote: VoteOf<C>,
        frame: Vec<u8>,
        done: IOFlushed<C>,
    },
    Committed {
        committed: Option<LogIdOf<C>>,
        frame: Vec<u8>,
        done: IOFlushed<C>,
    },
    TruncateAfter {
        after: Option<LogIdOf<C>>,
        frame: Vec<u8>,
    },
    Purge {
        upto: LogIdOf<C>,
        frame: Vec<u8>,
    },
}

impl<C: RaftTypeConfig> Op<C> {
    fn complete(self, result: &Result<(), String>) {
        let done = match self {
            Op::Append { done, .. } | Op::Vote { done, .. } | Op::Committed { done, .. } => done,
            Op::TruncateAfter { .. } | Op::Purge { .. } => return,
        };
        done.io_completed(
            result
                .clone()
                .map_err(|msg| io::Error::from(LogError::Failed(msg))),
        );
    }
}

/// Consecutive live entries stored in one segment.
#[derive(Debug, Clone, Copy)]
struct Run {
    seq: u64,
    first: u64,
    last: u64,
}

/// The state a segment header must repeat.
struct HeaderState<C: RaftTypeConfig> {
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
    purged: Option<LogIdOf<C>>,
    last: Option<LogIdOf<C>>,
}

pub(crate) struct Writer<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
    dir: PathBuf,
    segment_size: u64,
    file: File,
    current: SegmentId,
    size: u64,
    header_end: u64,
    /// Segments present, oldest first.
    segments: VecDeque<SegmentId>,
    state: HeaderState<C>,
    /// Which segment holds each live entry, for purge.
    runs: VecDeque<Run>,
    failure: Option<String>,
    /// Held for the thread's lifetime: the directory lock.
    _lock: File,
}

/// What a batch changed, to publish once it is durable.
#[derive(Default)]
struct Effects {
    placed: Vec<(u64, u64, Location)>,
    created: Vec<SegmentId>,
    purged: bool,
    entries: u64,
}

impl<C: RaftTypeConfig> Writer<C>
where
    C::Entry: Clone,
{
    /// Takes over the recovered tail, or starts the first segment of an empty directory.
    pub fn start(
        shared: Arc<Shared<C>>,
        segment_size: u64,
        segments: Vec<SegmentId>,
        tail: Option<Tail>,
        lock: File,
    ) -> Result<Self, LogError> {
        let dir = shared.dir.clone();
        let (state, runs) = {
            let mem = shared.mem();
            let state = HeaderState {
                vote: mem.vote.clone(),
                committed: mem.committed.clone(),
                purged: mem.purged.clone(),
                last: mem.last.clone(),
            };
            let mut runs = VecDeque::new();
            for (index, loc) in mem.locations() {
                if let Some(loc) = loc {
                    note_entry(&mut runs, loc.seq, index);
                }
            }
            (state, runs)
        };
        let fresh = tail.is_none();
        let (file, current, size, header_end) = match tail {
            Some(t) => (
                segment::open_append(&dir, t.id)?,
                t.id,
                t.size,
                t.header_end,
            ),
            None => {
                let id = SegmentId {
                    seq: 1,
                    first_index: state.last.as_ref().map_or(0, |l| l.index + 1),
                };
                (segment::create(&dir, id)?, id, 0, 0)
            }
        };
        let mut segments: VecDeque<SegmentId> = segments.into();
        if fresh {
            segments.push_back(current);
        }
        let mut writer = Writer {
            shared,
            dir,
            segment_size,
            file,
            current,
            size,
            header_end,
            segments,
            state,
            runs,
            failure: None,
            _lock: lock,
        };
        if fresh {
            let mut buf = Vec::new();
            writer.put_header(&mut buf)?;
            writer.write_out(&mut buf)?;
            writer.sync()?;
            segment::sync_dir(&writer.dir)?;
            writer.shared.metrics.record_segment_created();
            writer.shared.metrics.record_dir_sync();
            let read = segment::open_read(&writer.dir, current)?;
            writer.shared.mem().add_file(current.seq, Arc::new(read));
        }
        Ok(writer)
    }

    /// Serves the queue until every sender is gone.
    pub fn run(mut self, rx: Receiver<Op<C>>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            let result = match &self.failure {
                Some(msg) => Err(msg.clone()),
                None => self.write_batch(&batch).map_err(|e| {
                    let msg = e.to_string();
                    tracing::error!(error = %msg, "log write failed; the log store now refuses all writes");
                    self.shared.mem().failure = Some(msg.clone());
                    self.failure = Some(msg.clone());
                    msg
                }),
            };
            for op in batch {
                op.complete(&result);
            }
        }
    }

    fn write_batch(&mut self, batch: &[Op<C>]) -> Result<(), LogError> {
        let mut buf = Vec::new();
        let mut fx = Effects::default();
        for op in batch {
            match op {
                Op::Append { entries, .. } => {
                    for e in entries {
                        self.make_room(&mut buf, e.bytes.len(), &mut fx)?;
                        let offset = self.size + buf.len() as u64;
                        buf.extend_from_slice(&e.bytes);
                        let len = u32::try_from(e.bytes.len())
                            .map_err(|_| LogError::TooLarge(e.bytes.len()))?;
                        let loc = Location {
                            seq: self.current.seq,
                            offset,
                            len,
                        };
                        fx.placed.push((e.log_id.index, e.generation, loc));
                        fx.entries += 1;
                        note_entry(&mut self.runs, self.current.seq, e.log_id.index);
                        self.state.last = Some(e.log_id.clone());
                    }
                }
                Op::Vote { vote, frame, .. } => {
                    self.make_room(&mut buf, frame.len(), &mut fx)?;
                    buf.extend_from_slice(frame);
                    self.state.vote = Some(vote.clone());
                }
                Op::Committed {
                    committed, frame, ..
                } => {
                    self.make_room(&mut buf, frame.len(), &mut fx)?;
                    buf.extend_from_slice(frame);
                    self.state.committed = committed.clone();
                }
                Op::TruncateAfter { after, frame } => {
                    self.make_room(&mut buf, frame.len(), &mut fx)?;
                    buf.extend_from_slice(frame);
                    self.truncate_runs(after.as_ref().map(|l| l.index));
                    self.state.last = last_after_truncate::<C>(
                        &self.state.last,
                        &self.state.purged,
                        after.as_ref(),
                    );
                }
                Op::Purge { upto, frame } => {
                    if self
                        .state
                        .purged
                        .as_ref()
                        .is_some_and(|p| p.index >= upto.index)
                    {
                        continue;
                    }
                    self.make_room(&mut buf, frame.len(), &mut fx)?;
                    buf.extend_from_slice(frame);
                    self.purge_runs(upto.index);
                    self.state.purged = Some(upto.clone());
                    if self
                        .state
                        .last
                        .as_ref()
                        .is_none_or(|l| l.index < upto.index)
                    {
                        self.state.last = Some(upto.clone());
                    }
                    fx.purged = true;
                }
            }
        }
        let wrote = !buf.is_empty();
        self.write_out(&mut buf)?;
        if wrote {
            self.sync()?;
        }
        if !fx.created.is_empty() {
            segment::sync_dir(&self.dir)?;
            self.shared.metrics.record_dir_sync();
        }
        self.shared.metrics.record_batch(fx.entries);
        self.publish(&fx)?;
        if fx.purged {
            self.delete_purged_segments();
        }
        Ok(())
    }

    /// Rolls to a new segment first if `need` more bytes would overfill the current one.
    fn make_room(
        &mut self,
        buf: &mut Vec<u8>,
        need: usize,
        fx: &mut Effects,
    ) -> Result<(), LogError> {
        let used = self.size + buf.len() as u64;
        if used <= self.header_end || used + need as u64 <= self.segment_size {
            return Ok(());
        }
        // The full segment must be durable before anything lands in the next one: recovery
        // only forgives damage at the end of the last segment.
        self.write_out(buf)?;
        self.sync()?;
        let id = self.open_segment(buf)?;
        fx.created.push(id);
        Ok(())
    }

    /// Creates the next segment and puts its header in `buf` (which must be empty).
    fn open_segment(&mut self, buf: &mut Vec<u8>) -> Result<SegmentId, LogError> {
        let id = SegmentId {
            seq: self.current.seq + 1,
            first_index: self.state.last.as_ref().map_or(0, |l| l.index + 1),
        };
        self.file = segment::create(&self.dir, id)?;
        self.current = id;
        self.size = 0;
        self.segments.push_back(id);
        self.shared.metrics.record_segment_created();
        self.put_header(buf)?;
        Ok(id)
    }

    /// Puts the current segment's header, the state so far, in `buf` (which must be empty).
    fn put_header(&mut self, buf: &mut Vec<u8>) -> Result<(), LogError> {
        let header: Record<&C::Entry, &VoteOf<C>, &LogIdOf<C>> = Record::Header {
            seq: self.current.seq,
            last_log_id: self.state.last.as_ref(),
            vote: self.state.vote.as_ref(),
            committed: self.state.committed.as_ref(),
            purged: self.state.purged.as_ref(),
        };
        append_record(buf, &header)?;
        self.header_end = self.size + buf.len() as u64;
        Ok(())
    }

    fn write_out(&mut self, buf: &mut Vec<u8>) -> Result<(), LogError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(buf).map_err(|e| {
            LogError::io(
                format!(
                    "writing to segment {}",
                    self.current.path(&self.dir).display()
                ),
                e,
            )
        })?;
        self.size += buf.len() as u64;
        self.shared.metrics.record_write(buf.len());
        buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        let started = Instant::now();
        self.file.sync_data().map_err(|e| {
            LogError::io(
                format!(
                    "fdatasync of segment {}",
                    self.current.path(&self.dir).display()
                ),
                e,
            )
        })?;
        self.shared.metrics.record_fsync(started.elapsed());
        Ok(())
    }

    /// Makes the batch visible to readers: new segments, record locations, cache eviction.
    fn publish(&mut self, fx: &Effects) -> Result<(), LogError> {
        let mut opened = Vec::with_capacity(fx.created.len());
        for id in &fx.created {
            opened.push((id.seq, Arc::new(segment::open_read(&self.dir, *id)?)));
        }
        let mut mem = self.shared.mem();
        for (seq, file) in opened {
            mem.add_file(seq, file);
        }
        for &(index, generation, loc) in &fx.placed {
            mem.place(index, generation, loc);
        }
        mem.evict();
        Ok(())
    }

    /// Deletes the segments before the one holding the oldest live entry. Failing to delete
    /// only costs disk space, so it is logged and retried at the next purge.
    fn delete_purged_segments(&mut self) {
        let keep_from = self.runs.front().map_or(self.current.seq, |r| r.seq);
        let mut deleted = Vec::new();
        while let Some(oldest) = self.segments.front().copied() {
            if oldest.seq >= keep_from {
                break;
            }
            let path = oldest.path(&self.dir);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(segment = %path.display(), error = %e, "could not delete a purged log segment");
                break;
            }
            self.segments.pop_front();
            self.shared.metrics.record_segment_deleted();
            deleted.push(oldest.seq);
        }
        if deleted.is_empty() {
            return;
        }
        if let Err(e) = segment::sync_dir(&self.dir) {
            tracing::warn!(error = %e, "fsync of the log directory after deleting segments failed");
        } else {
            self.shared.metrics.record_dir_sync();
        }
        let mut mem = self.shared.mem();
        for seq in deleted {
            mem.remove_file(seq);
        }
    }

    fn truncate_runs(&mut self, keep: Option<u64>) {
        while let Some(back) = self.runs.back_mut() {
            match keep {
                Some(k) if back.first <= k => {
                    back.last = back.last.min(k);
                    break;
                }
                _ => {
                    self.runs.pop_back();
                }
            }
        }
    }

    fn purge_runs(&mut self, upto: u64) {
        while let Some(front) = self.runs.front_mut() {
            if front.last <= upto {
                self.runs.pop_front();
            } else {
                front.first = front.first.max(upto + 1);
                break;
            }
        }
    }
}

/// Extends the run of `seq` with `index`, or starts a new run.
fn note_entry(runs: &mut VecDeque<Run>, seq: u64, index: u64) {
    if let Some(back) = runs.back_mut() {
        if back.seq == seq && back.last + 1 == index {
            back.last = index;
            return;
        }
    }
    runs.push_back(Run {
        seq,
        first: index,
        last: index,
    });
}
