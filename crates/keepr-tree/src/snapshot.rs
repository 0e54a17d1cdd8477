//! Snapshots: the whole tree, its sessions and ACL lists, and the last applied zxid, as one
//! checksummed byte stream.
//!
//! The encoding is canonical, a pure function of the tree's logical state: sessions by id,
//! nodes in depth-first order with children by name, ACL lists numbered by first use. Two
//! members with the same state write the same bytes, and decoding then encoding gives back
//! the input. Encoding streams into any `Write` and decoding builds the tree while it reads
//! from any `Read`, so a large tree is never held twice. Decoding trusts nothing: every
//! length is checked against the bytes actually present before anything is allocated for
//! it, every structural rule of the tree is re-checked, and the CRC-32C trailer must match.
//!
//! Layout (big-endian): magic `KEEPRSNP`, version u32, last zxid i64, session count u64,
//! sessions (id i64, timeout i32, password 16 bytes, owner u64), ACL list count u32, lists (entry count u32, entries
//! (perms i32, scheme, id)), node count u64, nodes (path, data (i32 length, -1 null),
//! czxid, mzxid, pzxid, ctime, mtime i64, version, cversion, aversion i32, kind u8, owner i64,
//! ACL list u32), CRC-32C u32 of everything before it. Strings are u32 length + UTF-8.

use std::io::{self, BufReader, BufWriter, Read, Write};

use hashbrown::HashMap;
use keepr_wire::{Acl, Id};

use crate::acl_cache::AclList;
use crate::apply::MAX_TTL;
use crate::node::{Kind, Node};
use crate::path::{is_reserved, split_parent, validate_path, RESERVED_PATHS};
use crate::tree::{Session, Tree, TreeConfig, ROOT};

const MAGIC: &[u8; 8] = b"KEEPRSNP";
const VERSION: u32 = 3;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O: {0}")]
    Io(#[from] io::Error),
    #[error("snapshot is truncated")]
    Truncated,
    #[error("not a keepr snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot version {0}")]
    UnsupportedVersion(u32),
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("corrupt snapshot: {0}")]
    Corrupt(&'static str),
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: u32,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.inner.write_all(b)
    }
    fn u8(&mut self, v: u8) -> io::Result<()> {
        self.put(&[v])
    }
    fn i32(&mut self, v: i32) -> io::Result<()> {
        self.put(&v.to_be_bytes())
    }
    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.put(&v.to_be_bytes())
    }
    fn i64(&mut self, v: i64) -> io::Result<()> {
        self.put(&v.to_be_bytes())
    }
    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.put(&v.to_be_bytes())
    }
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        let len =
            u32::try_from(b.len()).map_err(|_| io::Error::other("string longer than 4 GiB"))?;
        self.u32(len)?;
        self.put(b)
    }
}

impl Tree {
    /// Writes the snapshot of this tree to `out`.
    pub fn encode_snapshot<W: Write>(&self, out: W) -> io::Result<()> {
        let order = self.canonical_order();
        // ACL lists numbered by first use in node order.
        let mut remap: HashMap<u32, u32> = HashMap::default();
        let mut lists: Vec<&AclList> = Vec::new();
        for &slot in &order {
            if let Some(n) = self.node(slot) {
                remap.entry(n.acl).or_insert_with(|| {
                    lists.push(self.acls.get(n.acl));
                    (lists.len() - 1) as u32
                });
            }
        }
        let mut w = CrcWriter {
            inner: BufWriter::with_capacity(1 << 16, out),
            crc: 0,
        };
        w.put(MAGIC)?;
        w.u32(VERSION)?;
        w.i64(self.last_zxid)?;
        let sessions = self.sessions();
        w.u64(sessions.len() as u64)?;
        for (id, timeout) in sessions {
            w.i64(id)?;
            w.i32(timeout)?;
            w.put(
                self.session_password(id)
                    .map(|p| &p[..])
                    .unwrap_or(&[0; 16]),
            )?;
            w.u64(self.session_owner(id).unwrap_or(0))?;
        }
        w.u32(lists.len() as u32)?;
        for list in lists {
            w.u32(list.len() as u32)?;
            for a in list.iter() {
                w.i32(a.perms)?;
                w.bytes(a.id.scheme.as_bytes())?;
                w.bytes(a.id.id.as_bytes())?;
            }
        }
        w.u64(order.len() as u64)?;
        for &slot in &order {
            let Some(n) = self.node(slot) else { continue };
            w.bytes(n.path.as_bytes())?;
            match &n.data {
                None => w.i32(-1)?,
                Some(d) => {
                    let len = i32::try_from(d.len())
                        .map_err(|_| io::Error::other("data longer than 2 GiB"))?;
                    w.i32(len)?;
                    w.put(d)?;
                }
            }
            for v in [n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime] {
                w.i64(v)?;
            }
            for v in [n.version, n.cversion, n.aversion] {
                w.i32(v)?;
            }
            w.u8(n.kind as u8)?;
            w.i64(n.owner)?;
            w.u32(remap.get(&n.acl).copied().unwrap_or(0))?;
        }
        let crc = w.crc;
        w.inner.write_all(&crc.to_be_bytes())?;
        w.inner.flush()
    }

