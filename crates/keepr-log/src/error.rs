//! The crate's error type.
//!
//! openraft wants `io::Error` from every storage call; [`LogError`] converts into one (with the
//! variant's message as context and a fitting [`io::ErrorKind`]), so callers that open the store
//! directly can still match on what went wrong, e.g. to tell corruption from a missing disk.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log store.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing, with the path involved.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Another process (or another store in this process) has the directory open.
    #[error("log directory {0} is in use by another log store (its LOCK file is held)")]
    Locked(PathBuf),

    /// A file whose name ends in `.log` is not named `<seq>-<first index>.log` in hex.
    #[error("unexpected file {0} in the log directory: segment names are <16 hex digits>-<16 hex digits>.log")]
    BadSegmentName(PathBuf),

    /// Segment sequence numbers must be consecutive: one is missing.
    #[error("segment with sequence number {missing} is missing from the log directory (found {before} and {after})")]
    MissingSegment {
        /// The sequence number that was expected.
        missing: u64,
        /// The sequence number present before the gap.
        before: u64,
        /// The sequence number present after the gap.
        after: u64,
    },

    /// Two segment files claim the same sequence number.
    #[error("two segments have sequence number {0}")]
    DuplicateSegment(u64),

    /// A record failed its checksum or framing check where that cannot be a torn write.
    #[error("corrupt record in {path} at offset {offset}: {reason}{}", follows_note(*valid_record_at))]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
        /// Offset of a valid record found after the bad one, if any.
        valid_record_at: Option<u64>,
    },

    /// A record passed its checksum but its payload does not decode.
    #[error("record in {path} at offset {offset} does not decode: {reason}")]
    Decode {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The decoder's message.
        reason: String,
    },

    /// A segment's header does not match the state the earlier segments left.
    #[error("segment {path} does not continue the log: {reason}")]
    BrokenChain {
        /// The segment file.
        path: PathBuf,
        /// Which field disagrees.
        reason: String,
    },

    /// After replay, some log entries that should be present are nowhere.
    #[error("log entries {first}..={last} are missing from every segment")]
    MissingEntries {
        /// First missing index.
        first: u64,
        /// Last missing index.
        last: u64,
    },

    /// An append does not continue the log.
    #[error("append of log index {got} does not follow the last log index {expected_after}")]
    NotContiguous {
        /// The index the append started at.
        got: u64,
        /// The last index in the log.
        expected_after: u64,
    },

    /// Serializing a record failed.
    #[error("encoding a log record failed: {0}")]
    Encode(String),

    /// A single record is larger than the 4 GiB a frame can describe.
    #[error("a log record of {0} bytes exceeds the frame limit of 4 GiB")]
    TooLarge(usize),

    /// An earlier write or fsync failed; the store accepts no more writes.
    #[error("the log store failed earlier and refuses further I/O: {0}")]
    Failed(String),

    /// The writer thread is gone.
    #[error("the log writer thread has stopped")]
    WriterGone,
}

fn follows_note(valid_record_at: Option<u64>) -> String {
    match valid_record_at {
        Some(at) => {
            format!("; a valid record follows at offset {at}, so this is not a torn tail: refusing to drop it")
        }
        None => String::new(),
    }
}

impl LogError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        LogError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<LogError> for io::Error {
    fn from(e: LogError) -> io::Error {
        let kind = match &e {
            LogError::Io { source, .. } => source.kind(),
            LogError::Locked(_) => io::ErrorKind::WouldBlock,
            LogError::NotContiguous { .. } | LogError::TooLarge(_) => io::ErrorKind::InvalidInput,
            LogError::Encode(_) | LogError::Failed(_) | LogError::WriterGone => {
                io::ErrorKind::Other
            }
            LogError::BadSegmentName(_)
            | LogError::MissingSegment { .. }
            | LogError::DuplicateSegment(_)
            | LogError::Corrupt { .. }
            | LogError::Decode { .. }
            | LogError::BrokenChain { .. }
            | LogError::MissingEntries { .. } => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}
