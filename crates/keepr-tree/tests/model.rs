//! Model-based property test: random sequences of writes, reads, session changes and watch
//! registrations by several watchers are applied both to the tree and to a reference model
//! written as plainly as possible (a sorted map of path → node, children found by scanning,
//! multi applied to a copy). Results, error codes, Stats, data, ACLs, children, triggers and
//! the events every watcher receives must agree after every step; at the end the tree's
//! snapshot must round-trip.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use keepr_tree::acl::{creator_all_acl, open_acl_unsafe, read_acl_unsafe};
use keepr_tree::path::validate_path;
use keepr_tree::{
    Command, EventType, MultiOp, OpResult, Tree, TreeConfig, Triggers, TxnOp, TxnResult,
    WatchEvent, WatchKind, WatchManager, WatchedRead, MAX_TTL,
};
use keepr_wire::codes::perms;
use keepr_wire::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id,
    SetAclRequest, SetDataRequest, Stat,
};
use proptest::prelude::*;

const MAX_DATA: usize = 2;

// --- the model -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

#[derive(Debug, Clone)]
struct MNode {
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    creates: i32,
    aversion: i32,
    kind: MKind,
}

#[derive(Debug, Clone)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    sessions: BTreeMap<i64, i32>,
}

type Trig = (String, EventType, Vec<Acl>);

fn anyone(perms: i32) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }
}

fn parent_key(path: &str) -> Option<String> {
    let i = path.rfind('/')?;
    Some(if i == 0 {
        "/".to_string()
    } else {
        path[..i].to_string()
    })
}

fn digest_valid(id: &str) -> bool {
    matches!(id, "bob:h" | "amy:h2")
}

fn ip_valid(e: &str) -> bool {
    matches!(e, "127.0.0.0/8" | "10.0.0.1")
}

fn ip_match(id: &str, e: &str) -> bool {
    (e == "127.0.0.0/8" && id.starts_with("127.")) || (e == "10.0.0.1" && id == "10.0.0.1")
}

fn m_check(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|i| i.scheme == "super") {
        return true;
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        for i in auth {
            if i.scheme == a.id.scheme {
                if a.id.scheme == "digest" && i.id == a.id.id {
                    return true;
                }
                if a.id.scheme == "ip" && ip_match(&i.id, &a.id.id) {
                    return true;
                }
            }
        }
    }
    false
}

