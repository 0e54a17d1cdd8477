//! Applying writes: every operation's checks, in ZooKeeper's order (which decides the error
//! code when several apply), and its effect on nodes, Stats and watch triggers.
//!
//! The order of checks follows `PrepRequestProcessor` (3.9). ZooKeeper validates against
//! pending changes on the leader and applies later; here both happen at once when the
//! command is applied, on every member, so results are the same everywhere.

use keepr_wire::codes::{create_flags, perms};
use keepr_wire::{Acl, Buffer, ErrorCode, Id, Stat};

use crate::acl::{fixup_acl, require};
use crate::command::{Command, OpResult, TxnOp, TxnResult};
use crate::multi::Undo;
use crate::node::{Kind, Node};
use crate::path::{is_reserved, split_parent, validate_path, watch_path};
use crate::tree::{Session, Tree};
use crate::trigger::{EventType, Triggers};

/// The largest TTL ZooKeeper accepts: 0xFF_FFFF_FFFF ms, about 34.9 years.
pub const MAX_TTL: i64 = 0x00FF_FFFF_FFFF;

/// The caller and the clock of the command being applied.
pub(crate) struct Ctx<'a> {
    pub zxid: i64,
    pub time: i64,
    pub session: i64,
    pub auth: &'a [Id],
}

/// Which create opcode a create runs as; with the flags it decides the node's kind and the
/// reply's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateOpcode {
    Create,
    Create2,
    Container,
    Ttl,
}

/// A create request, whichever record it came in.
pub(crate) struct CreateArgs<'a> {
    pub opcode: CreateOpcode,
    pub path: &'a str,
    pub data: &'a Buffer,
    pub acl: &'a [Acl],
    pub flags: i32,
    pub ttl: i64,
}

/// `CreateMode` decoded from flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    /// `CreateMode.fromFlag`; `None` for a flag ZooKeeper does not know.
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        let m = |ephemeral, sequential, container, ttl| CreateMode {
            ephemeral,
            sequential,
            container,
            ttl,
        };
        Some(match flags {
            create_flags::PERSISTENT => m(false, false, false, false),
            create_flags::EPHEMERAL => m(true, false, false, false),
            create_flags::PERSISTENT_SEQUENTIAL => m(false, true, false, false),
            create_flags::EPHEMERAL_SEQUENTIAL => m(true, true, false, false),
            create_flags::CONTAINER => m(false, false, true, false),
            create_flags::PERSISTENT_WITH_TTL => m(false, false, false, true),
            create_flags::PERSISTENT_SEQUENTIAL_WITH_TTL => m(false, true, false, true),
            _ => return None,
        })
    }
}

fn data_len(data: &Buffer) -> usize {
    data.as_ref().map_or(0, |d| d.len())
}

/// `checkAndIncVersion` as of 3.9: -1 skips the check; the new version is `+1` with Java's
/// int overflow.
fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

impl Tree {
    /// Applies one command: validates it against the current tree, changes the tree if it
    /// succeeds, and appends the watch triggers it fires to `triggers` (which it clears
    /// first). A failed command changes nothing and fires nothing. Every member applying the
    /// same commands in the same order gets the same results and the same tree.
    pub fn apply(&mut self, cmd: &Command, triggers: &mut Triggers) -> TxnResult {
        self.apply_at(cmd.zxid, cmd, triggers)
    }

    /// [`Tree::apply`] with the zxid given apart from the command (the server learns it
    /// from the log position, after the command was encoded and shared).
    pub fn apply_at(&mut self, zxid: i64, cmd: &Command, triggers: &mut Triggers) -> TxnResult {
        triggers.clear();
        // Every applied command moves the last zxid, failed ones included (as in ZooKeeper).
        self.last_zxid = self.last_zxid.max(zxid);
        if let Some(moved) = self.moved_session(cmd) {
            return moved;
        }
        let ctx = Ctx {
            zxid,
            time: cmd.time,
            session: cmd.session,
            auth: &cmd.auth,
        };
        let result = match &cmd.op {
            TxnOp::Create(r) => self.create(
                &ctx,
                &CreateArgs::plain(CreateOpcode::Create, r),
                triggers,
                None,
            ),
            TxnOp::Create2(r) => self.create(
                &ctx,
                &CreateArgs::plain(CreateOpcode::Create2, r),
                triggers,
                None,
            ),
            TxnOp::CreateContainer(r) => self.create(
                &ctx,
                &CreateArgs::plain(CreateOpcode::Container, r),
                triggers,
                None,
            ),
            TxnOp::CreateTtl(r) => self.create(
                &ctx,
                &CreateArgs {
                    opcode: CreateOpcode::Ttl,
                    path: &r.path,
                    data: &r.data,
                    acl: &r.acl,
                    flags: r.flags,
                    ttl: r.ttl,
                },
                triggers,
                None,
            ),
            TxnOp::Delete(r) => self.delete(&ctx, &r.path, r.version, triggers, None),
            TxnOp::SetData(r) => self.set_data(&ctx, &r.path, &r.data, r.version, triggers, None),
            TxnOp::SetAcl(r) => self.set_acl(&ctx, &r.path, &r.acl, r.version),
            TxnOp::Check(r) => self.check(&ctx, &r.path, r.version),
            TxnOp::Multi(ops) => self.multi(&ctx, ops, triggers),
            TxnOp::CreateSession { timeout, passwd } => {
                self.create_session(ctx.session, cmd.owner, *timeout, *passwd)
            }
            TxnOp::SetSessionOwner { previous } => match self.sessions.get_mut(&ctx.session) {
                Some(s) if s.owner == *previous => {
                    s.owner = cmd.owner;
                    Ok(OpResult::Session)
                }
                Some(_) => Err(ErrorCode::SessionMoved),
                None => Err(ErrorCode::SessionExpired),
            },
            TxnOp::CloseSession => self.close_session(&ctx, triggers),
            TxnOp::DeleteContainer { path } => self.delete_container(&ctx, path, triggers),
        };
        result
    }

