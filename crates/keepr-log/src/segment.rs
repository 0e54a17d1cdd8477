//! Segment files: names, listing, creation, and the directory-level fsyncs they need.
//!
//! A segment is named `<seq>-<first index>.log`, both as 16 hex digits. `seq` counts segments
//! from 1 and orders them; the first index is the log index the segment's first entry has (or
//! would have), which tells an operator at a glance which segments a purge can delete. Both are
//! needed: after a truncation the log can go back to an index an earlier segment already
//! started at, so the index alone would not be unique.

use std::fs::File;
use std::fs::OpenOptions;
use std::path::Path;
use std::path::PathBuf;

use crate::error::LogError;

/// A segment's identity, as encoded in its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentId {
    /// Position in the sequence of segments, from 1.
    pub seq: u64,
    /// Index of the first entry appended to the segment.
    pub first_index: u64,
}

impl SegmentId {
    /// The file name of this segment.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.log", self.seq, self.first_index)
    }

    /// The path of this segment in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    /// Parses a file name; `None` when it is not a segment name.
    pub fn parse(name: &str) -> Option<SegmentId> {
        let stem = name.strip_suffix(".log")?;
        let (seq, first) = stem.split_once('-')?;
        if seq.len() != 16 || first.len() != 16 {
            return None;
        }
        Some(SegmentId {
            seq: u64::from_str_radix(seq, 16).ok()?,
            first_index: u64::from_str_radix(first, 16).ok()?,
        })
    }
}

/// The segments in `dir`, by sequence number; checks that none is missing or doubled.
///
/// Files that do not end in `.log` are not ours (the `LOCK` file, a `lost+found` on a fresh
/// volume) and are left alone; a `.log` file with any other name is an error, because it means
/// someone put files here that recovery cannot account for.
pub(crate) fn list(dir: &Path) -> Result<Vec<SegmentId>, LogError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !name.ends_with(".log") {
            continue;
        }
        match SegmentId::parse(name) {
            Some(id) => found.push(id),
            None => return Err(LogError::BadSegmentName(entry.path())),
        }
    }
    found.sort_by_key(|s| s.seq);
    for pair in found.windows(2) {
        let (a, b) = (pair[0].seq, pair[1].seq);
        if a == b {
            return Err(LogError::DuplicateSegment(a));
        }
        if b != a + 1 {
            return Err(LogError::MissingSegment {
                missing: a + 1,
                before: a,
                after: b,
            });
        }
    }
    Ok(found)
}

/// Creates a new, empty segment file for appending; fails if it exists.
///
/// The caller must [`sync_dir`] before anything written to it is acknowledged, so that the
/// directory entry survives a crash together with the data.
pub(crate) fn create(dir: &Path, id: SegmentId) -> Result<File, LogError> {
    let path = id.path(dir);
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| LogError::io(format!("creating segment {}", path.display()), e))
}

/// Opens an existing segment for appending.
pub(crate) fn open_append(dir: &Path, id: SegmentId) -> Result<File, LogError> {
    let path = id.path(dir);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| LogError::io(format!("opening segment {} for append", path.display()), e))
}

/// Opens a segment for positional reads.
pub(crate) fn open_read(dir: &Path, id: SegmentId) -> Result<File, LogError> {
    let path = id.path(dir);
    File::open(&path)
        .map_err(|e| LogError::io(format!("opening segment {} for reading", path.display()), e))
}

/// Makes creations, deletions and renames in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(format!("fsync of directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_sort_by_sequence() {
        let id = SegmentId {
            seq: 3,
            first_index: 0x1234,
        };
        assert_eq!(id.file_name(), "0000000000000003-0000000000001234.log");
        assert_eq!(SegmentId::parse(&id.file_name()), Some(id));
    }

    #[test]
    fn malformed_names_are_not_segments() {
        for name in [
            "LOCK",
            "1-2.log",
            "000000000000000g-0000000000000000.log",
            "0000000000000001.log",
        ] {
            assert_eq!(SegmentId::parse(name), None, "{name}");
        }
    }

    #[test]
    fn a_gap_in_sequence_numbers_is_a_missing_segment() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [1, 2, 4] {
            create(
                dir.path(),
                SegmentId {
                    seq,
                    first_index: 0,
                },
            )
            .unwrap();
        }
        assert!(matches!(
            list(dir.path()),
            Err(LogError::MissingSegment { missing: 3, .. })
        ));
    }

    #[test]
    fn a_stray_log_file_is_refused_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        create(
            dir.path(),
            SegmentId {
                seq: 1,
                first_index: 0,
            },
        )
        .unwrap();
        std::fs::write(dir.path().join("LOCK"), b"").unwrap();
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        std::fs::write(dir.path().join("old.log"), b"").unwrap();
        assert!(matches!(list(dir.path()), Err(LogError::BadSegmentName(_))));
    }

    #[test]
    fn two_segments_with_one_sequence_number_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        create(
            dir.path(),
            SegmentId {
                seq: 1,
                first_index: 0,
            },
        )
        .unwrap();
        create(
            dir.path(),
            SegmentId {
                seq: 1,
                first_index: 5,
            },
        )
        .unwrap();
        assert!(matches!(
            list(dir.path()),
            Err(LogError::DuplicateSegment(1))
        ));
    }
}
