//! multi (14) and multiRead (22): several operations in one request, several results in one
//! reply.
//!
//! Neither body has a count. Each operation or result is preceded by a [`MultiHeader`] and
//! the list ends with a header whose `done` flag is set; clients write it as `{-1, true, -1}`
//! and ZooKeeper stops at the first `done` whatever its other fields say, so we do the same
//! when reading and always write the canonical terminator.
//!
//! ZooKeeper's `MultiOperationRecord` refuses to mix read and write operations in one
//! request. We go one step further and tie the kinds to the opcode: a multi carries only
//! write operations ([`MultiOp`]), a multiRead only reads ([`MultiReadOp`]). Any other
//! operation type inside either is a decode error, which the server answers the way
//! ZooKeeper answers an unreadable body (MARSHALLINGERROR).

use bytes::BytesMut;

use crate::codes::op;
use crate::jute::{Jute, Reader};
use crate::records::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ErrorResponse, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse, MultiHeader, SetDataRequest, SetDataResponse,
};
use crate::DecodeError;

/// The header that ends every multi request and reply.
const TERMINATOR: MultiHeader = MultiHeader {
    op: -1,
    done: true,
    err: -1,
};

/// One operation of a multi (14) transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (1): answered with a [`MultiResult::Create`].
    Create(CreateRequest),
    /// create2 (15): answered with a [`MultiResult::Create2`].
    Create2(CreateRequest),
    /// createContainer (19): answered with a [`MultiResult::Create2`].
    CreateContainer(CreateRequest),
    /// createTTL (21): answered with a [`MultiResult::Create2`].
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
}

impl MultiOp {
    /// The opcode written in this operation's header.
    pub fn op(&self) -> i32 {
        match self {
            MultiOp::Create(_) => op::CREATE,
            MultiOp::Create2(_) => op::CREATE2,
            MultiOp::CreateContainer(_) => op::CREATE_CONTAINER,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
        }
    }

    /// The path the operation acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
        }
    }

    fn write_body(&self, w: &mut BytesMut) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.write(w),
            MultiOp::CreateTtl(r) => r.write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
        }
    }

    fn read_body(op: i32, r: &mut Reader) -> Result<MultiOp, DecodeError> {
        Ok(match op {
            op::CREATE => MultiOp::Create(CreateRequest::read(r)?),
            op::CREATE2 => MultiOp::Create2(CreateRequest::read(r)?),
            op::CREATE_CONTAINER => MultiOp::CreateContainer(CreateRequest::read(r)?),
            op::CREATE_TTL => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            other => {
                return Err(DecodeError::Invalid {
                    what: "operation type in multi",
                    value: other.into(),
                })
            }
        })
    }
}

/// One operation of a multiRead (22). The `watch` flag is carried but ZooKeeper ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiReadOp {
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiReadOp {
    pub fn op(&self) -> i32 {
        match self {
            MultiReadOp::GetChildren(_) => op::GET_CHILDREN,
            MultiReadOp::GetData(_) => op::GET_DATA,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiReadOp::GetChildren(r) | MultiReadOp::GetData(r) => &r.path,
        }
    }

    fn write_body(&self, w: &mut BytesMut) {
        match self {
            MultiReadOp::GetChildren(r) | MultiReadOp::GetData(r) => r.write(w),
        }
    }

    fn read_body(op: i32, r: &mut Reader) -> Result<MultiReadOp, DecodeError> {
        Ok(match op {
            op::GET_CHILDREN => MultiReadOp::GetChildren(GetChildrenRequest::read(r)?),
            op::GET_DATA => MultiReadOp::GetData(GetDataRequest::read(r)?),
            other => {
                return Err(DecodeError::Invalid {
                    what: "operation type in multiRead",
                    value: other.into(),
                })
            }
        })
    }
}

/// The body of a multi (14) request (`MultiOperationRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

/// The body of a multiRead (22) request (`MultiOperationRecord` with read operations).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiReadRequest {
    pub ops: Vec<MultiReadOp>,
}

