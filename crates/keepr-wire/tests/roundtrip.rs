//! Property tests: every record and message survives encode → decode unchanged and
//! re-encodes to the same bytes; frames survive any split of the byte stream; and no byte
//! string makes a decoder panic (whatever decodes also round-trips).

use bytes::{Bytes, BytesMut};
use keepr_wire::codes::op;
use keepr_wire::frame::{self, FrameDecoder};
use keepr_wire::jute::{from_bytes, to_bytes, Jute};
use keepr_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

// --- strategies ---------------------------------------------------------------------------

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "/[a-z0-9/._-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

/// Null, empty and non-empty buffers: the three are distinct on the wire.
fn buffer() -> impl Strategy<Value = Buffer> {
    prop_oneof![
        Just(None),
        Just(Some(Bytes::new())),
        vec(any::<u8>(), 1..24).prop_map(|v| Some(Bytes::from(v))),
    ]
}

fn nullable_string() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), string().prop_map(Some)]
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(string(), 0..4)
}

fn id() -> impl Strategy<Value = Id> {
    (string(), string()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id }),
        0..3,
    )
}

prop_compose! {
    fn stat()(
        a in any::<(i64, i64, i64, i64)>(),
        b in any::<(i32, i32, i32)>(),
        owner in any::<i64>(),
        c in any::<(i32, i32)>(),
        pzxid in any::<i64>(),
    ) -> Stat {
        Stat {
            czxid: a.0, mzxid: a.1, ctime: a.2, mtime: a.3,
            version: b.0, cversion: b.1, aversion: b.2,
            ephemeral_owner: owner, data_length: c.0, num_children: c.1, pzxid,
        }
    }
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (string(), buffer(), acl(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn create_ttl() -> impl Strategy<Value = CreateTtlRequest> {
    (create(), any::<i64>()).prop_map(|(c, ttl)| CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl,
    })
}

fn path_watch() -> impl Strategy<Value = PathWatchRequest> {
    (string(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

fn path() -> impl Strategy<Value = PathRequest> {
    string().prop_map(|path| PathRequest { path })
}

fn delete() -> impl Strategy<Value = DeleteRequest> {
    (string(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

fn set_data() -> impl Strategy<Value = SetDataRequest> {
    (string(), buffer(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

fn check() -> impl Strategy<Value = CheckVersionRequest> {
    (string(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

fn watches() -> impl Strategy<Value = WatchesRequest> {
    (string(), any::<i32>()).prop_map(|(path, watcher_type)| WatchesRequest { path, watcher_type })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(MultiOp::Create),
        create().prop_map(MultiOp::Create2),
        create().prop_map(MultiOp::CreateContainer),
        create_ttl().prop_map(MultiOp::CreateTtl),
        delete().prop_map(MultiOp::Delete),
        set_data().prop_map(MultiOp::SetData),
        check().prop_map(MultiOp::Check),
    ]
}

fn multi_read_op() -> impl Strategy<Value = MultiReadOp> {
    prop_oneof![
        path_watch().prop_map(MultiReadOp::GetChildren),
        path_watch().prop_map(MultiReadOp::GetData),
    ]
}

fn is_known_request_op(code: i32) -> bool {
    matches!(code, 1..=9 | 11..=22 | 100..=107 | op::CLOSE_SESSION)
}

fn request_body() -> BoxedStrategy<RequestBody> {
    use RequestBody as B;
    Union::new(vec![
        create().prop_map(B::Create).boxed(),
        create().prop_map(B::Create2).boxed(),
        create().prop_map(B::CreateContainer).boxed(),
        create_ttl().prop_map(B::CreateTtl).boxed(),
        delete().prop_map(B::Delete).boxed(),
        path_watch().prop_map(B::Exists).boxed(),
        path_watch().prop_map(B::GetData).boxed(),
        set_data().prop_map(B::SetData).boxed(),
        path().prop_map(B::GetAcl).boxed(),
        (string(), acl(), any::<i32>())
            .prop_map(|(path, acl, version)| B::SetAcl(SetAclRequest { path, acl, version }))
            .boxed(),
        path_watch().prop_map(B::GetChildren).boxed(),
        path_watch().prop_map(B::GetChildren2).boxed(),
        path().prop_map(B::Sync).boxed(),
        Just(B::Ping).boxed(),
        check().prop_map(B::Check).boxed(),
        vec(multi_op(), 0..4)
            .prop_map(|ops| B::Multi(MultiRequest { ops }))
            .boxed(),
        vec(multi_read_op(), 0..4)
            .prop_map(|ops| B::MultiRead(MultiReadRequest { ops }))
            .boxed(),
        (
            nullable_string(),
            nullable_string(),
            nullable_string(),
            any::<i64>(),
        )
            .prop_map(|(j, l, n, id)| {
                B::Reconfig(ReconfigRequest {
                    joining_servers: j,
                    leaving_servers: l,
                    new_members: n,
                    cur_config_id: id,
                })
            })
            .boxed(),
        watches().prop_map(B::CheckWatches).boxed(),
        watches().prop_map(B::RemoveWatches).boxed(),
        string()
            .prop_map(|path| B::DeleteContainer { path })
            .boxed(),
        (any::<i32>(), string(), buffer())
            .prop_map(|(auth_type, scheme, auth)| {
                B::Auth(AuthPacket {
                    auth_type,
                    scheme,
                    auth,
                })
            })
            .boxed(),
        (any::<i64>(), strings(), strings(), strings())
            .prop_map(|(z, d, e, c)| {
                B::SetWatches(SetWatches {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                })
            })
            .boxed(),
        (
            any::<i64>(),
            strings(),
            strings(),
            strings(),
            strings(),
            strings(),
        )
            .prop_map(|(z, d, e, c, p, r)| {
                B::SetWatches2(SetWatches2 {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                })
            })
            .boxed(),
        buffer()
            .prop_map(|token| B::Sasl(GetSaslRequest { token }))
            .boxed(),
        string()
            .prop_map(|prefix_path| B::GetEphemerals(GetEphemeralsRequest { prefix_path }))
            .boxed(),
        path().prop_map(B::GetAllChildrenNumber).boxed(),
        (string(), any::<i32>())
            .prop_map(|(path, mode)| B::AddWatch(AddWatchRequest { path, mode }))
            .boxed(),
        Just(B::WhoAmI).boxed(),
        Just(B::CloseSession).boxed(),
        any::<i32>()
            .prop_filter("unknown opcode", |o| !is_known_request_op(*o))
            .prop_map(|op| B::Unknown { op })
            .boxed(),
    ])
    .boxed()
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        string().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        (string(), stat())
            .prop_map(|(path, stat)| MultiResult::Create2(Create2Response { path, stat })),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData(StatResponse { stat })),
        Just(MultiResult::Check),
        strings().prop_map(|children| MultiResult::GetChildren(GetChildrenResponse { children })),
        (buffer(), stat())
            .prop_map(|(data, stat)| MultiResult::GetData(GetDataResponse { data, stat })),
        any::<i32>().prop_map(MultiResult::Error),
    ]
}

/// A successful reply body together with the opcode of a request it can answer.
fn op_and_body() -> BoxedStrategy<(i32, ResponseBody)> {
    use ResponseBody as B;
    let empty_ops = prop::sample::select(vec![
        op::DELETE,
        op::DELETE_CONTAINER,
        op::PING,
        op::AUTH,
        op::SET_WATCHES,
        op::SET_WATCHES2,
        op::CHECK_WATCHES,
        op::REMOVE_WATCHES,
        op::CLOSE_SESSION,
    ]);
    let stat_ops = prop::sample::select(vec![op::EXISTS, op::SET_DATA, op::SET_ACL, op::CHECK]);
    let create2_ops = prop::sample::select(vec![op::CREATE2, op::CREATE_CONTAINER, op::CREATE_TTL]);
    Union::new(vec![
        empty_ops.prop_map(|o| (o, B::Empty)).boxed(),
        string()
            .prop_map(|path| (op::CREATE, B::Create(CreateResponse { path })))
            .boxed(),
        (create2_ops, string(), stat())
            .prop_map(|(o, path, stat)| (o, B::Create2(Create2Response { path, stat })))
            .boxed(),
        (stat_ops, stat())
            .prop_map(|(o, stat)| (o, B::Stat(StatResponse { stat })))
            .boxed(),
        (
            prop::sample::select(vec![op::GET_DATA, op::RECONFIG]),
            buffer(),
            stat(),
        )
            .prop_map(|(o, data, stat)| (o, B::GetData(GetDataResponse { data, stat })))
            .boxed(),
        (acl(), stat())
            .prop_map(|(acl, stat)| (op::GET_ACL, B::GetAcl(GetAclResponse { acl, stat })))
            .boxed(),
        strings()
            .prop_map(|children| {
                (
                    op::GET_CHILDREN,
                    B::GetChildren(GetChildrenResponse { children }),
                )
            })
            .boxed(),
        (strings(), stat())
            .prop_map(|(children, stat)| {
                (
                    op::GET_CHILDREN2,
                    B::GetChildren2(GetChildren2Response { children, stat }),
                )
            })
            .boxed(),
        string()
            .prop_map(|path| (op::SYNC, B::Sync(SyncResponse { path })))
            .boxed(),
        (
            prop::sample::select(vec![op::MULTI, op::MULTI_READ]),
            vec(multi_result(), 0..5),
        )
            .prop_map(|(o, results)| (o, B::Multi(MultiResponse { results })))
            .boxed(),
        buffer()
            .prop_map(|token| (op::SASL, B::Sasl(SetSaslResponse { token })))
            .boxed(),
        strings()
            .prop_map(|ephemerals| {
                (
                    op::GET_EPHEMERALS,
                    B::GetEphemerals(GetEphemeralsResponse { ephemerals }),
                )
            })
            .boxed(),
        any::<i32>()
            .prop_map(|total_number| {
                (
                    op::GET_ALL_CHILDREN_NUMBER,
                    B::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
                )
            })
            .boxed(),
        any::<i32>()
            .prop_map(|err| (op::ADD_WATCH, B::AddWatch(ErrorResponse { err })))
            .boxed(),
        vec(
            (string(), string()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }),
            0..3,
        )
        .prop_map(|client_info| (op::WHO_AM_I, B::WhoAmI(WhoAmIResponse { client_info })))
        .boxed(),
        (any::<i32>(), any::<i32>(), string())
            .prop_map(|(event_type, state, path)| {
                (
                    op::NOTIFICATION,
                    B::Notification(WatcherEvent {
                        event_type,
                        state,
                        path,
                    }),
                )
            })
            .boxed(),
    ])
    .boxed()
}

fn any_op() -> impl Strategy<Value = i32> {
    prop_oneof![
        prop::sample::select(vec![
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101,
            102, 103, 104, 105, 106, 107, -11,
        ]),
        any::<i32>(),
    ]
}

prop_compose! {
    fn connect_request()(
        protocol_version in any::<i32>(),
        last_zxid_seen in any::<i64>(),
        time_out in any::<i32>(),
        session_id in any::<i64>(),
        passwd in buffer(),
        read_only in proptest::option::of(any::<bool>()),
    ) -> ConnectRequest {
        ConnectRequest { protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only }
    }
}

prop_compose! {
    fn connect_response()(
        protocol_version in any::<i32>(),
        time_out in any::<i32>(),
        session_id in any::<i64>(),
        passwd in buffer(),
        read_only in proptest::option::of(any::<bool>()),
    ) -> ConnectResponse {
        ConnectResponse { protocol_version, time_out, session_id, passwd, read_only }
    }
}

// --- helpers ------------------------------------------------------------------------------

fn encode_request(r: &Request) -> Bytes {
    let mut w = BytesMut::new();
    r.write(&mut w);
    w.freeze()
}

fn encode_response(r: &Response) -> Bytes {
    let mut w = BytesMut::new();
    r.write(&mut w);
    w.freeze()
}

fn record_round_trips<T: Jute + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = to_bytes(v);
    let back: T =
        from_bytes(bytes.clone(), "record").map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, v);
    prop_assert_eq!(to_bytes(&back), bytes);
    Ok(())
}

// --- properties ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_kind_round_trips(xid in any::<i32>(), body in request_body()) {
        let req = Request::new(xid, body);
        let bytes = encode_request(&req);
        let back = Request::decode(bytes.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(encode_request(&back), bytes);
    }

    #[test]
    fn every_reply_kind_round_trips(
        xid in any::<i32>(),
        zxid in any::<i64>(),
        (op, body) in op_and_body(),
    ) {
        let resp = Response::ok(xid, zxid, body);
        let bytes = encode_response(&resp);
        let back = Response::decode(bytes.clone(), op).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &resp);
        prop_assert_eq!(encode_response(&back), bytes);
    }

    #[test]
    fn failed_replies_round_trip_as_a_bare_header(
        xid in any::<i32>(),
        zxid in any::<i64>(),
        err in any::<i32>().prop_filter("non-zero", |e| *e != 0),
        op in any_op(),
    ) {
        let resp = Response { header: ReplyHeader { xid, zxid, err }, body: ResponseBody::Empty };
        let bytes = encode_response(&resp);
        prop_assert_eq!(bytes.len(), 16);
        prop_assert_eq!(Response::decode(bytes, op).map_err(|e| TestCaseError::fail(e.to_string()))?, resp);
    }

    #[test]
    fn multi_requests_and_replies_round_trip(
        ops in vec(multi_op(), 0..6),
        reads in vec(multi_read_op(), 0..6),
        results in vec(multi_result(), 0..6),
    ) {
        record_round_trips(&MultiRequest { ops })?;
        record_round_trips(&MultiReadRequest { ops: reads })?;
        record_round_trips(&MultiResponse { results })?;
    }

    #[test]
    fn connect_handshake_round_trips_with_and_without_read_only(
        req in connect_request(),
        resp in connect_response(),
    ) {
        record_round_trips(&req)?;
        record_round_trips(&resp)?;
        prop_assert_eq!(ConnectRequest::decode(to_bytes(&req)).ok(), Some(req));
        prop_assert_eq!(ConnectResponse::decode(to_bytes(&resp)).ok(), Some(resp));
    }

    #[test]
    fn shared_records_round_trip(
        s in stat(),
        a in acl(),
        watches in watches(),
        event in (any::<i32>(), any::<i32>(), string()),
        info in vec((string(), string()), 0..3),
        header in any::<(i32, bool, i32)>(),
    ) {
        record_round_trips(&s)?;
        record_round_trips(&a)?;
        record_round_trips(&watches)?;
        record_round_trips(&WatcherEvent { event_type: event.0, state: event.1, path: event.2 })?;
        record_round_trips(&WhoAmIResponse {
            client_info: info.into_iter().map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }).collect(),
        })?;
        record_round_trips(&MultiHeader { op: header.0, done: header.1, err: header.2 })?;
    }

    #[test]
    fn frames_survive_any_split_of_the_stream(
        payloads in vec(vec(any::<u8>(), 0..40), 0..8),
        cuts in vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut stream = BytesMut::new();
        for p in &payloads {
            frame::encode_frame(&mut stream, p);
        }
        let stream = stream.freeze();
        let mut cut_points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cut_points.push(stream.len());
        cut_points.sort_unstable();

        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for to in cut_points {
            buf.extend_from_slice(&stream[from..to]);
            from = to;
            while let Some(f) = decoder.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_request_bytes_never_panic_and_what_decodes_round_trips(bytes in vec(any::<u8>(), 0..96)) {
        if let Ok(req) = Request::decode(Bytes::from(bytes)) {
            let again = Request::decode(encode_request(&req)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, req);
        }
    }

    #[test]
    fn arbitrary_reply_bytes_never_panic_and_what_decodes_round_trips(
        op in any_op(),
        bytes in vec(any::<u8>(), 0..128),
    ) {
        if let Ok(resp) = Response::decode(Bytes::from(bytes), op) {
            let again = Response::decode(encode_response(&resp), op).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, resp);
        }
    }

    #[test]
    fn arbitrary_handshake_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        let bytes = Bytes::from(bytes);
        if let Ok(req) = ConnectRequest::decode(bytes.clone()) {
            prop_assert_eq!(ConnectRequest::decode(to_bytes(&req)).ok(), Some(req));
        }
        if let Ok(resp) = ConnectResponse::decode(bytes) {
            prop_assert_eq!(ConnectResponse::decode(to_bytes(&resp)).ok(), Some(resp));
        }
    }

    #[test]
    fn frame_decoder_never_panics_and_never_returns_more_than_max(
        max in 0usize..64,
        bytes in vec(any::<u8>(), 0..128),
    ) {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(f)) = decoder.decode(&mut buf) {
            prop_assert!(f.len() <= max);
        }
    }
}
