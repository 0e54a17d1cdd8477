//! One client connection: handshake, then a FIFO pipeline of requests.
//!
//! Replies leave in the order requests arrived (ZooKeeper's clients check xids). Writes are
//! proposed as soon as they arrive, so many can be in flight; a read waits until every
//! earlier request of the connection has completed, so a client always reads its own
//! writes. Before any reply is written, the watch events queued for this connection are
//! written first: an event is queued while its change is applied, so a reply that reflects
//! a change can never overtake the event for it.
//!
//! The loop is: decode whatever arrived, complete whatever is ready at the head of the
//! pipeline, flush, then wait for more bytes, a signal (watch event, close) or the head.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use keepr_tree::{digest, Command, TxnOp, WatcherId};
use keepr_wire::codes::{op, xid};
use keepr_wire::frame::write_frame;
use keepr_wire::jute::Jute;
use keepr_wire::request::{Request, RequestBody};
use keepr_wire::{ConnectRequest, ConnectResponse, ErrorCode, Id, ReplyHeader, WatcherEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::backend::{Applied, Backend, ProposeError};
use super::decoder::{ConnDecoder, Inbound};
use super::four_letter;
use super::read;
use crate::state::{CloseReason, ConnInfo, ConnSignal};

/// Requests a connection may have in flight before it stops reading its socket.
const MAX_PENDING: usize = 1000;

/// Test-only planted bug, off unless the environment variable `KEEPR_TEST_FAULT` lists
/// `sync-skips-read-index`: `sync` then answers at once instead of catching up with the
/// leader's commit, so a read after it can be stale. The fault-injection suite
/// (`tests/faults`) sets it to prove its linearizability checker catches such a bug; nothing
/// else may set it.
fn test_fault_sync_skips_read_index() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let on = std::env::var("KEEPR_TEST_FAULT")
            .is_ok_and(|v| v.split(',').any(|f| f.trim() == "sync-skips-read-index"));
        if on {
            tracing::warn!("KEEPR_TEST_FAULT=sync-skips-read-index: sync is deliberately broken");
        }
        on
    })
}

