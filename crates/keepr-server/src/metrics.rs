//! Prometheus metrics of one member.
//!
//! Where ZooKeeper's Prometheus provider has a metric we use its exact name (`znode_count`,
//! `num_alive_connections`, `fsynctime`, ...) so existing ZooKeeper dashboards and alerts keep
//! working; what is ours (Raft, per-operation latency) is under `keepr_*`. ZooKeeper exports
//! latencies as summaries; the Rust client has no summaries, so they are histograms here,
//! which still carry the `_sum` and `_count` series that ZooKeeper's documented alerts use.
//!
//! Gauges that mirror state (node count, sessions, Raft indexes) are filled in at scrape time
//! from a [`Snapshot`] so the hot paths never touch them.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Latency buckets in seconds, from 50 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Values read from the member's state when Prometheus scrapes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub znode_count: i64,
    pub watch_count: i64,
    pub ephemerals_count: i64,
    pub approximate_data_size: i64,
    pub num_alive_connections: i64,
    pub outstanding_requests: i64,
    pub global_sessions: i64,
    pub raft_term: i64,
    pub raft_leader: i64,
    pub raft_is_leader: bool,
    pub raft_commit_index: i64,
    pub raft_applied_index: i64,
    pub raft_last_log_index: i64,
    pub raft_snapshot_index: i64,
    pub raft_purged_index: i64,
    pub raft_voters: i64,
    pub raft_learners: i64,
    /// (peer id, entries behind the leader), leader only.
    pub follower_lag: Vec<(u64, i64)>,
}

pub struct Metrics {
    registry: Registry,
    started: std::time::Instant,

    // ZooKeeper's names.
    pub packets_received: IntCounter,
    pub packets_sent: IntCounter,
    pub bytes_received_count: IntCounter,
    pub connection_request_count: IntCounter,
    pub connection_rejected: IntCounter,
    pub connection_drop_count: IntCounter,
    pub auth_failed_count: IntCounter,
    pub stale_sessions_expired: IntCounter,
    pub fast_elections: IntCounter,
    pub node_created_watch_count: IntCounter,
    pub node_deleted_watch_count: IntCounter,
    pub node_changed_watch_count: IntCounter,
    pub node_children_watch_count: IntCounter,
    pub fsynctime: Histogram,
    pub snapshottime: Histogram,
    pub readlatency: Histogram,
    pub updatelatency: Histogram,

    // keepr's own.
    pub request_duration: HistogramVec,
    /// `request_duration` children by opcode, resolved once instead of per request.
    by_op: parking_lot::Mutex<std::collections::HashMap<i32, Histogram>>,
    pub proposals_in_flight: IntGauge,

    gauges: Gauges,
}

struct Gauges {
    znode_count: IntGauge,
    watch_count: IntGauge,
    ephemerals_count: IntGauge,
    approximate_data_size: IntGauge,
    num_alive_connections: IntGauge,
    outstanding_requests: IntGauge,
    global_sessions: IntGauge,
    uptime: IntGauge,
    open_file_descriptor_count: IntGauge,
    max_file_descriptor_count: IntGauge,
    raft_term: IntGauge,
    raft_leader: IntGauge,
    raft_is_leader: IntGauge,
    raft_commit_index: IntGauge,
    raft_applied_index: IntGauge,
    raft_last_log_index: IntGauge,
    raft_snapshot_index: IntGauge,
    raft_purged_index: IntGauge,
    raft_voters: IntGauge,
    raft_learners: IntGauge,
    follower_lag: IntGaugeVec,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("static metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("static metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

fn histogram(r: &Registry, name: &str, help: &str) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
        .expect("static metric definition");
    r.register(Box::new(h.clone()))
        .expect("metric names are unique");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "keepr_request_duration_seconds",
                "Time from a request's arrival to its reply, by operation",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["op"],
        )
        .expect("static metric definition");
        r.register(Box::new(request_duration.clone()))
            .expect("metric names are unique");
        let follower_lag = IntGaugeVec::new(
            Opts::new(
                "keepr_raft_follower_lag_entries",
                "Log entries a member is behind the leader (leader only)",
            ),
            &["peer"],
        )
        .expect("static metric definition");
        r.register(Box::new(follower_lag.clone()))
            .expect("metric names are unique");

        let gauges = Gauges {
            znode_count: gauge(&r, "znode_count", "Number of znodes"),
            watch_count: gauge(&r, "watch_count", "Number of registered watches"),
            ephemerals_count: gauge(&r, "ephemerals_count", "Number of ephemeral znodes"),
            approximate_data_size: gauge(
                &r,
                "approximate_data_size",
                "Approximate bytes of znode data and paths",
            ),
            num_alive_connections: gauge(&r, "num_alive_connections", "Open client connections"),
            outstanding_requests: gauge(
                &r,
                "outstanding_requests",
                "Requests received and not yet answered",
            ),
            global_sessions: gauge(&r, "global_sessions", "Live sessions in the ensemble"),
            uptime: gauge(&r, "uptime", "Milliseconds since this member started"),
            open_file_descriptor_count: gauge(
                &r,
                "open_file_descriptor_count",
                "Open file descriptors",
            ),
            max_file_descriptor_count: gauge(
                &r,
                "max_file_descriptor_count",
                "File descriptor limit",
            ),
            raft_term: gauge(&r, "keepr_raft_term", "Current Raft term"),
            raft_leader: gauge(
                &r,
                "keepr_raft_leader",
                "Node id of the current leader, 0 if none",
            ),
            raft_is_leader: gauge(&r, "keepr_raft_is_leader", "1 if this member is the leader"),
            raft_commit_index: gauge(
                &r,
                "keepr_raft_commit_index",
                "Highest log index known committed",
            ),
            raft_applied_index: gauge(
                &r,
                "keepr_raft_applied_index",
                "Highest log index applied to the tree (the zxid)",
            ),
            raft_last_log_index: gauge(
                &r,
                "keepr_raft_last_log_index",
                "Highest log index in the local log",
            ),
            raft_snapshot_index: gauge(
                &r,
                "keepr_raft_snapshot_index",
                "Log index of the newest snapshot",
            ),
            raft_purged_index: gauge(
                &r,
                "keepr_raft_purged_index",
                "Log index up to which the log was purged",
            ),
            raft_voters: gauge(&r, "keepr_raft_voters", "Voting members"),
            raft_learners: gauge(&r, "keepr_raft_learners", "Non-voting members (learners)"),
            follower_lag,
        };