    /// SESSIONMOVED for a client's command from a connection that no longer owns its session
    /// (ZooKeeper's owner check, made at apply time so every member agrees). The server's own
    /// commands (owner 0) and those that set the owner are not checked.
    fn moved_session(&self, cmd: &Command) -> Option<TxnResult> {
        if cmd.owner == 0
            || matches!(
                cmd.op,
                TxnOp::CreateSession { .. }
                    | TxnOp::SetSessionOwner { .. }
                    | TxnOp::DeleteContainer { .. }
            )
        {
            return None;
        }
        match self.sessions.get(&cmd.session) {
            Some(s) if s.owner != cmd.owner => Some(Err(ErrorCode::SessionMoved)),
            _ => None,
        }
    }

    fn check_session(&self, session: i64) -> Result<(), ErrorCode> {
        if self.sessions.contains_key(&session) {
            Ok(())
        } else {
            Err(ErrorCode::SessionExpired)
        }
    }

    fn check_data_len(&self, data: &Buffer) -> Result<(), ErrorCode> {
        if data_len(data) > self.config.max_data_len {
            Err(ErrorCode::BadArguments)
        } else {
            Ok(())
        }
    }

    /// create, create2, createContainer, createTTL.
    pub(crate) fn create(
        &mut self,
        ctx: &Ctx<'_>,
        args: &CreateArgs<'_>,
        triggers: &mut Triggers,
        undo: Option<&mut Vec<Undo>>,
    ) -> TxnResult {
        self.check_data_len(args.data)?;
        let mode = CreateMode::from_flags(args.flags).ok_or(ErrorCode::BadArguments)?;
        // `EphemeralType.validateTTL`: only createTTL carries a TTL (the others act as if it
        // were -1), a TTL mode needs one in range, and any other mode must have none.
        // createTTL with a non-TTL mode and a negative TTL would crash ZooKeeper's apply;
        // it is BADARGUMENTS here.
        if mode.ttl != (args.opcode == CreateOpcode::Ttl) {
            return Err(ErrorCode::BadArguments);
        }
        if mode.ttl && !(1..=MAX_TTL).contains(&args.ttl) {
            return Err(ErrorCode::BadArguments);
        }
        self.check_session(ctx.session)?;
        // `validatePathForCreate`: only a '/' somewhere and no NUL; the full check comes
        // after the sequence suffix is appended.
        let Some((parent_path, _)) = split_parent(args.path) else {
            return Err(ErrorCode::BadArguments);
        };
        if args.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = fixup_acl(args.acl, ctx.auth)?;
        let parent_slot = self.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        let parent = self.node(parent_slot).ok_or(ErrorCode::NoNode)?;
        require(self.acl_of(parent), perms::CREATE, ctx.auth)?;
        let path = if mode.sequential {
            format!("{}{:010}", args.path, parent.cversion)
        } else {
            args.path.to_owned()
        };
        validate_path(&path).map_err(|_| ErrorCode::BadArguments)?;
        if self.lookup(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if parent.kind == Kind::Ephemeral {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }

        let (kind, owner) = match args.opcode {
            CreateOpcode::Container => (Kind::Container, 0),
            CreateOpcode::Ttl => (Kind::Ttl, args.ttl),
            // A container flag on create/create2 makes a plain persistent node, as in
            // ZooKeeper (whose CreateTxn only knows "ephemeral or not").
            CreateOpcode::Create | CreateOpcode::Create2 if mode.ephemeral => {
                (Kind::Ephemeral, ctx.session)
            }
            CreateOpcode::Create | CreateOpcode::Create2 => (Kind::Persistent, 0),
        };
        let parent_acl = self.acl_of(parent).clone();
        let Some(parent) = self.node_mut(parent_slot) else {
            return Err(ErrorCode::NoNode);
        };
        if let Some(undo) = undo {
            undo.push(Undo::Created {
                path: path.clone(),
                parent_cversion: parent.cversion,
                parent_pzxid: parent.pzxid,
            });
        }
        // The create count is a Java int: it wraps to negative after 2^31 creations, and
        // the sequence suffix with it.
        parent.cversion = parent.cversion.wrapping_add(1);
        parent.pzxid = ctx.zxid;
        let acl_id = self.acls.acquire(&acl);
        let node = Node::new(
            &path,
            args.data.as_deref(),
            ctx.zxid,
            ctx.time,
            kind,
            owner,
            acl_id,
        );
        let stat = node.stat();
        self.insert_node(node, parent_slot);
        let node_acl = self.acls.get(acl_id).clone();
        triggers.push(&path, EventType::NodeCreated, node_acl);
        triggers.push(
            watch_path(parent_path),
            EventType::NodeChildrenChanged,
            parent_acl,
        );
        Ok(match args.opcode {
            CreateOpcode::Create => OpResult::Create { path },
            _ => OpResult::Create2 { path, stat },
        })
    }

    /// delete.
    pub(crate) fn delete(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        version: i32,
        triggers: &mut Triggers,
        undo: Option<&mut Vec<Undo>>,
    ) -> TxnResult {
        self.check_session(ctx.session)?;
        let parent_path = deletable_parent(path)?;
        let parent_slot = self.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        let parent = self.node(parent_slot).ok_or(ErrorCode::NoNode)?;
        require(self.acl_of(parent), perms::DELETE, ctx.auth)?;
        let slot = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let node = self.node(slot).ok_or(ErrorCode::NoNode)?;
        check_version(node.version, version)?;
        if node.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.delete_node(ctx.zxid, slot, parent_slot, triggers, undo);
        Ok(OpResult::Delete)
    }

    /// Removes a childless node and fires its triggers (delete, deleteContainer, session
    /// cleanup).
    pub(crate) fn delete_node(
        &mut self,
        zxid: i64,
        slot: u32,
        parent_slot: u32,
        triggers: &mut Triggers,
        undo: Option<&mut Vec<Undo>>,
    ) {
        let Some(parent) = self.node_mut(parent_slot) else {
            return;
        };
        let parent_pzxid = parent.pzxid;
        // Only a larger zxid moves pzxid (DataTree.deleteNode).
        if zxid > parent.pzxid {
            parent.pzxid = zxid;
        }
        let parent_acl_id = parent.acl;
        let parent_acl = self.acls.get(parent_acl_id).clone();
        let Some((node, acl)) = self.remove_node(slot, parent_slot) else {
            return;
        };
        triggers.push(&node.path, EventType::NodeDeleted, acl.clone());
        let parent_path = split_parent(&node.path).map_or("", |(p, _)| p);
        triggers.push(
            watch_path(parent_path),
            EventType::NodeChildrenChanged,
            parent_acl,
        );
        if let Some(undo) = undo {
            undo.push(Undo::Deleted {
                node,
                acl,
                parent_pzxid,
            });
        }
    }

    /// setData.
    pub(crate) fn set_data(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        data: &Buffer,
        version: i32,
        triggers: &mut Triggers,
        undo: Option<&mut Vec<Undo>>,
    ) -> TxnResult {
        self.check_data_len(data)?;
        self.check_session(ctx.session)?;
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let slot = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let node = self.node(slot).ok_or(ErrorCode::NoNode)?;
        require(self.acl_of(node), perms::WRITE, ctx.auth)?;
        let new_version = check_version(node.version, version)?;
        let acl = self.acl_of(node).clone();
        let same_len =
            matches!((&node.data, data), (Some(old), Some(new)) if old.len() == new.len());
        if let Some(undo) = undo {
            let old = self.replace_data(slot, data.as_deref().map(Box::from));
            let node = self.node_mut(slot).ok_or(ErrorCode::NoNode)?;
            undo.push(Undo::DataSet {
                path: path.to_owned(),
                data: old.flatten(),
                version: node.version,
                mtime: node.mtime,
                mzxid: node.mzxid,
            });
        } else if same_len {
            // Same size (counters, fixed-size state): overwrite in place, sparing an
            // allocation and a free on the hottest write path.
            if let (Some(old), Some(new)) =
                (self.node_mut(slot).and_then(|n| n.data.as_mut()), data)
            {
                old.copy_from_slice(new);
            }
        } else {
            self.replace_data(slot, data.as_deref().map(Box::from));
        }
        let Some(node) = self.node_mut(slot) else {
            return Err(ErrorCode::NoNode);
        };
        node.version = new_version;
        node.mtime = ctx.time;
        node.mzxid = ctx.zxid;
        let stat = node.stat();
        triggers.push(path, EventType::NodeDataChanged, acl);
        Ok(OpResult::SetData { stat })
    }

    /// setACL; fires no watch.
    fn set_acl(&mut self, ctx: &Ctx<'_>, path: &str, acl: &[Acl], version: i32) -> TxnResult {
        self.check_session(ctx.session)?;
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let acl = fixup_acl(acl, ctx.auth)?;
        let slot = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let node = self.node(slot).ok_or(ErrorCode::NoNode)?;
        require(self.acl_of(node), perms::ADMIN, ctx.auth)?;
        let new_version = check_version(node.aversion, version)?;
        let old_acl = node.acl;
        let new_acl = self.acls.acquire(&acl);
        self.acls.release(old_acl);
        let Some(node) = self.node_mut(slot) else {
            return Err(ErrorCode::NoNode);
        };
        node.acl = new_acl;
        node.aversion = new_version;
        Ok(OpResult::SetAcl { stat: node.stat() })
    }

    /// check: a version assertion that changes nothing.
    pub(crate) fn check(&mut self, ctx: &Ctx<'_>, path: &str, version: i32) -> TxnResult {
        self.check_session(ctx.session)?;
        validate_path(path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        require(self.acl_of(node), perms::READ, ctx.auth)?;
        check_version(node.version, version)?;
        Ok(OpResult::Check)
    }

    /// deleteContainer: the reaper's delete. No session, ACL or version check; refuses a node
    /// that gained children (NOTEMPTY) or a session's ephemeral node (BADVERSION). Like
    /// ZooKeeper, it does not re-check that the node is a container or TTL node.
    fn delete_container(
        &mut self,
        ctx: &Ctx<'_>,
        path: &str,
        triggers: &mut Triggers,
    ) -> TxnResult {
        let parent_path = deletable_parent(path)?;
        let slot = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let node = self.node(slot).ok_or(ErrorCode::NoNode)?;
        if node.num_children() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if node.kind == Kind::Ephemeral {
            return Err(ErrorCode::BadVersion);
        }
        let parent_slot = self.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        self.delete_node(ctx.zxid, slot, parent_slot, triggers, None);
        Ok(OpResult::Delete)
    }

    /// createSession: records a live session (an existing one just gets the new timeout).
    /// Session id 0 means "no session" to ZooKeeper clients, so it is refused.
    fn create_session(
        &mut self,
        session: i64,
        owner: u64,
        timeout: i32,
        passwd: [u8; 16],
    ) -> TxnResult {
        if session == 0 || self.sessions.contains_key(&session) {
            return Err(ErrorCode::BadArguments);
        }
        self.sessions.insert(
            session,
            Session {
                timeout,
                passwd,
                owner,
                ..Session::default()
            },
        );
        Ok(OpResult::Session)
    }

    /// closeSession: forgets the session and deletes its ephemeral nodes in path order,
    /// firing NodeDeleted and NodeChildrenChanged for each. Closing an unknown session is a
    /// no-op, as in ZooKeeper.
    fn close_session(&mut self, ctx: &Ctx<'_>, triggers: &mut Triggers) -> TxnResult {
        let Some(session) = self.sessions.remove(&ctx.session) else {
            return Ok(OpResult::Session);
        };
        let mut paths: Vec<(compact_str::CompactString, u32)> = session
            .ephemerals
            .iter()
            .filter_map(|&s| self.node(s).map(|n| (n.path.clone(), s)))
            .collect();
        paths.sort_unstable();
        for (path, slot) in paths {
            let parent = split_parent(&path).and_then(|(p, _)| self.lookup(p));
            if let Some(parent) = parent {
                self.delete_node(ctx.zxid, slot, parent, triggers, None);
            }
        }
        Ok(OpResult::Session)
    }

    /// The Stat of the node at `path`, without any ACL check (for the server's own use).
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.get(path).map(|n| n.stat())
    }
}

impl<'a> CreateArgs<'a> {
    pub(crate) fn plain(opcode: CreateOpcode, r: &'a keepr_wire::CreateRequest) -> Self {
        CreateArgs {
            opcode,
            path: &r.path,
            data: &r.data,
            acl: &r.acl,
            flags: r.flags,
            ttl: -1,
        }
    }
}

/// `getParentPathAndValidate`: a '/' somewhere, no NUL, and not a reserved node.
fn deletable_parent(path: &str) -> Result<&str, ErrorCode> {
    match split_parent(path) {
        Some((parent, _)) if !path.contains('\0') && !is_reserved(path) => Ok(parent),
        _ => Err(ErrorCode::BadArguments),
    }
}