/// Why a connection ended (for logs).
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("client closed the connection")]
    Eof,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("closed: {0:?}")]
    Closed(CloseReason),
    #[error("handshake refused: {0}")]
    Refused(&'static str),
    #[error("write outcome unknown, disconnecting: {0}")]
    Propose(#[from] ProposeError),
    #[error("session closed by the client")]
    SessionClosed,
    #[error("unimplemented opcode {0}")]
    Unimplemented(i32),
    #[error("authentication failed")]
    AuthFailed,
    #[error("four-letter word answered")]
    FourLetterWord,
}

/// A request waiting for its turn to be answered.
enum Pending {
    /// A write or sync in flight (or an answer already known, e.g. an error).
    Waiting {
        xid: i32,
        op: i32,
        started: Instant,
        /// Counted in `proposals_in_flight` until it completes.
        proposed: bool,
        fut: BoxFuture<'static, Result<Completed, ProposeError>>,
    },
    /// A read, executed when it reaches the head.
    Read { req: Request, started: Instant },
    /// A write that arrived behind a read still waiting its turn: proposing it now could let
    /// that read see it, so it is proposed once no read is ahead of it.
    Unproposed {
        xid: i32,
        op: i32,
        started: Instant,
        cmd: Command,
    },
}

enum Completed {
    Write(Applied),
    Sync { path: String },
}

/// What the head of the pipeline produced.
enum HeadOutcome {
    Done {
        xid: i32,
        op: i32,
        started: Instant,
        proposed: bool,
        result: Result<Completed, ProposeError>,
    },
    Read {
        req: Request,
        started: Instant,
    },
}

fn poll_head(pipeline: &mut VecDeque<Pending>, cx: &mut Context<'_>) -> Poll<HeadOutcome> {
    match pipeline.front_mut() {
        None => Poll::Pending,
        Some(Pending::Read { .. }) => match pipeline.pop_front() {
            Some(Pending::Read { req, started }) => Poll::Ready(HeadOutcome::Read { req, started }),
            _ => Poll::Pending,
        },
        // Proposed as soon as the reads ahead of it have run; never at the head unproposed.
        Some(Pending::Unproposed { .. }) => Poll::Pending,
        Some(Pending::Waiting { fut, .. }) => {
            let result = match fut.poll_unpin(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            };
            match pipeline.pop_front() {
                Some(Pending::Waiting {
                    xid,
                    op,
                    started,
                    proposed,
                    ..
                }) => Poll::Ready(HeadOutcome::Done {
                    xid,
                    op,
                    started,
                    proposed,
                    result,
                }),
                _ => Poll::Pending,
            }
        }
    }
}

pub struct Connection {
    backend: Arc<dyn Backend>,
    id: WatcherId,
    reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    decoder: ConnDecoder,
    out: BytesMut,
    auth: Vec<Id>,
    session: i64,
    timeout_ms: i32,
    signals_tx: mpsc::UnboundedSender<ConnSignal>,
    signals: mpsc::UnboundedReceiver<ConnSignal>,
    pipeline: VecDeque<Pending>,
    info: Arc<ConnInfo>,
    /// This connection's latency histograms, by opcode.
    histograms: Vec<(i32, prometheus::Histogram)>,
    /// Established while the member had no quorum: writes answer NOTREADONLY.
    read_only: bool,
    /// When the session was last reported alive; reports are spaced (see `on_inbound`).
    last_touch: Instant,
    registered: bool,
}

/// Serves one accepted socket until it closes.
pub async fn serve(backend: Arc<dyn Backend>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    serve_halves(backend, Box::new(reader), Box::new(writer), peer).await
}

/// Serves a client over any byte stream until it closes: an in-memory pipe in unit tests
/// and the fuzzer. `peer` is the address the client's `ip` identity and `cons` report.
pub async fn serve_stream<S>(backend: Arc<dyn Backend>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    serve_halves(backend, Box::new(reader), Box::new(writer), peer).await
}

async fn serve_halves(
    backend: Arc<dyn Backend>,
    reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    peer: SocketAddr,
) {
    let shared = backend.shared().clone();
    let id = shared.next_conn_id();
    let (signals_tx, signals) = mpsc::unbounded_channel();
    let mut conn = Connection {
        decoder: ConnDecoder::new(backend.settings().max_frame),
        backend,
        id,
        reader,
        writer,
        out: BytesMut::with_capacity(16 * 1024),
        auth: vec![Id {
            scheme: "ip".into(),
            id: peer.ip().to_string(),
        }],
        session: 0,
        timeout_ms: 0,
        signals_tx,
        signals,
        pipeline: VecDeque::new(),
        info: Arc::new(ConnInfo::new(peer)),
        read_only: false,
        histograms: Vec::new(),
        last_touch: Instant::now(),
        registered: false,
    };
    shared.metrics.connection_request_count.inc();
    let result = conn.run().await;
    match &result {
        Ok(()) | Err(ConnError::Eof) | Err(ConnError::FourLetterWord) => {
            tracing::debug!(%peer, session = format_args!("{:#x}", conn.session), "connection closed")
        }
        Err(e) => {
            tracing::debug!(%peer, session = format_args!("{:#x}", conn.session), error = %e, "connection closed");
            shared.metrics.connection_drop_count.inc();
        }
    }
    conn.finish().await;
}

impl Connection {
    async fn run(&mut self) -> Result<(), ConnError> {
        let connect = loop {
            match self
                .decoder
                .next_inbound()
                .map_err(|e| ConnError::Protocol(e.to_string()))?
            {
                Some(Inbound::FourLetterWord(word)) => {
                    let text = four_letter::answer(self.backend.as_ref(), word);
                    self.writer.write_all(text.as_bytes()).await?;
                    self.writer.shutdown().await?;
                    return Err(ConnError::FourLetterWord);
                }
                Some(Inbound::Connect(req)) => break req,
                Some(_) => return Err(ConnError::Protocol("request before handshake".into())),
                None => {
                    if self.reader.read_buf(self.decoder.buffer()).await? == 0 {
                        return Err(ConnError::Eof);
                    }
                }
            }
        };
        self.handshake(connect).await?;
        self.decoder.established();
        self.main_loop().await
    }

    async fn handshake(&mut self, req: ConnectRequest) -> Result<(), ConnError> {
        let shared = self.backend.shared().clone();
        let applied = *shared.applied.borrow() as i64;
        if req.last_zxid_seen > applied {
            // The client has seen a newer state than ours: it must try another member, or
            // it could observe time going backwards.
            shared.metrics.connection_rejected.inc();
            return Err(ConnError::Refused(
                "client has seen a newer zxid than this member",
            ));
        }
        let settings = self.backend.settings().clone();
        let read_only = self.backend.read_only();
        if read_only && req.read_only != Some(true) {
            // Without a quorum nothing can be written: only clients that accept a read-only
            // server are served; the others try another member.
            shared.metrics.connection_rejected.inc();
            return Err(ConnError::Refused(
                "this member has no quorum and the client did not ask for read-only",
            ));
        }
        let (session, timeout, passwd) = if req.session_id == 0 && read_only {
            // A session that lives only here until the client reaches a writable member,
            // as ZooKeeper's read-only servers give.
            let timeout = settings.negotiate_timeout(req.time_out);
            (
                self.backend.session_ids().next(),
                timeout,
                crate::sessions::new_password(),
            )
        } else if req.session_id == 0 {
            let timeout = settings.negotiate_timeout(req.time_out);
            let passwd = crate::sessions::new_password();
            let mut attempt = 0;
            loop {
                let id = self.backend.session_ids().next();
                let cmd = Command {
                    zxid: 0,
                    time: 0,
                    session: id,
                    owner: shared.owner_of(self.id),
                    auth: Vec::new(),
                    op: TxnOp::CreateSession { timeout, passwd },
                };
                let applied = self.backend.propose(cmd).await?;
                if applied.reply.err == 0 {
                    break (id, timeout, passwd);
                }
                attempt += 1;
                if attempt >= 3 {
                    return Err(ConnError::Refused("could not allocate a session id"));
                }
            }
        } else {
            if !read_only {
                // Revalidate with the leader first, as ZooKeeper's followers do: this member
                // may not yet have applied the session's creation or its latest move, made
                // through another member a moment ago, and a wrong "expired" ends a live
                // session with its ephemerals. Without a leader the client is not told
                // "expired"; it tries another member.
                let deadline =
                    Duration::from_millis(settings.negotiate_timeout(req.time_out).max(0) as u64);
                match tokio::time::timeout(deadline, self.backend.sync()).await {
                    Ok(Ok(())) => {}
                    _ => {
                        shared.metrics.connection_rejected.inc();
                        return Err(ConnError::Refused(
                            "cannot revalidate the session with the leader",
                        ));
                    }
                }
            }
            let known = {
                let st = shared.tree.read();
                st.tree
                    .session_password(req.session_id)
                    .filter(|p| Some(&p[..]) == req.passwd.as_deref())
                    .and_then(|_| st.tree.session_timeout(req.session_id))
                    .zip(st.tree.session_owner(req.session_id))
            };
            // The session moves to this connection, in the log, before the client is told it
            // resumed: writes still in flight from its old connection are then refused
            // (SESSIONMOVED) wherever they are applied, and everything it wrote before is
            // applied here before it reads. It moves only from the owner seen here: if another
            // connection took it meanwhile (this resume lingered and the client went
            // elsewhere), the move is refused and so is this connection.
            let known = match known {
                Some((timeout, previous)) if !read_only => {
                    let cmd = Command {
                        zxid: 0,
                        time: 0,
                        session: req.session_id,
                        owner: shared.owner_of(self.id),
                        auth: Vec::new(),
                        op: TxnOp::SetSessionOwner { previous },
                    };
                    let applied = self.backend.propose(cmd).await?;
                    if applied.reply.err == ErrorCode::SessionMoved.code() {
                        shared.metrics.connection_rejected.inc();
                        return Err(ConnError::Refused(
                            "the session moved to another connection meanwhile",
                        ));
                    }
                    (applied.reply.err == 0).then_some(timeout)
                }
                other => other.map(|(timeout, _)| timeout),
            };
            match known {
                Some(timeout) => {
                    let mut passwd = [0u8; 16];
                    if let Some(p) = req.passwd.as_deref() {
                        let n = p.len().min(16);
                        passwd[..n].copy_from_slice(&p[..n]);
                    }
                    (req.session_id, timeout, passwd)
                }
                None => {
                    tracing::info!(
                        session = format_args!("{:#x}", req.session_id),
                        "refused a reconnect: session expired, unknown or wrong password"
                    );
                    // Unknown, expired, or wrong password: ZooKeeper's "session expired"
                    // answer, then close.
                    let resp = ConnectResponse {
                        protocol_version: 0,
                        time_out: 0,
                        session_id: 0,
                        passwd: Some(Bytes::from_static(&[0; 16])),
                        read_only: req.read_only.map(|_| false),
                    };
                    write_frame(&mut self.out, |w| resp.write(w));
                    self.flush().await?;
                    shared.metrics.connection_rejected.inc();
                    return Err(ConnError::Refused("session expired or unknown"));
                }
            }
        };
        self.session = session;
        self.timeout_ms = timeout;
        self.read_only = read_only;
        self.info.set_session(session, timeout);
        self.info.set_read_only(read_only);
        self.backend
            .sessions()
            .touch_local(session, timeout, Instant::now());
        {
            let mut w = shared.watches.lock();
            w.register_conn(self.id, self.signals_tx.clone(), self.info.clone());
            if let Some(old) = w.set_owner(session, self.id) {
                w.signal(old, ConnSignal::Close(CloseReason::SessionMoved));
            }
            w.manager.set_auth(self.id, self.auth.clone());
        }
        self.registered = true;
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: timeout,
            session_id: session,
            passwd: Some(Bytes::copy_from_slice(&passwd)),
            read_only: req.read_only.map(|_| read_only),
        };
        write_frame(&mut self.out, |w| resp.write(w));
        self.flush().await
    }

    async fn main_loop(&mut self) -> Result<(), ConnError> {
        loop {
            // Everything already buffered.
            while self.pipeline.len() < MAX_PENDING {
                match self
                    .decoder
                    .next_inbound()
                    .map_err(|e| ConnError::Protocol(e.to_string()))?
                {
                    Some(inbound) => self.on_inbound(inbound)?,
                    None => break,
                }
            }
            // Whatever is ready at the head, without waiting.
            while let Some(outcome) = poll_fn(|cx| poll_head(&mut self.pipeline, cx)).now_or_never()
            {
                self.complete(outcome)?;
            }
            self.drain_signals()?;
            self.flush().await?;

            let can_read = self.pipeline.len() < MAX_PENDING;
            tokio::select! {
                n = self.reader.read_buf(self.decoder.buffer()), if can_read => {
                    let n = n?;
                    if n == 0 {
                        return Err(ConnError::Eof);
                    }
                    self.backend.shared().metrics.bytes_received_count.inc_by(n as u64);
                }
                signal = self.signals.recv() => {
                    if let Some(s) = signal {
                        self.on_signal(s)?;
                    }
                }
                outcome = poll_fn(|cx| poll_head(&mut self.pipeline, cx)) => {
                    self.complete(outcome)?;
                }
            }
        }
    }

    /// Queues every signal already waiting (watch events go out before any later reply).
    fn drain_signals(&mut self) -> Result<(), ConnError> {
        while let Ok(s) = self.signals.try_recv() {
            self.on_signal(s)?;
        }
        Ok(())
    }

    fn on_signal(&mut self, signal: ConnSignal) -> Result<(), ConnError> {
        match signal {
            ConnSignal::Event { zxid, event, path } => {
                let header = ReplyHeader {
                    xid: xid::NOTIFICATION,
                    zxid,
                    err: 0,
                };
                let body = WatcherEvent {
                    event_type: event.code(),
                    state: keepr_wire::codes::keeper_state::SYNC_CONNECTED,
                    path: path.to_string(),
                };
                write_frame(&mut self.out, |w| {
                    header.write(w);
                    body.write(w);
                });
                self.info.sent();
                Ok(())
            }
            ConnSignal::Close(reason) => Err(ConnError::Closed(reason)),
        }
    }

    fn reply_header(&mut self, xid: i32, zxid: i64, err: i32) {
        let header = ReplyHeader { xid, zxid, err };
        write_frame(&mut self.out, |w| header.write(w));
        self.info.sent();
    }

    fn on_inbound(&mut self, inbound: Inbound) -> Result<(), ConnError> {
        let shared = self.backend.shared().clone();
        shared.metrics.packets_received.inc();
        self.info.received();
        // Liveness only needs to be fresh to well within a tick; reporting every request
        // would put two shared locks on the hot path.
        let now = Instant::now();
        if now.duration_since(self.last_touch) >= self.backend.settings().tick / 8 {
            self.last_touch = now;
            self.backend
                .sessions()
                .touch_local(self.session, self.timeout_ms, now);
        }
        let req = match inbound {
            Inbound::Request(req) => req,
            Inbound::Malformed { header } => {
                // Ordered like any other reply.
                self.pipeline.push_back(Pending::Waiting {
                    xid: header.xid,
                    op: header.op,
                    started: Instant::now(),
                    proposed: false,
                    fut: futures::future::ready(Ok(Completed::Write(Applied {
                        index: *shared.applied.borrow(),
                        reply: crate::raft::types::WriteReply {
                            err: ErrorCode::MarshallingError.code(),
                            body: Vec::new(),
                        },
                    })))
                    .boxed(),
                });
                return Ok(());
            }
            Inbound::FourLetterWord(_) | Inbound::Connect(_) => {
                return Err(ConnError::Protocol("second handshake".into()))
            }
        };
        let started = Instant::now();
        let xid = req.header.xid;
        let op = req.header.op;
        if self.read_only {
            match req.body {
                RequestBody::Create(_)
                | RequestBody::Create2(_)
                | RequestBody::CreateContainer(_)
                | RequestBody::CreateTtl(_)
                | RequestBody::Delete(_)
                | RequestBody::SetData(_)
                | RequestBody::SetAcl(_)
                | RequestBody::Check(_)
                | RequestBody::Multi(_)
                | RequestBody::Sync(_)
                | RequestBody::Reconfig(_) => {
                    return self.push_error(xid, op, ErrorCode::NotReadOnly)
                }
                // The session lives only here: closing it is closing the connection.
                RequestBody::CloseSession => return self.push_error(xid, op, ErrorCode::Ok),
                _ => {}
            }
        }
        let txn = match req.body {
            RequestBody::Auth(ref p) => {
                return self.on_auth(xid, p.scheme.as_str(), p.auth.as_deref())
            }
            RequestBody::Create(ref r) => TxnOp::Create(r.clone()),
            RequestBody::Create2(ref r) => TxnOp::Create2(r.clone()),
            RequestBody::CreateContainer(ref r) => TxnOp::CreateContainer(r.clone()),
            RequestBody::CreateTtl(ref r) => TxnOp::CreateTtl(r.clone()),
            RequestBody::Delete(ref r) => TxnOp::Delete(r.clone()),
            RequestBody::SetData(ref r) => TxnOp::SetData(r.clone()),
            RequestBody::SetAcl(ref r) => TxnOp::SetAcl(r.clone()),
            RequestBody::Check(ref r) => TxnOp::Check(r.clone()),
            RequestBody::Multi(ref m) => TxnOp::Multi(m.ops.clone()),
            RequestBody::CloseSession => {
                // This connection answers its own close; it must not also be told to close
                // when the close is applied.
                shared.watches.lock().clear_owner(self.session, self.id);
                TxnOp::CloseSession
            }
            RequestBody::Sync(ref r) => {
                let path = r.path.clone();
                let fut = if test_fault_sync_skips_read_index() {
                    futures::future::ready(Ok(())).boxed()
                } else {
                    self.backend.sync()
                };
                self.pipeline.push_back(Pending::Waiting {
                    xid,
                    op,
                    started,
                    proposed: false,
                    fut: async move {
                        fut.await?;
                        Ok(Completed::Sync { path })
                    }
                    .boxed(),
                });
                return Ok(());
            }
            RequestBody::Reconfig(ref r) => {
                if !self
                    .auth
                    .iter()
                    .any(|id| id.scheme == keepr_tree::acl::SUPER_SCHEME)
                {
                    // As ZooKeeper: only the super user may change the ensemble.
                    return self.push_error(xid, op, ErrorCode::NoAuth);
                }
                let fut = self.backend.reconfig(r.clone());
                let shared = self.backend.shared().clone();
                self.pipeline.push_back(Pending::Waiting {
                    xid,
                    op,
                    started,
                    proposed: false,
                    fut: async move {
                        let reply = match fut.await {
                            Ok(config) => {
                                let stat = shared
                                    .tree
                                    .read()
                                    .tree
                                    .stat("/zookeeper/config")
                                    .unwrap_or_default();
                                let mut body = bytes::BytesMut::new();
                                keepr_wire::GetDataResponse {
                                    data: Some(Bytes::from(config.into_bytes())),
                                    stat,
                                }
                                .write(&mut body);
                                crate::raft::types::WriteReply {
                                    err: 0,
                                    body: body.to_vec(),
                                }
                            }
                            Err(code) => crate::raft::types::WriteReply {
                                err: code.code(),
                                body: Vec::new(),
                            },
                        };
                        Ok(Completed::Write(Applied {
                            index: *shared.applied.borrow(),
                            reply,
                        }))
                    }
                    .boxed(),
                });
                return Ok(());
            }
            RequestBody::Unknown { .. }
            | RequestBody::Sasl(_)
            | RequestBody::DeleteContainer { .. } => {
                // ZooKeeper answers an opcode it does not serve with UNIMPLEMENTED and
                // closes the connection.
                self.drain_pipeline_then(xid, ErrorCode::Unimplemented);
                return Err(ConnError::Unimplemented(op));
            }
            _ => {
                // A read: answered now if nothing is ahead of it, else in turn.
                if self.pipeline.is_empty() {
                    self.drain_signals()?;
                    read::execute(self, &req);
                    self.record_latency(op, started);
                } else {
                    self.pipeline.push_back(Pending::Read { req, started });
                }
                return Ok(());
            }
        };
        let cmd = Command {
            zxid: 0,
            time: 0,
            session: self.session,
            owner: self.backend.shared().owner_of(self.id),
            auth: self.auth.clone(),
            op: txn,
        };
        let read_ahead = self
            .pipeline
            .iter()
            .any(|p| matches!(p, Pending::Read { .. }));
        if read_ahead {
            self.pipeline.push_back(Pending::Unproposed {
                xid,
                op,
                started,
                cmd,
            });
        } else {
            let waiting = self.proposed(xid, op, started, cmd);
            self.pipeline.push_back(waiting);
        }
        Ok(())
    }

    fn proposed(&self, xid: i32, op: i32, started: Instant, cmd: Command) -> Pending {
        let fut = self.backend.propose(cmd);
        self.backend.shared().metrics.proposals_in_flight.inc();
        Pending::Waiting {
            xid,
            op,
            started,
            proposed: true,
            fut: fut.map(|r| r.map(Completed::Write)).boxed(),
        }
    }

    /// Proposes, in order, the writes that no longer have a read ahead of them.
    fn propose_unblocked(&mut self) {
        for i in 0..self.pipeline.len() {
            match &self.pipeline[i] {
                Pending::Read { .. } => return,
                Pending::Waiting { .. } => {}
                Pending::Unproposed { .. } => {
                    let placeholder = Pending::Read {
                        req: Request::new(0, RequestBody::Ping),
                        started: Instant::now(),
                    };
                    if let Pending::Unproposed {
                        xid,
                        op,
                        started,
                        cmd,
                    } = std::mem::replace(&mut self.pipeline[i], placeholder)
                    {
                        self.pipeline[i] = self.proposed(xid, op, started, cmd);
                    }
                }
            }
        }
    }

    fn push_error(&mut self, xid: i32, op: i32, code: ErrorCode) -> Result<(), ConnError> {
        let index = *self.backend.shared().applied.borrow();
        self.pipeline.push_back(Pending::Waiting {
            xid,
            op,
            started: Instant::now(),
            proposed: false,
            fut: futures::future::ready(Ok(Completed::Write(Applied {
                index,
                reply: crate::raft::types::WriteReply {
                    err: code.code(),
                    body: Vec::new(),
                },
            })))
            .boxed(),
        });
        Ok(())
    }

    /// Answers `code` to `xid` after whatever is already ready; pending writes are abandoned
    /// with the connection.
    fn drain_pipeline_then(&mut self, xid: i32, code: ErrorCode) {
        while let Some(outcome) = poll_fn(|cx| poll_head(&mut self.pipeline, cx)).now_or_never() {
            if self.complete(outcome).is_err() {
                return;
            }
        }
        let zxid = *self.backend.shared().applied.borrow() as i64;
        self.reply_header(xid, zxid, code.code());
    }

    /// addAuth, answered at once and out of band, echoing the request's xid (-4 from most
    /// clients, an ordinary xid from others).
    fn on_auth(&mut self, xid: i32, scheme: &str, data: Option<&[u8]>) -> Result<(), ConnError> {
        let shared = self.backend.shared().clone();
        let zxid = *shared.applied.borrow() as i64;
        if scheme != digest::SCHEME {
            shared.metrics.auth_failed_count.inc();
            self.reply_header(xid, zxid, ErrorCode::AuthFailed.code());
            return Err(ConnError::AuthFailed);
        }
        let ids = digest::authenticate(
            data.unwrap_or_default(),
            self.backend.settings().super_digest.as_deref(),
        );
        if ids.is_empty() {
            shared.metrics.auth_failed_count.inc();
            self.reply_header(xid, zxid, ErrorCode::AuthFailed.code());
            return Err(ConnError::AuthFailed);
        }
        for id in ids {
            if !self.auth.contains(&id) {
                self.auth.push(id);
            }
        }
        shared
            .watches
            .lock()
            .manager
            .set_auth(self.id, self.auth.clone());
        self.reply_header(xid, zxid, 0);
        Ok(())
    }

    fn complete(&mut self, outcome: HeadOutcome) -> Result<(), ConnError> {
        self.drain_signals()?;
        match outcome {
            HeadOutcome::Read { req, started } => {
                let op = req.header.op;
                read::execute(self, &req);
                self.record_latency(op, started);
                self.propose_unblocked();
                Ok(())
            }
            HeadOutcome::Done {
                xid,
                op,
                started,
                proposed,
                result,
            } => {
                if proposed {
                    self.backend.shared().metrics.proposals_in_flight.dec();
                }
                match result? {
                    Completed::Write(applied) => {
                        let header = ReplyHeader {
                            xid,
                            zxid: applied.index as i64,
                            err: applied.reply.err,
                        };
                        let body = &applied.reply.body;
                        write_frame(&mut self.out, |w| {
                            header.write(w);
                            if header.err == 0 {
                                w.extend_from_slice(body);
                            }
                        });
                        self.info.sent();
                        self.record_latency(op, started);
                        if op == op::CLOSE_SESSION && header.err == 0 {
                            return Err(ConnError::SessionClosed);
                        }
                        if header.err == ErrorCode::SessionMoved.code() {
                            // As ZooKeeper: the session lives on elsewhere; this connection
                            // is done.
                            return Err(ConnError::Closed(CloseReason::SessionMoved));
                        }
                    }
                    Completed::Sync { path } => {
                        let zxid = *self.backend.shared().applied.borrow() as i64;
                        let header = ReplyHeader { xid, zxid, err: 0 };
                        let body = keepr_wire::SyncResponse { path };
                        write_frame(&mut self.out, |w| {
                            header.write(w);
                            body.write(w);
                        });
                        self.info.sent();
                        self.record_latency(op, started);
                    }
                }
                Ok(())
            }
        }
    }

    fn record_latency(&mut self, op: i32, started: Instant) {
        let elapsed = started.elapsed();
        let shared = self.backend.shared();
        shared.stats.record_latency(elapsed);
        let secs = elapsed.as_secs_f64();
        let histogram = match self.histograms.iter().find(|(o, _)| *o == op) {
            Some((_, h)) => h,
            None => {
                let h = shared.metrics.request_histogram(op, op_name(op));
                self.histograms.push((op, h));
                &self.histograms[self.histograms.len() - 1].1
            }
        };
        histogram.observe(secs);
        if is_write(op) {
            shared.metrics.updatelatency.observe(secs);
        } else {
            shared.metrics.readlatency.observe(secs);
        }
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out).await?;
            self.out.clear();
            // Do not hold on to a large buffer after a burst.
            if self.out.capacity() > 1 << 20 {
                self.out = BytesMut::with_capacity(16 * 1024);
            }
        }
        Ok(())
    }

    /// Writes what is pending and unregisters; the session lives on until it expires or a
    /// closeSession was applied.
    async fn finish(&mut self) {
        let _ = self.flush().await;
        let shared = self.backend.shared().clone();
        if self.registered {
            let mut w = shared.watches.lock();
            w.unregister_conn(self.id);
            w.clear_owner(self.session, self.id);
        }
        let in_flight = self
            .pipeline
            .iter()
            .filter(|p| matches!(p, Pending::Waiting { proposed: true, .. }))
            .count();
        shared.metrics.proposals_in_flight.sub(in_flight as i64);
        let _ = self.writer.shutdown().await;
    }

    // --- accessors for the read path ---------------------------------------------------

    pub(super) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
    pub(super) fn watcher_id(&self) -> WatcherId {
        self.id
    }
    pub(super) fn take_auth(&mut self) -> Vec<Id> {
        std::mem::take(&mut self.auth)
    }
    pub(super) fn restore_auth(&mut self, auth: Vec<Id>) {
        self.auth = auth;
    }
    pub(super) fn session(&self) -> i64 {
        self.session
    }
    pub(super) fn out(&mut self) -> &mut BytesMut {
        &mut self.out
    }
    pub(super) fn count_sent(&self) {
        self.info.sent();
    }
}

