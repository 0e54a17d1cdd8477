//! What the Raft log carries and what applying it returns.
//!
//! A [`Command`] is everything every member needs to apply a write identically: the zxid
//! (the log index), the leader's clock, the session and the caller's identities (ACL checks
//! happen at apply time on every member), and the operation with its wire record as the
//! client sent it. Operations are named after ZooKeeper's opcodes, because the opcode, not
//! only the record, decides the semantics (create and create2 answer differently, and
//! createContainer makes a container whatever its flags say).

use keepr_wire::codes::op;
pub use keepr_wire::multi::MultiOp;
use keepr_wire::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id,
    SetAclRequest, SetDataRequest, Stat,
};

/// The opcode of [`TxnOp::SetSessionOwner`]: not a ZooKeeper opcode, never on the client wire.
pub const SET_SESSION_OWNER: i32 = -1000;

/// One write to apply, with everything needed to apply it deterministically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The transaction id: czxid/mzxid/pzxid of what it changes.
    pub zxid: i64,
    /// The proposer's wall clock in milliseconds: ctime/mtime of what it changes.
    pub time: i64,
    /// The session that issued it; for [`TxnOp::CreateSession`] the new session's id.
    pub session: i64,
    /// The connection that issued it (chosen by the member that holds it; unique in the
    /// ensemble), or 0 for the server's own commands (expiry, reaping). A session is owned
    /// by the connection it was last established on; a write from any other connection is
    /// SESSIONMOVED, as ZooKeeper answers a client whose session moved to another server.
    pub owner: u64,
    /// The caller's identities (`ip:…`, `digest:…`, `super:`), for ACL checks and for
    /// expanding the `auth` ACL scheme.
    pub auth: Vec<Id>,
    pub op: TxnOp,
}

/// A write operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// create (1): answers with the path only.
    Create(CreateRequest),
    /// create2 (15): answers with the path and the Stat.
    Create2(CreateRequest),
    /// createContainer (19): always makes a container node.
    CreateContainer(CreateRequest),
    /// createTTL (21): flags must be a TTL mode.
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// setACL (7); the version is checked against aversion.
    SetAcl(SetAclRequest),
    /// check (13); clients only send it inside multi.
    Check(CheckVersionRequest),
    /// multi (14): all or nothing, one zxid.
    Multi(Vec<MultiOp>),
    /// createSession (-10): `Command::session` is the new id and `passwd` the password a
    /// client presents to resume it, both chosen by the proposer. An id in use is refused.
    CreateSession { timeout: i32, passwd: [u8; 16] },
    /// closeSession (-11): deletes the session's ephemeral nodes.
    CloseSession,
    /// The session was resumed on the connection `Command::owner` (possibly on another
    /// member): writes from its earlier connections are refused from now on. Applied only if
    /// the session is still owned by `previous`, the owner the resuming member saw: a resume
    /// that lingered (its member was cut off, the client went elsewhere) must not take the
    /// session back from the connection the client uses now. keepr's own command, with
    /// opcode [`SET_SESSION_OWNER`].
    SetSessionOwner { previous: u64 },
    /// deleteContainer (20): the server's own removal of an empty container or expired TTL
    /// node (see [`crate::Tree::reapable`]).
    DeleteContainer { path: String },
}

impl TxnOp {
    /// The opcode of the request this operation came from.
    pub fn opcode(&self) -> i32 {
        match self {
            TxnOp::Create(_) => op::CREATE,
            TxnOp::Create2(_) => op::CREATE2,
            TxnOp::CreateContainer(_) => op::CREATE_CONTAINER,
            TxnOp::CreateTtl(_) => op::CREATE_TTL,
            TxnOp::Delete(_) => op::DELETE,
            TxnOp::SetData(_) => op::SET_DATA,
            TxnOp::SetAcl(_) => op::SET_ACL,
            TxnOp::Check(_) => op::CHECK,
            TxnOp::Multi(_) => op::MULTI,
            TxnOp::CreateSession { .. } => op::CREATE_SESSION,
            TxnOp::CloseSession => op::CLOSE_SESSION,
            TxnOp::SetSessionOwner { .. } => SET_SESSION_OWNER,
            TxnOp::DeleteContainer { .. } => op::DELETE_CONTAINER,
        }
    }
}

/// The successful result of an operation; the body of its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// create (1): `CreateResponse`.
    Create { path: String },
    /// create2, createContainer, createTTL: `Create2Response`.
    Create2 { path: String, stat: Stat },
    /// delete, deleteContainer: no body.
    Delete,
    /// setData: `SetDataResponse`.
    SetData { stat: Stat },
    /// setACL: `SetACLResponse`.
    SetAcl { stat: Stat },
    /// check: no body.
    Check,
    /// multi: one entry per op, in order. When op k failed, ops before it are `Err(Ok)`
    /// (ZooKeeper's `ErrorResult(0)`, which kazoo reports as RolledBackError), op k is its
    /// error and later ops are `Err(RuntimeInconsistency)`; nothing was changed. The reply
    /// header's err stays 0 either way.
    Multi(Vec<Result<OpResult, ErrorCode>>),
    /// createSession, closeSession: no body.
    Session,
}

impl OpResult {
    /// The type in a multi result's `MultiHeader`: create2's type for every create that
    /// carries a Stat, as ZooKeeper's `OpResult.CreateResult` does.
    pub fn multi_type(&self) -> i32 {
        match self {
            OpResult::Create { .. } => op::CREATE,
            OpResult::Create2 { .. } => op::CREATE2,
            OpResult::Delete => op::DELETE,
            OpResult::SetData { .. } => op::SET_DATA,
            OpResult::SetAcl { .. } => op::SET_ACL,
            OpResult::Check => op::CHECK,
            OpResult::Multi(_) => op::MULTI,
            OpResult::Session => op::CREATE_SESSION,
        }
    }
}

/// What applying a command answers: a result, or the error code of the reply header.
pub type TxnResult = Result<OpResult, ErrorCode>;