    /// Node slots in depth-first order from the root, children by name.
    fn canonical_order(&self) -> Vec<u32> {
        let mut order = Vec::with_capacity(self.node_count());
        let mut stack = vec![ROOT];
        while let Some(slot) = stack.pop() {
            let Some(n) = self.node(slot) else { continue };
            order.push(slot);
            let mut children = self.sorted_children(n);
            children.reverse();
            stack.extend(children);
        }
        order
    }

    /// Reads a snapshot written by [`Tree::encode_snapshot`].
    pub fn decode_snapshot<R: Read>(input: R, config: TreeConfig) -> Result<Tree, SnapshotError> {
        let mut r = CrcReader {
            inner: BufReader::with_capacity(1 << 16, input),
            crc: 0,
        };
        let mut magic = [0u8; 8];
        r.fill(&mut magic)?;
        if &magic != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let mut tree = Tree::empty(config);
        tree.last_zxid = r.i64()?;

        let sessions = r.u64()?;
        let mut previous = None;
        for _ in 0..sessions {
            let id = r.i64()?;
            let timeout = r.i32()?;
            let passwd = r.array::<16>()?;
            let owner = r.u64()?;
            if id == 0 || previous.is_some_and(|p| p >= id) {
                return Err(SnapshotError::Corrupt(
                    "sessions not strictly ordered by nonzero id",
                ));
            }
            previous = Some(id);
            tree.sessions.insert(
                id,
                Session {
                    timeout,
                    passwd,
                    owner,
                    ..Session::default()
                },
            );
        }

        let list_count = r.u32()?;
        let mut lists: Vec<AclList> = Vec::new();
        for _ in 0..list_count {
            let entries = r.u32()?;
            if entries == 0 {
                return Err(SnapshotError::Corrupt("empty ACL list"));
            }
            let mut list = Vec::new();
            for _ in 0..entries {
                let perms = r.i32()?;
                let scheme = r.string()?;
                let id = r.string()?;
                list.push(Acl {
                    perms,
                    id: Id { scheme, id },
                });
            }
            lists.push(AclList::from(list));
        }
        let mut first_use = vec![false; lists.len()];
        let mut used = 0usize;

        let node_count = r.u64()?;
        for i in 0..node_count {
            let path = r.string()?;
            let data = r.data()?;
            let [czxid, mzxid, pzxid, ctime, mtime] =
                [r.i64()?, r.i64()?, r.i64()?, r.i64()?, r.i64()?];
            let [version, cversion, aversion] = [r.i32()?, r.i32()?, r.i32()?];
            let kind = Kind::from_u8(r.u8()?).ok_or(SnapshotError::Corrupt("unknown node kind"))?;
            let owner = r.i64()?;
            let acl_index = r.u32()? as usize;

            let list = lists
                .get(acl_index)
                .ok_or(SnapshotError::Corrupt("ACL list out of range"))?;
            match first_use.get_mut(acl_index) {
                Some(seen) if !*seen => {
                    // Canonical numbering: a list is first used after all lower ones.
                    if acl_index != used {
                        return Err(SnapshotError::Corrupt(
                            "ACL lists not numbered by first use",
                        ));
                    }
                    *seen = true;
                    used += 1;
                }
                _ => {}
            }
            let owner_ok = match kind {
                Kind::Persistent | Kind::Container => owner == 0,
                Kind::Ephemeral => tree.sessions.contains_key(&owner),
                Kind::Ttl => (1..=MAX_TTL).contains(&owner),
                Kind::Vacant => false,
            };
            if !owner_ok {
                return Err(SnapshotError::Corrupt("node owner does not fit its kind"));
            }
            if is_reserved(&path) && kind != Kind::Persistent {
                return Err(SnapshotError::Corrupt("reserved node is not persistent"));
            }
            let acl = tree.acls.acquire_shared(list);
            let mut node = Node::new(&path, None, czxid, ctime, kind, owner, acl);
            node.data = data;
            node.mzxid = mzxid;
            node.pzxid = pzxid;
            node.mtime = mtime;
            node.version = version;
            node.cversion = cversion;
            node.aversion = aversion;

            if i == 0 {
                if path != "/" {
                    return Err(SnapshotError::Corrupt("first node is not the root"));
                }
                tree.insert_root(node);
                continue;
            }
            if validate_path(&path).is_err() || path == "/" {
                return Err(SnapshotError::Corrupt("invalid node path"));
            }
            if tree.lookup(&path).is_some() {
                return Err(SnapshotError::Corrupt("duplicate node"));
            }
            let parent = split_parent(&path)
                .and_then(|(p, _)| tree.lookup(p))
                .ok_or(SnapshotError::Corrupt("node before its parent"))?;
            if tree.node(parent).is_some_and(|p| p.kind == Kind::Ephemeral) {
                return Err(SnapshotError::Corrupt("ephemeral node with children"));
            }
            tree.insert_node(node, parent);
        }
        if used != lists.len() {
            return Err(SnapshotError::Corrupt("unused ACL list"));
        }
        if RESERVED_PATHS.iter().any(|p| tree.lookup(p).is_none()) {
            return Err(SnapshotError::Corrupt("reserved node missing"));
        }
        let computed = r.crc;
        let stored = r.u32()?;
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        let mut extra = [0u8; 1];
        match r.inner.read(&mut extra) {
            Ok(0) => Ok(tree),
            Ok(_) => Err(SnapshotError::Corrupt("bytes after the checksum")),
            Err(e) => Err(e.into()),
        }
    }
}

