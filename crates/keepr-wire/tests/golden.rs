//! Golden bytes from the real ZooKeeper 3.8: frames captured between kazoo, zkCli and the
//! Java API and a standalone ZooKeeper (see `golden/capture.py`). Every frame must decode
//! and re-encode to the identical bytes, and the decoded values must be what the client
//! asked for and what ZooKeeper answered.

mod common;

use bytes::Bytes;
use common::{Decoded, FixtureFrame};
use keepr_wire::codes::{event_type, keeper_state, op, perms, watcher_type};
use keepr_wire::*;

const KAZOO: &str = include_str!("golden/kazoo.frames");
const ZKCLI: &str = include_str!("golden/zkcli.frames");
const JAVA: &str = include_str!("golden/java.frames");

struct Capture {
    frames: Vec<(FixtureFrame, Decoded)>,
}

impl Capture {
    fn load(text: &str) -> Capture {
        Capture {
            frames: common::check_all(text).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn requests(&self) -> impl Iterator<Item = (&FixtureFrame, &Request)> {
        self.frames.iter().filter_map(|(f, d)| match d {
            Decoded::Request(r) => Some((f, r)),
            _ => None,
        })
    }

    /// Every request matching `pred`, in capture order.
    fn all(&self, pred: impl Fn(&RequestBody) -> bool) -> Vec<(&FixtureFrame, &Request)> {
        self.requests().filter(|(_, r)| pred(&r.body)).collect()
    }

    /// The first request matching `pred`.
    fn find(&self, what: &str, pred: impl Fn(&RequestBody) -> bool) -> (&FixtureFrame, &Request) {
        self.requests()
            .find(|(_, r)| pred(&r.body))
            .unwrap_or_else(|| panic!("no {what} in the capture"))
    }

    /// The reply to a request: the next server frame on its connection with its xid.
    fn reply(&self, request: (&FixtureFrame, &Request)) -> &Response {
        let (f, r) = request;
        self.frames
            .iter()
            .find_map(|(g, d)| match d {
                Decoded::Response(resp)
                    if g.conn == f.conn && g.line > f.line && resp.header.xid == r.header.xid =>
                {
                    Some(resp)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no reply to line {}", f.line))
    }

    fn notifications(&self) -> Vec<(&FixtureFrame, &Response, &WatcherEvent)> {
        self.frames
            .iter()
            .filter_map(|(f, d)| match d {
                Decoded::Response(r) => match &r.body {
                    ResponseBody::Notification(e) => Some((f, r, e)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn connects(&self) -> Vec<(&FixtureFrame, &ConnectRequest)> {
        self.frames
            .iter()
            .filter_map(|(f, d)| match d {
                Decoded::ConnectRequest(c) => Some((f, c)),
                _ => None,
            })
            .collect()
    }

    fn connect_response(&self, conn: u32) -> &ConnectResponse {
        self.frames
            .iter()
            .find_map(|(f, d)| match d {
                Decoded::ConnectResponse(c) if f.conn == conn => Some(c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no ConnectResponse on connection {conn}"))
    }
}

fn is_create_of<'a>(path: &'a str) -> impl Fn(&RequestBody) -> bool + 'a {
    move |b| match b {
        RequestBody::Create(c) | RequestBody::Create2(c) | RequestBody::CreateContainer(c) => {
            c.path == path
        }
        RequestBody::CreateTtl(c) => c.path == path,
        _ => false,
    }
}

fn create_body(r: &Request) -> &CreateRequest {
    match &r.body {
        RequestBody::Create(c) | RequestBody::Create2(c) | RequestBody::CreateContainer(c) => c,
        other => panic!("not a create: {other:?}"),
    }
}

fn err(resp: &Response) -> Option<ErrorCode> {
    ErrorCode::from_code(resp.header.err)
}

fn assert_failed(resp: &Response, code: ErrorCode) {
    assert_eq!(err(resp), Some(code), "{resp:?}");
    assert_eq!(resp.body, ResponseBody::Empty);
}

fn multi_results(resp: &Response) -> &[MultiResult] {
    assert_eq!(resp.header.err, 0, "a multi reply header always says ok");
    match &resp.body {
        ResponseBody::Multi(m) => &m.results,
        other => panic!("not a multi reply: {other:?}"),
    }
}

fn is_sequential_name(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|suffix| suffix.len() == 10 && suffix.bytes().all(|b| b.is_ascii_digit()))
}

// --- kazoo --------------------------------------------------------------------------------

#[test]
fn kazoo_frames_decode_and_reencode_identically() {
    let cap = Capture::load(KAZOO);
    assert!(cap.frames.len() > 90, "{} frames", cap.frames.len());
}

#[test]
fn kazoo_creates_carry_each_create_mode_in_flags() {
    let cap = Capture::load(KAZOO);
    for (path, flags) in [
        ("/kazoo", codes::create_flags::PERSISTENT),
        ("/kazoo/eph", codes::create_flags::EPHEMERAL),
        ("/kazoo/seq-", codes::create_flags::PERSISTENT_SEQUENTIAL),
        ("/kazoo/eseq-", codes::create_flags::EPHEMERAL_SEQUENTIAL),
    ] {
        let (_, r) = cap.find(path, is_create_of(path));
        let c = create_body(r);
        assert_eq!(c.flags, flags, "{path}");
        assert_eq!(
            c.acl,
            vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into()
                }
            }]
        );
    }
}

#[test]
fn sequential_create_reply_appends_a_ten_digit_counter() {
    let cap = Capture::load(KAZOO);
    for prefix in ["/kazoo/seq-", "/kazoo/eseq-"] {
        let req = cap.find(prefix, is_create_of(prefix));
        let ResponseBody::Create(c) = &cap.reply(req).body else {
            panic!("create reply expected");
        };
        assert!(is_sequential_name(&c.path, prefix), "{}", c.path);
    }
}

#[test]
fn kazoo_sends_empty_data_as_an_empty_buffer_and_reads_it_back_empty() {
    let cap = Capture::load(KAZOO);
    let (_, r) = cap.find("/kazoo/empty", is_create_of("/kazoo/empty"));
    assert_eq!(create_body(r).data, Some(Bytes::new()));
    let get = cap.find(
        "getData /kazoo/empty",
        |b| matches!(b, RequestBody::GetData(g) if g.path == "/kazoo/empty"),
    );
    let ResponseBody::GetData(d) = &cap.reply(get).body else {
        panic!("getData reply expected");
    };
    assert_eq!(d.data, Some(Bytes::new()));
    assert_eq!(d.stat.data_length, 0);
}

#[test]
fn create2_reply_carries_the_new_nodes_stat() {
    let cap = Capture::load(KAZOO);
    let req = cap.find("create2", |b| matches!(b, RequestBody::Create2(_)));
    let resp = cap.reply(req);
    let ResponseBody::Create2(c) = &resp.body else {
        panic!("create2 reply expected: {resp:?}");
    };
    assert_eq!(c.path, "/kazoo/with-stat");
    assert_eq!(c.stat.version, 0);
    assert_eq!(c.stat.czxid, resp.header.zxid);
    assert_eq!(c.stat.mzxid, c.stat.czxid);
    assert_eq!(c.stat.ctime, c.stat.mtime);
    assert_eq!(c.stat.data_length, 1);
    assert_eq!(c.stat.ephemeral_owner, 0);
}

#[test]
fn failed_replies_carry_the_error_code_and_no_body() {
    let cap = Capture::load(KAZOO);
    let creates = cap.all(is_create_of("/kazoo"));
    assert_failed(cap.reply(creates[1]), ErrorCode::NodeExists);
    let missing = |b: &RequestBody| match b {
        RequestBody::GetData(g) | RequestBody::Exists(g) => g.path == "/kazoo/missing",
        _ => false,
    };
    for req in cap.all(missing) {
        assert_failed(cap.reply(req), ErrorCode::NoNode);
    }
    let child = cap.find("child of an ephemeral", is_create_of("/kazoo/eph/child"));
    assert_failed(cap.reply(child), ErrorCode::NoChildrenForEphemerals);
    let stale = cap.find(
        "setData with version 42",
        |b| matches!(b, RequestBody::SetData(s) if s.version == 42),
    );
    assert_failed(cap.reply(stale), ErrorCode::BadVersion);
    let not_empty = cap.find(
        "delete /kazoo",
        |b| matches!(b, RequestBody::Delete(d) if d.path == "/kazoo"),
    );
    assert_failed(cap.reply(not_empty), ErrorCode::NotEmpty);
    let bad_acl = cap.find("bad ACL", is_create_of("/kazoo/bad-acl"));
    assert_eq!(create_body(bad_acl.1).acl[0].id.id, "nocolon");
    assert_failed(cap.reply(bad_acl), ErrorCode::InvalidAcl);
}

#[test]
fn set_data_reply_stat_counts_versions() {
    let cap = Capture::load(KAZOO);
    let sets: Vec<_> = cap
        .all(|b| matches!(b, RequestBody::SetData(s) if s.path == "/kazoo"))
        .into_iter()
        .filter(|req| cap.reply(*req).header.err == 0)
        .collect();
    let versions: Vec<i32> = sets
        .iter()
        .map(|req| match &cap.reply(*req).body {
            ResponseBody::Stat(s) => s.stat.version,
            other => panic!("stat reply expected: {other:?}"),
        })
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    let RequestBody::SetData(second) = &sets[1].1.body else {
        unreachable!()
    };
    assert_eq!(second.version, 1);
    assert_eq!(second.data.as_deref(), Some(&b"third"[..]));
}

#[test]
fn successful_multi_answers_each_op_with_its_result_type() {
    let cap = Capture::load(KAZOO);
    let multis = cap.all(|b| matches!(b, RequestBody::Multi(_)));
    let RequestBody::Multi(m) = &multis[0].1.body else {
        unreachable!()
    };
    let ops: Vec<i32> = m.ops.iter().map(MultiOp::op).collect();
    assert_eq!(ops, vec![op::CREATE, op::SET_DATA, op::CHECK, op::DELETE]);
    let results = multi_results(cap.reply(multis[0]));
    assert!(matches!(&results[0], MultiResult::Create(c) if c.path == "/kazoo/tx"));
    assert!(matches!(&results[1], MultiResult::SetData(s) if s.stat.version == 1));
    assert_eq!(results[2..], [MultiResult::Check, MultiResult::Delete]);
}

#[test]
fn failed_multi_answers_every_op_with_an_error_result_and_header_err_zero() {
    let cap = Capture::load(KAZOO);
    let multis = cap.all(|b| matches!(b, RequestBody::Multi(_)));
    let results = multi_results(cap.reply(multis[1]));
    assert_eq!(
        results,
        [
            MultiResult::Error(0),
            MultiResult::Error(ErrorCode::NoNode.code()),
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
        ]
    );
}

#[test]
fn watch_notifications_are_xid_minus_one_with_sync_connected_state() {
    let cap = Capture::load(KAZOO);
    let events: Vec<(i32, &str)> = cap
        .notifications()
        .iter()
        .map(|(_, resp, e)| {
            assert_eq!(resp.header.err, 0);
            // ZooKeeper 3.8 sends -1 as the notification's zxid (3.9 sends the txn's).
            assert_eq!(resp.header.zxid, -1);
            assert_eq!(e.state, keeper_state::SYNC_CONNECTED);
            (e.event_type, e.path.as_str())
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (event_type::NODE_DATA_CHANGED, "/kazoo"),
            (event_type::NODE_CHILDREN_CHANGED, "/kazoo"),
            (event_type::NODE_CREATED, "/kazoo/later"),
            (event_type::NODE_DELETED, "/kazoo/later"),
        ]
    );
}

#[test]
fn notification_reaches_the_client_before_the_reply_that_caused_it() {
    let cap = Capture::load(KAZOO);
    let set = cap.find(
        "the watched setData",
        |b| matches!(b, RequestBody::SetData(s) if s.data.as_deref() == Some(&b"watched"[..])),
    );
    let (note, _, _) = cap.notifications()[0];
    let reply_line = cap
        .frames
        .iter()
        .find(|(f, d)| {
            f.line > set.0.line
                && matches!(d, Decoded::Response(r) if r.header.xid == set.1.header.xid)
        })
        .map(|(f, _)| f.line)
        .expect("reply");
    assert!(note.line > set.0.line && note.line < reply_line);
}

#[test]
fn auth_uses_xid_minus_four_and_clear_text_credentials() {
    let cap = Capture::load(KAZOO);
    let req = cap.find("auth", |b| matches!(b, RequestBody::Auth(_)));
    assert_eq!(req.1.header.xid, codes::xid::AUTH);
    assert_eq!(
        req.1.body,
        RequestBody::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(Bytes::from_static(b"alice:secret")),
        })
    );
    let resp = cap.reply(req);
    assert_eq!(resp.header.xid, codes::xid::AUTH);
    assert_eq!(resp.header.err, 0);
}

#[test]
fn unknown_auth_scheme_is_answered_with_auth_failed() {
    let cap = Capture::load(KAZOO);
    let req = cap.find(
        "auth with an unknown scheme",
        |b| matches!(b, RequestBody::Auth(a) if a.scheme == "nosuchscheme"),
    );
    assert_failed(cap.reply(req), ErrorCode::AuthFailed);
}

#[test]
fn digest_acl_is_stored_and_read_back_and_set_acl_bumps_aversion() {
    let cap = Capture::load(KAZOO);
    let (_, create) = cap.find("/kazoo/secret", is_create_of("/kazoo/secret"));
    let acl = &create_body(create).acl;
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));
    let get = cap.find("getACL", |b| matches!(b, RequestBody::GetAcl(_)));
    let ResponseBody::GetAcl(got) = &cap.reply(get).body else {
        panic!("getACL reply expected");
    };
    assert_eq!(&got.acl, acl);
    assert_eq!(got.stat.aversion, 0);
    let set = cap.find("setACL", |b| matches!(b, RequestBody::SetAcl(_)));
    let RequestBody::SetAcl(s) = &set.1.body else {
        unreachable!()
    };
    assert_eq!(s.version, 0);
    assert_eq!(s.acl[1].perms, perms::READ);
    let ResponseBody::Stat(after) = &cap.reply(set).body else {
        panic!("setACL reply expected");
    };
    assert_eq!(after.stat.aversion, 1);
    let denied = cap.find(
        "setData without auth",
        |b| matches!(b, RequestBody::SetData(s) if s.path == "/kazoo/secret"),
    );
    assert_failed(cap.reply(denied), ErrorCode::NoAuth);
}

#[test]
fn new_session_connect_has_zero_session_and_a_sixteen_byte_zero_password() {
    let cap = Capture::load(KAZOO);
    let (f, first) = cap.connects()[0];
    assert_eq!(first.protocol_version, 0);
    assert_eq!(first.session_id, 0);
    assert_eq!(first.last_zxid_seen, 0);
    assert_eq!(first.time_out, 10_000);
    assert_eq!(first.passwd, Some(Bytes::from_static(&[0; 16])));
    assert_eq!(first.read_only, Some(false));
    assert_eq!(f.payload.len(), 45);
    let (f, _) = cap
        .connects()
        .into_iter()
        .find(|(f, _)| {
            cap.frames
                .iter()
                .any(|(g, d)| g.conn == f.conn && matches!(d, Decoded::ConnectResponse(_)))
        })
        .expect("an answered connect");
    let resp = cap.connect_response(f.conn);
    assert_eq!(resp.time_out, 10_000);
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.passwd.as_ref().map(Bytes::len), Some(16));
    assert_eq!(resp.read_only, Some(false));
}

#[test]
fn reconnect_resends_session_id_password_and_last_zxid() {
    let cap = Capture::load(KAZOO);
    let resumed: Vec<_> = cap
        .connects()
        .into_iter()
        .filter(|(_, c)| c.session_id != 0)
        .collect();
    assert_eq!(resumed.len(), 1);
    let (f, again) = resumed[0];
    let original = cap
        .frames
        .iter()
        .find_map(|(_, d)| match d {
            Decoded::ConnectResponse(r) if r.session_id == again.session_id => Some(r),
            _ => None,
        })
        .expect("the original session");
    assert_eq!(again.passwd, original.passwd);
    assert!(again.last_zxid_seen > 0);
    let answer = cap.connect_response(f.conn);
    assert_eq!(answer.session_id, again.session_id);
    assert!(answer.time_out > 0);
}

#[test]
fn close_session_is_a_bare_header_both_ways() {
    let cap = Capture::load(KAZOO);
    let req = cap.find("closeSession", |b| matches!(b, RequestBody::CloseSession));
    assert_eq!(req.0.payload.len(), 8);
    let resp = cap.reply(req);
    assert_eq!(resp.header.err, 0);
    assert_eq!(resp.body, ResponseBody::Empty);
}

// --- zkCli --------------------------------------------------------------------------------

#[test]
fn zkcli_frames_decode_and_reencode_identically() {
    let cap = Capture::load(ZKCLI);
    assert!(cap.frames.len() > 140, "{} frames", cap.frames.len());
}

#[test]
fn zkcli_create_without_data_sends_a_null_buffer_and_reads_back_null() {
    let cap = Capture::load(ZKCLI);
    let (_, r) = cap.find("/zkcli/nodata", is_create_of("/zkcli/nodata"));
    assert_eq!(create_body(r).data, None);
    let get = cap.find(
        "get /zkcli/nodata",
        |b| matches!(b, RequestBody::GetData(g) if g.path == "/zkcli/nodata"),
    );
    let ResponseBody::GetData(d) = &cap.reply(get).body else {
        panic!("getData reply expected");
    };
    assert_eq!(d.data, None);
    assert_eq!(d.stat.data_length, 0);
}

#[test]
fn container_and_ttl_creates_use_their_own_opcodes_and_flags() {
    let cap = Capture::load(ZKCLI);
    let cont = cap.find("createContainer", |b| {
        matches!(b, RequestBody::CreateContainer(_))
    });
    let RequestBody::CreateContainer(c) = &cont.1.body else {
        unreachable!()
    };
    assert_eq!(
        (c.path.as_str(), c.flags),
        ("/zkcli/cont", codes::create_flags::CONTAINER)
    );
    assert!(matches!(&cap.reply(cont).body, ResponseBody::Create2(r) if r.path == "/zkcli/cont"));

    let ttls = cap.all(|b| matches!(b, RequestBody::CreateTtl(_)));
    let flags: Vec<(i32, i64)> = ttls
        .iter()
        .map(|(_, r)| match &r.body {
            RequestBody::CreateTtl(t) => (t.flags, t.ttl),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            (codes::create_flags::PERSISTENT_WITH_TTL, 600_000),
            (codes::create_flags::PERSISTENT_SEQUENTIAL_WITH_TTL, 600_000),
        ]
    );
    let ResponseBody::Create2(seq) = &cap.reply(ttls[1]).body else {
        panic!("create2 reply expected");
    };
    assert!(
        is_sequential_name(&seq.path, "/zkcli/ttlseq-"),
        "{}",
        seq.path
    );
    // TTL nodes are not ephemeral: clients see owner 0, not the internal TTL marker.
    assert_eq!(seq.stat.ephemeral_owner, 0);
}

#[test]
fn get_all_children_number_counts_every_descendant() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find("getAllChildrenNumber", |b| {
        matches!(b, RequestBody::GetAllChildrenNumber(_))
    });
    // nodata eph seq- eseq- cont cont/child ttl ttlseq- open
    assert_eq!(
        cap.reply(req).body,
        ResponseBody::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 9 })
    );
}

