//! The watch triggers an applied change fires: which path changed, how, and the ACL that
//! decides who may hear about it.
//!
//! Applying happens millions of times a second and most changes are watched by nobody, so
//! triggers go into a caller-owned, reusable buffer: paths are appended to one string and
//! ACLs are shared handles, so a steady-state apply allocates nothing here.

use keepr_wire::codes::event_type;
use keepr_wire::Acl;

use crate::acl_cache::AclList;

/// A watch event type (`Watcher.Event.EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

impl EventType {
    /// The value of `WatcherEvent.type` on the wire.
    pub fn code(self) -> i32 {
        match self {
            EventType::NodeCreated => event_type::NODE_CREATED,
            EventType::NodeDeleted => event_type::NODE_DELETED,
            EventType::NodeDataChanged => event_type::NODE_DATA_CHANGED,
            EventType::NodeChildrenChanged => event_type::NODE_CHILDREN_CHANGED,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    end: usize,
    event: EventType,
    acl: AclList,
}

/// The triggers of one applied command, in the order ZooKeeper fires them.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    paths: String,
    entries: Vec<Entry>,
}

/// One trigger: `event` happened at `path`; a watcher hears of it only if `acl` grants it
/// READ (for NodeChildrenChanged this is the parent's ACL, else the node's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger<'a> {
    pub path: &'a str,
    pub event: EventType,
    pub acl: &'a [Acl],
}

impl Triggers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.paths.clear();
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn push(&mut self, path: &str, event: EventType, acl: AclList) {
        self.paths.push_str(path);
        self.entries.push(Entry {
            end: self.paths.len(),
            event,
            acl,
        });
    }

    /// Drops every trigger after the first `len` (a failed multi fires nothing).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.entries.truncate(len);
        let end = self.entries.last().map_or(0, |e| e.end);
        self.paths.truncate(end);
    }

    pub fn iter(&self) -> impl Iterator<Item = Trigger<'_>> + '_ {
        let mut start = 0;
        self.entries.iter().map(move |e| {
            let path = self.paths.get(start..e.end).unwrap_or_default();
            start = e.end;
            Trigger {
                path,
                event: e.event,
                acl: &e.acl,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::open_acl_unsafe;
    use std::sync::Arc;

    #[test]
    fn triggers_keep_order_and_truncate_drops_the_tail() {
        let acl: AclList = Arc::from(open_acl_unsafe());
        let mut t = Triggers::new();
        t.push("/a", EventType::NodeCreated, acl.clone());
        t.push("/", EventType::NodeChildrenChanged, acl.clone());
        t.push("/a/bb", EventType::NodeDeleted, acl.clone());
        let got: Vec<_> = t.iter().map(|t| (t.path, t.event)).collect();
        assert_eq!(
            got,
            [
                ("/a", EventType::NodeCreated),
                ("/", EventType::NodeChildrenChanged),
                ("/a/bb", EventType::NodeDeleted)
            ]
        );
        t.truncate(1);
        assert_eq!(t.iter().map(|t| t.path).collect::<Vec<_>>(), ["/a"]);
        t.push("/c", EventType::NodeDataChanged, acl.clone());
        assert_eq!(t.iter().map(|t| t.path).collect::<Vec<_>>(), ["/a", "/c"]);
        assert_eq!(EventType::NodeChildrenChanged.code(), 4);
    }
}
