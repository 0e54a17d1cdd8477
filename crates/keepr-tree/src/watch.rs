//! Watches: who is told about which change (ZooKeeper's `WatchManager`, 3.9).
//!
//! Watches are per connection and live on the member that holds the connection, so they are
//! kept apart from the replicated tree: every member applies the same commands, and each
//! feeds the resulting [`Triggers`] to its own `WatchManager` to learn which of its
//! connections get which events.
//!
//! Like ZooKeeper there are two tables. The data table holds the watches of exists/getData
//! and fires NodeCreated, NodeDeleted and NodeDataChanged; the child table holds those of
//! getChildren and fires NodeChildrenChanged and NodeDeleted. A (watcher, path) entry in a
//! table carries a set of modes: standard (one-shot, removed when it fires, even if the ACL
//! then withholds the event), persistent (kept in both tables) and persistent-recursive
//! (data table only; also fires for every descendant, and never hears NodeChildrenChanged).
//! One trigger reaches a watcher at most once, and a connection told of a NodeDeleted by the
//! data table is not told again by the child table. An event is delivered only if the
//! watcher's identities hold READ on the changed node (the parent for NodeChildrenChanged),
//! the 3.9 fix for CVE-2024-23944.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use keepr_wire::codes::{perms, watcher_type};
use keepr_wire::{ErrorCode, Id, SetWatches, SetWatches2};

use crate::acl::check_acl;
use crate::tree::Tree;
use crate::trigger::{EventType, Trigger, Triggers};

/// Identifies a watcher: a connection, chosen by the server.
pub type WatcherId = u64;

const STANDARD: u8 = 1;
const PERSISTENT: u8 = 2;
const RECURSIVE: u8 = 4;

/// A watch to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// One-shot data watch (exists, getData).
    Data,
    /// One-shot child watch (getChildren, getChildren2).
    Child,
    /// addWatch mode 0: the path's own changes and its children, until removed.
    Persistent,
    /// addWatch mode 1: the path and every descendant, until removed.
    PersistentRecursive,
}

impl WatchKind {
    /// The kind for an `AddWatchRequest.mode`.
    pub fn from_add_watch_mode(mode: i32) -> Option<WatchKind> {
        match mode {
            keepr_wire::codes::add_watch_mode::PERSISTENT => Some(WatchKind::Persistent),
            keepr_wire::codes::add_watch_mode::PERSISTENT_RECURSIVE => {
                Some(WatchKind::PersistentRecursive)
            }
            _ => None,
        }
    }
}

/// A read that can ask for a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchedRead {
    Exists,
    GetData,
    GetChildren,
}

impl WatchedRead {
    /// The watch such a read with `watch=true` registers, given the error code it answered
    /// (`ErrorCode::Ok` for success). exists registers its data watch even on NONODE (that is
    /// how a client waits for a node to appear); nothing is registered on any other error.
    pub fn watch_for(self, code: ErrorCode) -> Option<WatchKind> {
        match (self, code) {
            (WatchedRead::Exists, ErrorCode::Ok | ErrorCode::NoNode) => Some(WatchKind::Data),
            (WatchedRead::GetData, ErrorCode::Ok) => Some(WatchKind::Data),
            (WatchedRead::GetChildren, ErrorCode::Ok) => Some(WatchKind::Child),
            _ => None,
        }
    }
}

/// An event for one watcher. The server sends it as `WatcherEvent{type, SyncConnected,
/// path}` after a reply header with xid -1 and the zxid of the change (-1 for events from
/// setWatches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub watcher: WatcherId,
    pub event: EventType,
    pub path: Arc<str>,
}

/// Watch counts for `wchs`-style reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// Watchers with at least one watch.
    pub connections: usize,
    /// Distinct watched paths.
    pub paths: usize,
    /// (table, path, watcher) entries: ZooKeeper's `watch_count`.
    pub watches: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Data,
    Child,
}

#[derive(Debug, Clone, Default)]
struct Watcher {
    auth: Vec<Id>,
    data_paths: HashSet<Arc<str>>,
    child_paths: HashSet<Arc<str>>,
}

impl Watcher {
    fn paths_mut(&mut self, table: Table) -> &mut HashSet<Arc<str>> {
        match table {
            Table::Data => &mut self.data_paths,
            Table::Child => &mut self.child_paths,
        }
    }
    fn has_watches(&self) -> bool {
        !self.data_paths.is_empty() || !self.child_paths.is_empty()
    }
}

type PathWatchers = BTreeMap<WatcherId, u8>;

