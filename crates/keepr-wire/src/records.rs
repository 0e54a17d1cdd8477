//! The records of `zookeeper.jute` that the client protocol uses, fields in wire order.
//!
//! Names follow ZooKeeper's so that a reader can hold them side by side with the `.jute`
//! file. Records that share a shape share a struct (for example every `{path, watch}` read
//! request is a [`PathWatchRequest`]); the aliases keep ZooKeeper's names available.

use bytes::{Bytes, BytesMut};

use crate::frame;
use crate::jute::{from_bytes, Jute, Reader};
use crate::{jute_record, DecodeError};

/// A jute buffer: `None` is the null buffer (length -1), which ZooKeeper keeps distinct from
/// an empty one (kazoo sends empty data as null; Java sends it as length 0).
pub type Buffer = Option<Bytes>;

jute_record! {
    /// An identity: `world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`, `auth:`, `super:…`.
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    /// One entry of an ACL: a permission mask granted to an identity.
    pub struct Acl { pub perms: i32, pub id: Id }
}

jute_record! {
    /// A node's metadata as clients see it (68 bytes on the wire).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    /// One authenticated identity of a connection, as whoAmI reports it.
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

jute_record! {
    /// Precedes every request after the handshake.
    pub struct RequestHeader { pub xid: i32, pub op: i32 }
}

jute_record! {
    /// Precedes every reply and notification (16 bytes).
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}

jute_record! {
    /// Precedes each operation and result inside multi / multiRead.
    pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 }
}

// --- requests -----------------------------------------------------------------------------

jute_record! {
    /// create (1), create2 (15), createContainer (19).
    pub struct CreateRequest { pub path: String, pub data: Buffer, pub acl: Vec<Acl>, pub flags: i32 }
}

jute_record! {
    /// createTTL (21).
    pub struct CreateTtlRequest { pub path: String, pub data: Buffer, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64 }
}

jute_record! {
    /// delete (2).
    pub struct DeleteRequest { pub path: String, pub version: i32 }
}

jute_record! {
    /// exists (3), getData (4), getChildren (8), getChildren2 (12).
    pub struct PathWatchRequest { pub path: String, pub watch: bool }
}
pub type ExistsRequest = PathWatchRequest;
pub type GetDataRequest = PathWatchRequest;
pub type GetChildrenRequest = PathWatchRequest;
pub type GetChildren2Request = PathWatchRequest;

jute_record! {
    /// getACL (6), sync (9), getAllChildrenNumber (104).
    pub struct PathRequest { pub path: String }
}
pub type GetAclRequest = PathRequest;
pub type SyncRequest = PathRequest;
pub type GetAllChildrenNumberRequest = PathRequest;

jute_record! {
    /// setData (5).
    pub struct SetDataRequest { pub path: String, pub data: Buffer, pub version: i32 }
}

jute_record! {
    /// setACL (7).
    pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 }
}

jute_record! {
    /// check (13), only inside multi.
    pub struct CheckVersionRequest { pub path: String, pub version: i32 }
}

jute_record! {
    /// reconfig (16). The member lists stay nullable: ZooKeeper treats a null `new_members`
    /// as "incremental change" and a null joining/leaving list as "none", and clients send
    /// null for every list they leave out.
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// checkWatches (17), removeWatches (18); `watcher_type` is a [`crate::codes::watcher_type`].
    pub struct WatchesRequest { pub path: String, pub watcher_type: i32 }
}
pub type CheckWatchesRequest = WatchesRequest;
pub type RemoveWatchesRequest = WatchesRequest;

jute_record! {
    /// getEphemerals (103).
    pub struct GetEphemeralsRequest { pub prefix_path: String }
}

jute_record! {
    /// addWatch (106); `mode` is a [`crate::codes::add_watch_mode`].
    pub struct AddWatchRequest { pub path: String, pub mode: i32 }
}

jute_record! {
    /// auth (100), sent with xid -4.
    pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Buffer }
}

jute_record! {
    /// setWatches (101), sent with xid -8 on reconnect.
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// setWatches2 (105), used instead of setWatches when persistent watches exist.
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// sasl (102) request.
    pub struct GetSaslRequest { pub token: Buffer }
}

// --- responses ----------------------------------------------------------------------------

jute_record! {
    /// sasl (102) reply.
    pub struct SetSaslResponse { pub token: Buffer }
}

jute_record! {
    /// create (1).
    pub struct CreateResponse { pub path: String }
}

jute_record! {
    /// create2 (15), createContainer (19), createTTL (21).
    pub struct Create2Response { pub path: String, pub stat: Stat }
}

jute_record! {
    /// exists (3), setData (5), setACL (7).
    pub struct StatResponse { pub stat: Stat }
}
pub type ExistsResponse = StatResponse;
pub type SetDataResponse = StatResponse;
pub type SetAclResponse = StatResponse;

