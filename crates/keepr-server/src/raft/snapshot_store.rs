//! Snapshot files: the tree, its sessions and the Raft position it reflects, on disk.
//!
//! A snapshot file is
//!
//! ```text
//! "KEEPRSNP" | u32 format | u32 meta_len | meta (JSON SnapshotMeta) | tree snapshot | u32 crc32c
//! ```
//!
//! (big-endian), where the trailing checksum covers every byte before it, so a reader can tell
//! a whole file from a torn or damaged one by one sequential pass, before trusting anything in
//! it. The tree part is keepr-tree's own checksummed format.
//!
//! Files are written under a temporary name, fsynced, renamed into place and the directory
//! fsynced, so a crash leaves either the old set of snapshots or the new one. The two newest
//! are kept: if the newest turns out damaged at start-up, the one before it is used and the
//! Raft log (which we keep back to it) replays the rest.
//!
//! A snapshot found damaged is renamed to `*.snap.damaged` (kept for a post-mortem until the
//! kept snapshots are past it), so it never counts as one of the kept ones: counting it would
//! delete the valid older snapshot in its place and let the log be purged up to a file that
//! cannot be read. Readers get the very file handle that was verified, so a prune running
//! meanwhile (the builder runs concurrently with replication reading a snapshot) cannot pull
//! the file from under them.

use super::types::SnapshotMeta;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"KEEPRSNP";
const FORMAT: u32 = 1;
/// Snapshot files kept on disk; the older ones are deleted once a newer one is durable.
pub const KEEP: usize = 2;
const SUFFIX: &str = ".snap";
/// Appended to the name of a snapshot found damaged.
const DAMAGED_SUFFIX: &str = ".damaged";

/// A snapshot file that was verified whole, positioned nowhere in particular.
#[derive(Debug)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub file: File,
}

impl SnapshotFile {
    /// The tree part of the file, as a reader, with the meta it reflects.
    pub fn open_tree(&mut self) -> io::Result<(SnapshotMeta, impl Read + '_)> {
        let len = self.file.metadata()?.len();
        self.file.seek(SeekFrom::Start(0))?;
        let mut r = BufReader::with_capacity(1 << 20, &mut self.file);
        let (meta, header_len) = read_header(&mut r)?;
        let tree_len = len
            .checked_sub(header_len + 4)
            .ok_or_else(|| invalid("snapshot shorter than its header"))?;
        Ok((meta, r.take(tree_len)))
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads magic, format and meta; returns the meta and the header's length in bytes.
fn read_header(r: &mut impl Read) -> io::Result<(SnapshotMeta, u64)> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("not a keepr snapshot (bad magic)"));
    }
    let mut word = [0u8; 4];
    r.read_exact(&mut word)?;
    let format = u32::from_be_bytes(word);
    if format != FORMAT {
        return Err(invalid(format!("unsupported snapshot format {format}")));
    }
    r.read_exact(&mut word)?;
    let meta_len = u32::from_be_bytes(word) as usize;
    if meta_len > 64 << 20 {
        return Err(invalid(format!("snapshot meta of {meta_len} bytes")));
    }
    let mut meta = vec![0u8; meta_len];
    r.read_exact(&mut meta)?;
    let meta: SnapshotMeta =
        serde_json::from_slice(&meta).map_err(|e| invalid(format!("snapshot meta: {e}")))?;
    Ok((meta, 16 + meta_len as u64))
}

