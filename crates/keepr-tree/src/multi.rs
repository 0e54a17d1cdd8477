//! multi: several writes applied atomically under one zxid.
//!
//! Ops run one after the other against the live tree, so each sees the effects of the ones
//! before it (ZooKeeper validates them the same way, against its pending-change overlay).
//! Each op records how to undo itself; when an op fails, the ones before it are undone in
//! reverse order and the triggers they fired are dropped, leaving the tree exactly as it
//! was. Undo entries name nodes by path, not slot, because undoing a delete may put the node
//! back in a different slot.

use keepr_wire::ErrorCode;

use crate::acl_cache::AclList;
use crate::apply::{CreateArgs, CreateMode, CreateOpcode, Ctx};
use crate::command::{MultiOp, OpResult, TxnResult};
use crate::node::Node;
use crate::path::split_parent;
use crate::tree::Tree;
use crate::trigger::Triggers;

/// How to undo one applied op of a multi.
#[derive(Debug)]
pub(crate) enum Undo {
    /// Remove the created node and give the parent back its create count and pzxid.
    Created {
        path: String,
        parent_cversion: i32,
        parent_pzxid: i64,
    },
    /// Put the deleted node back and give the parent back its pzxid.
    Deleted {
        node: Node,
        acl: AclList,
        parent_pzxid: i64,
    },
    /// Give the node back its data and data Stat fields.
    DataSet {
        path: String,
        data: Option<Box<[u8]>>,
        version: i32,
        mtime: i64,
        mzxid: i64,
    },
}

impl Tree {
    pub(crate) fn multi(
        &mut self,
        ctx: &Ctx<'_>,
        ops: &[MultiOp],
        triggers: &mut Triggers,
    ) -> TxnResult {
        // ZooKeeper checks the flags of create/create2/createContainer while it decodes the
        // request, and a bad one fails the whole request before any op runs.
        let bad_flags = ops.iter().any(|op| match op {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                CreateMode::from_flags(r.flags).is_none()
            }
            _ => false,
        });
        if bad_flags {
            return Err(ErrorCode::MarshallingError);
        }
        let mark = triggers.len();
        let mut undo = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.multi_op(ctx, op, triggers, &mut undo) {
                Ok(r) => results.push(Ok(r)),
                Err(code) => {
                    self.rollback(undo);
                    triggers.truncate(mark);
                    let mut failed: Vec<Result<OpResult, ErrorCode>> = vec![Err(ErrorCode::Ok); i];
                    failed.push(Err(code));
                    failed.resize(ops.len(), Err(ErrorCode::RuntimeInconsistency));
                    return Ok(OpResult::Multi(failed));
                }
            }
        }
        Ok(OpResult::Multi(results))
    }

    fn multi_op(
        &mut self,
        ctx: &Ctx<'_>,
        op: &MultiOp,
        triggers: &mut Triggers,
        undo: &mut Vec<Undo>,
    ) -> TxnResult {
        match op {
            MultiOp::Create(r) => self.create(
                ctx,
                &multi_create(CreateOpcode::Create, r),
                triggers,
                Some(undo),
            ),
            MultiOp::Create2(r) => self.create(
                ctx,
                &multi_create(CreateOpcode::Create2, r),
                triggers,
                Some(undo),
            ),
            MultiOp::CreateContainer(r) => self.create(
                ctx,
                &multi_create(CreateOpcode::Container, r),
                triggers,
                Some(undo),
            ),
            MultiOp::CreateTtl(r) => {
                // ZooKeeper's multi decoder keeps a createTTL op only if its flags are a TTL
                // mode; otherwise the op becomes a create (or createContainer) and its TTL is
                // dropped. Unknown flags act as persistent until create rejects them.
                let mode = CreateMode::from_flags(r.flags);
                let (opcode, ttl) = match mode {
                    Some(m) if m.ttl => (CreateOpcode::Ttl, r.ttl),
                    Some(m) if m.container => (CreateOpcode::Container, -1),
                    _ => (CreateOpcode::Create, -1),
                };
                let args = CreateArgs {
                    opcode,
                    path: &r.path,
                    data: &r.data,
                    acl: &r.acl,
                    flags: r.flags,
                    ttl,
                };
                self.create(ctx, &args, triggers, Some(undo))
            }
            MultiOp::Delete(r) => self.delete(ctx, &r.path, r.version, triggers, Some(undo)),
            MultiOp::SetData(r) => {
                self.set_data(ctx, &r.path, &r.data, r.version, triggers, Some(undo))
            }
            MultiOp::Check(r) => self.check(ctx, &r.path, r.version),
        }
    }

    fn rollback(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Created {
                    path,
                    parent_cversion,
                    parent_pzxid,
                } => {
                    let parent = split_parent(&path).and_then(|(p, _)| self.lookup(p));
                    if let (Some(slot), Some(parent)) = (self.lookup(&path), parent) {
                        self.remove_node(slot, parent);
                        if let Some(p) = self.node_mut(parent) {
                            p.cversion = parent_cversion;
                            p.pzxid = parent_pzxid;
                        }
                    }
                }
                Undo::Deleted {
                    mut node,
                    acl,
                    parent_pzxid,
                } => {
                    let parent = split_parent(&node.path).and_then(|(p, _)| self.lookup(p));
                    if let Some(parent) = parent {
                        node.acl = self.acls.acquire_shared(&acl);
                        self.insert_node(node, parent);
                        if let Some(p) = self.node_mut(parent) {
                            p.pzxid = parent_pzxid;
                        }
                    }
                }
                Undo::DataSet {
                    path,
                    data,
                    version,
                    mtime,
                    mzxid,
                } => {
                    if let Some(slot) = self.lookup(&path) {
                        self.replace_data(slot, data);
                        if let Some(n) = self.node_mut(slot) {
                            n.version = version;
                            n.mtime = mtime;
                            n.mzxid = mzxid;
                        }
                    }
                }
            }
        }
    }
}

/// A create/create2/createContainer op as ZooKeeper's multi decoder turns it into an `Op`:
/// a TTL mode makes it a createTTL (with no TTL, so it fails), a container mode a
/// createContainer.
fn multi_create(opcode: CreateOpcode, r: &keepr_wire::CreateRequest) -> CreateArgs<'_> {
    let mut args = CreateArgs::plain(opcode, r);
    match CreateMode::from_flags(r.flags) {
        Some(m) if m.ttl => args.opcode = CreateOpcode::Ttl,
        Some(m) if m.container => args.opcode = CreateOpcode::Container,
        _ => {}
    }
    args
}
