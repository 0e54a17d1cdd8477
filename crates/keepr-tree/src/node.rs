//! One znode as the tree stores it, laid out for millions of them.
//!
//! The node knows its full path (the index hashes it; child names are its last component;
//! short paths are stored inline),
//! its data (`None` is ZooKeeper's null data, distinct from empty), the persisted Stat
//! fields, a handle to its shared ACL list and its children as slot numbers. Leaves, the vast
//! majority, pay one null pointer for children. `cversion` is stored as ZooKeeper stores it:
//! the number of children ever created, which names sequential children and marks containers
//! that were used; clients see `2 * cversion - numChildren`.

use compact_str::CompactString;
use keepr_wire::Stat;

use crate::acl_cache::AclId;

/// What kind of node it is; decides ephemeralOwner, reaping and session cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Kind {
    Persistent = 0,
    /// Owned by the session in `Node::owner`.
    Ephemeral = 1,
    /// Removed once empty after having had a child.
    Container = 2,
    /// Removed once empty and unmodified for `Node::owner` milliseconds.
    Ttl = 3,
    /// Not a node: a free slot of the tree's slab.
    Vacant = 4,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            0 => Some(Kind::Persistent),
            1 => Some(Kind::Ephemeral),
            2 => Some(Kind::Container),
            3 => Some(Kind::Ttl),
            _ => None,
        }
    }
}

/// The slots of a node's children, in no particular order (readers sort names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Children(pub Vec<u32>);

/// Laid out by hand (`repr(C)`, 64-byte aligned, 128 bytes): everything a path lookup and a
/// write's checks read (path, kind, versions, ACL, data pointer) sits in the first cache
/// line, the Stat-only fields in the second, so a lookup in a large tree costs one memory
/// round trip for the node instead of two.
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Node {
    /// Paths up to 24 bytes live inside the node: no allocation, and no extra cache miss
    /// when a lookup compares it.
    pub path: CompactString,
    pub kind: Kind,
    pub version: i32,
    /// Children ever created (ZooKeeper's persisted cversion).
    pub cversion: i32,
    pub aversion: i32,
    pub acl: AclId,
    /// This node's position in its parent's [`Children`].
    pub slot_in_parent: u32,
    pub data: Option<Box<[u8]>>,
    pub children: Option<Box<Children>>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    /// The owning session of an ephemeral node, the TTL of a TTL node, else 0.
    pub owner: i64,
}

impl Node {
    /// The filler of a free slot (allocates nothing).
    pub fn vacant() -> Node {
        Node::new("", None, 0, 0, Kind::Vacant, 0, 0)
    }

    /// A fresh node as create makes it.
    pub fn new(
        path: &str,
        data: Option<&[u8]>,
        zxid: i64,
        time: i64,
        kind: Kind,
        owner: i64,
        acl: AclId,
    ) -> Node {
        Node {
            path: CompactString::new(path),
            data: data.map(Box::from),
            children: None,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            owner,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl,
            slot_in_parent: 0,
            kind,
        }
    }

    /// The last component of the path ("" for the root).
    pub fn name(&self) -> &str {
        match self.path.rfind('/') {
            Some(i) => &self.path[i + 1..],
            None => &self.path,
        }
    }

    pub fn child_slots(&self) -> &[u32] {
        match &self.children {
            Some(c) => &c.0,
            None => &[],
        }
    }

    pub fn num_children(&self) -> usize {
        self.child_slots().len()
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The session that owns this node, if it is ephemeral.
    pub fn session(&self) -> Option<i64> {
        (self.kind == Kind::Ephemeral).then_some(self.owner)
    }

    /// The Stat clients see (`DataNode.copyStat`): container and TTL nodes show
    /// ephemeralOwner 0, cversion counts creations and deletions.
    pub fn stat(&self) -> Stat {
        let num_children = self.num_children() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: self.session().unwrap_or(0),
            data_length: self.data_len() as i32,
            num_children,
            pzxid: self.pzxid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_layout_stays_compact() {
        // The per-znode memory budget depends on it; grow it only on purpose.
        assert_eq!(std::mem::size_of::<Node>(), 128);
        assert_eq!(std::mem::align_of::<Node>(), 64);
    }

    #[test]
    fn visible_cversion_is_twice_creations_minus_live_children() {
        let mut n = Node::new("/p", None, 1, 2, Kind::Persistent, 0, 0);
        n.cversion = 3;
        n.children = Some(Box::new(Children(vec![7])));
        let s = n.stat();
        assert_eq!(s.cversion, 5);
        assert_eq!(s.num_children, 1);
        assert_eq!(s.data_length, 0);
    }

    #[test]
    fn only_ephemeral_nodes_show_an_owner() {
        for (kind, owner, shown) in [
            (Kind::Ephemeral, 42, 42),
            (Kind::Ttl, 5000, 0),
            (Kind::Container, 0, 0),
            (Kind::Persistent, 0, 0),
        ] {
            assert_eq!(
                Node::new("/n", None, 1, 1, kind, owner, 0)
                    .stat()
                    .ephemeral_owner,
                shown
            );
        }
    }
}
