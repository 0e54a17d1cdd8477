//! A whole client connection: arbitrary bytes from a client, cut into arbitrary reads, served
//! by a real `Connection` over an in-memory pipe, with a `DirectBackend` (writes applied on
//! the spot, no Raft) behind it. The first byte sets the size of the client's writes (0: one
//! write); the rest is what the client sends. After the last write the client closes its
//! side, so the connection ends with the input; a hang is detected by the paused clock
//! (nothing left to run) instead of a wall-clock timeout.
//!
//! Checks: no panic, the server never hangs, and everything it writes makes sense to a
//! client: text for a four-letter word, nothing without a handshake, otherwise a
//! ConnectResponse (readOnly echoed as sent) followed by reply frames that each decode as
//! the answer to the request they claim (ZooKeeper's reply order; auth replies, which
//! ZooKeeper sends at once, may overtake; notifications anywhere). A decoded
//! request goes unanswered only if the connection closed on a request that closes it or on
//! a fatal frame.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use keepr_server::zk::connection::serve_stream;
use keepr_server::zk::decoder::{ConnDecoder, Inbound};
use keepr_server::zk::direct::{standalone_settings, DirectBackend};
use keepr_wire::codes::{op, xid};
use keepr_wire::frame::FrameDecoder;
use keepr_wire::{ConnectResponse, ErrorCode, RequestBody, Response};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The super user the seed corpus authenticates as (`super:fuzz`).
const SUPER: &str = "super:fuzz";

/// Far beyond what any input needs; only a stuck connection reaches it (instantly, since
/// the clock is paused and advances when nothing can run).
const STUCK: Duration = Duration::from_secs(3600);

fn backend() -> Arc<DirectBackend> {
    let mut settings = standalone_settings();
    settings.super_digest = Some(keepr_tree::digest::digest_id(SUPER));
    Arc::new(DirectBackend::new(settings))
}

/// Serves `stream` written `step` bytes at a time; returns everything the server wrote.
async fn serve(stream: &[u8], step: usize) -> Vec<u8> {
    let backend = backend();
    let (client, server) = tokio::io::duplex(4096);
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let send = async {
        for chunk in stream.chunks(step) {
            if to_server.write_all(chunk).await.is_err() {
                break; // the server closed the connection
            }
            // Let the server act on this piece before the next arrives.
            tokio::task::yield_now().await;
        }
        let _ = to_server.shutdown().await;
    };
    let receive = async {
        let mut out = Vec::new();
        from_server
            .read_to_end(&mut out)
            .await
            .expect("reading a pipe");
        out
    };
    let conn = serve_stream(backend, server, peer);
    let ((), (), out) = tokio::time::timeout(STUCK, async { tokio::join!(conn, send, receive) })
        .await
        .expect("the connection ends when the client closes");
    out
}

/// A request as the server decoded it: what its reply must look like.
#[derive(Debug, Clone, Copy)]
struct Sent {
    xid: i32,
    op: i32,
    /// A well-formed auth: answered on arrival, outside the pipeline.
    auth: bool,
}

/// What the server decoded from the stream.
struct Decoded {
    first: Option<Inbound>,
    /// The requests after the handshake, in order.
    sent: Vec<Sent>,
    /// The requests end with a frame that closes the connection (too long, too short for a
    /// header): the server drops what it has not answered yet, as ZooKeeper does.
    fatal: bool,
}

/// Replays the server's decoder over the whole input (frames do not depend on how the
/// stream is cut; the `frame` target checks that).
fn decoded(stream: &[u8], max_frame: usize) -> Decoded {
    let mut d = ConnDecoder::new(max_frame);
    d.feed(stream);
    let first = d.next_inbound().ok().flatten();
    let mut sent = Vec::new();
    let mut fatal = false;
    if matches!(first, Some(Inbound::Connect(_))) {
        d.established();
        loop {
            let inbound = match d.next_inbound() {
                Ok(Some(inbound)) => inbound,
                Ok(None) => break,
                Err(_) => {
                    fatal = true;
                    break;
                }
            };
            match inbound {
                Inbound::Request(r) => sent.push(Sent {
                    xid: r.header.xid,
                    op: r.header.op,
                    auth: matches!(r.body, RequestBody::Auth(_)),
                }),
                Inbound::Malformed { header } => sent.push(Sent {
                    xid: header.xid,
                    op: header.op,
                    auth: false,
                }),
                other => panic!("after the handshake the decoder gave {other:?}"),
            }
        }
    }
    Decoded { first, sent, fatal }
}