fn m_fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut uniq: Vec<Acl> = Vec::new();
    for a in acl {
        if !uniq.contains(a) {
            uniq.push(a.clone());
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::new();
    for a in uniq {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a);
        } else if a.id.scheme == "auth" {
            let mine: Vec<&Id> = auth.iter().filter(|i| i.scheme == "digest").collect();
            if mine.is_empty() {
                return Err(ErrorCode::InvalidAcl);
            }
            for i in mine {
                out.push(Acl {
                    perms: a.perms,
                    id: i.clone(),
                });
            }
        } else if (a.id.scheme == "digest" && digest_valid(&a.id.id))
            || (a.id.scheme == "ip" && ip_valid(&a.id.id))
        {
            out.push(a);
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

fn version_ok(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected == -1 || expected == current {
        Ok(current.wrapping_add(1))
    } else {
        Err(ErrorCode::BadVersion)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opc {
    Create,
    Create2,
    Container,
    Ttl,
}

impl Model {
    fn new() -> Model {
        let sys = |acl: Vec<Acl>| MNode {
            data: Some(vec![]),
            acl,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            creates: 0,
            aversion: 0,
            kind: MKind::Persistent,
        };
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), sys(open_acl_unsafe()));
        nodes.insert("/zookeeper".to_string(), sys(open_acl_unsafe()));
        nodes.insert("/zookeeper/quota".to_string(), sys(open_acl_unsafe()));
        // ZooKeeper sets its ACL with version -1, which lands in aversion.
        let mut config = sys(read_acl_unsafe());
        config.aversion = -1;
        nodes.insert("/zookeeper/config".to_string(), config);
        Model {
            nodes,
            sessions: BTreeMap::new(),
        }
    }

    fn get(&self, path: &str) -> Option<&MNode> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    fn children(&self, path: &str) -> Vec<String> {
        let key = if path.is_empty() { "/" } else { path };
        self.nodes
            .keys()
            .filter(|k| k.as_str() != "/" && parent_key(k).as_deref() == Some(key))
            .map(|k| k[k.rfind('/').unwrap() + 1..].to_string())
            .collect()
    }

    fn stat(&self, path: &str) -> Option<Stat> {
        let n = self.get(path)?;
        let kids = self.children(path).len() as i32;
        Some(Stat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.creates.wrapping_mul(2).wrapping_sub(kids),
            aversion: n.aversion,
            ephemeral_owner: if let MKind::Ephemeral(s) = n.kind {
                s
            } else {
                0
            },
            data_length: n.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children: kids,
            pzxid: n.pzxid,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        opc: Opc,
        path: &str,
        data: &Option<Bytes>,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
        c: &Command,
        trig: &mut Vec<Trig>,
    ) -> TxnResult {
        if data.as_ref().map_or(0, |d| d.len()) > MAX_DATA {
            return Err(ErrorCode::BadArguments);
        }
        if !(0..=6).contains(&flags) {
            return Err(ErrorCode::BadArguments);
        }
        let ttl_mode = flags == 5 || flags == 6;
        if opc == Opc::Ttl {
            if !ttl_mode || ttl <= 0 || ttl > MAX_TTL {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl_mode {
            return Err(ErrorCode::BadArguments);
        }
        if !self.sessions.contains_key(&c.session) {
            return Err(ErrorCode::SessionExpired);
        }
        if !path.contains('/') || path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = m_fixup(acl, &c.auth)?;
        let pk = parent_key(path).unwrap();
        let parent = self.nodes.get(&pk).ok_or(ErrorCode::NoNode)?;
        if !m_check(&parent.acl, perms::CREATE, &c.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let full = if matches!(flags, 2 | 3 | 6) {
            format!("{path}{:010}", parent.creates)
        } else {
            path.to_string()
        };
        if validate_path(&full).is_err() {
            return Err(ErrorCode::BadArguments);
        }
        if self.nodes.contains_key(&full) {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(parent.kind, MKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let kind = match opc {
            Opc::Container => MKind::Container,
            Opc::Ttl => MKind::Ttl(ttl),
            _ if flags == 1 || flags == 3 => MKind::Ephemeral(c.session),
            _ => MKind::Persistent,
        };
        let parent = self.nodes.get_mut(&pk).unwrap();
        parent.creates = parent.creates.wrapping_add(1);
        parent.pzxid = c.zxid;
        let parent_acl = parent.acl.clone();
        self.nodes.insert(
            full.clone(),
            MNode {
                data: data.as_ref().map(|d| d.to_vec()),
                acl: acl.clone(),
                czxid: c.zxid,
                mzxid: c.zxid,
                pzxid: c.zxid,
                ctime: c.time,
                mtime: c.time,
                version: 0,
                creates: 0,
                aversion: 0,
                kind,
            },
        );
        trig.push((full.clone(), EventType::NodeCreated, acl));
        trig.push((pk, EventType::NodeChildrenChanged, parent_acl));
        if opc == Opc::Create {
            Ok(OpResult::Create { path: full })
        } else {
            let stat = self.stat(&full).unwrap();
            Ok(OpResult::Create2 { path: full, stat })
        }
    }

    fn remove(&mut self, path: &str, zxid: i64, trig: &mut Vec<Trig>) {
        let node = self.nodes.remove(path).unwrap();
        let pk = parent_key(path).unwrap();
        let parent = self.nodes.get_mut(&pk).unwrap();
        if zxid > parent.pzxid {
            parent.pzxid = zxid;
        }
        trig.push((path.to_string(), EventType::NodeDeleted, node.acl));
        trig.push((pk, EventType::NodeChildrenChanged, parent.acl.clone()));
    }

    fn delete(&mut self, path: &str, version: i32, c: &Command, trig: &mut Vec<Trig>) -> TxnResult {
        if !self.sessions.contains_key(&c.session) {
            return Err(ErrorCode::SessionExpired);
        }
        let reserved = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"].contains(&path);
        if !path.contains('/') || path.contains('\0') || reserved {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self
            .nodes
            .get(&parent_key(path).unwrap())
            .ok_or(ErrorCode::NoNode)?;
        if !m_check(&parent.acl, perms::DELETE, &c.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        version_ok(node.version, version)?;
        if !self.children(path).is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(path, c.zxid, trig);
        Ok(OpResult::Delete)
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &Option<Bytes>,
        version: i32,
        c: &Command,
        trig: &mut Vec<Trig>,
    ) -> TxnResult {
        if data.as_ref().map_or(0, |d| d.len()) > MAX_DATA {
            return Err(ErrorCode::BadArguments);
        }
        if !self.sessions.contains_key(&c.session) {
            return Err(ErrorCode::SessionExpired);
        }
        if validate_path(path).is_err() {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        if !m_check(&node.acl, perms::WRITE, &c.auth) {
            return Err(ErrorCode::NoAuth);
        }
        node.version = version_ok(node.version, version)?;
        node.data = data.as_ref().map(|d| d.to_vec());
        node.mtime = c.time;
        node.mzxid = c.zxid;
        trig.push((
            path.to_string(),
            EventType::NodeDataChanged,
            node.acl.clone(),
        ));
        Ok(OpResult::SetData {
            stat: self.stat(path).unwrap(),
        })
    }

    fn check(&self, path: &str, version: i32, c: &Command) -> TxnResult {
        if !self.sessions.contains_key(&c.session) {
            return Err(ErrorCode::SessionExpired);
        }
        if validate_path(path).is_err() {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if !m_check(&node.acl, perms::READ, &c.auth) {
            return Err(ErrorCode::NoAuth);
        }
        version_ok(node.version, version)?;
        Ok(OpResult::Check)
    }

    fn apply(&mut self, c: &Command, trig: &mut Vec<Trig>) -> TxnResult {
        match &c.op {
            TxnOp::Create(r) => {
                self.create(Opc::Create, &r.path, &r.data, &r.acl, r.flags, -1, c, trig)
            }
            TxnOp::Create2(r) => {
                self.create(Opc::Create2, &r.path, &r.data, &r.acl, r.flags, -1, c, trig)
            }
            TxnOp::CreateContainer(r) => self.create(
                Opc::Container,
                &r.path,
                &r.data,
                &r.acl,
                r.flags,
                -1,
                c,
                trig,
            ),
            TxnOp::CreateTtl(r) => {
                self.create(Opc::Ttl, &r.path, &r.data, &r.acl, r.flags, r.ttl, c, trig)
            }
            TxnOp::Delete(r) => self.delete(&r.path, r.version, c, trig),
            TxnOp::SetData(r) => self.set_data(&r.path, &r.data, r.version, c, trig),
            TxnOp::Check(r) => self.check(&r.path, r.version, c),
            TxnOp::SetAcl(r) => {
                if !self.sessions.contains_key(&c.session) {
                    return Err(ErrorCode::SessionExpired);
                }
                if validate_path(&r.path).is_err() {
                    return Err(ErrorCode::BadArguments);
                }
                let acl = m_fixup(&r.acl, &c.auth)?;
                let node = self.nodes.get_mut(&r.path).ok_or(ErrorCode::NoNode)?;
                if !m_check(&node.acl, perms::ADMIN, &c.auth) {
                    return Err(ErrorCode::NoAuth);
                }
                node.aversion = version_ok(node.aversion, r.version)?;
                node.acl = acl;
                Ok(OpResult::SetAcl {
                    stat: self.stat(&r.path).unwrap(),
                })
            }
            TxnOp::Multi(ops) => {
                if ops.iter().any(|o| {
                    matches!(o, MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) if !(0..=6).contains(&r.flags))
                }) {
                    return Err(ErrorCode::MarshallingError);
                }
                let mut copy = self.clone();
                let mut sub_trig = Vec::new();
                let mut results = Vec::new();
                for (i, o) in ops.iter().enumerate() {
                    let r = match o {
                        MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                            let opc = match (o, r.flags) {
                                (_, 5 | 6) => Opc::Ttl,
                                (_, 4) => Opc::Container,
                                (MultiOp::Create(_), _) => Opc::Create,
                                (MultiOp::Create2(_), _) => Opc::Create2,
                                _ => Opc::Container,
                            };
                            copy.create(
                                opc,
                                &r.path,
                                &r.data,
                                &r.acl,
                                r.flags,
                                -1,
                                c,
                                &mut sub_trig,
                            )
                        }
                        MultiOp::CreateTtl(r) => {
                            let (opc, ttl) = match r.flags {
                                5 | 6 => (Opc::Ttl, r.ttl),
                                4 => (Opc::Container, -1),
                                _ => (Opc::Create, -1),
                            };
                            copy.create(
                                opc,
                                &r.path,
                                &r.data,
                                &r.acl,
                                r.flags,
                                ttl,
                                c,
                                &mut sub_trig,
                            )
                        }
                        MultiOp::Delete(r) => copy.delete(&r.path, r.version, c, &mut sub_trig),
                        MultiOp::SetData(r) => {
                            copy.set_data(&r.path, &r.data, r.version, c, &mut sub_trig)
                        }
                        MultiOp::Check(r) => copy.check(&r.path, r.version, c),
                    };
                    match r {
                        Ok(v) => results.push(Ok(v)),
                        Err(e) => {
                            let mut out: Vec<Result<OpResult, ErrorCode>> =
                                (0..i).map(|_| Err(ErrorCode::Ok)).collect();
                            out.push(Err(e));
                            while out.len() < ops.len() {
                                out.push(Err(ErrorCode::RuntimeInconsistency));
                            }
                            return Ok(OpResult::Multi(out));
                        }
                    }
                }
                *self = copy;
                trig.extend(sub_trig);
                Ok(OpResult::Multi(results))
            }
            TxnOp::CreateSession { timeout, .. } => {
                if c.session == 0 || self.sessions.contains_key(&c.session) {
                    return Err(ErrorCode::BadArguments);
                }
                self.sessions.insert(c.session, *timeout);
                Ok(OpResult::Session)
            }
            // Every command of the model has owner 0, so every session stays owned by 0.
            TxnOp::SetSessionOwner { previous } => {
                if !self.sessions.contains_key(&c.session) {
                    Err(ErrorCode::SessionExpired)
                } else if *previous != 0 {
                    Err(ErrorCode::SessionMoved)
                } else {
                    Ok(OpResult::Session)
                }
            }
            TxnOp::CloseSession => {
                if self.sessions.remove(&c.session).is_some() {
                    let mine: Vec<String> = self
                        .nodes
                        .iter()
                        .filter(|(_, n)| n.kind == MKind::Ephemeral(c.session))
                        .map(|(p, _)| p.clone())
                        .collect();
                    for p in mine {
                        self.remove(&p, c.zxid, trig);
                    }
                }
                Ok(OpResult::Session)
            }
            TxnOp::DeleteContainer { path } => {
                let reserved = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"]
                    .contains(&path.as_str());
                if !path.contains('/') || path.contains('\0') || reserved {
                    return Err(ErrorCode::BadArguments);
                }
                let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
                if !self.children(path).is_empty() {
                    return Err(ErrorCode::NotEmpty);
                }
                if matches!(node.kind, MKind::Ephemeral(_)) {
                    return Err(ErrorCode::BadVersion);
                }
                self.remove(path, c.zxid, trig);
                Ok(OpResult::Delete)
            }
        }
    }

    fn reapable(&self, now: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(p, n)| {
                self.children(p).is_empty()
                    && match n.kind {
                        MKind::Container => n.creates > 0,
                        MKind::Ttl(ttl) => now - n.mtime > ttl,
                        _ => false,
                    }
            })
            .map(|(p, _)| p.clone())
            .collect()
    }
}

// --- the watch model ---------------------------------------------------------------------

const ST: u8 = 0;
const PE: u8 = 1;
const RE: u8 = 2;
const DATA: u8 = 0;
const CHILD: u8 = 1;

#[derive(Default, Debug)]
struct MWatches {
    /// (watcher, table, path, mode)
    set: BTreeSet<(u64, u8, String, u8)>,
    auth: BTreeMap<u64, Vec<Id>>,
}

impl MWatches {
    fn add(&mut self, w: u64, path: &str, kind: WatchKind) {
        match kind {
            WatchKind::Data => {
                self.set.insert((w, DATA, path.into(), ST));
            }
            WatchKind::Child => {
                self.set.insert((w, CHILD, path.into(), ST));
            }
            WatchKind::Persistent => {
                self.set.insert((w, DATA, path.into(), PE));
                self.set.insert((w, CHILD, path.into(), PE));
            }
            WatchKind::PersistentRecursive => {
                self.set.insert((w, DATA, path.into(), RE));
            }
        }
    }

    fn count(&self) -> usize {
        self.set
            .iter()
            .map(|(w, t, p, _)| (*w, *t, p.clone()))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Watchers matched by `table` at `path` (with recursive ancestors for data), spending
    /// their one-shot watches.
    fn matched(&mut self, table: u8, path: &str) -> BTreeSet<u64> {
        let mut out: BTreeSet<u64> = self
            .set
            .iter()
            .filter(|(_, t, p, _)| *t == table && p == path)
            .map(|e| e.0)
            .collect();
        if table == DATA {
            let mut p = path.to_string();
            while p != "/" {
                p = parent_key(&p).unwrap();
                for e in self
                    .set
                    .iter()
                    .filter(|(_, t, q, m)| *t == DATA && *q == p && *m == RE)
                {
                    out.insert(e.0);
                }
            }
        }
        self.set
            .retain(|(_, t, p, m)| !(*t == table && p == path && *m == ST));
        out
    }

    fn events(&mut self, trig: &[Trig]) -> Vec<(u64, String, EventType)> {
        let mut out = Vec::new();
        for (path, ev, acl) in trig {
            let deliver = |ws: &BTreeSet<u64>,
                           skip: &BTreeSet<u64>,
                           auth: &BTreeMap<u64, Vec<Id>>,
                           out: &mut Vec<_>| {
                for w in ws {
                    if !skip.contains(w)
                        && m_check(acl, perms::READ, auth.get(w).map_or(&[][..], |v| v))
                    {
                        out.push((*w, path.clone(), *ev));
                    }
                }
            };
            match ev {
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    let m = self.matched(DATA, path);
                    deliver(&m, &BTreeSet::new(), &self.auth, &mut out);
                }
                EventType::NodeDeleted => {
                    let m = self.matched(DATA, path);
                    deliver(&m, &BTreeSet::new(), &self.auth, &mut out);
                    let c = self.matched(CHILD, path);
                    deliver(&c, &m, &self.auth, &mut out);
                }
                EventType::NodeChildrenChanged => {
                    let c = self.matched(CHILD, path);
                    deliver(&c, &BTreeSet::new(), &self.auth, &mut out);
                }
            }
        }
        out
    }
}

// --- generators ----------------------------------------------------------------------------

const PATHS: &[&str] = &[
    "/a",
    "/b",
    "/c",
    "/a/b",
    "/a/c",
    "/b/a",
    "/a/b/c",
    "/b/b",
    "/c/a",
    "/a/b/d",
    "/a/s",
    "/a/s0000000000",
    "/a/s0000000001",
    "/a/s0000000002",
    "/s0000000001",
    "/s0000000002",
    "/zookeeper",
    "/zookeeper/x",
    "/zookeeper/config",
    "/",
    "bad",
    "/a/",
    "/a//b",
    "",
];

/// Mostly the first few (valid, shallow) paths, so that trees grow.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&PATHS[..3]),
        6 => prop::sample::select(&PATHS[3..10]),
        2 => prop::sample::select(&PATHS[10..16]),
        1 => prop::sample::select(&PATHS[16..]),
    ]
    .prop_map(String::from)
}

fn data() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        9 => prop::sample::select(vec![None, Some(""), Some("x"), Some("yy")]),
        1 => Just(Some("zzz")),
    ]
    .prop_map(|d| d.map(|s| Bytes::copy_from_slice(s.as_bytes())))
}

fn id(s: &str, i: &str) -> Id {
    Id {
        scheme: s.into(),
        id: i.into(),
    }
}

fn acl_list() -> impl Strategy<Value = Vec<Acl>> {
    let bob = Acl {
        perms: perms::ALL,
        id: id("digest", "bob:h"),
    };
    prop::sample::select(vec![
        open_acl_unsafe(),
        open_acl_unsafe(),
        open_acl_unsafe(),
        open_acl_unsafe(),
        open_acl_unsafe(),
        open_acl_unsafe(),
        read_acl_unsafe(),
        vec![anyone(perms::ALL & !perms::ADMIN)],
        vec![anyone(perms::READ | perms::CREATE), bob.clone()],
        vec![bob.clone(), bob.clone()],
        creator_all_acl(),
        vec![],
        vec![Acl {
            perms: perms::ALL,
            id: id("ip", "127.0.0.0/8"),
        }],
        vec![Acl {
            perms: perms::ALL,
            id: id("ip", "bogus"),
        }],
        vec![Acl {
            perms: perms::ALL,
            id: id("digest", "x:"),
        }],
        vec![
            Acl {
                perms: perms::READ,
                id: id("digest", "amy:h2"),
            },
            anyone(perms::CREATE | perms::DELETE),
        ],
    ])
}

fn auth() -> impl Strategy<Value = Vec<Id>> {
    prop::sample::select(vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![id("digest", "bob:h")],
        vec![id("ip", "127.0.0.1"), id("digest", "amy:h2")],
        vec![id("ip", "10.0.0.1")],
        vec![id("super", "")],
    ])
}

fn version() -> impl Strategy<Value = i32> {
    prop::sample::select(vec![-1, -1, 0, 1, 2])
}

fn flags() -> impl Strategy<Value = i32> {
    prop_oneof![
        10 => prop::sample::select(vec![0, 0, 0, 1, 1, 2, 2, 3, 4]),
        1 => prop::sample::select(vec![5, 6, 7, -1]),
    ]
}

fn ttl() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![-1, 0, 500, 3000, MAX_TTL + 1])
}

fn create_req() -> impl Strategy<Value = CreateRequest> {
    (path(), data(), acl_list(), flags()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn ttl_req() -> impl Strategy<Value = CreateTtlRequest> {
    (create_req(), ttl()).prop_map(|(r, ttl)| CreateTtlRequest {
        path: r.path,
        data: r.data,
        acl: r.acl,
        flags: r.flags,
        ttl,
    })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create_req().prop_map(MultiOp::Create),
        create_req().prop_map(MultiOp::Create2),
        create_req().prop_map(MultiOp::CreateContainer),
        ttl_req().prop_map(MultiOp::CreateTtl),
        (path(), version())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (path(), data(), version()).prop_map(|(path, data, version)| MultiOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        (path(), version())
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
    ]
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    prop_oneof![
        9 => create_req().prop_map(TxnOp::Create),
        9 => create_req().prop_map(TxnOp::Create2),
        1 => create_req().prop_map(TxnOp::CreateContainer),
        1 => ttl_req().prop_map(TxnOp::CreateTtl),
        2 => (path(), version()).prop_map(|(path, version)| TxnOp::Delete(DeleteRequest { path, version })),
        3 => (path(), data(), version()).prop_map(|(path, data, version)| TxnOp::SetData(SetDataRequest { path, data, version })),
        1 => (path(), acl_list(), version()).prop_map(|(path, acl, version)| TxnOp::SetAcl(SetAclRequest { path, acl, version })),
        1 => (path(), version()).prop_map(|(path, version)| TxnOp::Check(CheckVersionRequest { path, version })),
        2 => prop::collection::vec(multi_op(), 0..5).prop_map(TxnOp::Multi),
        2 => (0..3i32).prop_map(|t| TxnOp::CreateSession { timeout: 1000 * t, passwd: [7; 16] }),
        1 => Just(TxnOp::CloseSession),
        1 => path().prop_map(|path| TxnOp::DeleteContainer { path }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Write {
        session: i64,
        auth: Vec<Id>,
        op: TxnOp,
    },
    Read {
        kind: u8,
        path: String,
        auth: Vec<Id>,
        watcher: Option<u64>,
    },
    AddWatch {
        watcher: u64,
        path: String,
        kind: WatchKind,
    },
    RemoveWatches {
        watcher: u64,
        path: String,
        watcher_type: i32,
    },
    SetAuth {
        watcher: u64,
        auth: Vec<Id>,
    },
    Reap {
        after_ms: i64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let session = prop_oneof![9 => prop::sample::select(vec![1i64, 1, 1, 2]), 1 => prop::sample::select(vec![3i64, 0])];
    let watcher = 1u64..4;
    let kind = prop::sample::select(vec![
        WatchKind::Data,
        WatchKind::Child,
        WatchKind::Persistent,
        WatchKind::PersistentRecursive,
    ]);
    prop_oneof![
        12 => (session, auth(), txn_op()).prop_map(|(session, auth, op)| Step::Write { session, auth, op }),
        4 => (0u8..7, path(), auth(), prop::option::of(1u64..4)).prop_map(|(kind, path, auth, watcher)| Step::Read { kind, path, auth, watcher }),
        2 => (watcher.clone(), path(), kind).prop_map(|(watcher, path, kind)| Step::AddWatch { watcher, path, kind }),
        1 => (watcher.clone(), path(), 1..6i32).prop_map(|(watcher, path, watcher_type)| Step::RemoveWatches { watcher, path, watcher_type }),
        1 => (watcher, auth()).prop_map(|(watcher, auth)| Step::SetAuth { watcher, auth }),
        1 => (0i64..8000).prop_map(|after_ms| Step::Reap { after_ms }),
    ]
}

// --- comparison ----------------------------------------------------------------------------

fn assert_same_state(tree: &Tree, model: &Model) {
    let su = [id("super", "")];
    let mut seen = 0;
    for (path, node) in &model.nodes {
        let d = tree
            .get_data(path, &su)
            .unwrap_or_else(|e| panic!("{path} missing from tree: {e:?}"));
        assert_eq!(Some(d.stat.clone()), model.stat(path), "stat of {path}");
        assert_eq!(d.data.map(<[u8]>::to_vec), node.data, "data of {path}");
        assert_eq!(
            tree.get_acl(path, &su).unwrap().0,
            node.acl,
            "acl of {path}"
        );
        let mut kids = model.children(path);
        kids.sort();
        assert_eq!(
            tree.get_children(path, &su).unwrap(),
            kids,
            "children of {path}"
        );
        seen += 1;
    }
    assert_eq!(tree.node_count(), seen);
    assert_eq!(
        tree.sessions(),
        model
            .sessions
            .iter()
            .map(|(&k, &v)| (k, v))
            .collect::<Vec<_>>()
    );
    let eph = model
        .nodes
        .values()
        .filter(|n| matches!(n.kind, MKind::Ephemeral(_)))
        .count();
    assert_eq!(tree.ephemerals_count(), eph);
    tree.check_invariants().unwrap();
}

fn model_read(model: &Model, kind: u8, path: &str, auth: &[Id]) -> (String, ErrorCode) {
    let readable = |p: &str| -> Result<&MNode, ErrorCode> {
        let n = model.get(p).ok_or(ErrorCode::NoNode)?;
        if m_check(&n.acl, perms::READ, auth) {
            Ok(n)
        } else {
            Err(ErrorCode::NoAuth)
        }
    };
    let code = |r: Result<String, ErrorCode>| match r {
        Ok(s) => (s, ErrorCode::Ok),
        Err(e) => (String::new(), e),
    };
    code(match kind {
        0 => {
            if path.contains('\0') {
                Err(ErrorCode::BadArguments)
            } else {
                readable(path).map(|_| format!("{:?}", model.stat(path).unwrap()))
            }
        }
        1 => readable(path).map(|n| format!("{:?} {:?}", n.data, model.stat(path).unwrap())),
        2 => readable(path).map(|_| {
            let mut k = model.children(path);
            k.sort();
            format!("{k:?}")
        }),
        3 => readable(path).map(|_| {
            let n = if path.is_empty() {
                model.nodes.len()
            } else if path == "/" {
                model.nodes.len() - 1
            } else {
                model
                    .nodes
                    .keys()
                    .filter(|k| k.starts_with(&format!("{path}/")))
                    .count()
            };
            format!("{n}")
        }),
        4 => model.get(path).ok_or(ErrorCode::NoNode).and_then(|n| {
            if !m_check(&n.acl, perms::READ | perms::ADMIN, auth) {
                return Err(ErrorCode::NoAuth);
            }
            let list: Vec<Acl> = if m_check(&n.acl, perms::ADMIN, auth) {
                n.acl.clone()
            } else {
                n.acl
                    .iter()
                    .map(|a| {
                        let mut a = a.clone();
                        if a.id.scheme == "digest" {
                            a.id.id = format!("{}:x", a.id.id.split(':').next().unwrap());
                        }
                        a
                    })
                    .collect()
            };
            Ok(format!("{list:?}"))
        }),
        5 => readable(path).map(|_| {
            let mut k = model.children(path);
            k.sort();
            format!("{k:?} {:?}", model.stat(path).unwrap())
        }),
        _ => {
            let all = path.trim().is_empty() || path.trim() == "/";
            let v: Vec<&String> = model
                .nodes
                .iter()
                .filter(|(p, n)| n.kind == MKind::Ephemeral(1) && (all || p.starts_with(path)))
                .map(|(p, _)| p)
                .collect();
            Ok(format!("{v:?}"))
        }
    })
}

fn tree_read(tree: &Tree, kind: u8, path: &str, auth: &[Id]) -> (String, ErrorCode) {
    let code = |r: Result<String, ErrorCode>| match r {
        Ok(s) => (s, ErrorCode::Ok),
        Err(e) => (String::new(), e),
    };
    code(match kind {
        0 => tree.exists(path, auth).map(|s| format!("{s:?}")),
        1 => tree
            .get_data(path, auth)
            .map(|d| format!("{:?} {:?}", d.data.map(<[u8]>::to_vec), d.stat)),
        2 => tree.get_children(path, auth).map(|k| format!("{k:?}")),
        3 => tree
            .get_all_children_number(path, auth)
            .map(|n| format!("{n}")),
        4 => tree.get_acl(path, auth).map(|(l, _)| format!("{l:?}")),
        5 => tree
            .get_children2(path, auth)
            .map(|(k, s)| format!("{k:?} {s:?}")),
        _ => Ok(format!("{:?}", tree.get_ephemerals(1, path))),
    })
}

fn run(steps: Vec<Step>) {
    let config = TreeConfig {
        max_data_len: MAX_DATA,
    };
    let mut tree = Tree::new(config.clone());
    let mut model = Model::new();
    let mut wm = WatchManager::new();
    let mut mw = MWatches::default();
    let mut triggers = Triggers::new();
    let mut zxid = 10;
    let mut time = 1_000_000;
    let mut setup = vec![
        (
            1,
            TxnOp::CreateSession {
                timeout: 5000,
                passwd: [7; 16],
            },
        ),
        (
            2,
            TxnOp::CreateSession {
                timeout: 5000,
                passwd: [7; 16],
            },
        ),
    ];
    for p in ["/a", "/b", "/c", "/a/b"] {
        let r = CreateRequest {
            path: p.into(),
            data: None,
            acl: open_acl_unsafe(),
            flags: 0,
        };
        setup.push((1, TxnOp::Create(r)));
    }
    for (session, op) in setup {
        let c = Command {
            zxid,
            time,
            session,
            owner: 0,
            auth: vec![],
            op,
        };
        tree.apply(&c, &mut triggers).unwrap();
        model.apply(&c, &mut Vec::new()).unwrap();
        zxid += 1;
    }
    for step in steps {
        match step {
            Step::Write { session, auth, op } => {
                zxid += 1;
                time += 700;
                let c = Command {
                    zxid,
                    time,
                    session,
                    owner: 0,
                    auth,
                    op,
                };
                let mut expected_trig = Vec::new();
                let expected = model.apply(&c, &mut expected_trig);
                let got = tree.apply(&c, &mut triggers);
                assert_eq!(got, expected, "result of {c:?}");
                let got_trig: Vec<Trig> = triggers
                    .iter()
                    .map(|t| (t.path.to_string(), t.event, t.acl.to_vec()))
                    .collect();
                assert_eq!(got_trig, expected_trig, "triggers of {c:?}");
                let mut events = Vec::new();
                wm.process(&triggers, &mut events);
                let got_events: Vec<_> = events
                    .into_iter()
                    .map(|e: WatchEvent| (e.watcher, e.path.to_string(), e.event))
                    .collect();
                assert_eq!(got_events, mw.events(&expected_trig), "events of {c:?}");
                assert_eq!(wm.watch_count(), mw.count(), "watch count after {c:?}");
                assert_same_state(&tree, &model);
            }
            Step::Read {
                kind,
                path,
                auth,
                watcher,
            } => {
                let got = tree_read(&tree, kind, &path, &auth);
                assert_eq!(
                    got,
                    model_read(&model, kind, &path, &auth),
                    "read {kind} {path:?} {auth:?}"
                );
                let read = match kind {
                    0 => Some(WatchedRead::Exists),
                    1 => Some(WatchedRead::GetData),
                    2 | 5 => Some(WatchedRead::GetChildren),
                    _ => None,
                };
                if let (Some(w), Some(read)) = (watcher, read) {
                    wm.watch_after_read(w, read, &path, got.1);
                    let registers = match read {
                        WatchedRead::Exists => matches!(got.1, ErrorCode::Ok | ErrorCode::NoNode),
                        _ => got.1 == ErrorCode::Ok,
                    };
                    if registers {
                        mw.add(
                            w,
                            &path,
                            if read == WatchedRead::GetChildren {
                                WatchKind::Child
                            } else {
                                WatchKind::Data
                            },
                        );
                    }
                }
            }
            Step::AddWatch {
                watcher,
                path,
                kind,
            } => {
                wm.add_watch(watcher, &path, kind);
                mw.add(watcher, &path, kind);
            }
            Step::RemoveWatches {
                watcher,
                path,
                watcher_type,
            } => {
                let got = wm.remove_watches(watcher, &path, watcher_type);
                let before = mw.set.len();
                let same = |w: u64, p: &str| w == watcher && p == path;
                match watcher_type {
                    // 3.8: children/data remove a watch of any mode from that table.
                    1 => mw.set.retain(|(w, t, p, _)| !(same(*w, p) && *t == CHILD)),
                    2 => mw.set.retain(|(w, t, p, _)| !(same(*w, p) && *t == DATA)),
                    3 => mw.set.retain(|(w, _, p, _)| !same(*w, p)),
                    4 => mw.set.retain(|(w, _, p, m)| !(same(*w, p) && *m == PE)),
                    _ => mw
                        .set
                        .retain(|(w, t, p, m)| !(same(*w, p) && *t == DATA && *m == RE)),
                }
                let expected = if mw.set.len() < before {
                    Ok(())
                } else {
                    Err(ErrorCode::NoWatcher)
                };
                assert_eq!(
                    got, expected,
                    "removeWatches {watcher} {path} {watcher_type}"
                );
                assert_eq!(wm.watch_count(), mw.count());
            }
            Step::SetAuth { watcher, auth } => {
                wm.set_auth(watcher, auth.clone());
                mw.auth.insert(watcher, auth);
            }
            Step::Reap { after_ms } => {
                assert_eq!(
                    tree.reapable(time + after_ms),
                    model.reapable(time + after_ms)
                );
            }
        }
    }
    // The final tree survives a snapshot round trip, byte for byte.
    let mut bytes = Vec::new();
    tree.encode_snapshot(&mut bytes).unwrap();
    let restored = Tree::decode_snapshot(&bytes[..], config).unwrap();
    assert_same_state(&restored, &model);
    let mut again = Vec::new();
    restored.encode_snapshot(&mut again).unwrap();
    assert_eq!(bytes, again);
    assert_eq!(restored.last_zxid(), tree.last_zxid());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_reference_model(steps in prop::collection::vec(step(), 1..120)) {
        run(steps);
    }
}
