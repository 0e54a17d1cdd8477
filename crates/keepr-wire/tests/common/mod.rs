//! Golden-frame fixtures: parsing the files `golden/capture.py` writes, and decoding each
//! frame the way a server (requests) or a client (replies) would.
//!
//! A fixture line is `<connection> <c>s|s>c> <connect|opcode:name> <payload hex>`; lines
//! starting with `#` are comments.

#![allow(dead_code)] // each test binary uses a different part

use bytes::{Bytes, BytesMut};
use keepr_wire::frame::{self, FrameDecoder};
use keepr_wire::jute::Jute;
use keepr_wire::{ConnectRequest, ConnectResponse, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The first frame of a connection in either direction.
    Connect,
    /// The opcode of the request (for a reply: of the request it answers).
    Op(i32),
}

#[derive(Debug, Clone)]
pub struct FixtureFrame {
    pub line: usize,
    pub conn: u32,
    pub direction: Direction,
    pub context: Context,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    ConnectRequest(ConnectRequest),
    ConnectResponse(ConnectResponse),
    Request(Request),
    Response(Response),
}

fn unhex(s: &str) -> Result<Bytes, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad hex at {i}"))
        })
        .collect::<Result<Vec<u8>, String>>()
        .map(Bytes::from)
}

pub fn parse(text: &str) -> Result<Vec<FixtureFrame>, String> {
    let mut frames = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [conn, direction, context, hex] = fields[..] else {
            // A frame with an empty payload has no hex field.
            return Err(format!(
                "line {line_no}: expected 4 fields, got {}",
                fields.len()
            ));
        };
        let conn = conn
            .parse()
            .map_err(|e| format!("line {line_no}: connection: {e}"))?;
        let direction = match direction {
            "c>s" => Direction::ClientToServer,
            "s>c" => Direction::ServerToClient,
            other => return Err(format!("line {line_no}: direction {other:?}")),
        };
        let context = if context == "connect" {
            Context::Connect
        } else {
            let op = context.split(':').next().unwrap_or_default();
            Context::Op(
                op.parse()
                    .map_err(|_| format!("line {line_no}: context {context:?}"))?,
            )
        };
        let payload = unhex(hex).map_err(|e| format!("line {line_no}: {e}"))?;
        frames.push(FixtureFrame {
            line: line_no,
            conn,
            direction,
            context,
            payload,
        });
    }
    Ok(frames)
}

pub fn decode(f: &FixtureFrame) -> Result<Decoded, String> {
    let payload = f.payload.clone();
    let decoded = match (f.direction, f.context) {
        (Direction::ClientToServer, Context::Connect) => {
            ConnectRequest::decode(payload).map(Decoded::ConnectRequest)
        }
        (Direction::ServerToClient, Context::Connect) => {
            ConnectResponse::decode(payload).map(Decoded::ConnectResponse)
        }
        (Direction::ClientToServer, Context::Op(_)) => {
            Request::decode(payload).map(Decoded::Request)
        }
        (Direction::ServerToClient, Context::Op(op)) => {
            Response::decode(payload, op).map(Decoded::Response)
        }
    };
    decoded.map_err(|e| format!("line {}: {e}", f.line))
}

pub fn encode(d: &Decoded) -> Bytes {
    let mut w = BytesMut::new();
    match d {
        Decoded::ConnectRequest(r) => r.write(&mut w),
        Decoded::ConnectResponse(r) => r.write(&mut w),
        Decoded::Request(r) => r.write(&mut w),
        Decoded::Response(r) => r.write(&mut w),
    }
    w.freeze()
}

/// Decodes a frame, checks that it re-encodes to the identical bytes, that a request's
/// opcode is the one recorded, and that the framing layer passes it through unchanged.
pub fn check(f: &FixtureFrame) -> Result<Decoded, String> {
    let decoded = decode(f)?;
    let again = encode(&decoded);
    if again != f.payload {
        return Err(format!(
            "line {}: re-encoded to different bytes\n  captured: {}\n  ours:     {}\n  decoded:  {decoded:?}",
            f.line,
            hex(&f.payload),
            hex(&again)
        ));
    }
    if let (Decoded::Request(r), Context::Op(op)) = (&decoded, f.context) {
        if r.header.op != op || r.body.op() != op {
            return Err(format!("line {}: opcode {op} decoded as {r:?}", f.line));
        }
    }
    let mut stream = BytesMut::new();
    frame::encode_frame(&mut stream, &f.payload);
    match FrameDecoder::default().decode(&mut stream) {
        Ok(Some(p)) if p == f.payload && stream.is_empty() => {}
        other => return Err(format!("line {}: framing gave {other:?}", f.line)),
    }
    Ok(decoded)
}

/// Checks every frame of a fixture and returns them decoded.
pub fn check_all(text: &str) -> Result<Vec<(FixtureFrame, Decoded)>, String> {
    let frames = parse(text)?;
    if frames.is_empty() {
        return Err("no frames".into());
    }
    let mut errors = Vec::new();
    let mut decoded = Vec::new();
    for f in frames {
        match check(&f) {
            Ok(d) => decoded.push((f, d)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(decoded)
    } else {
        Err(errors.join("\n"))
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
