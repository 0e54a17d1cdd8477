//! Server replies after the handshake: a [`ReplyHeader`] and, when `err` is 0, a body.
//!
//! Replies are not self-describing: which record follows the header depends on the request
//! being answered, so decoding takes that request's opcode. Watch notifications are replies
//! too (xid -1, opcode 0 in ZooKeeper's table) and carry a [`WatcherEvent`].
//!
//! ZooKeeper writes a body only when the reply succeeded and clients read one only then,
//! so [`Response::write`] drops the body of a failed reply and [`Response::decode`] expects
//! none.

use bytes::{Bytes, BytesMut};

use crate::codes::{keeper_state, op, xid, ErrorCode};
use crate::frame;
use crate::jute::{Jute, Reader};
use crate::multi::MultiResponse;
use crate::records::{
    Create2Response, CreateResponse, ErrorResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, ReplyHeader,
    SetSaslResponse, StatResponse, SyncResponse, WatcherEvent, WhoAmIResponse,
};
use crate::DecodeError;

/// One reply or notification frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub header: ReplyHeader,
    pub body: ResponseBody,
}

/// The body of a reply, by the shape of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: failed replies, and delete, deleteContainer, ping, auth, setWatches,
    /// setWatches2, checkWatches, removeWatches, closeSession.
    Empty,
    /// create (1).
    Create(CreateResponse),
    /// create2 (15), createContainer (19), createTTL (21).
    Create2(Create2Response),
    /// exists (3), setData (5), setACL (7), check (13).
    Stat(StatResponse),
    /// getData (4), and reconfig (16) which answers with the new configuration.
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    Sync(SyncResponse),
    /// multi (14) and multiRead (22).
    Multi(MultiResponse),
    /// sasl (102).
    Sasl(SetSaslResponse),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// addWatch (106) answers with an `ErrorResponse` whose err is 0.
    AddWatch(ErrorResponse),
    WhoAmI(WhoAmIResponse),
    /// A watch notification (xid -1).
    Notification(WatcherEvent),
}

impl ResponseBody {
    /// Reads the body of a successful reply to a request with opcode `request_op`
    /// (use [`op::NOTIFICATION`] for xid -1); the whole rest of the frame must be the body.
    pub fn decode(request_op: i32, r: &mut Reader) -> Result<ResponseBody, DecodeError> {
        let body = match request_op {
            op::DELETE
            | op::DELETE_CONTAINER
            | op::PING
            | op::AUTH
            | op::SET_WATCHES
            | op::SET_WATCHES2
            | op::CHECK_WATCHES
            | op::REMOVE_WATCHES
            | op::CLOSE_SESSION => ResponseBody::Empty,
            op::CREATE => ResponseBody::Create(Jute::read(r)?),
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                ResponseBody::Create2(Jute::read(r)?)
            }
            op::EXISTS | op::SET_DATA | op::SET_ACL | op::CHECK => {
                ResponseBody::Stat(Jute::read(r)?)
            }
            op::GET_DATA | op::RECONFIG => ResponseBody::GetData(Jute::read(r)?),
            op::GET_ACL => ResponseBody::GetAcl(Jute::read(r)?),
            op::GET_CHILDREN => ResponseBody::GetChildren(Jute::read(r)?),
            op::GET_CHILDREN2 => ResponseBody::GetChildren2(Jute::read(r)?),
            op::SYNC => ResponseBody::Sync(Jute::read(r)?),
            op::MULTI | op::MULTI_READ => ResponseBody::Multi(Jute::read(r)?),
            op::SASL => ResponseBody::Sasl(Jute::read(r)?),
            op::GET_EPHEMERALS => ResponseBody::GetEphemerals(Jute::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => ResponseBody::GetAllChildrenNumber(Jute::read(r)?),
            op::ADD_WATCH => ResponseBody::AddWatch(Jute::read(r)?),
            op::WHO_AM_I => ResponseBody::WhoAmI(Jute::read(r)?),
            op::NOTIFICATION => ResponseBody::Notification(Jute::read(r)?),
            other => {
                return Err(DecodeError::Invalid {
                    what: "opcode of the request answered",
                    value: other.into(),
                })
            }
        };
        r.finish("response")?;
        Ok(body)
    }

