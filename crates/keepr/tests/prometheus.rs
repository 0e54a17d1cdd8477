//! A real Prometheus (Debian's `prometheus`) scraping `keepr server`: the metrics page is
//! valid exposition format that Prometheus ingests, and the values it stores are the ones
//! users alert on (ZooKeeper's names: `znode_count`, ...; keepr's own `keepr_*`).

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{bounded, connect, open_acl, Member};
use zookeeper_client as zk;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus server scraping one target every second; killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        let mut f = std::fs::File::create(&config).expect("config file");
        write!(
            f,
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: keepr\n    static_configs:\n      - targets: ['{target}']\n"
        )
        .expect("writing config");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The value of an instant query that returns one sample, once Prometheus has it.
    fn query(&self, q: &str) -> Option<f64> {
        let url = format!("http://{}/api/v1/query", self.addr);
        let mut resp = ureq::get(&url).query("query", q).call().ok()?;
        let body: serde_json::Value = resp.body_mut().read_json().ok()?;
        let value = body["data"]["result"].get(0)?["value"].get(1)?.as_str()?;
        value.parse().ok()
    }

    /// Polls `q` until `pred` holds for its value (bounded).
    fn wait_for(&self, q: &str, pred: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = self.query(q) {
                if pred(v) {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus never reported a matching value for {q} (last: {:?})",
                self.query(q)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_zookeeper_named_and_raft_metrics() {
    if !std::path::Path::new(PROMETHEUS).exists() {
        eprintln!(
            "skipped: {PROMETHEUS} is not installed (scripts/test.sh installs Debian's prometheus)"
        );
        return;
    }
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        let opts = zk::CreateMode::Persistent.with_acls(open_acl());
        for i in 0..10 {
            c.create(&format!("/n{i}"), b"x", &opts).await.unwrap();
        }
        let eph = zk::CreateMode::Ephemeral.with_acls(open_acl());
        c.create("/e", b"", &eph).await.unwrap();

        let prom = Prometheus::start(&member.http_addr());
        let check = tokio::task::spawn_blocking(move || {
            prom.wait_for("up{job=\"keepr\"}", |v| v == 1.0);
            // 11 nodes created + /, /zookeeper, /zookeeper/quota, /zookeeper/config; like
            // ZooKeeper, znode_count counts the root twice.
            let znodes = prom.wait_for("znode_count", |v| v >= 15.0);
            assert_eq!(znodes, 16.0, "znode_count as ZooKeeper reports it");
            assert_eq!(prom.wait_for("ephemerals_count", |_| true), 1.0);
            assert_eq!(prom.wait_for("global_sessions", |_| true), 1.0);
            assert_eq!(prom.wait_for("num_alive_connections", |_| true), 1.0);
            assert_eq!(prom.wait_for("keepr_raft_is_leader", |_| true), 1.0);
            assert_eq!(prom.wait_for("keepr_raft_voters", |_| true), 1.0);
            let applied = prom.wait_for("keepr_raft_applied_index", |v| v > 0.0);
            assert!(
                applied >= 12.0,
                "applied index {applied} covers the session and 11 creates"
            );
            // The client sends create2 (create with Stat), as current ZooKeeper clients do.
            let creates = prom.wait_for(
                "sum(keepr_request_duration_seconds_count{op=~\"create2?\"})",
                |v| v >= 11.0,
            );
            assert!(creates >= 11.0);
            prom.wait_for("rate(packets_received[1m]) >= 0", |_| true);
        });
        check.await.expect("prometheus checks");
    })
    .await;
}
