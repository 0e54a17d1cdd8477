//! `keepr bench`: a load generator that drives an ensemble (keepr or Apache ZooKeeper over
//! the ZooKeeper protocol, or etcd over its v3 gRPC API) with many sessions, each keeping a
//! window of requests in flight, and reports throughput and latency percentiles.
//!
//! Sessions are spread over the given servers round-robin. Every session works on its own
//! keys, so runs measure the server, not contention between clients. The protocol drivers
//! ([`zookeeper`], [`etcd`]) only send and receive; which operation comes next, what is
//! measured and the report are shared here, so both protocols run the same workload.

mod etcd;
mod zookeeper;

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// setData (etcd: put) of --value-size bytes.
    Set,
    /// getData (etcd: a serializable range read of one key, served locally as getData is).
    Get,
    /// --read-percent reads, the rest writes.
    Mixed,
    /// create an ephemeral-sequential node, then delete it (etcd: put a new key attached to
    /// the session's lease, then delete it). Each counts as one op.
    CreateDelete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// The ZooKeeper wire protocol (keepr, Apache ZooKeeper).
    Zookeeper,
    /// etcd's v3 gRPC API.
    Etcd,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Comma-separated HOST:PORT list (ZooKeeper connection string without chroot, or etcd
    /// client endpoints).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    #[arg(long, value_enum, default_value_t = Protocol::Zookeeper)]
    pub protocol: Protocol,
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Concurrent sessions (etcd: client connections).
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
    /// Parent node (etcd: key prefix) for the benchmark's keys.
    #[arg(long, default_value = "/keepr-bench")]
    pub root: String,
}

/// What a session measured.
struct Tally {
    ops: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            ops: 0,
            errors: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        })
    }

    /// Counts one operation sent at `sent`, if it was answered within the measured window.
    fn record(&mut self, sent: Instant, answered: Instant, window: Window, ok: bool) {
        if answered < window.warmup_end || answered >= window.end {
            return;
        }
        self.ops += 1;
        self.errors += u64::from(!ok);
        self.latency
            .saturating_record(answered.duration_since(sent).as_micros() as u64);
    }

    fn add(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.ops += other.ops;
        self.errors += other.errors;
        self.latency.add(&other.latency)?;
        Ok(())
    }
}

/// The next operation of a session.
enum Op {
    Read(u64),
    Write(u64),
    /// Create a fresh node (then delete it).
    Create,
}

/// Picks each session's operations: its keys in turn, reads and writes mixed by a
/// per-session pseudo-random sequence, so runs repeat.
struct OpPicker {
    workload: Workload,
    keys: u64,
    read_percent: u64,
    n: u64,
    rng: u64,
}

impl OpPicker {
    fn new(args: &BenchArgs, session: usize) -> OpPicker {
        OpPicker {
            workload: args.workload,
            keys: args.keys as u64,
            read_percent: u64::from(args.read_percent),
            n: 0,
            rng: (session as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }

    fn next(&mut self) -> Op {
        self.n += 1;
        let key = self.n % self.keys;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        match self.workload {
            Workload::Get => Op::Read(key),
            Workload::Set => Op::Write(key),
            Workload::Mixed if self.rng % 100 < self.read_percent => Op::Read(key),
            Workload::Mixed => Op::Write(key),
            Workload::CreateDelete => Op::Create,
        }
    }
}

/// When a session measures: from the end of the warm-up until `end`.
#[derive(Clone, Copy)]
struct Window {
    warmup_end: Instant,
    end: Instant,
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
        match args.protocol {
            Protocol::Zookeeper => zookeeper::setup(&args, &hosts).await?,
            Protocol::Etcd => etcd::setup(&args, &hosts).await?,
        }
        let start = Instant::now();
        let warmup_end = start + Duration::from_secs(2);
        let window = Window {
            warmup_end,
            end: warmup_end + Duration::from_secs(args.duration),
        };
        let tasks: Vec<_> = (0..args.sessions)
            .map(|i| {
                let args = args.clone();
                let addr = hosts[i % hosts.len()].clone();
                tokio::spawn(async move {
                    match args.protocol {
                        Protocol::Zookeeper => zookeeper::session(args, addr, i, window).await,
                        Protocol::Etcd => etcd::session(args, addr, i, window).await,
                    }
                })
            })
            .collect();
        let mut total = Tally::new()?;
        for t in tasks {
            total.add(&t.await??)?;
        }
        report(&args, hosts.len(), &total);
        Ok(())
    })
}

fn report(args: &BenchArgs, servers: usize, total: &Tally) {
    let secs = args.duration as f64;
    let ops_per_sec = total.ops as f64 / secs;
    let p = |q: f64| total.latency.value_at_quantile(q) as f64 / 1000.0;
    let max = total.latency.max() as f64 / 1000.0;
    if args.json {
        println!(
            "{{\"protocol\":\"{:?}\",\"workload\":\"{:?}\",\"sessions\":{},\"depth\":{},\"ops\":{},\"errors\":{},\"ops_per_sec\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
            args.protocol,
            args.workload,
            args.sessions,
            args.depth,
            total.ops,
            total.errors,
            ops_per_sec,
            p(0.5),
            p(0.99),
            p(0.999),
            max
        );
    } else {
        println!(
            "{:?} over {:?}: {} sessions x {} in flight on {} servers for {} s",
            args.workload, args.protocol, args.sessions, args.depth, servers, args.duration
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
            max
        );
    }
}