/// Reads headers and bodies up to the terminator. Every round consumes at least the
/// 9-byte header, so the loop ends with the input.
fn read_list<T>(
    r: &mut Reader,
    mut read_one: impl FnMut(&MultiHeader, &mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut items = Vec::new();
    loop {
        let header = MultiHeader::read(r)?;
        if header.done {
            return Ok(items);
        }
        items.push(read_one(&header, r)?);
    }
}

fn op_header(op: i32) -> MultiHeader {
    MultiHeader {
        op,
        done: false,
        err: -1,
    }
}

/// Writes multi's operations as the wire frames them: a header before each, a terminator.
pub fn write_multi_ops(w: &mut BytesMut, ops: &[MultiOp]) {
    for o in ops {
        op_header(o.op()).write(w);
        o.write_body(w);
    }
    TERMINATOR.write(w);
}

/// Reads what [`write_multi_ops`] writes; any op type that is not a write is an error.
pub fn read_multi_ops(r: &mut Reader) -> Result<Vec<MultiOp>, DecodeError> {
    read_list(r, |h, r| MultiOp::read_body(h.op, r))
}

impl Jute for MultiRequest {
    fn write(&self, w: &mut BytesMut) {
        write_multi_ops(w, &self.ops);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(MultiRequest {
            ops: read_multi_ops(r)?,
        })
    }
    const MIN_LEN: usize = MultiHeader::MIN_LEN;
}

impl Jute for MultiReadRequest {
    fn write(&self, w: &mut BytesMut) {
        for o in &self.ops {
            op_header(o.op()).write(w);
            o.write_body(w);
        }
        TERMINATOR.write(w);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let ops = read_list(r, |h, r| MultiReadOp::read_body(h.op, r))?;
        Ok(MultiReadRequest { ops })
    }
    const MIN_LEN: usize = MultiHeader::MIN_LEN;
}

/// One result of a multi or multiRead reply (`OpResult`).
///
/// When a multi fails, every result is an [`MultiResult::Error`]: 0 for the operations
/// before the failing one, its error code for the failing one, RUNTIMEINCONSISTENCY for
/// the rest; the reply header's `err` stays 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Result type 1, for a create (1) operation.
    Create(CreateResponse),
    /// Result type 15, for create2, createContainer and createTTL operations.
    Create2(Create2Response),
    /// Result type 2.
    Delete,
    /// Result type 5.
    SetData(SetDataResponse),
    /// Result type 13.
    Check,
    /// Result type 8 (multiRead).
    GetChildren(GetChildrenResponse),
    /// Result type 4 (multiRead).
    GetData(GetDataResponse),
    /// Result type -1 with its error code, written both in the result header and in the
    /// `ErrorResponse` body; the body is what clients read.
    Error(i32),
}

impl MultiResult {
    /// The result type written in this result's header.
    pub fn op(&self) -> i32 {
        match self {
            MultiResult::Create(_) => op::CREATE,
            MultiResult::Create2(_) => op::CREATE2,
            MultiResult::Delete => op::DELETE,
            MultiResult::SetData(_) => op::SET_DATA,
            MultiResult::Check => op::CHECK,
            MultiResult::GetChildren(_) => op::GET_CHILDREN,
            MultiResult::GetData(_) => op::GET_DATA,
            MultiResult::Error(_) => op::ERROR,
        }
    }

    fn header(&self) -> MultiHeader {
        MultiHeader {
            op: self.op(),
            done: false,
            err: match self {
                MultiResult::Error(code) => *code,
                _ => 0,
            },
        }
    }

    fn write_body(&self, w: &mut BytesMut) {
        match self {
            MultiResult::Create(b) => b.write(w),
            MultiResult::Create2(b) => b.write(w),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(b) => b.write(w),
            MultiResult::GetChildren(b) => b.write(w),
            MultiResult::GetData(b) => b.write(w),
            MultiResult::Error(code) => ErrorResponse { err: *code }.write(w),
        }
    }

    fn read_body(op: i32, r: &mut Reader) -> Result<MultiResult, DecodeError> {
        Ok(match op {
            op::CREATE => MultiResult::Create(CreateResponse::read(r)?),
            op::CREATE2 => MultiResult::Create2(Create2Response::read(r)?),
            op::DELETE => MultiResult::Delete,
            op::SET_DATA => MultiResult::SetData(SetDataResponse::read(r)?),
            op::CHECK => MultiResult::Check,
            op::GET_CHILDREN => MultiResult::GetChildren(GetChildrenResponse::read(r)?),
            op::GET_DATA => MultiResult::GetData(GetDataResponse::read(r)?),
            op::ERROR => MultiResult::Error(ErrorResponse::read(r)?.err),
            other => {
                return Err(DecodeError::Invalid {
                    what: "result type in multi reply",
                    value: other.into(),
                })
            }
        })
    }
}