/// A writer that checksums everything passing through it.
struct Crc<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<SnapshotStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        // Leftovers of a write that crashed before its rename.
        for e in fs::read_dir(&dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                fs::remove_file(&p)?;
            }
        }
        Ok(SnapshotStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn final_path(&self, meta: &SnapshotMeta) -> PathBuf {
        let (index, term) = meta
            .last_log_id
            .as_ref()
            .map(|l| (l.index, l.leader_id.term))
            .unwrap_or((0, 0));
        self.dir
            .join(format!("snapshot-{index:020}-{term:010}{SUFFIX}"))
    }

    /// A fresh temporary path in the snapshot directory, for writers and receivers.
    pub fn temp_path(&self, tag: &str) -> PathBuf {
        let n: u64 = rand::random();
        self.dir.join(format!("incoming-{tag}-{n:016x}.tmp"))
    }

    /// Writes a snapshot whose tree part `write_tree` produces, makes it durable and returns
    /// it, then deletes all but the newest [`KEEP`] snapshots.
    pub fn write(
        &self,
        meta: &SnapshotMeta,
        write_tree: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<SnapshotFile> {
        let tmp = self.temp_path("build");
        let file = File::create(&tmp)?;
        let mut w = Crc {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: 0,
        };
        let meta_json = serde_json::to_vec(meta).map_err(io::Error::other)?;
        w.write_all(MAGIC)?;
        w.write_all(&FORMAT.to_be_bytes())?;
        w.write_all(&(meta_json.len() as u32).to_be_bytes())?;
        w.write_all(&meta_json)?;
        write_tree(&mut w)?;
        let crc = w.crc;
        let mut inner = w.inner;
        inner.write_all(&crc.to_be_bytes())?;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        self.adopt(&tmp, meta)
    }

    /// Moves a complete, verified snapshot file (written here, or received from the leader)
    /// to its final name durably, and prunes older snapshots.
    pub fn adopt(&self, path: &Path, meta: &SnapshotMeta) -> io::Result<SnapshotFile> {
        let dest = self.final_path(meta);
        if path != dest {
            fs::rename(path, &dest)?;
        }
        File::open(&self.dir)?.sync_all()?;
        let file = File::open(&dest)?;
        self.prune(&dest)?;
        Ok(SnapshotFile { file, path: dest })
    }

    /// Snapshot files (not those set aside as damaged), newest first.
    fn list(&self) -> io::Result<Vec<PathBuf>> {
        self.list_ending(SUFFIX)
    }

    /// Files named `snapshot-*` ending in `suffix`, newest first.
    fn list_ending(&self, suffix: &str) -> io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(suffix))
            })
            .collect();
        // Names embed the zero-padded index, so name order is log order.
        v.sort();
        v.reverse();
        Ok(v)
    }

    /// The log index of the older of the two snapshots kept on disk: the log must reach
    /// back to it. `None` while there is only one (the log is then kept whole).
    pub fn oldest_kept_index(&self) -> io::Result<Option<u64>> {
        let indexes: Vec<u64> = self.list()?.iter().filter_map(|p| index_of(p)).collect();
        Ok(if indexes.len() >= KEEP {
            indexes.into_iter().min()
        } else {
            None
        })
    }

    /// Deletes snapshots older than the newest [`KEEP`] (never `keep`, the one just adopted,
    /// which openraft uses from now on), and damaged ones the kept snapshots are past.
    ///
    /// Only snapshots not found damaged count: one set aside as damaged never takes the place
    /// of a valid older one, and openraft is only ever handed (by `newest_valid`) the newest
    /// valid one, so the one it uses is among the kept until two newer ones were adopted.
    fn prune(&self, keep: &Path) -> io::Result<()> {
        let snapshots = self.list()?;
        for p in snapshots.iter().skip(KEEP) {
            if p != keep {
                remove_if_present(p)?;
            }
        }
        let oldest_kept = snapshots
            .iter()
            .take(KEEP)
            .filter_map(|p| index_of(p))
            .min();
        if let Some(oldest_kept) = oldest_kept.filter(|_| snapshots.len() >= KEEP) {
            for p in self.list_ending(DAMAGED_SUFFIX)? {
                if index_of(&p).is_some_and(|i| i < oldest_kept) {
                    remove_if_present(&p)?;
                }
            }
        }
        Ok(())
    }

    /// The newest snapshot that checks out whole. Damaged ones are reported and set aside
    /// (renamed to `*.damaged`) so that they no longer count as kept snapshots.
    ///
    /// The returned handle is the one that was verified: the file may be pruned meanwhile
    /// (the snapshot builder runs concurrently) and stays readable through it.
    pub fn newest_valid(&self) -> io::Result<Option<(SnapshotMeta, SnapshotFile)>> {
        for path in self.list()? {
            let mut file = match File::open(&path) {
                Ok(f) => f,
                // Pruned since the listing: a newer one exists, but this one was older.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match verify_file(&mut file) {
                Ok(meta) => {
                    file.seek(SeekFrom::Start(0))?;
                    return Ok(Some((meta, SnapshotFile { path, file })));
                }
                Err(e) if is_damage(&e) => {
                    tracing::error!(path = %path.display(), error = %e, "snapshot is damaged; trying an older one");
                    self.set_aside(&path)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Renames a damaged snapshot out of the set of snapshots, durably.
    fn set_aside(&self, path: &Path) -> io::Result<()> {
        let mut aside = path.as_os_str().to_owned();
        aside.push(DAMAGED_SUFFIX);
        let aside = PathBuf::from(aside);
        match fs::rename(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        File::open(&self.dir)?.sync_all()?;
        tracing::warn!(path = %aside.display(), "damaged snapshot set aside");
        Ok(())
    }
}

/// Whether a verification error means the file's content is bad (rather than that it could
/// not be read at all).
fn is_damage(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// The log index a snapshot file's name carries.
fn index_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("snapshot-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Checks a snapshot file's trailing checksum and header; returns its meta.
pub fn verify(path: &Path) -> io::Result<SnapshotMeta> {
    verify_file(&mut File::open(path)?)
}

/// [`verify`] on an open file, read from its start; leaves its position anywhere.
fn verify_file(f: &mut File) -> io::Result<SnapshotMeta> {
    f.seek(SeekFrom::Start(0))?;
    let len = f.metadata()?.len();
    if len < 20 {
        return Err(invalid("snapshot file too short"));
    }
    let mut r = BufReader::with_capacity(1 << 20, &mut *f).take(len - 4);
    let mut crc = 0u32;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
    let mut tail = [0u8; 4];
    r.into_inner().read_exact(&mut tail)?;
    if u32::from_be_bytes(tail) != crc {
        return Err(invalid("snapshot checksum mismatch"));
    }
    f.seek(SeekFrom::Start(0))?;
    Ok(read_header(&mut BufReader::new(f))?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{LogId, TypeConfig};
    use openraft::type_config::alias::LeaderIdOf;
    use openraft::vote::RaftLeaderId;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId {
                leader_id: LeaderIdOf::<TypeConfig>::new(1, 1).to_committed(),
                index,
            }),
            ..Default::default()
        }
    }

    /// Writes a snapshot at `index` whose tree part is a recognisable filler.
    fn write(store: &SnapshotStore, index: u64) -> PathBuf {
        store
            .write(&meta(index), |w| w.write_all(&[index as u8; 4096]))
            .expect("writing a snapshot")
            .path
    }

    fn damage(path: &Path) {
        let mut bytes = fs::read(path).expect("reading a snapshot");
        let middle = bytes.len() / 2;
        for b in &mut bytes[middle..middle + 16] {
            *b ^= 0xFF;
        }
        fs::write(path, &bytes).expect("damaging a snapshot");
    }

    fn index_found(store: &SnapshotStore) -> Option<u64> {
        store
            .newest_valid()
            .expect("looking for a snapshot")
            .and_then(|(m, _)| m.last_log_id.map(|l| l.index))
    }

    #[test]
    fn a_damaged_newest_snapshot_never_counts_among_the_kept_ones() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SnapshotStore::open(dir.path()).expect("opening the store");
        let older = write(&store, 100);
        let newest = write(&store, 200);
        damage(&newest);

        // As at a restart: the damaged one is skipped for the older one, and set aside.
        assert_eq!(index_found(&store), Some(100));
        assert!(!newest.exists());
        assert_eq!(store.oldest_kept_index().expect("listing"), None);

        // A new snapshot must not push out the older one, which is the only fallback.
        let next = write(&store, 300);
        assert!(older.exists(), "the valid older snapshot was pruned");
        assert_eq!(store.oldest_kept_index().expect("listing"), Some(100));

        // Even with this one damaged as well, the older one and the log (kept back to it)
        // still rebuild the state.
        damage(&next);
        assert_eq!(index_found(&store), Some(100));

        // Once the kept snapshots are past it, the damaged file goes too.
        write(&store, 400);
        write(&store, 500);
        let left: Vec<String> = fs::read_dir(dir.path())
            .expect("listing")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(store.oldest_kept_index().expect("listing"), Some(400));
    }

    #[test]
    fn a_snapshot_handed_out_stays_readable_after_it_is_pruned() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SnapshotStore::open(dir.path()).expect("opening the store");
        write(&store, 100);
        write(&store, 200);
        let (_, mut found) = store
            .newest_valid()
            .expect("looking for a snapshot")
            .expect("a snapshot");
        write(&store, 300);
        write(&store, 400);
        assert!(!found.path.exists(), "pruned meanwhile");
        let (file_meta, mut tree) = found.open_tree().expect("reading the handed-out snapshot");
        assert_eq!(file_meta.last_log_id.map(|l| l.index), Some(200));
        let mut bytes = Vec::new();
        tree.read_to_end(&mut bytes).expect("reading the tree part");
        assert_eq!(bytes, vec![200u8; 4096]);
    }
}