#[test]
fn get_ephemerals_lists_the_sessions_ephemeral_nodes() {
    let cap = Capture::load(ZKCLI);
    let reqs = cap.all(|b| matches!(b, RequestBody::GetEphemerals(_)));
    let prefixes: Vec<&str> = reqs
        .iter()
        .map(|(_, r)| match &r.body {
            RequestBody::GetEphemerals(g) => g.prefix_path.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(prefixes, vec!["/zkcli", "/"]);
    for req in reqs {
        let ResponseBody::GetEphemerals(e) = &cap.reply(req).body else {
            panic!("getEphemerals reply expected");
        };
        let mut paths = e.ephemerals.clone();
        paths.sort();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0], "/zkcli/eph");
        assert!(is_sequential_name(&paths[1], "/zkcli/eseq-"), "{paths:?}");
    }
}

#[test]
fn who_am_i_lists_the_connections_identities() {
    let cap = Capture::load(ZKCLI);
    let answers: Vec<Vec<(String, String)>> = cap
        .all(|b| matches!(b, RequestBody::WhoAmI))
        .into_iter()
        .map(|req| match &cap.reply(req).body {
            ResponseBody::WhoAmI(w) => {
                let mut ids: Vec<(String, String)> = w
                    .client_info
                    .iter()
                    .map(|c| (c.auth_scheme.clone(), c.user.clone()))
                    .collect();
                ids.sort();
                ids
            }
            other => panic!("whoAmI reply expected: {other:?}"),
        })
        .collect();
    let ip = ("ip".to_string(), "127.0.0.1".to_string());
    assert_eq!(answers[0], vec![ip.clone()]);
    assert_eq!(answers[1], vec![("digest".into(), "bob".into()), ip]);
}

