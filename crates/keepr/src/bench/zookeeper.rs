//! The ZooKeeper-protocol side of `keepr bench`: pipelined requests on one connection per
//! session, against keepr or Apache ZooKeeper.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use keepr_wire::codes::{create_flags, perms};
use keepr_wire::frame::FrameDecoder;
use keepr_wire::jute::{Jute, Reader};
use keepr_wire::request::{Request, RequestBody};
use keepr_wire::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, DeleteRequest, Id, PathWatchRequest,
    ReplyHeader, SetDataRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BenchArgs, Op, OpPicker, Tally, Window};

/// A ZooKeeper-protocol connection with pipelined requests.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    frames: FrameDecoder,
    out: BytesMut,
    next_xid: i32,
}

impl Conn {
    async fn connect(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            frames: FrameDecoder::new(16 << 20),
            out: BytesMut::with_capacity(64 * 1024),
            next_xid: 1,
        };
        ConnectRequest::new_session(30_000, Some(false)).write_frame(&mut c.out);
        c.flush().await?;
        let frame = c.frame().await?;
        let resp = ConnectResponse::read(&mut Reader::new(frame))?;
        if resp.time_out <= 0 {
            bail!("{addr} refused the session");
        }
        Ok(c)
    }

    fn queue(&mut self, body: RequestBody) -> i32 {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        Request::new(xid, body).write_frame(&mut self.out);
        xid
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// The next frame, reading from the socket as needed.
    async fn frame(&mut self) -> anyhow::Result<Bytes> {
        loop {
            if let Some(f) = self.frames.decode(&mut self.buf)? {
                return Ok(f);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }

    /// The next reply (skipping watch notifications and pings).
    async fn reply(&mut self) -> anyhow::Result<(ReplyHeader, Reader)> {
        loop {
            let mut r = Reader::new(self.frame().await?);
            let h = ReplyHeader::read(&mut r)?;
            if h.xid >= 0 {
                return Ok((h, r));
            }
        }
    }

    /// One request, waited for; for setup.
    async fn call(&mut self, body: RequestBody) -> anyhow::Result<(ReplyHeader, Reader)> {
        self.queue(body);
        self.flush().await?;
        self.reply().await
    }
}

fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

fn create(path: String, data: Bytes, flags: i32) -> RequestBody {
    RequestBody::Create(CreateRequest {
        path,
        data: Some(data),
        acl: open_acl(),
        flags,
    })
}

/// Creates the parent and every session's keys, tolerating leftovers of earlier runs.
pub(super) async fn setup(args: &BenchArgs, hosts: &[String]) -> anyhow::Result<()> {
    let mut c = Conn::connect(&hosts[0]).await?;
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let mut parents = vec![args.root.clone()];
    for s in 0..args.sessions {
        parents.push(format!("{}/s{s}", args.root));
    }
    for p in parents {
        let (h, _) = c
            .call(create(p.clone(), Bytes::new(), create_flags::PERSISTENT))
            .await?;
        if h.err != 0 && h.err != keepr_wire::ErrorCode::NodeExists.code() {
            bail!("creating {p}: error {}", h.err);
        }
    }
    // Keys, pipelined.
    let mut expected = 0;
    for s in 0..args.sessions {
        for k in 0..args.keys {
            c.queue(create(
                format!("{}/s{s}/k{k}", args.root),
                value.clone(),
                create_flags::PERSISTENT,
            ));
            expected += 1;
        }
    }
    c.flush().await?;
    for _ in 0..expected {
        let (h, _) = c.reply().await?;
        if h.err != 0 && h.err != keepr_wire::ErrorCode::NodeExists.code() {
            bail!("creating a key: error {}", h.err);
        }
    }
    Ok(())
}

enum Sent {
    Measured(Instant),
    /// A create whose delete follows (create-delete workload).
    Create(Instant),
}

pub(super) async fn session(
    args: BenchArgs,
    addr: String,
    index: usize,
    window: Window,
) -> anyhow::Result<Tally> {
    let mut c = Conn::connect(&addr).await?;
    let mut tally = Tally::new()?;
    let value = Bytes::from(vec![b'w'; args.value_size]);
    let base = format!("{}/s{index}", args.root);
    let mut in_flight: VecDeque<Sent> = VecDeque::with_capacity(args.depth * 2);
    let mut picker = OpPicker::new(&args, index);
    let mut send = |c: &mut Conn| -> Sent {
        let now = Instant::now();
        match picker.next() {
            Op::Read(k) => c.queue(RequestBody::GetData(PathWatchRequest {
                path: format!("{base}/k{k}"),
                watch: false,
            })),
            Op::Write(k) => c.queue(RequestBody::SetData(SetDataRequest {
                path: format!("{base}/k{k}"),
                data: Some(value.clone()),
                version: -1,
            })),
            Op::Create => {
                c.queue(create(
                    format!("{base}/e-"),
                    value.clone(),
                    create_flags::EPHEMERAL_SEQUENTIAL,
                ));
                return Sent::Create(now);
            }
        };
        Sent::Measured(now)
    };
    while Instant::now() < window.end {
        while in_flight.len() < args.depth {
            in_flight.push_back(send(&mut c));
        }
        c.flush().await?;
        let (h, mut r) = c.reply().await?;
        let Some(sent) = in_flight.pop_front() else {
            bail!("reply without a request");
        };
        let now = Instant::now();
        match sent {
            Sent::Measured(t) => tally.record(t, now, window, h.err == 0),
            Sent::Create(t) => {
                tally.record(t, now, window, h.err == 0);
                if h.err != 0 {
                    continue;
                }
                let path = keepr_wire::CreateResponse::read(&mut r)?.path;
                c.queue(RequestBody::Delete(DeleteRequest { path, version: -1 }));
                in_flight.push_back(Sent::Measured(Instant::now()));
            }
        }
    }
    // Drain what is still in flight so the server is not left with dangling work.
    c.flush().await?;
    while in_flight.pop_front().is_some() {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.reply()).await;
    }
    let _ = c.call(RequestBody::CloseSession).await;
    Ok(tally)
}
