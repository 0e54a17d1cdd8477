//! [`LogStore`]: openraft's `RaftLogStorage` over the segment files.
//!
//! Each call encodes its record on the caller's task, updates the in-memory log (so reads see
//! the change at once) and queues the record for the writer thread, in one critical section so
//! that queue order is the order of calls. `append`, `truncate_after` and `purge` return right
//! away; `append` reports durability through its `IOFlushed` callback, and `truncate_after` and
//! `purge` need no wait of their own, since anything that depends on them being durable is a
//! later write, which the queue makes durable only after them. `save_vote` waits until its batch is synced, as openraft requires; `save_committed` does not
//! (see there).

use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use openraft::type_config::TypeConfigExt;
use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::RaftTypeConfig;

use crate::config::LogConfig;
use crate::error::LogError;
use crate::metrics::LogMetrics;
use crate::reader::LogReader;
use crate::record::append_record;
use crate::record::Record;
use crate::recovery;
use crate::shared::Shared;
use crate::writer::EntryFrame;
use crate::writer::Op;
use crate::writer::Writer;

/// Name of the lock file that keeps two stores off one directory.
const LOCK_FILE: &str = "LOCK";

type RecordRef<'a, C> = Record<&'a <C as RaftTypeConfig>::Entry, &'a VoteOf<C>, &'a LogIdOf<C>>;

/// The durable Raft log of one member.
///
/// Dropping it stops the writer thread after it has written (and synced) everything queued.
pub struct LogStore<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
    tx: Option<Sender<Op<C>>>,
    writer: Option<JoinHandle<()>>,
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    /// Opens (creating it if needed) the log in `dir`: recovers what is there, discarding a
    /// torn tail, and starts the writer thread.
    ///
    /// This does blocking I/O proportional to the log's size; call it before serving, or from
    /// a blocking task.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self, LogError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(&dir)?;
        let recovered = recovery::recover::<C>(&dir, config.cache_bytes)?;
        let metrics = Arc::new(LogMetrics::default());
        let shared = Arc::new(Shared::new(recovered.mem, metrics, dir));
        let writer = Writer::start(
            shared.clone(),
            config.segment_size,
            recovered.segments,
            recovered.tail,
            lock,
        )?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("keepr-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::io("starting the log writer thread", e))?;
        Ok(LogStore {
            shared,
            tx: Some(tx),
            writer: Some(handle),
        })
    }

    /// A reader that sees every entry appended so far; clone it freely.
    pub fn reader(&self) -> LogReader<C> {
        LogReader::new(self.shared.clone())
    }

    /// Counters of the writer thread.
    pub fn metrics(&self) -> Arc<LogMetrics> {
        self.shared.metrics.clone()
    }

    /// Bytes of log entries currently held in memory.
    pub fn cached_bytes(&self) -> usize {
        self.shared.mem().cached_bytes()
    }

    fn send(&self, op: Op<C>) -> Result<(), LogError> {
        self.tx
            .as_ref()
            .ok_or(LogError::WriterGone)?
            .send(op)
            .map_err(|_| LogError::WriterGone)
    }

    /// Queues a record that changes only vote or committed, and waits until it is durable.
    async fn write_and_wait(
        &mut self,
        make_op: impl FnOnce(IOFlushed<C>) -> Op<C>,
        update: impl FnOnce(&mut crate::memlog::MemLog<C>),
    ) -> Result<(), io::Error> {
        let (tx, rx) = C::oneshot();
        {
            let mut mem = self.shared.mem();
            mem.check_healthy()?;
            update(&mut mem);
            self.send(make_op(IOFlushed::signal(tx)))?;
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(LogError::WriterGone.into()),
        }
    }

    fn encode(record: &RecordRef<'_, C>) -> Result<Vec<u8>, LogError> {
        let mut buf = Vec::new();
        append_record(&mut buf, record)?;
        Ok(buf)
    }
}

fn lock_dir(dir: &Path) -> Result<std::fs::File, LogError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(LogError::io(format!("locking {}", path.display()), e))
        }
    }
}

impl<C: RaftTypeConfig> Drop for LogStore<C> {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; waiting for it
        // means the directory is free (lock released) once the store is gone.
        self.tx.take();
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("the log writer thread panicked");
            }
        }
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    async fn try_get_log_entries<
        RB: std::ops::RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend,
    >(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.reader().entries(range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.reader().vote())
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let mem = self.shared.mem();
        Ok(LogState {
            last_purged_log_id: mem.purged.clone(),
            last_log_id: mem.last.clone(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let frame = Self::encode(&Record::Vote(vote))?;
        let vote = vote.clone();
        let saved = vote.clone();
        self.write_and_wait(
            |done| Op::Vote { vote, frame, done },
            |mem| mem.vote = Some(saved),
        )
        .await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        // The committed id only lets a restarted member re-apply up to where it was; losing
        // the latest one costs a little catch-up, never data. So it is queued behind the
        // entries it covers (the stream keeps that order) and rides the next fsync, instead
        // of making openraft wait for a sync of its own on every commit.
        let frame = Self::encode(&Record::Committed(committed.as_ref()))?;
        let (tx, _rx) = C::oneshot();
        let mut mem = self.shared.mem();
        mem.check_healthy()?;
        mem.committed = committed.clone();
        self.send(Op::Committed {
            committed,
            frame,
            done: IOFlushed::signal(tx),
        })?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.shared.mem().committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = Self::encode(&Record::Entry(&entry))?;
            encoded.push((entry, bytes));
        }
        let mut mem = self.shared.mem();
        mem.check_healthy()?;
        if let Some((first, _)) = encoded.first() {
            mem.check_next(first.index())?;
        }
        for pair in encoded.windows(2) {
            let (a, b) = (pair[0].0.index(), pair[1].0.index());
            if b != a + 1 {
                return Err(LogError::NotContiguous {
                    got: b,
                    expected_after: a,
                }
                .into());
            }
        }
        let mut frames = Vec::with_capacity(encoded.len());
        for (entry, bytes) in encoded {
            let log_id = entry.log_id();
            let generation = mem.push(entry, bytes.len())?;
            frames.push(EntryFrame {
                log_id,
                generation,
                bytes,
            });
        }
        self.send(Op::Append {
            entries: frames,
            done: callback,
        })?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let frame = Self::encode(&Record::TruncateAfter(last_log_id.as_ref()))?;
        let mut mem = self.shared.mem();
        mem.check_healthy()?;
        mem.truncate_after(last_log_id.as_ref());
        self.send(Op::TruncateAfter {
            after: last_log_id,
            frame,
        })?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let frame = Self::encode(&Record::Purge(&log_id))?;
        let mut mem = self.shared.mem();
        mem.check_healthy()?;
        mem.purge(&log_id);
        self.send(Op::Purge {
            upto: log_id,
            frame,
        })?;
        Ok(())
    }
}