#[test]
fn set_acl_with_the_auth_scheme_is_stored_as_the_callers_digest() {
    let cap = Capture::load(ZKCLI);
    let sets = cap.all(|b| matches!(b, RequestBody::SetAcl(_)));
    let RequestBody::SetAcl(s) = &sets[0].1.body else {
        unreachable!()
    };
    assert_eq!(s.acl[0].id.scheme, "auth");
    assert_eq!(s.acl[0].perms, perms::ALL);
    let get = cap.find("getACL", |b| matches!(b, RequestBody::GetAcl(_)));
    let ResponseBody::GetAcl(got) = &cap.reply(get).body else {
        panic!("getACL reply expected");
    };
    assert_eq!(got.acl.len(), 1);
    assert_eq!(got.acl[0].id.scheme, "digest");
    assert!(got.acl[0].id.id.starts_with("bob:"));
    assert_eq!(got.stat.aversion, 1);
    let RequestBody::SetAcl(stale) = &sets[1].1.body else {
        unreachable!()
    };
    assert_eq!(stale.version, 7);
    assert_failed(cap.reply(sets[1]), ErrorCode::BadVersion);
}

#[test]
fn reconfig_sends_null_for_the_lists_it_leaves_out_and_standalone_refuses_it() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find("reconfig", |b| matches!(b, RequestBody::Reconfig(_)));
    assert_eq!(
        req.1.body,
        RequestBody::Reconfig(ReconfigRequest {
            joining_servers: Some("server.5=127.0.0.1:2888:3888;2181".into()),
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        })
    );
    assert_failed(cap.reply(req), ErrorCode::ReconfigDisabled);
}

