//! The binary encoding of [`Command`]: what the Raft log stores, so it must stay readable by
//! every later version.
//!
//! Layout: a format version byte (2), then in jute encoding zxid, time, session and owner
//! (long),
//! the identities (`vector<Id>`), the opcode (int) and the operation's request record as
//! the client sent it. multi is framed exactly as on the wire (`MultiHeader` before each
//! op, a done header at the end); createSession carries its timeout (int), deleteContainer
//! its path (ustring), closeSession nothing. Decoding rejects anything else, including
//! trailing bytes, and never allocates beyond the input's size.

use bytes::{Bytes, BytesMut};
use keepr_wire::codes::op;
use keepr_wire::jute::{self, Jute, Reader};
use keepr_wire::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DecodeError, DeleteRequest, Id,
    SetAclRequest, SetDataRequest,
};

use crate::command::{Command, TxnOp};
use keepr_wire::multi::{read_multi_ops, write_multi_ops};

/// The format version written by this build.
pub const COMMAND_FORMAT: u8 = 3;

/// Why bytes are not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandDecodeError {
    #[error("empty command")]
    Empty,
    #[error("unsupported command format {0}")]
    UnsupportedFormat(u8),
    #[error("unknown command opcode {0}")]
    UnknownOp(i32),
    #[error("createSession password is not 16 bytes")]
    BadPassword,
    #[error(transparent)]
    Wire(#[from] DecodeError),
}

impl Command {
    /// Appends the encoding of this command to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.extend_from_slice(&[COMMAND_FORMAT]);
        jute::write_i64(out, self.zxid);
        jute::write_i64(out, self.time);
        jute::write_i64(out, self.session);
        jute::write_i64(out, self.owner as i64);
        jute::write_vec(out, &self.auth);
        jute::write_i32(out, self.op.opcode());
        match &self.op {
            TxnOp::Create(r) | TxnOp::Create2(r) | TxnOp::CreateContainer(r) => r.write(out),
            TxnOp::CreateTtl(r) => r.write(out),
            TxnOp::Delete(r) => r.write(out),
            TxnOp::SetData(r) => r.write(out),
            TxnOp::SetAcl(r) => r.write(out),
            TxnOp::Check(r) => r.write(out),
            TxnOp::Multi(ops) => write_multi_ops(out, ops),
            TxnOp::CreateSession { timeout, passwd } => {
                jute::write_i32(out, *timeout);
                jute::write_buffer(out, Some(passwd));
            }
            TxnOp::SetSessionOwner { previous } => jute::write_i64(out, *previous as i64),
            TxnOp::CloseSession => {}
            TxnOp::DeleteContainer { path } => jute::write_string(out, path),
        }
    }

    /// The encoding as a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Decodes one command; buffers in it are zero-copy slices of `buf`.
    pub fn decode(buf: Bytes) -> Result<Command, CommandDecodeError> {
        let format = *buf.first().ok_or(CommandDecodeError::Empty)?;
        if format != COMMAND_FORMAT {
            return Err(CommandDecodeError::UnsupportedFormat(format));
        }
        let mut r = Reader::new(buf.slice(1..));
        let zxid = r.read_i64()?;
        let time = r.read_i64()?;
        let session = r.read_i64()?;
        let owner = r.read_i64()? as u64;
        let auth: Vec<Id> = r.read_vec()?;
        let opcode = r.read_i32()?;
        let op = match opcode {
            op::CREATE => TxnOp::Create(CreateRequest::read(&mut r)?),
            op::CREATE2 => TxnOp::Create2(CreateRequest::read(&mut r)?),
            op::CREATE_CONTAINER => TxnOp::CreateContainer(CreateRequest::read(&mut r)?),
            op::CREATE_TTL => TxnOp::CreateTtl(CreateTtlRequest::read(&mut r)?),
            op::DELETE => TxnOp::Delete(DeleteRequest::read(&mut r)?),
            op::SET_DATA => TxnOp::SetData(SetDataRequest::read(&mut r)?),
            op::SET_ACL => TxnOp::SetAcl(SetAclRequest::read(&mut r)?),
            op::CHECK => TxnOp::Check(CheckVersionRequest::read(&mut r)?),
            op::MULTI => TxnOp::Multi(read_multi_ops(&mut r)?),
            op::CREATE_SESSION => TxnOp::CreateSession {
                timeout: r.read_i32()?,
                passwd: r
                    .read_buffer()?
                    .and_then(|b| <[u8; 16]>::try_from(b.as_ref()).ok())
                    .ok_or(CommandDecodeError::BadPassword)?,
            },
            op::CLOSE_SESSION => TxnOp::CloseSession,
            crate::command::SET_SESSION_OWNER => TxnOp::SetSessionOwner {
                previous: r.read_i64()? as u64,
            },
            op::DELETE_CONTAINER => TxnOp::DeleteContainer {
                path: r.read_string()?,
            },
            other => return Err(CommandDecodeError::UnknownOp(other)),
        };
        r.finish("command")?;
        Ok(Command {
            zxid,
            time,
            session,
            owner,
            auth,
            op,
        })
    }
}
