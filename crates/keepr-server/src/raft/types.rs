//! openraft's type configuration for keepr, and the two payload types it carries.
//!
//! The log carries [`LogCommand`]s: a `keepr_tree::Command` in its own versioned jute
//! encoding (the tree crate owns that format; serde only wraps it as bytes), so the Raft log
//! and the peer transport never depend on serde's view of the tree's types. Applying a
//! command answers a [`WriteReply`]: the error code and the already-encoded reply body, which
//! is what the connection that issued the write sends and what a leader returns to a
//! follower that forwarded it.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use keepr_tree::Command;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

openraft::declare_raft_types!(
    /// keepr's Raft types: u64 node ids, [`MemberNode`] addresses, tree commands.
    pub TypeConfig:
        D = LogCommand,
        R = WriteReply,
        NodeId = u64,
        Node = MemberNode,
);

pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot<SD> = openraft::type_config::alias::SnapshotOf<TypeConfig, SD>;

/// Where a member is reached by its peers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberNode {
    /// `HOST:PORT` of the member's peer (Raft) listener.
    pub peer: String,
}

impl fmt::Display for MemberNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.peer)
    }
}

/// A tree command as a Raft log payload: the command and its encoding, made once.
///
/// An entry is cloned when replication reads it from the log and serialized into every
/// append request, for every follower; sharing the command and its bytes makes both a
/// couple of reference-count bumps instead of copying paths and data each time.
#[derive(Debug, Clone)]
pub struct LogCommand {
    cmd: Arc<Command>,
    encoded: Bytes,
}

impl LogCommand {
    pub fn new(cmd: Command) -> LogCommand {
        let encoded = cmd.to_bytes();
        LogCommand {
            cmd: Arc::new(cmd),
            encoded,
        }
    }

    pub fn command(&self) -> &Command {
        &self.cmd
    }
}

impl PartialEq for LogCommand {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for LogCommand {}

impl fmt::Display for LogCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "op {} session {:#x}",
            self.cmd.op.opcode(),
            self.cmd.session
        )
    }
}

impl Serialize for LogCommand {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.encoded)
    }
}

impl<'de> Deserialize<'de> for LogCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
        let encoded = Bytes::from(bytes.into_vec());
        Command::decode(encoded.clone())
            .map(|cmd| LogCommand {
                cmd: Arc::new(cmd),
                encoded,
            })
            .map_err(serde::de::Error::custom)
    }
}

/// What applying a write answers: ZooKeeper's error code and, when it is 0, the encoded body
/// of the reply (whose shape depends on the request's opcode).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WriteReply {
    pub err: i32,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}