#[test]
fn set_watches_after_reconnect_lists_every_armed_watch() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find("setWatches", |b| matches!(b, RequestBody::SetWatches(_)));
    // ClientCnxn builds the header with xid -8, but the NIO socket layer then gives every
    // packet except ping and auth the next ordinary xid: servers must not rely on -8.
    assert!(req.1.header.xid > 0, "{:?}", req.1.header);
    let RequestBody::SetWatches(w) = &req.1.body else {
        unreachable!()
    };
    let mut data = w.data_watches.clone();
    data.sort();
    assert_eq!(data, vec!["/zkcli/eph", "/zkcli/nodata"]);
    assert_eq!(w.exist_watches, vec!["/zkcli/not-yet"]);
    assert_eq!(w.child_watches, vec!["/zkcli"]);
    let (f, resumed) = *cap
        .connects()
        .iter()
        .find(|(f, _)| f.conn == req.0.conn)
        .expect("the reconnect");
    assert_eq!(w.relative_zxid, resumed.last_zxid_seen);
    assert!(f.line < req.0.line);
    let resp = cap.reply(req);
    assert_eq!(resp.header.xid, req.1.header.xid);
    assert_eq!(resp.header.err, 0);
    assert_eq!(resp.body, ResponseBody::Empty);
}

#[test]
fn set_watches2_carries_the_persistent_watches() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find("setWatches2", |b| matches!(b, RequestBody::SetWatches2(_)));
    assert!(req.1.header.xid > 0, "an ordinary xid, as for setWatches");
    let RequestBody::SetWatches2(w) = &req.1.body else {
        unreachable!()
    };
    assert_eq!(w.persistent_watches, vec!["/zkcli/pw"]);
    let mut recursive = w.persistent_recursive_watches.clone();
    recursive.sort();
    assert_eq!(recursive, vec!["/zkcli/default-mode", "/zkcli/prw"]);
    assert_eq!(cap.reply(req).body, ResponseBody::Empty);
}