jute_record! {
    /// getData (4); also reconfig's reply.
    pub struct GetDataResponse { pub data: Buffer, pub stat: Stat }
}

jute_record! {
    /// getACL (6).
    pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat }
}

jute_record! {
    /// getChildren (8).
    pub struct GetChildrenResponse { pub children: Vec<String> }
}

jute_record! {
    /// getChildren2 (12).
    pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat }
}

jute_record! {
    /// sync (9).
    pub struct SyncResponse { pub path: String }
}

jute_record! {
    /// getAllChildrenNumber (104).
    pub struct GetAllChildrenNumberResponse { pub total_number: i32 }
}

jute_record! {
    /// getEphemerals (103).
    pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> }
}

jute_record! {
    /// whoAmI (107).
    pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> }
}

jute_record! {
    /// addWatch's reply body, and the body of a failed result inside multi.
    pub struct ErrorResponse { pub err: i32 }
}

jute_record! {
    /// A watch notification, sent after a reply header with xid -1.
    pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String }
}

// --- handshake ----------------------------------------------------------------------------

/// The first frame of a connection. Clients older than 3.4 omit `read_only`; ZooKeeper
/// detects that by the frame ending early and then omits it from its answer too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Buffer,
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn write(&self, w: &mut BytesMut) {
        self.protocol_version.write(w);
        self.last_zxid_seen.write(w);
        self.time_out.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            ro.write(w);
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
    const MIN_LEN: usize = 4 + 8 + 4 + 8 + 4;
}

/// The server's answer to [`ConnectRequest`]. `time_out == 0` tells the client its session
/// expired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Buffer,
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn write(&self, w: &mut BytesMut) {
        self.protocol_version.write(w);
        self.time_out.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            ro.write(w);
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
    const MIN_LEN: usize = 4 + 4 + 8 + 4;
}

impl ConnectRequest {
    /// What a client sends to start a new session: no session id, no zxid seen yet, and the
    /// all-zero password.
    pub fn new_session(time_out: i32, read_only: Option<bool>) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0; 16])),
            read_only,
        }
    }

    /// Decodes the first frame of a connection (payload, without its length prefix).
    pub fn decode(frame: Bytes) -> Result<ConnectRequest, DecodeError> {
        from_bytes(frame, "ConnectRequest")
    }

    /// Appends the whole frame, length prefix included.
    pub fn write_frame(&self, w: &mut BytesMut) {
        frame::write_frame(w, |w| self.write(w));
    }
}

impl ConnectResponse {
    /// Decodes the server's first frame (payload, without its length prefix).
    pub fn decode(frame: Bytes) -> Result<ConnectResponse, DecodeError> {
        from_bytes(frame, "ConnectResponse")
    }