    /// Appends the body's encoding (nothing for [`ResponseBody::Empty`]).
    pub fn write(&self, w: &mut BytesMut) {
        match self {
            ResponseBody::Empty => {}
            ResponseBody::Create(b) => b.write(w),
            ResponseBody::Create2(b) => b.write(w),
            ResponseBody::Stat(b) => b.write(w),
            ResponseBody::GetData(b) => b.write(w),
            ResponseBody::GetAcl(b) => b.write(w),
            ResponseBody::GetChildren(b) => b.write(w),
            ResponseBody::GetChildren2(b) => b.write(w),
            ResponseBody::Sync(b) => b.write(w),
            ResponseBody::Multi(b) => b.write(w),
            ResponseBody::Sasl(b) => b.write(w),
            ResponseBody::GetEphemerals(b) => b.write(w),
            ResponseBody::GetAllChildrenNumber(b) => b.write(w),
            ResponseBody::AddWatch(b) => b.write(w),
            ResponseBody::WhoAmI(b) => b.write(w),
            ResponseBody::Notification(b) => b.write(w),
        }
    }
}

impl Response {
    /// A successful reply.
    pub fn ok(xid: i32, zxid: i64, body: ResponseBody) -> Response {
        Response {
            header: ReplyHeader { xid, zxid, err: 0 },
            body,
        }
    }

    /// A failed reply: the header alone.
    pub fn error(xid: i32, zxid: i64, err: ErrorCode) -> Response {
        Response {
            header: ReplyHeader {
                xid,
                zxid,
                err: err.code(),
            },
            body: ResponseBody::Empty,
        }
    }

    /// A watch notification: `ReplyHeader{-1, zxid, 0}` and the event. ZooKeeper only ever
    /// puts SyncConnected in the state of a notification it sends.
    pub fn notification(zxid: i64, event_type: i32, path: String) -> Response {
        Response::ok(
            xid::NOTIFICATION,
            zxid,
            ResponseBody::Notification(WatcherEvent {
                event_type,
                state: keeper_state::SYNC_CONNECTED,
                path,
            }),
        )
    }

    /// Decodes one frame payload (without its length prefix) that answers a request with
    /// opcode `request_op`. For notifications (xid -1) pass [`op::NOTIFICATION`]; see
    /// [`request_op_for_reserved_xid`].
    pub fn decode(frame: Bytes, request_op: i32) -> Result<Response, DecodeError> {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r)?;
        let body = if header.err == 0 {
            ResponseBody::decode(request_op, &mut r)?
        } else {
            r.finish("failed response")?;
            ResponseBody::Empty
        };
        Ok(Response { header, body })
    }

    /// Appends the payload: header, then the body if `err` is 0.
    pub fn write(&self, w: &mut BytesMut) {
        self.header.write(w);
        if self.header.err == 0 {
            self.body.write(w);
        }
    }

    /// Appends the whole frame, length prefix included.
    pub fn write_frame(&self, w: &mut BytesMut) {
        frame::write_frame(w, |w| self.write(w));
    }
}

