//! A [`Backend`] without Raft or disk: each write is applied to the tree the moment it is
//! proposed.
//!
//! The connection logic (handshake, FIFO pipeline, watch delivery, error paths) does not
//! depend on how writes are replicated, only on the order and effects of their application.
//! This backend gives it exactly those effects (increasing zxids, the proposer's clock in
//! ctime/mtime, watch events queued while the tree is still locked) synchronously, so unit
//! tests and the fuzzer can drive a real [`Connection`](super::connection) over an in-memory
//! stream, deterministically and fast. A write's future is ready when it is returned, so the
//! pipeline never waits: what these tests pin is the ordering logic, not replication.
//!
//! [`apply_and_deliver`] is the step the Raft state machine performs for each committed
//! command; it is public so that both paths can share it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;
use keepr_tree::{Command, Tree, TreeConfig};
use openraft::type_config::alias::LeaderIdOf;
use openraft::vote::RaftLeaderId;
use parking_lot::Mutex;

use super::backend::{Applied, Backend, Mode, ProposeError, ZkSettings};
use crate::config::{Config, ALL_FOUR_LETTER_WORDS};
use crate::metrics::Metrics;
use crate::raft::types::{LogId, TypeConfig};
use crate::sessions::{SessionIds, SessionTracker};
use crate::state::{apply_and_deliver, write_reply, ApplyScratch, Shared};

/// Protocol settings of a standalone member with ZooKeeper's defaults (those of
/// [`Config::new`]) and every four-letter word enabled.
pub fn standalone_settings() -> ZkSettings {
    let mut settings = ZkSettings::from(&Config::new(1, PathBuf::new()));
    settings.four_letter_words = ALL_FOUR_LETTER_WORDS
        .iter()
        .map(|w| w.to_string())
        .collect();
    settings
}

/// A member of one that applies writes as they are proposed.
pub struct DirectBackend {
    shared: Arc<Shared>,
    settings: ZkSettings,
    sessions: SessionTracker,
    session_ids: SessionIds,
    /// Also serialises writers: the tree's write lock is taken inside it.
    scratch: Mutex<ApplyScratch>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl DirectBackend {
    /// An empty tree with ZooKeeper's default limits.
    pub fn new(settings: ZkSettings) -> DirectBackend {
        let shared = Shared::new(
            settings.node_id,
            Tree::new(TreeConfig::default()),
            Arc::new(Metrics::new()),
        );
        DirectBackend {
            sessions: SessionTracker::new(settings.tick, Instant::now()),
            session_ids: SessionIds::new(settings.node_id, now_ms()),
            shared: Arc::new(shared),
            settings,
            scratch: Mutex::new(ApplyScratch::default()),
        }
    }

    /// Applies `cmd` as the next transaction: what committing it through Raft would do.
    pub fn apply(&self, mut cmd: Command) -> Applied {
        let mut scratch = self.scratch.lock();
        let mut st = self.shared.tree.write();
        let index = st.applied_index() + 1;
        cmd.zxid = index as i64;
        cmd.time = now_ms();
        let result = apply_and_deliver(&mut st.tree, &self.shared, cmd.zxid, &cmd, &mut scratch);
        st.last_applied = Some(self.log_id(index));
        drop(st);
        drop(scratch);
        self.shared.applied.send_replace(index);
        Applied {
            index,
            reply: write_reply(&result),
        }
    }

    fn log_id(&self, index: u64) -> LogId {
        // One everlasting term led by this member.
        let leader = LeaderIdOf::<TypeConfig>::new(1, self.settings.node_id).to_committed();
        LogId {
            leader_id: leader,
            index,
        }
    }
}

impl Backend for DirectBackend {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
    fn settings(&self) -> &ZkSettings {
        &self.settings
    }
    fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }
    fn session_ids(&self) -> &SessionIds {
        &self.session_ids
    }
    fn mode(&self) -> Mode {
        Mode::Standalone
    }
    fn read_only(&self) -> bool {
        false
    }