/// Every watch held on this member, and which events the applied changes raise for them.
#[derive(Debug, Clone, Default)]
pub struct WatchManager {
    data: HashMap<Arc<str>, PathWatchers>,
    child: HashMap<Arc<str>, PathWatchers>,
    watchers: HashMap<WatcherId, Watcher>,
    /// Entries with the recursive mode: while 0, a change only looks at its own path.
    recursive: usize,
    entries: usize,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    fn table_mut(&mut self, table: Table) -> &mut HashMap<Arc<str>, PathWatchers> {
        match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }

    fn table(&self, table: Table) -> &HashMap<Arc<str>, PathWatchers> {
        match table {
            Table::Data => &self.data,
            Table::Child => &self.child,
        }
    }

    /// Sets the identities of `watcher` (its connection's `ip:` and `digest:` ids…), which
    /// decide the events it may receive. Call again after each successful addAuth.
    pub fn set_auth(&mut self, watcher: WatcherId, auth: Vec<Id>) {
        self.watchers.entry(watcher).or_default().auth = auth;
    }

    fn add_mode(&mut self, table: Table, watcher: WatcherId, path: &str, mode: u8) {
        let key: Arc<str> = match self.table(table).get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        let modes = self
            .table_mut(table)
            .entry(key.clone())
            .or_default()
            .entry(watcher)
            .or_insert(0);
        let before = *modes;
        *modes |= mode;
        if before == 0 {
            self.entries += 1;
            self.watchers
                .entry(watcher)
                .or_default()
                .paths_mut(table)
                .insert(key);
        }
        if before & RECURSIVE == 0 && mode & RECURSIVE != 0 {
            self.recursive += 1;
        }
    }

    /// Registers a watch for `watcher` on `path` (which need not exist).
    pub fn add_watch(&mut self, watcher: WatcherId, path: &str, kind: WatchKind) {
        match kind {
            WatchKind::Data => self.add_mode(Table::Data, watcher, path, STANDARD),
            WatchKind::Child => self.add_mode(Table::Child, watcher, path, STANDARD),
            WatchKind::Persistent => {
                self.add_mode(Table::Data, watcher, path, PERSISTENT);
                self.add_mode(Table::Child, watcher, path, PERSISTENT);
            }
            WatchKind::PersistentRecursive => self.add_mode(Table::Data, watcher, path, RECURSIVE),
        }
    }

    /// Registers the watch a read with `watch=true` sets, given its outcome (see
    /// [`WatchedRead::watch_for`]). Call it before the tree can change again (under the
    /// same read lock as the read) so that no change slips between the read and the watch.
    pub fn watch_after_read(
        &mut self,
        watcher: WatcherId,
        read: WatchedRead,
        path: &str,
        code: ErrorCode,
    ) {
        if let Some(kind) = read.watch_for(code) {
            self.add_watch(watcher, path, kind);
        }
    }

    /// Clears modes `mode` (all modes if `None`) of `watcher` on `path` in `table`; true if
    /// anything was removed.
    fn remove_modes(
        &mut self,
        table: Table,
        watcher: WatcherId,
        path: &str,
        mode: Option<u8>,
    ) -> bool {
        let Some(watchers) = self.table_mut(table).get_mut(path) else {
            return false;
        };
        let Some(modes) = watchers.get_mut(&watcher) else {
            return false;
        };
        let before = *modes;
        *modes &= !mode.unwrap_or(u8::MAX);
        let after = *modes;
        if after == 0 {
            watchers.remove(&watcher);
            if watchers.is_empty() {
                self.table_mut(table).remove(path);
            }
            self.entries -= 1;
            if let Some(w) = self.watchers.get_mut(&watcher) {
                w.paths_mut(table).remove(path);
            }
        }
        if before & RECURSIVE != 0 && after & RECURSIVE == 0 {
            self.recursive -= 1;
        }
        before != after
    }

    fn has_mode(&self, table: Table, watcher: WatcherId, path: &str, mode: Option<u8>) -> bool {
        self.table(table)
            .get(path)
            .and_then(|w| w.get(&watcher))
            .is_some_and(|&m| mode.is_none_or(|mode| m & mode != 0))
    }

