//! A small driver for tests: applies commands with increasing zxids and times and records
//! the triggers each fired.
#![allow(dead_code)]

use bytes::Bytes;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{Command, EventType, OpResult, Tree, TreeConfig, Triggers, TxnOp, TxnResult};
use keepr_wire::{
    Acl, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id, SetAclRequest,
    SetDataRequest, Stat,
};

pub const S1: i64 = 0x1000;
pub const S2: i64 = 0x2000;

pub struct Harness {
    pub tree: Tree,
    pub zxid: i64,
    pub time: i64,
    pub triggers: Triggers,
}

pub fn id(scheme: &str, id: &str) -> Id {
    Id {
        scheme: scheme.into(),
        id: id.into(),
    }
}

pub fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
    Acl {
        perms,
        id: id(scheme, i),
    }
}

pub fn data(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

pub fn create_req(path: &str, data: Option<Bytes>, acl: Vec<Acl>, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data,
        acl,
        flags,
    }
}

pub fn ttl_req(path: &str, flags: i32, ttl: i64) -> CreateTtlRequest {
    CreateTtlRequest {
        path: path.into(),
        data: None,
        acl: open_acl_unsafe(),
        flags,
        ttl,
    }
}

impl Harness {
    /// A fresh tree with sessions S1 and S2 open; zxids start at 100, times at 1_000_000.
    pub fn new() -> Harness {
        Harness::with_config(TreeConfig::default())
    }

    pub fn with_config(config: TreeConfig) -> Harness {
        let mut h = Harness {
            tree: Tree::new(config),
            zxid: 99,
            time: 1_000_000,
            triggers: Triggers::new(),
        };
        h.run_as(
            S1,
            &[],
            TxnOp::CreateSession {
                timeout: 10_000,
                passwd: [7; 16],
            },
        )
        .unwrap();
        h.run_as(
            S2,
            &[],
            TxnOp::CreateSession {
                timeout: 10_000,
                passwd: [7; 16],
            },
        )
        .unwrap();
        h
    }

    pub fn next_zxid(&self) -> i64 {
        self.zxid + 1
    }

    /// Applies `op` for `session` with identities `auth`; each command gets the next zxid
    /// and a time one second later.
    pub fn run_as(&mut self, session: i64, auth: &[Id], op: TxnOp) -> TxnResult {
        self.zxid += 1;
        self.time += 1000;
        let cmd = Command {
            zxid: self.zxid,
            time: self.time,
            session,
            owner: 0,
            auth: auth.to_vec(),
            op,
        };
        let r = self.tree.apply(&cmd, &mut self.triggers);
        if let Err(e) = self.tree.check_invariants() {
            panic!("invariant broken after {cmd:?}: {e}");
        }
        r
    }

    pub fn run(&mut self, op: TxnOp) -> TxnResult {
        self.run_as(S1, &[], op)
    }

    /// The (path, event) pairs the last command fired.
    pub fn fired(&self) -> Vec<(String, EventType)> {
        self.triggers
            .iter()
            .map(|t| (t.path.to_owned(), t.event))
            .collect()
    }

    pub fn create(&mut self, path: &str, flags: i32) -> TxnResult {
        self.run(TxnOp::Create2(create_req(
            path,
            None,
            open_acl_unsafe(),
            flags,
        )))
    }

    /// Creates a persistent node with data and returns its path.
    pub fn mk(&mut self, path: &str, d: &str) -> String {
        match self.run(TxnOp::Create(create_req(
            path,
            data(d),
            open_acl_unsafe(),
            0,
        ))) {
            Ok(OpResult::Create { path }) => path,
            other => panic!("create {path}: {other:?}"),
        }
    }

    pub fn created_path(&mut self, path: &str, flags: i32) -> String {
        match self.create(path, flags) {
            Ok(OpResult::Create2 { path, .. }) => path,
            other => panic!("create {path}: {other:?}"),
        }
    }

    pub fn delete(&mut self, path: &str, version: i32) -> TxnResult {
        self.run(TxnOp::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))
    }

    pub fn set(&mut self, path: &str, d: Option<Bytes>, version: i32) -> TxnResult {
        self.run(TxnOp::SetData(SetDataRequest {
            path: path.into(),
            data: d,
            version,
        }))
    }

    pub fn set_acl(&mut self, auth: &[Id], path: &str, acl: Vec<Acl>, version: i32) -> TxnResult {
        self.run_as(
            S1,
            auth,
            TxnOp::SetAcl(SetAclRequest {
                path: path.into(),
                acl,
                version,
            }),
        )
    }

    pub fn stat(&self, path: &str) -> Stat {
        self.tree
            .stat(path)
            .unwrap_or_else(|| panic!("no node {path}"))
    }

    pub fn children(&self, path: &str) -> Vec<String> {
        self.tree
            .get_children(path, &[])
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect()
    }
}

pub fn err(r: TxnResult) -> ErrorCode {
    match r {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}
