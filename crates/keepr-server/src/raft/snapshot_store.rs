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

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::types::SnapshotMeta;

const MAGIC: &[u8; 8] = b"KEEPRSNP";
const FORMAT: u32 = 1;
/// Snapshot files kept on disk; the older ones are deleted once a newer one is durable.
pub const KEEP: usize = 2;
const SUFFIX: &str = ".snap";

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
        self.prune(&dest)?;
        Ok(SnapshotFile {
            file: File::open(&dest)?,
            path: dest,
        })
    }

    /// Snapshot files, newest first.
    fn list(&self) -> io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(SUFFIX))
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
        let indexes: Vec<u64> = self
            .list()?
            .iter()
            .filter_map(|p| {
                p.file_name()?
                    .to_str()?
                    .strip_prefix("snapshot-")?
                    .split('-')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        Ok(if indexes.len() >= KEEP {
            indexes.into_iter().min()
        } else {
            None
        })
    }

    fn prune(&self, keep_at_least: &Path) -> io::Result<()> {
        for (i, p) in self.list()?.into_iter().enumerate() {
            if i >= KEEP && p != keep_at_least {
                fs::remove_file(&p)?;
            }
        }
        Ok(())
    }

    /// The newest snapshot that checks out whole, skipping (and reporting) damaged ones.
    pub fn newest_valid(&self) -> io::Result<Option<(SnapshotMeta, SnapshotFile)>> {
        for path in self.list()? {
            match verify(&path) {
                Ok(meta) => {
                    let file = File::open(&path)?;
                    return Ok(Some((meta, SnapshotFile { path, file })));
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "snapshot is damaged; trying an older one");
                }
            }
        }
        Ok(None)
    }
}

/// Checks a snapshot file's trailing checksum and header; returns its meta.
pub fn verify(path: &Path) -> io::Result<SnapshotMeta> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if len < 20 {
        return Err(invalid("snapshot file too short"));
    }
    let mut r = BufReader::with_capacity(1 << 20, &mut f).take(len - 4);
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