/// The opcode a reply with a reserved xid answers, so that a client can decode it without
/// having tracked the request: -1 notification, -2 ping, -4 auth, -8 setWatches (setWatches2
/// replies look the same: a bare header).
pub fn request_op_for_reserved_xid(reply_xid: i32) -> Option<i32> {
    match reply_xid {
        xid::NOTIFICATION => Some(op::NOTIFICATION),
        xid::PING => Some(op::PING),
        xid::AUTH => Some(op::AUTH),
        xid::SET_WATCHES => Some(op::SET_WATCHES),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::event_type;
    use crate::records::{ClientInfo, Stat};
    use crate::test_util::hex;

    fn stat() -> Stat {
        Stat {
            czxid: 2,
            mzxid: 3,
            ctime: 1000,
            mtime: 2000,
            version: 1,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 3,
            num_children: 0,
            pzxid: 2,
        }
    }

    fn encoded(resp: &Response) -> Bytes {
        let mut w = BytesMut::new();
        resp.write(&mut w);
        w.freeze()
    }

    #[test]
    fn get_data_reply_round_trips_with_its_stat() {
        let resp = Response::ok(
            5,
            3,
            ResponseBody::GetData(GetDataResponse {
                data: Some(Bytes::from_static(b"abc")),
                stat: stat(),
            }),
        );
        let bytes = encoded(&resp);
        assert_eq!(bytes.len(), 16 + 4 + 3 + 68);
        assert_eq!(Response::decode(bytes, op::GET_DATA).unwrap(), resp);
    }

    #[test]
    fn failed_reply_is_the_header_alone() {
        let resp = Response::error(7, 12, ErrorCode::NoNode);
        let bytes = encoded(&resp);
        assert_eq!(bytes, hex("00000007 000000000000000c ffffff9b"));
        assert_eq!(Response::decode(bytes, op::EXISTS).unwrap(), resp);
    }

    #[test]
    fn writing_a_failed_reply_drops_any_body() {
        let resp = Response {
            header: ReplyHeader {
                xid: 1,
                zxid: 1,
                err: ErrorCode::BadVersion.code(),
            },
            body: ResponseBody::Stat(StatResponse { stat: stat() }),
        };
        assert_eq!(encoded(&resp).len(), 16);
    }

    #[test]
    fn failed_reply_with_a_body_is_an_error() {
        let bytes = hex("00000007 000000000000000c ffffff9b 00000000");
        assert_eq!(
            Response::decode(bytes, op::GET_ACL),
            Err(DecodeError::TrailingBytes {
                record: "failed response",
                extra: 4
            })
        );
    }

    #[test]
    fn notification_is_xid_minus_one_with_a_watcher_event() {
        let resp = Response::notification(9, event_type::NODE_DATA_CHANGED, "/w".into());
        let bytes = encoded(&resp);
        assert_eq!(
            bytes,
            hex("ffffffff 0000000000000009 00000000 00000003 00000003 00000002 2f77")
        );
        let op = request_op_for_reserved_xid(resp.header.xid).unwrap();
        assert_eq!(Response::decode(bytes, op).unwrap(), resp);
    }

    #[test]
    fn add_watch_reply_has_a_zero_error_body() {
        let resp = Response::ok(3, 1, ResponseBody::AddWatch(ErrorResponse { err: 0 }));
        let bytes = encoded(&resp);
        assert_eq!(bytes.len(), 20);
        assert_eq!(Response::decode(bytes, op::ADD_WATCH).unwrap(), resp);
    }

    #[test]
    fn replies_without_body_reject_extra_bytes() {
        for op in [
            op::DELETE,
            op::PING,
            op::AUTH,
            op::SET_WATCHES,
            op::CLOSE_SESSION,
        ] {
            let bytes = hex("00000001 0000000000000001 00000000 00");
            assert!(matches!(
                Response::decode(bytes, op),
                Err(DecodeError::TrailingBytes { .. })
            ));
        }
    }

    #[test]
    fn success_reply_to_an_unknown_opcode_is_an_error() {
        let bytes = hex("00000001 0000000000000001 00000000");
        assert_eq!(
            Response::decode(bytes, 77),
            Err(DecodeError::Invalid {
                what: "opcode of the request answered",
                value: 77
            })
        );
        // A failed one is fine: that is how unknown opcodes are answered.
        let bytes = hex("00000001 0000000000000001 fffffffa");
        assert_eq!(
            Response::decode(bytes, 77).unwrap(),
            Response::error(1, 1, ErrorCode::Unimplemented)
        );
    }

    #[test]
    fn body_kind_follows_the_request_opcode() {
        let cases: Vec<(i32, ResponseBody)> = vec![
            (
                op::CREATE,
                ResponseBody::Create(CreateResponse { path: "/a".into() }),
            ),
            (
                op::CREATE_TTL,
                ResponseBody::Create2(Create2Response {
                    path: "/t".into(),
                    stat: stat(),
                }),
            ),
            (op::CHECK, ResponseBody::Stat(StatResponse { stat: stat() })),
            (
                op::RECONFIG,
                ResponseBody::GetData(GetDataResponse {
                    data: None,
                    stat: stat(),
                }),
            ),
            (
                op::SYNC,
                ResponseBody::Sync(SyncResponse { path: "/".into() }),
            ),
            (
                op::WHO_AM_I,
                ResponseBody::WhoAmI(WhoAmIResponse {
                    client_info: vec![ClientInfo {
                        auth_scheme: "ip".into(),
                        user: "127.0.0.1".into(),
                    }],
                }),
            ),
            (
                op::GET_ALL_CHILDREN_NUMBER,
                ResponseBody::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                    total_number: 4,
                }),
            ),
            (
                op::MULTI_READ,
                ResponseBody::Multi(MultiResponse::default()),
            ),
            (
                op::SASL,
                ResponseBody::Sasl(SetSaslResponse {
                    token: Some(Bytes::from_static(b"t")),
                }),
            ),
            (op::REMOVE_WATCHES, ResponseBody::Empty),
        ];
        for (op, body) in cases {
            let resp = Response::ok(1, 2, body);
            assert_eq!(
                Response::decode(encoded(&resp), op).unwrap(),
                resp,
                "op {op}"
            );
        }
    }

    #[test]
    fn truncated_reply_header_is_an_error() {
        assert!(matches!(
            Response::decode(hex("00000001 00000000"), op::PING),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn reserved_xids_map_to_their_opcodes() {
        assert_eq!(request_op_for_reserved_xid(-1), Some(op::NOTIFICATION));
        assert_eq!(request_op_for_reserved_xid(-2), Some(op::PING));
        assert_eq!(request_op_for_reserved_xid(-4), Some(op::AUTH));
        assert_eq!(request_op_for_reserved_xid(-8), Some(op::SET_WATCHES));
        assert_eq!(request_op_for_reserved_xid(1), None);
    }
}