fn is_write(op: i32) -> bool {
    matches!(
        op,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::CHECK
            | op::MULTI
            | op::CLOSE_SESSION
    )
}

/// The operation's name in metrics labels.
pub fn op_name(op: i32) -> &'static str {
    match op {
        op::CREATE => "create",
        op::CREATE2 => "create2",
        op::CREATE_CONTAINER => "createContainer",
        op::CREATE_TTL => "createTTL",
        op::DELETE => "delete",
        op::EXISTS => "exists",
        op::GET_DATA => "getData",
        op::SET_DATA => "setData",
        op::GET_ACL => "getACL",
        op::SET_ACL => "setACL",
        op::GET_CHILDREN => "getChildren",
        op::GET_CHILDREN2 => "getChildren2",
        op::SYNC => "sync",
        op::PING => "ping",
        op::CHECK => "check",
        op::MULTI => "multi",
        op::MULTI_READ => "multiRead",
        op::CHECK_WATCHES => "checkWatches",
        op::REMOVE_WATCHES => "removeWatches",
        op::SET_WATCHES => "setWatches",
        op::SET_WATCHES2 => "setWatches2",
        op::GET_EPHEMERALS => "getEphemerals",
        op::GET_ALL_CHILDREN_NUMBER => "getAllChildrenNumber",
        op::ADD_WATCH => "addWatch",
        op::WHO_AM_I => "whoAmI",
        op::CLOSE_SESSION => "closeSession",
        op::RECONFIG => "reconfig",
        _ => "other",
    }
}