    /// Appends the whole frame, length prefix included.
    pub fn write_frame(&self, w: &mut BytesMut) {
        frame::write_frame(w, |w| self.write(w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::to_bytes;
    use crate::test_util::hex;

    fn round_trip<T: Jute + PartialEq + std::fmt::Debug>(v: &T) -> Bytes {
        let bytes = to_bytes(v);
        assert_eq!(&from_bytes::<T>(bytes.clone(), "record").unwrap(), v);
        bytes
    }

    #[test]
    fn stat_is_68_bytes_in_declaration_order() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let bytes = round_trip(&stat);
        assert_eq!(
            bytes,
            hex(
                "0000000000000001 0000000000000002 0000000000000003 0000000000000004
                 00000005 00000006 00000007 0000000000000008 00000009 0000000a
                 000000000000000b"
            )
        );
        assert_eq!(Stat::MIN_LEN, 68);
    }

    #[test]
    fn java_connect_request_with_read_only_is_45_bytes() {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30000,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0; 16])),
            read_only: Some(false),
        };
        let bytes = round_trip(&req);
        assert_eq!(bytes.len(), 45);
        assert_eq!(ConnectRequest::decode(bytes).unwrap(), req);
    }

    #[test]
    fn connect_request_without_read_only_is_an_old_client() {
        let bytes = hex("00000000 0000000000000000 00007530 0000000000000000 00000000");
        let req = ConnectRequest::decode(bytes.clone()).unwrap();
        assert_eq!(req.read_only, None);
        assert_eq!(req.passwd, Some(Bytes::new()));
        assert_eq!(to_bytes(&req), bytes);
    }

    #[test]
    fn connect_request_accepts_a_null_password() {
        let bytes = hex("00000000 0000000000000000 00007530 0000000000000000 ffffffff 01");
        let req = ConnectRequest::decode(bytes.clone()).unwrap();
        assert_eq!(req.passwd, None);
        assert_eq!(req.read_only, Some(true));
        assert_eq!(to_bytes(&req), bytes);
    }

    #[test]
    fn connect_request_with_extra_bytes_is_an_error() {
        let bytes = hex("00000000 0000000000000000 00007530 0000000000000000 00000000 00 00");
        assert_eq!(
            ConnectRequest::decode(bytes),
            Err(DecodeError::TrailingBytes {
                record: "ConnectRequest",
                extra: 1
            })
        );
    }

    #[test]
    fn truncated_connect_request_is_an_error() {
        let bytes = hex("00000000 0000000000000000 00007530 00000000");
        assert!(matches!(
            ConnectRequest::decode(bytes),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn connect_response_with_and_without_read_only() {
        let mut resp = ConnectResponse {
            protocol_version: 0,
            time_out: 4000,
            session_id: 0x0100_0000_0000_0001,
            passwd: Some(Bytes::from_static(&[7; 16])),
            read_only: Some(false),
        };
        // The C client expects 41 bytes with the length prefix, 40 from an old server.
        let mut framed = BytesMut::new();
        resp.write_frame(&mut framed);
        assert_eq!(framed.len(), 41);
        assert_eq!(ConnectResponse::decode(round_trip(&resp)).unwrap(), resp);
        resp.read_only = None;
        assert_eq!(round_trip(&resp).len(), 36);
    }

    #[test]
    fn expired_session_answer_is_zero_timeout_and_zero_password() {
        let expired = ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0; 16])),
            read_only: Some(false),
        };
        let bytes = round_trip(&expired);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn acl_vector_round_trips() {
        let acl = vec![
            Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            },
            Acl {
                perms: 1,
                id: Id {
                    scheme: "digest".into(),
                    id: "bob:hash=".into(),
                },
            },
        ];
        let bytes = round_trip(&acl);
        assert_eq!(&bytes[..8], &hex("00000002 0000001f")[..]);
    }

    #[test]
    fn null_vector_reads_as_empty() {
        let bytes = hex("ffffffff");
        assert_eq!(
            from_bytes::<Vec<String>>(bytes, "children").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn null_string_reads_as_empty_and_nullable_string_keeps_null() {
        assert_eq!(from_bytes::<String>(hex("ffffffff"), "s").unwrap(), "");
        assert_eq!(
            from_bytes::<Option<String>>(hex("ffffffff"), "s").unwrap(),
            None
        );
        assert_eq!(
            from_bytes::<Option<String>>(hex("00000000"), "s").unwrap(),
            Some(String::new())
        );
    }

    #[test]
    fn invalid_utf8_in_a_string_becomes_replacement_characters() {
        let s = from_bytes::<String>(hex("00000002 2fff"), "s").unwrap();
        assert_eq!(s, "/\u{fffd}");
    }

    #[test]
    fn booleans_read_any_nonzero_byte_as_true() {
        let req = from_bytes::<PathWatchRequest>(hex("00000001 2f 7f"), "exists").unwrap();
        assert!(req.watch);
    }

    #[test]
    fn every_request_record_round_trips() {
        round_trip(&CreateTtlRequest {
            path: "/t".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: vec![],
            flags: 5,
            ttl: 10_000,
        });
        round_trip(&DeleteRequest {
            path: "/d".into(),
            version: -1,
        });
        round_trip(&SetAclRequest {
            path: "/a".into(),
            acl: vec![Acl::default()],
            version: 2,
        });
        round_trip(&AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(Bytes::from_static(b"user:pw")),
        });
        round_trip(&SetWatches2 {
            relative_zxid: 9,
            data_watches: vec!["/d".into()],
            exist_watches: vec![],
            child_watches: vec!["/c".into()],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec!["/r".into()],
        });
        round_trip(&WatchesRequest {
            path: "/w".into(),
            watcher_type: 3,
        });
        round_trip(&AddWatchRequest {
            path: "/w".into(),
            mode: 1,
        });
        round_trip(&GetEphemeralsRequest {
            prefix_path: "/e".into(),
        });
        round_trip(&GetSaslRequest { token: None });
    }

    #[test]
    fn every_response_record_round_trips() {
        round_trip(&GetAclResponse {
            acl: vec![Acl::default()],
            stat: Stat::default(),
        });
        round_trip(&GetChildren2Response {
            children: vec!["a".into(), "b".into()],
            stat: Stat::default(),
        });
        round_trip(&GetEphemeralsResponse {
            ephemerals: vec!["/e".into()],
        });
        round_trip(&WhoAmIResponse {
            client_info: vec![ClientInfo {
                auth_scheme: "digest".into(),
                user: "bob".into(),
            }],
        });
        round_trip(&WatcherEvent {
            event_type: 4,
            state: 3,
            path: "/p".into(),
        });
        round_trip(&SetSaslResponse {
            token: Some(Bytes::new()),
        });
    }
}