/// The body of a multi or multiRead reply (`MultiResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl Jute for MultiResponse {
    fn write(&self, w: &mut BytesMut) {
        for res in &self.results {
            res.header().write(w);
            res.write_body(w);
        }
        TERMINATOR.write(w);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let results = read_list(r, |h, r| MultiResult::read_body(h.op, r))?;
        Ok(MultiResponse { results })
    }
    const MIN_LEN: usize = MultiHeader::MIN_LEN;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::{from_bytes, to_bytes};
    use crate::records::{Acl, Id, Stat};
    use crate::test_util::hex;

    #[test]
    fn empty_multi_is_just_the_terminator() {
        let bytes = to_bytes(&MultiRequest::default());
        assert_eq!(bytes, hex("ffffffff 01 ffffffff"));
        assert_eq!(
            from_bytes::<MultiRequest>(bytes, "multi").unwrap(),
            MultiRequest::default()
        );
    }

    #[test]
    fn multi_request_writes_a_header_before_each_op_with_err_minus_one() {
        let m = MultiRequest {
            ops: vec![
                MultiOp::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: 3,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/b".into(),
                    version: -1,
                }),
            ],
        };
        let bytes = to_bytes(&m);
        let expected = hex("00000002 00 ffffffff  00000002 2f61 00000003
             0000000d 00 ffffffff  00000002 2f62 ffffffff
             ffffffff 01 ffffffff");
        assert_eq!(bytes, expected);
        assert_eq!(from_bytes::<MultiRequest>(bytes, "multi").unwrap(), m);
    }

    #[test]
    fn multi_stops_at_the_first_done_header_whatever_its_type() {
        // ZooKeeper loops `while (!h.getDone())`, so {0, true, 0} ends the list too.
        let bytes = hex("00000002 00 ffffffff 00000002 2f61 00000003 00000000 01 00000000");
        let m = from_bytes::<MultiRequest>(bytes, "multi").unwrap();
        assert_eq!(m.ops.len(), 1);
    }

    #[test]
    fn multi_rejects_read_ops_and_unknown_types() {
        let get_data = hex("00000004 00 ffffffff 00000002 2f61 00 ffffffff 01 ffffffff");
        assert_eq!(
            from_bytes::<MultiRequest>(get_data, "multi"),
            Err(DecodeError::Invalid {
                what: "operation type in multi",
                value: 4
            })
        );
        let unknown = hex("00000063 00 ffffffff ffffffff 01 ffffffff");
        assert!(matches!(
            from_bytes::<MultiRequest>(unknown, "multi"),
            Err(DecodeError::Invalid { value: 99, .. })
        ));
    }

    #[test]
    fn multi_read_rejects_write_ops() {
        let delete = hex("00000002 00 ffffffff 00000002 2f61 00000003 ffffffff 01 ffffffff");
        assert_eq!(
            from_bytes::<MultiReadRequest>(delete, "multiRead"),
            Err(DecodeError::Invalid {
                what: "operation type in multiRead",
                value: 2
            })
        );
    }

    #[test]
    fn multi_without_terminator_is_truncated() {
        let bytes = hex("00000002 00 ffffffff 00000002 2f61 00000003");
        assert!(matches!(
            from_bytes::<MultiRequest>(bytes, "multi"),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn multi_read_request_round_trips() {
        let m = MultiReadRequest {
            ops: vec![
                MultiReadOp::GetData(GetDataRequest {
                    path: "/a".into(),
                    watch: false,
                }),
                MultiReadOp::GetChildren(GetChildrenRequest {
                    path: "/".into(),
                    watch: false,
                }),
            ],
        };
        let bytes = to_bytes(&m);
        assert_eq!(
            from_bytes::<MultiReadRequest>(bytes, "multiRead").unwrap(),
            m
        );
        assert_eq!(m.ops[0].op(), op::GET_DATA);
        assert_eq!(m.ops[1].path(), "/");
    }

    #[test]
    fn failed_multi_result_carries_the_code_in_header_and_body() {
        let resp = MultiResponse {
            results: vec![
                MultiResult::Error(0),
                MultiResult::Error(-101),
                MultiResult::Error(-2),
            ],
        };
        let bytes = to_bytes(&resp);
        let expected = hex("ffffffff 00 00000000 00000000
             ffffffff 00 ffffff9b ffffff9b
             ffffffff 00 fffffffe fffffffe
             ffffffff 01 ffffffff");
        assert_eq!(bytes, expected);
        assert_eq!(from_bytes::<MultiResponse>(bytes, "multi").unwrap(), resp);
    }

    #[test]
    fn successful_results_have_header_err_zero_and_typed_bodies() {
        let stat = Stat {
            version: 1,
            ..Stat::default()
        };
        let resp = MultiResponse {
            results: vec![
                MultiResult::Create(CreateResponse { path: "/a".into() }),
                MultiResult::Create2(Create2Response {
                    path: "/b".into(),
                    stat: stat.clone(),
                }),
                MultiResult::Delete,
                MultiResult::SetData(SetDataResponse { stat: stat.clone() }),
                MultiResult::Check,
                MultiResult::GetChildren(GetChildrenResponse {
                    children: vec!["x".into()],
                }),
                MultiResult::GetData(GetDataResponse { data: None, stat }),
            ],
        };
        let bytes = to_bytes(&resp);
        // Delete and check results are a bare header.
        let decoded = from_bytes::<MultiResponse>(bytes.clone(), "multi").unwrap();
        assert_eq!(decoded, resp);
        assert_eq!(&bytes[..9], &hex("00000001 00 00000000")[..]);
    }

    #[test]
    fn multi_result_with_unknown_type_is_an_error() {
        let bytes = hex("00000003 00 00000000 ffffffff 01 ffffffff");
        assert_eq!(
            from_bytes::<MultiResponse>(bytes, "multi"),
            Err(DecodeError::Invalid {
                what: "result type in multi reply",
                value: 3
            })
        );
    }

    #[test]
    fn multi_op_reports_its_opcode_and_path() {
        let create = CreateRequest {
            path: "/c".into(),
            data: None,
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags: 4,
        };
        let o = MultiOp::CreateContainer(create);
        assert_eq!(o.op(), op::CREATE_CONTAINER);
        assert_eq!(o.path(), "/c");
    }
}
