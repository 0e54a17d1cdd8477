//! `keepr bench`: a ZooKeeper-protocol load generator that drives any ensemble (keepr or
//! Apache ZooKeeper) with many sessions, each keeping a window of requests in flight, and
//! reports throughput and latency percentiles.
//!
//! Sessions are spread over the given servers round-robin. Every session works on its own
//! keys, so runs measure the server, not contention between clients.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// setData of --value-size bytes.
    Set,
    /// getData.
    Get,
    /// --read-percent getData, the rest setData.
    Mixed,
    /// create an ephemeral-sequential node, then delete it (each counts as one op).
    CreateDelete,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Comma-separated HOST:PORT list (ZooKeeper connection string without chroot).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 16)]
    pub depth: usize,
    /// Measured seconds (after a 2-second warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value_t = 128)]
    pub value_size: usize,
    /// Keys per session.
    #[arg(long, default_value_t = 16)]
    pub keys: usize,
    /// Share of reads in the mixed workload, percent.
    #[arg(long, default_value_t = 90)]
    pub read_percent: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Parent node for the benchmark's keys.
    #[arg(long, default_value = "/keepr-bench")]
    pub root: String,
}

/// What a session measured.
struct Tally {
    ops: u64,
    errors: u64,
    latency: Histogram<u64>,
}

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
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30_000,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0; 16])),
            read_only: Some(false),
        };
        keepr_wire::frame::write_frame(&mut c.out, |w| req.write(w));
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
async fn setup(args: &BenchArgs, hosts: &[String]) -> anyhow::Result<()> {
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

async fn session(
    args: BenchArgs,
    addr: String,
    index: usize,
    warmup_end: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut c = Conn::connect(&addr).await?;
    let mut tally = Tally {
        ops: 0,
        errors: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let value = Bytes::from(vec![b'w'; args.value_size]);
    let base = format!("{}/s{index}", args.root);
    let mut in_flight: VecDeque<Sent> = VecDeque::with_capacity(args.depth * 2);
    let mut n: u64 = 0;
    let mut rng = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next_op = |c: &mut Conn, n: &mut u64| -> Sent {
        *n += 1;
        let key = format!("{base}/k{}", *n % args.keys as u64);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let now = Instant::now();
        let read = match args.workload {
            Workload::Get => true,
            Workload::Set => false,
            Workload::Mixed => (rng % 100) < args.read_percent as u64,
            Workload::CreateDelete => {
                c.queue(create(
                    format!("{base}/e-"),
                    value.clone(),
                    create_flags::EPHEMERAL_SEQUENTIAL,
                ));
                return Sent::Create(now);
            }
        };
        if read {
            c.queue(RequestBody::GetData(PathWatchRequest {
                path: key,
                watch: false,
            }));
        } else {
            c.queue(RequestBody::SetData(SetDataRequest {
                path: key,
                data: Some(value.clone()),
                version: -1,
            }));
        }
        Sent::Measured(now)
    };
    while Instant::now() < end {
        while in_flight.len() < args.depth {
            in_flight.push_back(next_op(&mut c, &mut n));
        }
        c.flush().await?;
        let (h, mut r) = c.reply().await?;
        let Some(sent) = in_flight.pop_front() else {
            bail!("reply without a request");
        };
        let now = Instant::now();
        let measured = now >= warmup_end;
        match sent {
            Sent::Measured(t) => {
                if measured {
                    tally.ops += 1;
                    tally
                        .latency
                        .saturating_record(now.duration_since(t).as_micros() as u64);
                    if h.err != 0 {
                        tally.errors += 1;
                    }
                }
            }
            Sent::Create(t) => {
                if measured {
                    tally.ops += 1;
                    tally
                        .latency
                        .saturating_record(now.duration_since(t).as_micros() as u64);
                }
                if h.err != 0 {
                    tally.errors += measured as u64;
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

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let hosts: Vec<String> = args
        .hosts
        .split(',')
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() || args.sessions == 0 || args.depth == 0 || args.keys == 0 {
        bail!("need at least one host, session, key and a depth of 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        setup(&args, &hosts).await?;
        let start = Instant::now();
        let warmup_end = start + Duration::from_secs(2);
        let end = warmup_end + Duration::from_secs(args.duration);
        let tasks: Vec<_> = (0..args.sessions)
            .map(|i| {
                tokio::spawn(session(
                    args.clone(),
                    hosts[i % hosts.len()].clone(),
                    i,
                    warmup_end,
                    end,
                ))
            })
            .collect();
        let mut total = Tally {
            ops: 0,
            errors: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        };
        for t in tasks {
            let tally = t.await??;
            total.ops += tally.ops;
            total.errors += tally.errors;
            total.latency.add(&tally.latency)?;
        }
        let secs = args.duration as f64;
        let ops_per_sec = total.ops as f64 / secs;
        let p = |q: f64| total.latency.value_at_quantile(q) as f64 / 1000.0;
        if args.json {
            println!(
                "{{\"workload\":\"{:?}\",\"sessions\":{},\"depth\":{},\"ops\":{},\"errors\":{},\"ops_per_sec\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
                args.workload,
                args.sessions,
                args.depth,
                total.ops,
                total.errors,
                ops_per_sec,
                p(0.5),
                p(0.99),
                p(0.999),
                total.latency.max() as f64 / 1000.0
            );
        } else {
            println!(
                "{:?}: {} sessions x {} in flight on {} servers for {} s",
                args.workload,
                args.sessions,
                args.depth,
                hosts.len(),
                args.duration
            );
            println!(
                "  {:.0} ops/s  ({} ops, {} errors)",
                ops_per_sec, total.ops, total.errors
            );
            println!(
                "  latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                p(0.5),
                p(0.99),
                p(0.999),
                total.latency.max() as f64 / 1000.0
            );
        }
        Ok(())
    })
}