#[test]
fn add_watch_reply_is_an_error_response_of_zero() {
    let cap = Capture::load(ZKCLI);
    let reqs = cap.all(|b| matches!(b, RequestBody::AddWatch(_)));
    let modes: Vec<(String, i32)> = reqs
        .iter()
        .map(|(_, r)| match &r.body {
            RequestBody::AddWatch(a) => (a.path.clone(), a.mode),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        modes,
        vec![
            ("/zkcli/pw".to_string(), codes::add_watch_mode::PERSISTENT),
            (
                "/zkcli/prw".to_string(),
                codes::add_watch_mode::PERSISTENT_RECURSIVE
            ),
            (
                "/zkcli/default-mode".to_string(),
                codes::add_watch_mode::PERSISTENT_RECURSIVE
            ),
        ]
    );
    for req in reqs {
        assert_eq!(
            cap.reply(req).body,
            ResponseBody::AddWatch(ErrorResponse { err: 0 })
        );
    }
}

#[test]
fn persistent_recursive_watch_fires_for_descendants() {
    let cap = Capture::load(ZKCLI);
    let events: Vec<(i32, &str)> = cap
        .notifications()
        .iter()
        .map(|(_, _, e)| (e.event_type, e.path.as_str()))
        .collect();
    for expected in [
        (event_type::NODE_CREATED, "/zkcli/pw"),
        (event_type::NODE_DATA_CHANGED, "/zkcli/pw"),
        (event_type::NODE_CREATED, "/zkcli/prw/deep"),
        (event_type::NODE_DELETED, "/zkcli/prw/deep"),
    ] {
        assert!(events.contains(&expected), "{expected:?} not in {events:?}");
    }
}

#[test]
fn remove_watches_names_the_type_and_missing_watches_are_no_watcher() {
    let cap = Capture::load(ZKCLI);
    let reqs = cap.all(|b| matches!(b, RequestBody::RemoveWatches(_)));
    for (_, r) in &reqs {
        let RequestBody::RemoveWatches(w) = &r.body else {
            unreachable!()
        };
        assert_eq!(w.watcher_type, watcher_type::ANY);
    }
    assert_eq!(cap.reply(reqs[0]).header.err, 0);
    assert_failed(cap.reply(reqs[1]), ErrorCode::NoWatcher);
}

#[test]
fn deleteall_deletes_through_multi() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find("multi", |b| matches!(b, RequestBody::Multi(_)));
    assert_eq!(
        req.1.body,
        RequestBody::Multi(MultiRequest {
            ops: vec![MultiOp::Delete(DeleteRequest {
                path: "/zkcli/prw".into(),
                version: -1
            })]
        })
    );
    assert_eq!(multi_results(cap.reply(req)), [MultiResult::Delete]);
}