    fn reconfig(
        &self,
        _req: keepr_wire::ReconfigRequest,
    ) -> BoxFuture<'static, Result<String, keepr_wire::ErrorCode>> {
        // No membership to change without Raft.
        futures::future::ready(Err(keepr_wire::ErrorCode::ReconfigDisabled)).boxed()
    }

    fn propose(&self, cmd: Command) -> BoxFuture<'static, Result<Applied, ProposeError>> {
        futures::future::ready(Ok(self.apply(cmd))).boxed()
    }

    fn sync(&self) -> BoxFuture<'static, Result<(), ProposeError>> {
        // Everything proposed is already applied.
        futures::future::ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    //! A real [`Connection`](super::super::connection) over an in-memory pipe: the protocol
    //! behaviour clients rely on, with writes applied directly.

    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use keepr_tree::acl::open_acl_unsafe;
    use keepr_tree::TxnOp;
    use keepr_wire::codes::{event_type, op, xid};
    use keepr_wire::frame::{encode_frame, FrameDecoder};
    use keepr_wire::jute::Jute;
    use keepr_wire::request::{Request, RequestBody};
    use keepr_wire::response::{Response, ResponseBody};
    use keepr_wire::{
        AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, DeleteRequest, ErrorCode,
        PathRequest, PathWatchRequest, SetDataRequest, WatcherEvent,
    };
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::zk::connection::serve_stream;

    /// Only guards against a hang; every read below normally completes at once.
    const HANG_GUARD: Duration = Duration::from_secs(60);

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    struct Client {
        io: DuplexStream,
        buf: BytesMut,
        frames: FrameDecoder,
    }

    impl Client {
        /// A client whose connection is served by `backend` on a task of its own.
        fn open(backend: &Arc<DirectBackend>) -> Client {
            let (io, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(serve_stream(backend.clone(), server, peer()));
            Client {
                io,
                buf: BytesMut::new(),
                frames: FrameDecoder::new(64 << 20),
            }
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.io.write_all(bytes).await.expect("pipe open");
        }

        async fn request(&mut self, xid: i32, body: RequestBody) {
            let mut out = BytesMut::new();
            Request::new(xid, body).write_frame(&mut out);
            self.send(&out).await;
        }

        /// The next frame the server sent, or `None` once it closed the connection.
        async fn frame(&mut self) -> Option<Bytes> {
            loop {
                if let Some(f) = self
                    .frames
                    .decode(&mut self.buf)
                    .expect("well-formed frame")
                {
                    return Some(f);
                }
                let n = tokio::time::timeout(HANG_GUARD, self.io.read_buf(&mut self.buf))
                    .await
                    .expect("server answered or closed")
                    .expect("pipe read");
                if n == 0 {
                    assert!(self.buf.is_empty(), "connection closed inside a frame");
                    return None;
                }
            }
        }

        /// Everything the server sends until it closes.
        async fn rest(&mut self) -> Vec<u8> {
            let mut all = std::mem::take(&mut self.buf).to_vec();
            tokio::time::timeout(HANG_GUARD, self.io.read_to_end(&mut all))
                .await
                .expect("server closed")
                .expect("pipe read");
            all
        }

        async fn reply(&mut self, request_op: i32) -> Response {
            let f = self.frame().await.expect("a reply, not a close");
            Response::decode(f, request_op).expect("reply decodes")
        }

        async fn handshake(&mut self, read_only: Option<bool>) -> ConnectResponse {
            self.send(&connect_frame(read_only)).await;
            let f = self.frame().await.expect("handshake answered");
            ConnectResponse::decode(f).expect("ConnectResponse decodes")
        }

        async fn closed(&mut self) -> bool {
            self.frame().await.is_none()
        }
    }

    fn connect_frame(read_only: Option<bool>) -> BytesMut {
        let req = ConnectRequest::new_session(30_000, read_only);
        let mut payload = BytesMut::new();
        req.write(&mut payload);
        let mut out = BytesMut::new();
        encode_frame(&mut out, &payload);
        out
    }

    fn backend() -> Arc<DirectBackend> {
        Arc::new(DirectBackend::new(standalone_settings()))
    }

    fn create(path: &str, data: &[u8], flags: i32) -> RequestBody {
        RequestBody::Create(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            acl: open_acl_unsafe(),
            flags,
        })
    }

    fn get_data(path: &str, watch: bool) -> RequestBody {
        RequestBody::GetData(PathWatchRequest {
            path: path.into(),
            watch,
        })
    }

    fn exists(path: &str, watch: bool) -> RequestBody {
        RequestBody::Exists(PathWatchRequest {
            path: path.into(),
            watch,
        })
    }

    fn set_data(path: &str, data: &[u8]) -> RequestBody {
        RequestBody::SetData(SetDataRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            version: -1,
        })
    }

    fn notification(r: &Response) -> Option<(i32, &str)> {
        match &r.body {
            ResponseBody::Notification(WatcherEvent {
                event_type, path, ..
            }) if r.header.xid == xid::NOTIFICATION => Some((*event_type, path.as_str())),
            _ => None,
        }
    }

    #[tokio::test]
    async fn handshake_answers_read_only_flag_only_to_clients_that_sent_one() {
        let b = backend();
        for sent in [None, Some(false), Some(true)] {
            let mut c = Client::open(&b);
            let resp = c.handshake(sent).await;
            // A writable member is never read-only, whatever the client allows.
            assert_eq!(resp.read_only, sent.map(|_| false), "client sent {sent:?}");
            assert_ne!(resp.session_id, 0);
            assert_eq!(resp.time_out, 30_000, "within the negotiated bounds");
            assert_eq!(resp.passwd.as_deref().map(<[u8]>::len), Some(16));
            assert!(b.shared.tree.read().tree.has_session(resp.session_id));
        }
    }

    #[tokio::test]
    async fn requests_pipelined_behind_the_handshake_are_answered_after_it() {
        let b = backend();
        let mut c = Client::open(&b);
        let mut bytes = connect_frame(Some(false));
        for (xid, body) in [
            (1, create("/a", b"x", 0)),
            (2, get_data("/a", false)),
            (3, exists("/missing", false)),
        ] {
            Request::new(xid, body).write_frame(&mut bytes);
        }
        c.send(&bytes).await;
        let f = c.frame().await.expect("handshake answered");
        assert!(
            ConnectResponse::decode(f).is_ok(),
            "the handshake reply comes first"
        );
        let created = c.reply(op::CREATE).await;
        assert_eq!((created.header.xid, created.header.err), (1, 0));
        let read = c.reply(op::GET_DATA).await;
        assert_eq!(read.header.xid, 2);
        match read.body {
            ResponseBody::GetData(d) => assert_eq!(d.data.as_deref(), Some(&b"x"[..])),
            other => panic!("getData answered {other:?}"),
        }
        let missing = c.reply(op::EXISTS).await;
        assert_eq!(
            (missing.header.xid, missing.header.err),
            (3, ErrorCode::NoNode.code())
        );
    }

    #[tokio::test]
    async fn watch_event_precedes_the_reply_to_the_write_that_fired_it() {
        let b = backend();
        let mut c = Client::open(&b);
        c.handshake(None).await;
        c.request(1, exists("/w", true)).await;
        c.request(2, create("/w", b"", 0)).await;
        assert_eq!(
            c.reply(op::EXISTS).await.header.err,
            ErrorCode::NoNode.code()
        );
        let event = c.reply(op::NOTIFICATION).await;
        assert_eq!(notification(&event), Some((event_type::NODE_CREATED, "/w")));
        let created = c.reply(op::CREATE).await;
        assert_eq!((created.header.xid, created.header.err), (2, 0));
        assert_eq!(event.header.zxid, created.header.zxid, "same transaction");
    }

    #[tokio::test]
    async fn watch_event_precedes_a_read_that_sees_another_clients_change() {
        let b = backend();
        let mut watcher = Client::open(&b);
        let mut writer = Client::open(&b);
        watcher.handshake(None).await;
        writer.handshake(None).await;
        writer.request(1, create("/x", b"old", 0)).await;
        assert_eq!(writer.reply(op::CREATE).await.header.err, 0);
        watcher.request(1, get_data("/x", true)).await;
        assert_eq!(watcher.reply(op::GET_DATA).await.header.err, 0);

        writer.request(2, set_data("/x", b"new")).await;
        assert_eq!(writer.reply(op::SET_DATA).await.header.err, 0);
        watcher.request(2, get_data("/x", false)).await;
        let event = watcher.reply(op::NOTIFICATION).await;
        assert_eq!(
            notification(&event),
            Some((event_type::NODE_DATA_CHANGED, "/x"))
        );
        let read = watcher.reply(op::GET_DATA).await;
        match read.body {
            ResponseBody::GetData(d) => assert_eq!(d.data.as_deref(), Some(&b"new"[..])),
            other => panic!("getData answered {other:?}"),
        }
    }

    #[tokio::test]
    async fn unknown_opcode_is_answered_unimplemented_then_closed() {
        let b = backend();
        let mut c = Client::open(&b);
        c.handshake(None).await;
        c.request(1, exists("/", false)).await;
        let mut bytes = BytesMut::new();
        encode_frame(&mut bytes, &[0, 0, 0, 2, 0, 0, 0x03, 0xe7]); // xid 2, opcode 999
        c.send(&bytes).await;
        c.request(3, RequestBody::Ping).await;
        assert_eq!(
            c.reply(op::EXISTS).await.header.xid,
            1,
            "earlier reply first"
        );
        let refused = c.reply(op::PING).await;
        assert_eq!(
            (refused.header.xid, refused.header.err),
            (2, ErrorCode::Unimplemented.code())
        );
        assert!(c.closed().await, "nothing after UNIMPLEMENTED");
    }

    #[tokio::test]
    async fn malformed_body_is_answered_marshalling_error_and_the_connection_continues() {
        let b = backend();
        let mut c = Client::open(&b);
        c.handshake(None).await;
        let mut bytes = BytesMut::new();
        // getData whose path claims 9 bytes but has 1.
        encode_frame(&mut bytes, &[0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 9, b'/']);
        c.send(&bytes).await;
        c.request(8, RequestBody::Ping).await;
        let bad = c.reply(op::GET_DATA).await;
        assert_eq!(
            (bad.header.xid, bad.header.err),
            (7, ErrorCode::MarshallingError.code())
        );
        let ping = c.reply(op::PING).await;
        assert_eq!((ping.header.xid, ping.header.err), (8, 0));
    }

    #[tokio::test]
    async fn failed_authentication_is_answered_auth_failed_then_closed() {
        let b = backend();
        let mut c = Client::open(&b);
        c.handshake(None).await;
        let auth = |scheme: &str| {
            RequestBody::Auth(AuthPacket {
                auth_type: 0,
                scheme: scheme.into(),
                auth: Some(Bytes::from_static(b"user:secret")),
            })
        };
        c.request(xid::AUTH, auth("digest")).await;
        let ok = c.reply(op::AUTH).await;
        assert_eq!((ok.header.xid, ok.header.err), (xid::AUTH, 0));
        c.request(xid::AUTH, auth("no-such-scheme")).await;
        c.request(5, RequestBody::Ping).await;
        let failed = c.reply(op::AUTH).await;
        assert_eq!(
            (failed.header.xid, failed.header.err),
            (xid::AUTH, ErrorCode::AuthFailed.code())
        );
        assert!(c.closed().await, "nothing after AUTHFAILED");
    }

    #[tokio::test]
    async fn four_letter_word_is_answered_in_text_then_closed() {
        let b = backend();
        for (word, answer) in [(&b"ruok"[..], &b"imok"[..]), (b"isro", b"rw")] {
            let mut c = Client::open(&b);
            c.send(word).await;
            assert_eq!(c.rest().await, answer);
        }
    }

    #[tokio::test]
    async fn oversized_frame_closes_the_connection_without_a_reply() {
        let mut settings = standalone_settings();
        settings.max_frame = 1024;
        let b = Arc::new(DirectBackend::new(settings));
        let mut c = Client::open(&b);
        c.handshake(None).await;
        c.request(1, RequestBody::Ping).await;
        c.send(&2000i32.to_be_bytes()).await;
        assert_eq!(c.reply(op::PING).await.header.xid, 1);
        assert!(c.closed().await, "no reply to an oversized frame");

        let mut before_handshake = Client::open(&b);
        before_handshake.send(&(1i32 << 20).to_be_bytes()).await;
        assert!(before_handshake.closed().await);
    }

    #[tokio::test]
    async fn close_session_deletes_its_ephemerals_is_answered_then_closed() {
        let b = backend();
        let mut c = Client::open(&b);
        let session = c.handshake(None).await.session_id;
        c.request(
            1,
            create("/e", b"", keepr_wire::codes::create_flags::EPHEMERAL),
        )
        .await;
        c.request(2, RequestBody::CloseSession).await;
        assert_eq!(c.reply(op::CREATE).await.header.err, 0);
        let closed = c.reply(op::CLOSE_SESSION).await;
        assert_eq!((closed.header.xid, closed.header.err), (2, 0));
        assert!(c.closed().await);
        let st = b.shared.tree.read();
        assert!(!st.tree.has_session(session));
        assert!(st.tree.stat("/e").is_none());
    }

    #[test]
    fn applied_writes_get_consecutive_zxids_and_the_applied_index_follows() {
        let b = backend();
        let command = |op: TxnOp| Command {
            zxid: 0,
            time: 0,
            session: 7,
            owner: 0,
            auth: Vec::new(),
            op,
        };
        let create = || {
            command(TxnOp::Create(CreateRequest {
                path: "/a".into(),
                data: None,
                acl: open_acl_unsafe(),
                flags: 0,
            }))
        };
        let session = b.apply(command(TxnOp::CreateSession {
            timeout: 30_000,
            passwd: [1; 16],
        }));
        let first = b.apply(create());
        let failed = b.apply(create());
        assert_eq!((session.index, session.reply.err), (1, 0));
        assert_eq!((first.index, first.reply.err), (2, 0));
        assert_eq!(
            (failed.index, failed.reply.err),
            (3, ErrorCode::NodeExists.code()),
            "a failed write still takes its zxid"
        );
        assert_eq!(*b.shared.applied.borrow(), 3);
        assert_eq!(b.shared.tree.read().applied_index(), 3);
        assert_eq!(
            b.shared.tree.read().tree.stat("/a").map(|s| s.czxid),
            Some(2)
        );
    }

    /// A request of the ordering property, on one of four paths.
    #[derive(Debug, Clone)]
    enum Op {
        Create(u8),
        Delete(u8),
        SetData(u8),
        GetData(u8),
        Exists(u8),
        Sync,
        Ping,
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        let path = 0u8..4;
        prop_oneof![
            path.clone().prop_map(Op::Create),
            path.clone().prop_map(Op::Delete),
            path.clone().prop_map(Op::SetData),
            path.clone().prop_map(Op::GetData),
            path.prop_map(Op::Exists),
            Just(Op::Sync),
            Just(Op::Ping),
        ]
    }

    /// What a sequential execution answers: the error code and, for reads and setData of a
    /// node that exists, its data version.
    struct Expected {
        body: RequestBody,
        err: i32,
        version: Option<i32>,
    }

    /// Applies `op` to the model (the data version of each path that exists).
    fn expect(op: &Op, model: &mut [Option<i32>; 4]) -> Expected {
        let path = |i: &u8| format!("/n{i}");
        let slot = |i: &u8| usize::from(*i);
        let no_node = (ErrorCode::NoNode.code(), None);
        let (body, (err, version)) = match op {
            Op::Create(i) => {
                let outcome = match model[slot(i)] {
                    Some(_) => (ErrorCode::NodeExists.code(), None),
                    None => {
                        model[slot(i)] = Some(0);
                        (0, None)
                    }
                };
                (create(&path(i), b"", 0), outcome)
            }
            Op::Delete(i) => {
                let outcome = match model[slot(i)].take() {
                    Some(_) => (0, None),
                    None => no_node,
                };
                let body = RequestBody::Delete(DeleteRequest {
                    path: path(i),
                    version: -1,
                });
                (body, outcome)
            }
            Op::SetData(i) => {
                let outcome = match &mut model[slot(i)] {
                    Some(v) => {
                        *v += 1;
                        (0, Some(*v))
                    }
                    None => no_node,
                };
                (set_data(&path(i), b"d"), outcome)
            }
            Op::GetData(i) => (
                get_data(&path(i), false),
                model[slot(i)].map_or(no_node, |v| (0, Some(v))),
            ),
            Op::Exists(i) => (
                exists(&path(i), false),
                model[slot(i)].map_or(no_node, |v| (0, Some(v))),
            ),
            Op::Sync => (
                RequestBody::Sync(PathRequest { path: "/".into() }),
                (0, None),
            ),
            Op::Ping => (RequestBody::Ping, (0, None)),
        };
        Expected { body, err, version }
    }

    fn version_of(body: &ResponseBody) -> Option<i32> {
        match body {
            ResponseBody::GetData(d) => Some(d.stat.version),
            ResponseBody::Stat(s) => Some(s.stat.version),
            _ => None,
        }
    }

    fn is_write(op: &Op) -> bool {
        matches!(op, Op::Create(_) | Op::Delete(_) | Op::SetData(_))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Requests sent back to back, writes and reads mixed, are answered in the order
        /// they were sent, and every write's answer reflects the writes sent before it.
        #[test]
        fn replies_follow_request_order_and_writes_apply_in_it(
            ops in proptest::collection::vec(op_strategy(), 1..40),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
            rt.block_on(async {
                let b = backend();
                let mut c = Client::open(&b);
                c.handshake(None).await;
                let mut model = [None; 4];
                let mut bytes = BytesMut::new();
                let mut expected = Vec::new();
                for (xid, op) in (1..).zip(&ops) {
                    let e = expect(op, &mut model);
                    let req = Request::new(xid, e.body.clone());
                    req.write_frame(&mut bytes);
                    expected.push((xid, req.header.op, is_write(op), e));
                }
                c.send(&bytes).await;
                for (xid, request_op, write, e) in expected {
                    let r = c.reply(request_op).await;
                    prop_assert_eq!(r.header.xid, xid);
                    if write {
                        prop_assert_eq!(r.header.err, e.err, "xid {}", xid);
                        prop_assert_eq!(version_of(&r.body), e.version, "xid {}", xid);
                    }
                }
                Ok(())
            })?;
        }
    }

    /// ZooKeeper's FIFO client order: a read answers the state after the writes sent before
    /// it, not after writes the same client sent later.
    #[tokio::test]
    async fn pipelined_read_does_not_see_a_later_write_of_its_own_session() {
        let b = backend();
        let mut c = Client::open(&b);
        c.handshake(None).await;
        c.request(1, create("/r", b"first", 0)).await;
        c.request(2, get_data("/r", false)).await;
        c.request(3, set_data("/r", b"second")).await;
        assert_eq!(c.reply(op::CREATE).await.header.err, 0);
        let read = c.reply(op::GET_DATA).await;
        match read.body {
            ResponseBody::GetData(d) => {
                assert_eq!(d.data.as_deref(), Some(&b"first"[..]));
                assert_eq!(d.stat.version, 0);
            }
            other => panic!("getData answered {other:?}"),
        }
        assert_eq!(c.reply(op::SET_DATA).await.header.err, 0);
    }
}
