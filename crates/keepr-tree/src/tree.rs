//! The tree's storage: a slab of nodes, a hash index from full path to slot, the shared ACL
//! lists, the live sessions with their ephemeral nodes, and the container and TTL nodes.
//!
//! Why this layout: a flat index ([`PathIndex`]) answers every path lookup with one hash
//! probe (no walk down the hierarchy), and because it holds slot numbers rather than keys
//! the path is stored once, in the node. Slots are stable, so children are slot lists: a
//! leaf costs nothing for them and a parent 4 bytes per child. Nothing iterates the index
//! or the hash sets here in an order that reaches a result or a snapshot; whatever is
//! listed is sorted first.

use hashbrown::{HashMap, HashSet};

use crate::acl::{open_acl_unsafe, read_acl_unsafe};
use crate::acl_cache::{AclCache, AclList};
use crate::index::PathIndex;
use crate::node::{Kind, Node};
use crate::path::utf16_len;

/// Limits that are configuration, not replicated state. Every member must use the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeConfig {
    /// The largest data a create or setData may carry, in bytes. ZooKeeper has no separate
    /// check and relies on its 1 MiB frame limit (`jute.maxbuffer`); a bigger request fails
    /// with BADARGUMENTS here.
    pub max_data_len: usize,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            max_data_len: 1024 * 1024,
        }
    }
}

/// A live session as the tree records it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    pub timeout: i32,
    /// The password a client must present to resume the session (chosen by the proposer, so
    /// every member can check it).
    pub passwd: [u8; 16],
    /// The connection the session was last established on (see [`crate::Command::owner`]).
    pub owner: u64,
    /// Slots of the session's ephemeral nodes.
    pub ephemerals: HashSet<u32>,
}

/// The slot of the root, which is never removed.
pub(crate) const ROOT: u32 = 0;

/// The znode tree: a deterministic state machine with ZooKeeper's semantics. Writes go
/// through [`Tree::apply`]; reads take the caller's identities and check ACLs.
#[derive(Debug, Clone)]
pub struct Tree {
    pub(crate) config: TreeConfig,
    /// Nodes by slot; a free slot holds a vacant node (see [`Node::vacant`]).
    pub(crate) slots: Vec<Node>,
    pub(crate) free: Vec<u32>,
    pub(crate) index: PathIndex,
    pub(crate) acls: AclCache,
    pub(crate) sessions: HashMap<i64, Session>,
    pub(crate) containers: HashSet<u32>,
    pub(crate) ttls: HashSet<u32>,
    pub(crate) last_zxid: i64,
    pub(crate) data_size: u64,
    pub(crate) ephemerals: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new(TreeConfig::default())
    }
}