#[test]
fn ping_is_xid_minus_two_and_answered_with_a_bare_header() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find("ping", |b| matches!(b, RequestBody::Ping));
    assert_eq!(req.1.header.xid, codes::xid::PING);
    let resp = cap.reply(req);
    assert_eq!(resp.header.xid, codes::xid::PING);
    assert_eq!(resp.header.err, 0);
    assert!(resp.header.zxid > 0);
}

#[test]
fn read_only_client_sets_the_read_only_byte() {
    let cap = Capture::load(ZKCLI);
    let flags: Vec<Option<bool>> = cap.connects().iter().map(|(_, c)| c.read_only).collect();
    assert_eq!(flags.last(), Some(&Some(true)));
    assert!(flags[..flags.len() - 1].iter().all(|f| *f == Some(false)));
}

#[test]
fn config_command_reads_the_config_node() {
    let cap = Capture::load(ZKCLI);
    let req = cap.find(
        "getData /zookeeper/config",
        |b| matches!(b, RequestBody::GetData(g) if g.path == "/zookeeper/config"),
    );
    assert!(matches!(cap.reply(req).body, ResponseBody::GetData(_)));
}

#[test]
fn zkcli_error_replies() {
    let cap = Capture::load(ZKCLI);
    let delete = |path: &'static str| move |b: &RequestBody| matches!(b, RequestBody::Delete(d) if d.path == path);
    assert_failed(
        cap.reply(cap.find("delete missing", delete("/zkcli/missing"))),
        ErrorCode::NoNode,
    );
    assert_failed(
        cap.reply(cap.find("delete non-empty", delete("/zkcli/cont"))),
        ErrorCode::NotEmpty,
    );
    let ls_missing = cap.find(
        "ls missing",
        |b| matches!(b, RequestBody::GetChildren2(g) if g.path == "/zkcli/missing"),
    );
    assert_failed(cap.reply(ls_missing), ErrorCode::NoNode);
}

