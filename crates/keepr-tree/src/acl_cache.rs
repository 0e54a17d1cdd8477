//! Deduplicated ACL lists, shared by every node that uses them (the idea of ZooKeeper's
//! `ReferenceCountedACLCache`).
//!
//! Almost every tree uses a handful of distinct ACLs across millions of nodes, so a node
//! stores a 4-byte handle instead of its list. Lists are reference counted and freed when the
//! last node lets go; a freed handle is reused by the next new list. Lists are `Arc`s so that
//! a watch trigger can carry the ACL of a node that its own change deleted.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};
use keepr_wire::Acl;

/// A shared, immutable ACL list.
pub type AclList = Arc<[Acl]>;

/// A handle to a list in the cache.
pub(crate) type AclId = u32;

#[derive(Debug, Clone)]
struct Entry {
    list: AclList,
    refs: u64,
}

/// Hashes a list by content (the wire records do not implement `Hash`).
fn hash_list<H: Hasher>(acl: &[Acl], h: &mut H) {
    acl.len().hash(h);
    for a in acl {
        a.perms.hash(h);
        a.id.scheme.hash(h);
        a.id.id.hash(h);
    }
}

/// A list as a map key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key(AclList);

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_list(&self.0, h)
    }
}

/// A borrowed list looking up a [`Key`].
struct Lookup<'a>(&'a [Acl]);

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_list(self.0, h)
    }
}

impl Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self.0 == *key.0
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AclCache {
    entries: Vec<Option<Entry>>,
    free: Vec<AclId>,
    by_list: HashMap<Key, AclId>,
}

impl AclCache {
    /// Takes a reference to `acl`, adding it if it is new.
    pub fn acquire(&mut self, acl: &[Acl]) -> AclId {
        if let Some(&id) = self.by_list.get(&Lookup(acl)) {
            if let Some(Some(e)) = self.entries.get_mut(id as usize) {
                e.refs += 1;
                return id;
            }
        }
        self.insert(Arc::from(acl))
    }

    /// Takes a reference to an already shared list.
    pub fn acquire_shared(&mut self, list: &AclList) -> AclId {
        if let Some(&id) = self.by_list.get(&Lookup(list)) {
            if let Some(Some(e)) = self.entries.get_mut(id as usize) {
                e.refs += 1;
                return id;
            }
        }
        self.insert(list.clone())
    }

    fn insert(&mut self, list: AclList) -> AclId {
        let entry = Entry {
            list: list.clone(),
            refs: 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.entries.get_mut(id as usize) {
                    *slot = Some(entry);
                }
                id
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as AclId
            }
        };
        self.by_list.insert(Key(list), id);
        id
    }

    /// Drops one reference, freeing the list with the last one.
    pub fn release(&mut self, id: AclId) {
        let Some(slot) = self.entries.get_mut(id as usize) else {
            return;
        };
        let Some(e) = slot else {
            return;
        };
        e.refs -= 1;
        if e.refs == 0 {
            if let Some(e) = slot.take() {
                self.by_list.remove(&Lookup(&e.list));
            }
            self.free.push(id);
        }
    }

    /// The list behind a handle; the empty list for a handle the cache does not hold (which
    /// the tree never asks for).
    pub fn get(&self, id: AclId) -> &AclList {
        static EMPTY: std::sync::OnceLock<AclList> = std::sync::OnceLock::new();
        match self.entries.get(id as usize) {
            Some(Some(e)) => &e.list,
            _ => EMPTY.get_or_init(|| Arc::from(Vec::new())),
        }
    }

    /// Handles of every list held.
    pub fn ids(&self) -> impl Iterator<Item = AclId> + '_ {
        self.by_list.values().copied()
    }

    /// Number of distinct lists held.
    pub fn len(&self) -> usize {
        self.by_list.len()
    }

    /// Reference count of a handle (0 if free).
    pub fn refs(&self, id: AclId) -> u64 {
        match self.entries.get(id as usize) {
            Some(Some(e)) => e.refs,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{open_acl_unsafe, read_acl_unsafe};

    #[test]
    fn equal_lists_share_one_entry() {
        let mut c = AclCache::default();
        let a = c.acquire(&open_acl_unsafe());
        let b = c.acquire(&open_acl_unsafe());
        assert_eq!(a, b);
        assert_eq!(c.len(), 1);
        assert_eq!(c.refs(a), 2);
        assert_ne!(c.acquire(&read_acl_unsafe()), a);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn list_is_freed_with_its_last_reference_and_handle_reused() {
        let mut c = AclCache::default();
        let a = c.acquire(&open_acl_unsafe());
        let shared = c.get(a).clone();
        c.release(a);
        assert_eq!(c.len(), 0);
        assert_eq!(c.refs(a), 0);
        // The Arc handed out earlier stays valid after the entry is freed.
        assert_eq!(&*shared, &open_acl_unsafe()[..]);
        let b = c.acquire(&read_acl_unsafe());
        assert_eq!(a, b);
        assert_eq!(&**c.get(b), &read_acl_unsafe()[..]);
    }
}