    /// removeWatches: removes the watches of `watcher_type` (`WatcherType`: 1 children,
    /// 2 data, 3 any, 4 persistent, 5 persistent-recursive). NOWATCHER if there was none;
    /// MARSHALLINGERROR for an unknown type. Types 1-3 remove a watch of any mode from their
    /// table, as ZooKeeper 3.8 does (its clients have no other way to drop a persistent
    /// watch); types 4 and 5, added in 3.9, remove only that mode.
    pub fn remove_watches(
        &mut self,
        watcher: WatcherId,
        path: &str,
        watcher_type: i32,
    ) -> Result<(), ErrorCode> {
        let removed = match watcher_type {
            watcher_type::CHILDREN => self.remove_modes(Table::Child, watcher, path, None),
            watcher_type::DATA => self.remove_modes(Table::Data, watcher, path, None),
            watcher_type::ANY => {
                let c = self.remove_modes(Table::Child, watcher, path, None);
                self.remove_modes(Table::Data, watcher, path, None) | c
            }
            watcher_type::PERSISTENT => {
                let c = self.remove_modes(Table::Child, watcher, path, Some(PERSISTENT));
                self.remove_modes(Table::Data, watcher, path, Some(PERSISTENT)) | c
            }
            watcher_type::PERSISTENT_RECURSIVE => {
                self.remove_modes(Table::Data, watcher, path, Some(RECURSIVE))
            }
            _ => return Err(ErrorCode::MarshallingError),
        };
        if removed {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// checkWatches: whether `watcher` holds a watch of `watcher_type` on `path`; NOWATCHER
    /// if not, MARSHALLINGERROR for an unknown type.
    pub fn check_watches(
        &self,
        watcher: WatcherId,
        path: &str,
        watcher_type: i32,
    ) -> Result<(), ErrorCode> {
        let found = match watcher_type {
            watcher_type::CHILDREN => self.has_mode(Table::Child, watcher, path, None),
            watcher_type::DATA => self.has_mode(Table::Data, watcher, path, None),
            watcher_type::ANY => {
                self.has_mode(Table::Child, watcher, path, None)
                    || self.has_mode(Table::Data, watcher, path, None)
            }
            watcher_type::PERSISTENT => self.has_mode(Table::Data, watcher, path, Some(PERSISTENT)),
            watcher_type::PERSISTENT_RECURSIVE => {
                self.has_mode(Table::Data, watcher, path, Some(RECURSIVE))
            }
            _ => return Err(ErrorCode::MarshallingError),
        };
        if found {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// Forgets `watcher` and all its watches (its connection closed).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(w) = self.watchers.remove(&watcher) else {
            return;
        };
        for (table, paths) in [(Table::Data, w.data_paths), (Table::Child, w.child_paths)] {
            for path in paths {
                let map = match table {
                    Table::Data => &mut self.data,
                    Table::Child => &mut self.child,
                };
                let Some(watchers) = map.get_mut(&path) else {
                    continue;
                };
                if let Some(modes) = watchers.remove(&watcher) {
                    self.entries -= 1;
                    if modes & RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                }
                if watchers.is_empty() {
                    map.remove(&path);
                }
            }
        }
    }

    /// Works out the events of one applied command's triggers, appending them to `out` in
    /// trigger order (watchers in id order within a trigger), and removes the one-shot
    /// watches that fired.
    pub fn process(&mut self, triggers: &Triggers, out: &mut Vec<WatchEvent>) {
        if self.entries == 0 {
            return;
        }
        for t in triggers.iter() {
            match t.event {
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    self.fire(Table::Data, &t, &[], out);
                }
                EventType::NodeDeleted => {
                    let told = self.fire(Table::Data, &t, &[], out);
                    self.fire(Table::Child, &t, &told, out);
                }
                EventType::NodeChildrenChanged => {
                    self.fire(Table::Child, &t, &[], out);
                }
            }
        }
    }

    /// Fires one trigger in one table; returns the watchers it matched (sorted), delivered
    /// or not.
    fn fire(
        &mut self,
        table: Table,
        t: &Trigger<'_>,
        suppress: &[WatcherId],
        out: &mut Vec<WatchEvent>,
    ) -> Vec<WatcherId> {
        let mut matched = Vec::new();
        let mut spent = Vec::new();
        if let Some(watchers) = self.table_mut(table).get_mut(t.path) {
            for (&w, modes) in watchers.iter_mut() {
                matched.push(w);
                if *modes & STANDARD != 0 {
                    *modes &= !STANDARD;
                    if *modes == 0 {
                        spent.push(w);
                    }
                }
            }
        }
        for w in spent {
            self.remove_modes(table, w, t.path, None);
        }
        if table == Table::Data && self.recursive > 0 {
            let mut p = t.path;
            while let Some(parent) = parent_of(p) {
                if let Some(watchers) = self.data.get(parent) {
                    matched.extend(
                        watchers
                            .iter()
                            .filter(|(_, &m)| m & RECURSIVE != 0)
                            .map(|(&w, _)| w),
                    );
                }
                p = parent;
            }
        }
        if matched.is_empty() {
            return matched;
        }
        matched.sort_unstable();
        matched.dedup();
        let path: Arc<str> = Arc::from(t.path);
        for &w in &matched {
            if suppress.binary_search(&w).is_ok() {
                continue;
            }
            let auth = self.watchers.get(&w).map_or(&[][..], |x| &x.auth[..]);
            if check_acl(t.acl, perms::READ, auth) {
                out.push(WatchEvent {
                    watcher: w,
                    event: t.event,
                    path: path.clone(),
                });
            }
        }
        matched
    }

    /// setWatches (101), sent on reconnect: fires at once what the watcher missed since
    /// `relativeZxid` and re-arms the rest (`DataTree.setWatches`). These events are not
    /// ACL-filtered, as in ZooKeeper 3.9.
    pub fn set_watches(
        &mut self,
        watcher: WatcherId,
        tree: &Tree,
        req: &SetWatches,
        out: &mut Vec<WatchEvent>,
    ) {
        self.set_watches_lists(
            watcher,
            tree,
            req.relative_zxid,
            [
                &req.data_watches,
                &req.exist_watches,
                &req.child_watches,
                &[],
                &[],
            ],
            out,
        );
    }

    /// setWatches2 (105): setWatches plus persistent and persistent-recursive watches, which
    /// are re-registered without catch-up.
    pub fn set_watches2(
        &mut self,
        watcher: WatcherId,
        tree: &Tree,
        req: &SetWatches2,
        out: &mut Vec<WatchEvent>,
    ) {
        self.set_watches_lists(
            watcher,
            tree,
            req.relative_zxid,
            [
                &req.data_watches,
                &req.exist_watches,
                &req.child_watches,
                &req.persistent_watches,
                &req.persistent_recursive_watches,
            ],
            out,
        );
    }

    fn set_watches_lists(
        &mut self,
        watcher: WatcherId,
        tree: &Tree,
        relative_zxid: i64,
        [data, exist, child, persistent, recursive]: [&[String]; 5],
        out: &mut Vec<WatchEvent>,
    ) {
        let mut event = |event, path: &str| {
            out.push(WatchEvent {
                watcher,
                event,
                path: Arc::from(path),
            })
        };
        for path in data {
            match tree.stat(path) {
                None => event(EventType::NodeDeleted, path),
                Some(s) if s.mzxid > relative_zxid => event(EventType::NodeDataChanged, path),
                Some(_) => self.add_watch(watcher, path, WatchKind::Data),
            }
        }
        for path in exist {
            match tree.stat(path) {
                Some(_) => event(EventType::NodeCreated, path),
                None => self.add_watch(watcher, path, WatchKind::Data),
            }
        }
        for path in child {
            match tree.stat(path) {
                None => event(EventType::NodeDeleted, path),
                Some(s) if s.pzxid > relative_zxid => event(EventType::NodeChildrenChanged, path),
                Some(_) => self.add_watch(watcher, path, WatchKind::Child),
            }
        }
        for path in persistent {
            self.add_watch(watcher, path, WatchKind::Persistent);
        }
        for path in recursive {
            self.add_watch(watcher, path, WatchKind::PersistentRecursive);
        }
    }

    /// ZooKeeper's `watch_count`: (table, path, watcher) entries, so a persistent watch counts
    /// twice (it sits in both tables).
    pub fn watch_count(&self) -> usize {
        self.entries
    }

    /// Watchers holding any watch on `path`.
    pub fn watchers_on(&self, path: &str) -> Vec<WatcherId> {
        let mut v: Vec<WatcherId> = self
            .data
            .get(path)
            .into_iter()
            .chain(self.child.get(path))
            .flat_map(|w| w.keys().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Paths on which `watcher` holds any watch, sorted.
    pub fn paths_of(&self, watcher: WatcherId) -> Vec<String> {
        let Some(w) = self.watchers.get(&watcher) else {
            return Vec::new();
        };
        let mut v: Vec<String> = w
            .data_paths
            .union(&w.child_paths)
            .map(|p| p.to_string())
            .collect();
        v.sort_unstable();
        v
    }

    /// Totals for `wchs`.
    pub fn summary(&self) -> WatchSummary {
        let paths: HashSet<&str> = self
            .data
            .keys()
            .chain(self.child.keys())
            .map(|k| &**k)
            .collect();
        WatchSummary {
            connections: self.watchers.values().filter(|w| w.has_watches()).count(),
            paths: paths.len(),
            watches: self.entries,
        }
    }
}

/// The parent of a path for recursive matching: `/a/b` → `/a` → `/` → none.
fn parent_of(path: &str) -> Option<&str> {
    if path == "/" || path.is_empty() {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}