// --- Java API -----------------------------------------------------------------------------

#[test]
fn java_frames_decode_and_reencode_identically() {
    let cap = Capture::load(JAVA);
    assert!(cap.frames.len() > 30, "{} frames", cap.frames.len());
}

#[test]
fn java_client_sends_create2_and_an_empty_array_as_length_zero() {
    let cap = Capture::load(JAVA);
    let (_, r) = cap.find("/java/empty", is_create_of("/java/empty"));
    assert_eq!(r.header.op, op::CREATE2);
    assert_eq!(create_body(r).data, Some(Bytes::new()));
}

#[test]
fn multi_answers_ttl_and_container_creates_as_create2() {
    let cap = Capture::load(JAVA);
    let multis = cap.all(|b| matches!(b, RequestBody::Multi(_)));
    let RequestBody::Multi(m) = &multis[0].1.body else {
        unreachable!()
    };
    let ops: Vec<i32> = m.ops.iter().map(MultiOp::op).collect();
    assert_eq!(
        ops,
        vec![
            op::CREATE,
            op::CREATE_TTL,
            op::CREATE,
            op::CREATE_CONTAINER,
            op::SET_DATA,
            op::CHECK,
            op::DELETE
        ]
    );
    let kinds: Vec<i32> = multi_results(cap.reply(multis[0]))
        .iter()
        .map(MultiResult::op)
        .collect();
    assert_eq!(
        kinds,
        vec![
            op::CREATE,
            op::CREATE2,
            op::CREATE,
            op::CREATE2,
            op::SET_DATA,
            op::CHECK,
            op::DELETE
        ]
    );
}

