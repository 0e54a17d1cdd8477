//! The etcd side of `keepr bench`: the same workloads over etcd's v3 gRPC API, one HTTP/2
//! connection per session with `--depth` calls in flight on it.
//!
//! Reads are serializable (answered from the member's own state, as ZooKeeper's and keepr's
//! getData are); writes go through etcd's Raft as ZooKeeper's do. An ephemeral znode's
//! counterpart is a key attached to a lease, so create-delete puts a new key on the session's
//! lease and then deletes it.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{FuturesUnordered, StreamExt};
use keepr_proto::etcd::kv_client::KvClient;
use keepr_proto::etcd::lease_client::LeaseClient;
use keepr_proto::etcd::{DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest};
use tonic::transport::{Channel, Endpoint};

use super::{BenchArgs, Op, OpPicker, Tally, Window};

/// How long the session's lease lives without keep-alives: longer than any run.
const LEASE_TTL_S: i64 = 600;

async fn connect(addr: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to etcd at {addr}"))
}

fn key(args: &BenchArgs, session: usize, k: u64) -> Vec<u8> {
    format!("{}/s{session}/k{k}", args.root).into_bytes()
}

/// Puts every session's keys.
pub(super) async fn setup(args: &BenchArgs, hosts: &[String]) -> anyhow::Result<()> {
    let kv = KvClient::new(connect(&hosts[0]).await?);
    let value = vec![b'v'; args.value_size];
    let mut puts = FuturesUnordered::new();
    for s in 0..args.sessions {
        for k in 0..args.keys as u64 {
            let mut kv = kv.clone();
            let req = PutRequest {
                key: key(args, s, k),
                value: value.clone(),
                lease: 0,
            };
            puts.push(async move { kv.put(req).await });
        }
    }
    while let Some(result) = puts.next().await {
        result.context("putting a benchmark key")?;
    }
    Ok(())
}

/// What one call was, once answered.
enum Done {
    Measured,
    /// A put of a fresh leased key, which is deleted next.
    Created(Vec<u8>),
}

type Call = Pin<Box<dyn Future<Output = (Instant, Result<Done, tonic::Status>)> + Send>>;

pub(super) async fn session(
    args: BenchArgs,
    addr: String,
    index: usize,
    window: Window,
) -> anyhow::Result<Tally> {
    let channel = connect(&addr).await?;
    let kv = KvClient::new(channel.clone());
    let lease = if args.workload == super::Workload::CreateDelete {
        LeaseClient::new(channel)
            .lease_grant(LeaseGrantRequest {
                ttl: LEASE_TTL_S,
                id: 0,
            })
            .await
            .context("granting the session's lease")?
            .into_inner()
            .id
    } else {
        0
    };
    let mut tally = Tally::new()?;
    let value = vec![b'w'; args.value_size];
    let mut picker = OpPicker::new(&args, index);
    let mut created: u64 = 0;
    let mut in_flight: FuturesUnordered<Call> = FuturesUnordered::new();
    loop {
        while in_flight.len() < args.depth && Instant::now() < window.end {
            let mut kv = kv.clone();
            let sent = Instant::now();
            let call: Call = match picker.next() {
                Op::Read(k) => {
                    let req = RangeRequest {
                        key: key(&args, index, k),
                        serializable: true,
                        ..Default::default()
                    };
                    Box::pin(async move { (sent, kv.range(req).await.map(|_| Done::Measured)) })
                }
                Op::Write(k) => {
                    let req = PutRequest {
                        key: key(&args, index, k),
                        value: value.clone(),
                        lease: 0,
                    };
                    Box::pin(async move { (sent, kv.put(req).await.map(|_| Done::Measured)) })
                }
                Op::Create => {
                    created += 1;
                    let name = format!("{}/s{index}/e-{created:010}", args.root).into_bytes();
                    let req = PutRequest {
                        key: name.clone(),
                        value: value.clone(),
                        lease,
                    };
                    Box::pin(async move { (sent, kv.put(req).await.map(|_| Done::Created(name))) })
                }
            };
            in_flight.push(call);
        }
        let Some((sent, result)) = in_flight.next().await else {
            break;
        };
        let answered = Instant::now();
        tally.record(sent, answered, window, result.is_ok());
        if let Ok(Done::Created(name)) = result {
            let mut kv = kv.clone();
            let req = DeleteRangeRequest {
                key: name,
                range_end: Vec::new(),
            };
            in_flight.push(Box::pin(async move {
                let sent = Instant::now();
                (sent, kv.delete_range(req).await.map(|_| Done::Measured))
            }));
        }
        if answered >= window.end + Duration::from_secs(5) {
            break;
        }
    }
    Ok(tally)
}