        Metrics {
            packets_received: counter(&r, "packets_received", "Frames received from clients"),
            packets_sent: counter(&r, "packets_sent", "Frames sent to clients"),
            bytes_received_count: counter(
                &r,
                "bytes_received_count",
                "Bytes received from clients",
            ),
            connection_request_count: counter(
                &r,
                "connection_request_count",
                "Client connections accepted",
            ),
            connection_rejected: counter(&r, "connection_rejected", "Client handshakes refused"),
            connection_drop_count: counter(
                &r,
                "connection_drop_count",
                "Client connections closed by the server",
            ),
            auth_failed_count: counter(&r, "auth_failed_count", "Failed addAuth requests"),
            stale_sessions_expired: counter(
                &r,
                "stale_sessions_expired",
                "Sessions expired by timeout",
            ),
            fast_elections: counter(
                &r,
                "keepr_fast_elections_total",
                "Elections this member started at once because the leader's peer port refused connections",
            ),
            node_created_watch_count: counter(
                &r,
                "node_created_watch_count",
                "NodeCreated events delivered",
            ),
            node_deleted_watch_count: counter(
                &r,
                "node_deleted_watch_count",
                "NodeDeleted events delivered",
            ),
            node_changed_watch_count: counter(
                &r,
                "node_changed_watch_count",
                "NodeDataChanged events delivered",
            ),
            node_children_watch_count: counter(
                &r,
                "node_children_watch_count",
                "NodeChildrenChanged events delivered",
            ),
            fsynctime: histogram(&r, "fsynctime", "Duration of log fsyncs, seconds"),
            snapshottime: histogram(&r, "snapshottime", "Duration of snapshot writes, seconds"),
            readlatency: histogram(&r, "readlatency", "Read request latency, seconds"),
            updatelatency: histogram(&r, "updatelatency", "Write request latency, seconds"),
            request_duration,
            by_op: parking_lot::Mutex::new(std::collections::HashMap::new()),
            proposals_in_flight: gauge(
                &r,
                "keepr_proposals_in_flight",
                "Writes proposed to Raft and not yet applied",
            ),
            gauges,
            registry: r,
            started: std::time::Instant::now(),
        }
    }

    /// Renders every metric in Prometheus text format, with gauges taken from `s`.
    pub fn render(&self, s: &Snapshot) -> String {
        let g = &self.gauges;
        g.znode_count.set(s.znode_count);
        g.watch_count.set(s.watch_count);
        g.ephemerals_count.set(s.ephemerals_count);
        g.approximate_data_size.set(s.approximate_data_size);
        g.num_alive_connections.set(s.num_alive_connections);
        g.outstanding_requests.set(s.outstanding_requests);
        g.global_sessions.set(s.global_sessions);
        g.uptime.set(self.started.elapsed().as_millis() as i64);
        let (open, max) = file_descriptors();
        g.open_file_descriptor_count.set(open);
        g.max_file_descriptor_count.set(max);
        g.raft_term.set(s.raft_term);
        g.raft_leader.set(s.raft_leader);
        g.raft_is_leader.set(s.raft_is_leader as i64);
        g.raft_commit_index.set(s.raft_commit_index);
        g.raft_applied_index.set(s.raft_applied_index);
        g.raft_last_log_index.set(s.raft_last_log_index);
        g.raft_snapshot_index.set(s.raft_snapshot_index);
        g.raft_purged_index.set(s.raft_purged_index);
        g.raft_voters.set(s.raft_voters);
        g.raft_learners.set(s.raft_learners);
        g.follower_lag.reset();
        for (peer, lag) in &s.follower_lag {
            g.follower_lag
                .with_label_values(&[&peer.to_string()])
                .set(*lag);
        }
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which static
        // definitions rule out; an empty page is still a valid answer.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The latency histogram of one operation (`name` is its label).
    pub fn request_histogram(&self, op: i32, name: &str) -> Histogram {
        self.by_op
            .lock()
            .entry(op)
            .or_insert_with(|| self.request_duration.with_label_values(&[name]))
            .clone()
    }

    /// Milliseconds since this member started.
    pub fn uptime_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }
}

/// Open and maximum file descriptors of this process, from /proc (0 where unavailable).
pub fn file_descriptors() -> (i64, i64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (open, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_uses_zookeeper_names_and_snapshot_values() {
        let m = Metrics::new();
        m.packets_received.inc();
        let text = m.render(&Snapshot {
            znode_count: 42,
            raft_applied_index: 7,
            follower_lag: vec![(2, 3)],
            ..Snapshot::default()
        });
        assert!(text.contains("\nznode_count 42\n"), "{text}");
        assert!(text.contains("\npackets_received 1\n"), "{text}");
        assert!(text.contains("keepr_raft_applied_index 7"), "{text}");
        assert!(
            text.contains("keepr_raft_follower_lag_entries{peer=\"2\"} 3"),
            "{text}"
        );
        assert!(text.contains("fsynctime_count 0"), "{text}");
    }
}