/// Whether the server closes the connection after answering this.
fn closes(sent: Sent, reply: &Response) -> bool {
    sent.op == op::CLOSE_SESSION
        || reply.header.err == ErrorCode::Unimplemented.code()
        || (sent.auth && reply.header.err != 0)
}

fn next_frame(buf: &mut BytesMut) -> Option<Bytes> {
    FrameDecoder::new(i32::MAX as usize)
        .decode(buf)
        .unwrap_or_else(|e| panic!("server wrote a bad frame: {e}"))
}

fn check(stream: &[u8], out: &[u8]) {
    let max_frame = standalone_settings().max_frame;
    let Decoded { first, sent, fatal } = decoded(stream, max_frame);
    let connect = match first {
        Some(Inbound::FourLetterWord(_)) => {
            assert!(
                std::str::from_utf8(out).is_ok(),
                "four-letter answers are text"
            );
            return;
        }
        Some(Inbound::Connect(c)) => c,
        _ => {
            assert!(out.is_empty(), "no handshake, no answer: {out:02x?}");
            return;
        }
    };

    let mut buf = BytesMut::from(out);
    let Some(handshake) = next_frame(&mut buf) else {
        // Refused without an answer (the client claims a newer zxid than ours).
        assert!(buf.is_empty(), "a partial frame: {buf:02x?}");
        return;
    };
    let resp = ConnectResponse::decode(handshake.clone())
        .unwrap_or_else(|e| panic!("bad ConnectResponse {handshake:02x?}: {e}"));
    assert_eq!(resp.read_only.is_some(), connect.read_only.is_some());
    if resp.session_id == 0 {
        assert!(
            next_frame(&mut buf).is_none(),
            "nothing after a refused session"
        );
        assert!(buf.is_empty());
        return;
    }

    // Replies in request order, except auth, which is answered on arrival (out of band, as
    // ZooKeeper does). Only auth answers AUTHFAILED.
    let (auths, ordered): (Vec<Sent>, Vec<Sent>) = sent.iter().partition(|s| s.auth);
    let (mut next, mut next_auth) = (0, 0);
    let mut last: Option<(Sent, Response)> = None;
    // The reply to `s` that `frame` is, if it is one.
    let reply_to = |frame: &Bytes, s: Option<&Sent>| {
        let s = *s?;
        let r = Response::decode(frame.clone(), s.op).ok()?;
        (r.header.xid == s.xid).then_some((s, r))
    };
    while let Some(frame) = next_frame(&mut buf) {
        let auth_failed = reply_to(&frame, auths.get(next_auth))
            .filter(|(_, r)| r.header.err == ErrorCode::AuthFailed.code());
        if let Some(answered) = auth_failed {
            next_auth += 1;
            last = Some(answered);
            continue;
        }
        if let Some(answered) = reply_to(&frame, ordered.get(next)) {
            next += 1;
            last = Some(answered);
            continue;
        }
        if let Some(answered) = reply_to(&frame, auths.get(next_auth)) {
            next_auth += 1;
            last = Some(answered);
            continue;
        }
        match Response::decode(frame.clone(), op::NOTIFICATION) {
            Ok(r) if r.header.xid == xid::NOTIFICATION => {}
            _ => panic!(
                "frame {frame:02x?} is neither the reply to {:?} nor to {:?} nor a notification",
                ordered.get(next),
                auths.get(next_auth)
            ),
        }
    }
    assert!(buf.is_empty(), "a partial frame at the end: {buf:02x?}");
    if !fatal && (next < ordered.len() || next_auth < auths.len()) {
        match &last {
            Some((s, r)) if closes(*s, r) => {}
            _ => panic!(
                "{} of {} requests unanswered, last reply {last:?}",
                ordered.len() - next + auths.len() - next_auth,
                sent.len()
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = if step == 0 {
        stream.len().max(1)
    } else {
        usize::from(step)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let out = rt.block_on(serve(stream, step));
    check(stream, &out);
});