struct CrcReader<R: Read> {
    inner: R,
    crc: u32,
}

impl<R: Read> CrcReader<R> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => SnapshotError::Truncated,
            _ => SnapshotError::Io(e),
        })?;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        Ok(())
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// Reads `len` bytes, growing the buffer only as bytes actually arrive (a corrupt length
    /// cannot make it allocate more than the input holds).
    fn exactly(&mut self, len: usize) -> Result<Vec<u8>, SnapshotError> {
        let mut v = Vec::new();
        (&mut self.inner).take(len as u64).read_to_end(&mut v)?;
        if v.len() != len {
            return Err(SnapshotError::Truncated);
        }
        self.crc = crc32c::crc32c_append(self.crc, &v);
        Ok(v)
    }
    fn string(&mut self) -> Result<String, SnapshotError> {
        let len = self.u32()? as usize;
        String::from_utf8(self.exactly(len)?)
            .map_err(|_| SnapshotError::Corrupt("string is not UTF-8"))
    }
    fn data(&mut self) -> Result<Option<Box<[u8]>>, SnapshotError> {
        match self.i32()? {
            -1 => Ok(None),
            len if len < 0 => Err(SnapshotError::Corrupt("negative data length")),
            len => Ok(Some(self.exactly(len as usize)?.into_boxed_slice())),
        }
    }
}