impl Tree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` (all world:anyone ALL) and
    /// `/zookeeper/config` (world:anyone READ), with empty data and zero Stats, as a fresh
    /// ZooKeeper database.
    pub fn new(config: TreeConfig) -> Tree {
        let mut tree = Tree::empty(config);
        let open = tree.acls.acquire(&open_acl_unsafe());
        tree.insert_root(Node::new("/", Some(&[]), 0, 0, Kind::Persistent, 0, open));
        for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let acl = if path == "/zookeeper/config" {
                tree.acls.acquire(&read_acl_unsafe())
            } else {
                tree.acls.acquire(&open_acl_unsafe())
            };
            let parent = crate::path::split_parent(path)
                .and_then(|(p, _)| tree.lookup(p))
                .unwrap_or(ROOT);
            let mut node = Node::new(path, Some(&[]), 0, 0, Kind::Persistent, 0, acl);
            if path == "/zookeeper/config" {
                // ZooKeeper gives it its ACL with `setACL(path, READ_ACL_UNSAFE, -1)`, which
                // stores the -1 as the aversion.
                node.aversion = -1;
            }
            tree.insert_node(node, parent);
        }
        tree
    }

    /// A tree with no nodes at all; snapshot decoding fills it.
    pub(crate) fn empty(config: TreeConfig) -> Tree {
        Tree {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            index: PathIndex::default(),
            acls: AclCache::default(),
            sessions: HashMap::default(),
            containers: HashSet::default(),
            ttls: HashSet::default(),
            last_zxid: 0,
            data_size: 0,
            ephemerals: 0,
        }
    }

    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    /// The zxid of the last applied command (or of the snapshot it was loaded from).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Number of znodes, the root and the three reserved nodes included.
    pub fn node_count(&self) -> usize {
        self.index.len()
    }

    /// Sum over nodes of path length (UTF-16 units) plus data length: ZooKeeper's
    /// `approximate_data_size`.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// Number of ephemeral nodes (`ephemerals_count`).
    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals
    }

    /// Number of live sessions (`global_sessions`).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of distinct ACL lists in use.
    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    /// The gauges ZooKeeper exports about its data tree, under its names.
    pub fn metrics(&self) -> TreeMetrics {
        TreeMetrics {
            // ZooKeeper's node map holds the root twice (as "/" and as ""), and its
            // znode_count reports the map's size; dashboards expect that number.
            znode_count: self.node_count() as u64 + 1,
            ephemerals_count: self.ephemerals as u64,
            approximate_data_size: self.data_size,
            global_sessions: self.sessions.len() as u64,
        }
    }

    /// Whether `session` is live.
    pub fn has_session(&self, session: i64) -> bool {
        self.sessions.contains_key(&session)
    }

    /// The negotiated timeout of a live session.
    pub fn session_timeout(&self, session: i64) -> Option<i32> {
        self.sessions.get(&session).map(|s| s.timeout)
    }

    /// Every live session with its timeout, by id.
    /// The connection that owns a live session.
    pub fn session_owner(&self, session: i64) -> Option<u64> {
        self.sessions.get(&session).map(|s| s.owner)
    }

    /// The password of a live session.
    pub fn session_password(&self, session: i64) -> Option<&[u8; 16]> {
        self.sessions.get(&session).map(|s| &s.passwd)
    }

    pub fn sessions(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<_> = self
            .sessions
            .iter()
            .map(|(&id, s)| (id, s.timeout))
            .collect();
        v.sort_unstable();
        v
    }

    // --- storage primitives ---------------------------------------------------------------

    /// The slot of the node at `path`. `""` is the root, as in ZooKeeper's node map.
    pub(crate) fn lookup(&self, path: &str) -> Option<u32> {
        if path.is_empty() {
            return (!self.slots.is_empty()).then_some(ROOT);
        }
        let slots = &self.slots;
        self.index.find(path, |i| {
            slots
                .get(i as usize)
                .is_some_and(|n| n.kind != Kind::Vacant && &*n.path == path)
        })
    }

    pub(crate) fn node(&self, slot: u32) -> Option<&Node> {
        self.slots
            .get(slot as usize)
            .filter(|n| n.kind != Kind::Vacant)
    }

    pub(crate) fn node_mut(&mut self, slot: u32) -> Option<&mut Node> {
        self.slots
            .get_mut(slot as usize)
            .filter(|n| n.kind != Kind::Vacant)
    }

    /// The node at `path`.
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.lookup(path).and_then(|s| self.node(s))
    }

    pub(crate) fn acl_of(&self, node: &Node) -> &AclList {
        self.acls.get(node.acl)
    }

    pub(crate) fn insert_root(&mut self, node: Node) {
        self.data_size += utf16_len(&node.path) + node.data_len() as u64;
        self.slots.push(node);
        let slot = (self.slots.len() - 1) as u32;
        self.index.insert("/", slot);
    }

    /// Adds `node` (whose ACL reference is already taken) under `parent`, and registers it
    /// with its session or with the container/TTL sets. Returns its slot.
    pub(crate) fn insert_node(&mut self, mut node: Node, parent: u32) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Node::vacant());
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(p) = self.node_mut(parent) {
            let children = p.children.get_or_insert_with(Box::default);
            node.slot_in_parent = children.0.len() as u32;
            children.0.push(slot);
        }
        self.data_size += utf16_len(&node.path) + node.data_len() as u64;
        match node.kind {
            Kind::Ephemeral => {
                self.ephemerals += 1;
                self.sessions
                    .entry(node.owner)
                    .or_default()
                    .ephemerals
                    .insert(slot);
            }
            Kind::Container => {
                self.containers.insert(slot);
            }
            Kind::Ttl => {
                self.ttls.insert(slot);
            }
            Kind::Persistent | Kind::Vacant => {}
        }
        self.index.insert(&node.path, slot);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = node;
        }
        slot
    }

    /// Removes the childless node in `slot` from `parent`, the index and its session or set,
    /// and drops its ACL reference. Returns the node and its ACL list.
    pub(crate) fn remove_node(&mut self, slot: u32, parent: u32) -> Option<(Node, AclList)> {
        let slot_ref = self.slots.get_mut(slot as usize)?;
        if slot_ref.kind == Kind::Vacant {
            return None;
        }
        let node = std::mem::replace(slot_ref, Node::vacant());
        self.free.push(slot);
        self.index.remove(&node.path, slot);
        // Swap-remove from the parent's children and tell the moved sibling its new place.
        let pos = node.slot_in_parent as usize;
        let mut moved = None;
        if let Some(p) = self.node_mut(parent) {
            if let Some(children) = p.children.as_mut() {
                if children.0.get(pos) == Some(&slot) {
                    children.0.swap_remove(pos);
                    moved = children.0.get(pos).copied();
                }
                if children.0.is_empty() {
                    p.children = None;
                }
            }
        }
        if let Some(m) = moved.and_then(|m| self.node_mut(m)) {
            m.slot_in_parent = pos as u32;
        }
        self.data_size -= utf16_len(&node.path) + node.data_len() as u64;
        match node.kind {
            Kind::Ephemeral => {
                self.ephemerals -= 1;
                if let Some(s) = self.sessions.get_mut(&node.owner) {
                    s.ephemerals.remove(&slot);
                }
            }
            Kind::Container => {
                self.containers.remove(&slot);
            }
            Kind::Ttl => {
                self.ttls.remove(&slot);
            }
            Kind::Persistent | Kind::Vacant => {}
        }
        let acl = self.acls.get(node.acl).clone();
        self.acls.release(node.acl);
        Some((node, acl))
    }

    /// Replaces a node's data, keeping the size gauge right.
    pub(crate) fn replace_data(
        &mut self,
        slot: u32,
        data: Option<Box<[u8]>>,
    ) -> Option<Option<Box<[u8]>>> {
        let node = self.node_mut(slot)?;
        let old = std::mem::replace(&mut node.data, data);
        let new_len = node.data_len() as u64;
        self.data_size = self.data_size - old.as_ref().map_or(0, |d| d.len() as u64) + new_len;
        Some(old)
    }

    /// Verifies every internal invariant of the storage (index, parent/child links,
    /// sessions, container and TTL sets, ACL reference counts, gauges). O(n); meant for
    /// tests and debugging, and for checking a tree after an unusual event.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut live = 0usize;
        let mut data_size = 0u64;
        let mut ephemerals = 0usize;
        let mut reapable = 0usize;
        let mut acl_refs: HashMap<u32, u64> = HashMap::default();
        match self.node(ROOT) {
            Some(root) if &*root.path == "/" => {}
            _ => return Err("root missing from slot 0".into()),
        }
        for (slot, node) in self.slots.iter().enumerate() {
            if node.kind == Kind::Vacant {
                continue;
            }
            let slot = slot as u32;
            live += 1;
            if self.lookup(&node.path) != Some(slot) {
                return Err(format!("{} not found at its slot by the index", node.path));
            }
            data_size += utf16_len(&node.path) + node.data_len() as u64;
            *acl_refs.entry(node.acl).or_default() += 1;
            if matches!(&node.children, Some(c) if c.0.is_empty()) {
                return Err(format!("{} keeps an empty child list", node.path));
            }
            for (pos, &c) in node.child_slots().iter().enumerate() {
                let child = self
                    .node(c)
                    .ok_or_else(|| format!("{} has a dangling child", node.path))?;
                let parent = crate::path::split_parent(&child.path).map(|(p, _)| p);
                let expected = if slot == ROOT {
                    Some("")
                } else {
                    Some(&*node.path)
                };
                if parent != expected || child.slot_in_parent as usize != pos {
                    return Err(format!("{} is misplaced under {}", child.path, node.path));
                }
            }
            if slot != ROOT {
                let parent = crate::path::split_parent(&node.path)
                    .and_then(|(p, _)| self.lookup(p))
                    .and_then(|p| self.node(p))
                    .ok_or_else(|| format!("{} has no parent", node.path))?;
                if parent.child_slots().get(node.slot_in_parent as usize) != Some(&slot) {
                    return Err(format!(
                        "{} is missing from its parent's children",
                        node.path
                    ));
                }
                if parent.kind == Kind::Ephemeral {
                    return Err(format!("{} is the child of an ephemeral node", node.path));
                }
            }
            let in_sets = (self.containers.contains(&slot), self.ttls.contains(&slot));
            let session_has = |s: i64| {
                self.sessions
                    .get(&s)
                    .is_some_and(|s| s.ephemerals.contains(&slot))
            };
            let ok = match node.kind {
                Kind::Persistent => in_sets == (false, false) && node.owner == 0,
                Kind::Container => {
                    reapable += 1;
                    in_sets == (true, false) && node.owner == 0
                }
                Kind::Ttl => {
                    reapable += 1;
                    in_sets == (false, true) && node.owner > 0
                }
                Kind::Ephemeral => {
                    ephemerals += 1;
                    in_sets == (false, false) && session_has(node.owner)
                }
                Kind::Vacant => false,
            };
            if !ok {
                return Err(format!("{} is not registered as its kind says", node.path));
            }
        }
        if live != self.index.len() {
            return Err("index and slab disagree on the node count".into());
        }
        let registered: usize = self.sessions.values().map(|s| s.ephemerals.len()).sum();
        if registered != ephemerals || ephemerals != self.ephemerals {
            return Err("ephemeral counts disagree".into());
        }
        if data_size != self.data_size {
            return Err(format!(
                "data size gauge {} but nodes sum to {data_size}",
                self.data_size
            ));
        }
        if self.containers.len() + self.ttls.len() != reapable {
            return Err("stale container or TTL entries".into());
        }
        for id in self.acls.ids() {
            if acl_refs.get(&id).copied().unwrap_or(0) != self.acls.refs(id) {
                return Err(format!("ACL list {id} has a wrong reference count"));
            }
        }
        if acl_refs.len() != self.acls.len() {
            return Err("a node refers to a freed ACL list".into());
        }
        Ok(())
    }

    /// Slots of the children of `slot`, sorted by name.
    pub(crate) fn sorted_children(&self, node: &Node) -> Vec<u32> {
        let mut v = node.child_slots().to_vec();
        v.sort_unstable_by(|&a, &b| {
            let a = self.node(a).map_or("", |n| n.name());
            let b = self.node(b).map_or("", |n| n.name());
            a.cmp(b)
        });
        v
    }
}

/// The data tree gauges of ZooKeeper's `mntr` / Prometheus endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeMetrics {
    /// `znode_count`: ZooKeeper's value, one more than [`Tree::node_count`].
    pub znode_count: u64,
    /// `ephemerals_count`.
    pub ephemerals_count: u64,
    /// `approximate_data_size`.
    pub approximate_data_size: u64,
    /// `global_sessions`.
    pub global_sessions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tree_holds_the_reserved_nodes() {
        let t = Tree::default();
        assert_eq!(t.node_count(), 4);
        for p in crate::path::RESERVED_PATHS {
            assert!(t.lookup(p).is_some(), "{p}");
        }
        assert_eq!(t.lookup(""), Some(ROOT));
        assert_eq!(t.approximate_data_size(), 1 + 10 + 16 + 17);
        assert_eq!(t.metrics().znode_count, 5);
    }

    #[test]
    fn removing_a_child_keeps_sibling_positions_consistent() {
        let mut t = Tree::default();
        let acl = t.acls.acquire(&open_acl_unsafe());
        let a = t.insert_node(Node::new("/a", None, 1, 1, Kind::Persistent, 0, acl), ROOT);
        let acl = t.acls.acquire(&open_acl_unsafe());
        let b = t.insert_node(Node::new("/b", None, 1, 1, Kind::Persistent, 0, acl), ROOT);
        t.remove_node(a, ROOT);
        let root = t.node(ROOT).unwrap();
        let pos = t.node(b).unwrap().slot_in_parent as usize;
        assert_eq!(root.child_slots()[pos], b);
        assert!(t.lookup("/a").is_none());
        assert_eq!(t.lookup("/b"), Some(b));
    }
}
