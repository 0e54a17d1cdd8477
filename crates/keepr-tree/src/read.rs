//! Reads, served from the local tree with the caller's identities, with ZooKeeper's checks
//! and error codes (`FinalRequestProcessor`, 3.9).
//!
//! Reads borrow from the tree: data and child names come back as slices, so the server can
//! encode a reply without copying a node's data. Child names are sorted, so the same read
//! gives the same bytes on every member (ZooKeeper returns them in hash-set order).
//! Reads register no watches themselves: watches are per connection and live in
//! [`crate::WatchManager`]; [`crate::WatchedRead`] says which watch a read sets given its
//! outcome.

use keepr_wire::codes::perms;
use keepr_wire::{Acl, ErrorCode, Id, PathWatchRequest, Stat};

use crate::acl::{check_acl, mask_digests, require};
use crate::node::Node;
use crate::tree::Tree;

/// A node's data and Stat, as getData answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData<'a> {
    /// `None` is null data (length -1 on the wire), distinct from empty data.
    pub data: Option<&'a [u8]>,
    pub stat: Stat,
}

/// An op of multiRead (22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetData(PathWatchRequest),
    GetChildren(PathWatchRequest),
}

/// A successful multiRead op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult<'a> {
    Data(NodeData<'a>),
    Children(Vec<&'a str>),
}

impl Tree {
    fn readable(&self, path: &str, auth: &[Id]) -> Result<&Node, ErrorCode> {
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        require(self.acl_of(node), perms::READ, auth)?;
        Ok(node)
    }

    /// exists: the Stat. READ is needed when the node exists (3.9's fix for
    /// CVE-2024-23944; 3.8.0 did not check). A path with NUL is BADARGUMENTS; no other
    /// path check is made, so an invalid path is simply NONODE.
    pub fn exists(&self, path: &str, auth: &[Id]) -> Result<Stat, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        Ok(self.readable(path, auth)?.stat())
    }

    /// getData: data and Stat; needs READ.
    pub fn get_data(&self, path: &str, auth: &[Id]) -> Result<NodeData<'_>, ErrorCode> {
        let node = self.readable(path, auth)?;
        Ok(NodeData {
            data: node.data.as_deref(),
            stat: node.stat(),
        })
    }

    fn child_names<'a>(&'a self, node: &'a Node) -> Vec<&'a str> {
        let mut names: Vec<&str> = node
            .child_slots()
            .iter()
            .filter_map(|&s| self.node(s).map(Node::name))
            .collect();
        names.sort_unstable();
        names
    }

    /// getChildren: child names, sorted; needs READ.
    pub fn get_children(&self, path: &str, auth: &[Id]) -> Result<Vec<&str>, ErrorCode> {
        let node = self.readable(path, auth)?;
        Ok(self.child_names(node))
    }

    /// getChildren2: child names, sorted, and the Stat; needs READ.
    pub fn get_children2(&self, path: &str, auth: &[Id]) -> Result<(Vec<&str>, Stat), ErrorCode> {
        let node = self.readable(path, auth)?;
        Ok((self.child_names(node), node.stat()))
    }

    /// getAllChildrenNumber: the number of all descendants, recursively (system nodes
    /// included); needs READ. As in ZooKeeper, `""` names the root and counts the root
    /// itself too.
    pub fn get_all_children_number(&self, path: &str, auth: &[Id]) -> Result<i32, ErrorCode> {
        let node = self.readable(path, auth)?;
        if path.is_empty() {
            return Ok(self.node_count() as i32);
        }
        if path == "/" {
            return Ok(self.node_count() as i32 - 1);
        }
        let mut count: u64 = 0;
        let mut stack: Vec<u32> = node.child_slots().to_vec();
        while let Some(s) = stack.pop() {
            count += 1;
            if let Some(n) = self.node(s) {
                stack.extend_from_slice(n.child_slots());
            }
        }
        Ok(count as i32)
    }

    /// getEphemerals: the paths of `session`'s ephemeral nodes that start with `prefix`
    /// (a plain string prefix; blank or "/" means all), sorted. No ACL check.
    pub fn get_ephemerals(&self, session: i64, prefix: &str) -> Vec<String> {
        let Some(s) = self.sessions.get(&session) else {
            return Vec::new();
        };
        // Java's trim() strips every char up to U+0020.
        let trimmed = prefix.trim_matches(|c: char| c <= ' ');
        let all = trimmed.is_empty() || trimmed == "/";
        let mut paths: Vec<String> = s
            .ephemerals
            .iter()
            .filter_map(|&slot| self.node(slot))
            .filter(|n| all || n.path.starts_with(prefix))
            .map(|n| n.path.to_string())
            .collect();
        paths.sort_unstable();
        paths
    }

    /// getACL: the ACL and Stat; needs READ or ADMIN, and without ADMIN digest ids come back
    /// as `user:x`.
    pub fn get_acl(&self, path: &str, auth: &[Id]) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        let acl = self.acl_of(node);
        require(acl, perms::READ | perms::ADMIN, auth)?;
        let list = if check_acl(acl, perms::ADMIN, auth) {
            acl.to_vec()
        } else {
            mask_digests(acl)
        };
        Ok((list, node.stat()))
    }

    /// multiRead: each op independently, a failure only failing its own entry.
    pub fn multi_read(
        &self,
        ops: &[ReadOp],
        auth: &[Id],
    ) -> Vec<Result<ReadResult<'_>, ErrorCode>> {
        ops.iter()
            .map(|op| match op {
                ReadOp::GetData(r) => self.get_data(&r.path, auth).map(ReadResult::Data),
                ReadOp::GetChildren(r) => {
                    self.get_children(&r.path, auth).map(ReadResult::Children)
                }
            })
            .collect()
    }
}
