//! Append throughput with group commit: N concurrent appenders, each appending one entry and
//! waiting for its `IOFlushed` callback before the next, as N clients of a leader would.
//! Prints entries/s, fsyncs/s and entries per fsync for each N.
//!
//! Run: `cargo bench -p keepr-log --bench append_throughput` (on the disk you care about: the
//! log goes to a temporary directory under `$TMPDIR`).

use std::sync::Arc;
use std::time::Instant;

use keepr_log::LogConfig;
use keepr_log::LogStore;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::TypeConfigExt;

openraft::declare_raft_types!(
    pub BenchConfig:
        D = String,
        R = String,
);

/// Roughly the size of a small znode write.
const PAYLOAD: &str =
    "set /app/config/feature-flags 0123456789abcdef0123456789abcdef0123456789abcdef";

struct Shared {
    store: LogStore<BenchConfig>,
    next: u64,
}

async fn run(appenders: usize, total: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LogStore::<BenchConfig>::open(dir.path(), LogConfig::default()).expect("open");
    let metrics = store.metrics();
    let shared = Arc::new(tokio::sync::Mutex::new(Shared { store, next: 1 }));
    let per_task = total / appenders as u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let (tx, rx) = BenchConfig::oneshot();
                    {
                        let mut s = shared.lock().await;
                        let index = s.next;
                        s.next += 1;
                        let entry = EntryOf::<BenchConfig>::new_normal(
                            openraft::testing::log_id::<BenchConfig>(1, 1, index),
                            PAYLOAD.to_string(),
                        );
                        s.store
                            .append([entry], IOFlushed::signal(tx))
                            .await
                            .expect("append");
                    }
                    rx.await.expect("callback").expect("flush");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("appender");
    }
    let secs = started.elapsed().as_secs_f64();
    let m = metrics.snapshot();
    let entries = per_task * appenders as u64;
    let p50 = percentile(&m.fsync_micros, 0.5);
    let p99 = percentile(&m.fsync_micros, 0.99);
    println!(
        "{appenders:>4} appenders: {entries:>7} entries in {secs:6.2}s = {:>9.0} entries/s, {:>7.0} fsyncs/s, {:>6.1} entries/fsync, fsync p50 <= {p50}us p99 <= {p99}us",
        entries as f64 / secs,
        m.fsyncs as f64 / secs,
        entries as f64 / m.fsyncs.max(1) as f64,
    );
}

/// The upper bound of the bucket holding quantile `q` (the last bucket has no bound).
fn percentile(h: &keepr_log::HistogramSnapshot, q: f64) -> String {
    let target = (h.count() as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, c) in h.counts.iter().enumerate() {
        seen += c;
        if seen >= target {
            return h
                .bounds
                .get(i)
                .map_or_else(|| "inf".to_string(), |b| b.to_string());
        }
    }
    "inf".to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (such as `cargo test --benches`) gets a
    // quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cases: &[(usize, u64)] = if full {
        &[(1, 5_000), (16, 40_000), (256, 256_000)]
    } else {
        &[(1, 100), (16, 1_600), (256, 2_560)]
    };
    for &(appenders, total) in cases {
        runtime.block_on(run(appenders, total));
    }
}