#[test]
fn multi_failing_on_a_check_reports_bad_version_for_that_op() {
    let cap = Capture::load(JAVA);
    let multis = cap.all(|b| matches!(b, RequestBody::Multi(_)));
    assert_eq!(
        multi_results(cap.reply(multis[1])),
        [
            MultiResult::Error(0),
            MultiResult::Error(ErrorCode::BadVersion.code()),
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
        ]
    );
}

#[test]
fn multi_read_answers_each_read_independently() {
    let cap = Capture::load(JAVA);
    let req = cap.find("multiRead", |b| matches!(b, RequestBody::MultiRead(_)));
    let RequestBody::MultiRead(m) = &req.1.body else {
        unreachable!()
    };
    let ops: Vec<(i32, &str)> = m.ops.iter().map(|o| (o.op(), o.path())).collect();
    assert_eq!(
        ops,
        vec![
            (op::GET_DATA, "/java"),
            (op::GET_CHILDREN, "/java"),
            (op::GET_DATA, "/java/missing")
        ]
    );
    let results = multi_results(cap.reply(req));
    assert!(
        matches!(&results[0], MultiResult::GetData(d) if d.data.as_deref() == Some(&b"root"[..]))
    );
    assert!(matches!(&results[1], MultiResult::GetChildren(c) if c.children.len() >= 3));
    assert_eq!(results[2], MultiResult::Error(ErrorCode::NoNode.code()));
}

#[test]
fn check_watches_names_the_watch_type() {
    let cap = Capture::load(JAVA);
    let req = cap.find("checkWatches", |b| {
        matches!(b, RequestBody::CheckWatches(_))
    });
    assert_eq!(
        req.1.body,
        RequestBody::CheckWatches(WatchesRequest {
            path: "/java".into(),
            watcher_type: watcher_type::DATA
        })
    );
}

#[test]
fn recursive_watch_on_the_java_root_fires_for_a_grandchild() {
    let cap = Capture::load(JAVA);
    let events: Vec<(i32, &str)> = cap
        .notifications()
        .iter()
        .map(|(_, _, e)| (e.event_type, e.path.as_str()))
        .collect();
    assert_eq!(events[0], (event_type::NODE_CREATED, "/java/cont/watched"));
}
