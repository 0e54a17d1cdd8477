//! `keepr server`: one ensemble member, configured by flags or `KEEPR_<FLAG>` variables.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use keepr_server::config::{
    id_from_hostname, parse_four_letter_words, parse_join, parse_members, Config,
};
use keepr_server::member::Member;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// This member's id, 1 to 254 (ZooKeeper's myid).
    #[arg(long, env = "KEEPR_ID", required_unless_present = "id_from_hostname")]
    pub id: Option<u64>,
    /// Take the id from the host name `NAME-ORDINAL` (a StatefulSet pod): ordinal + 1.
    #[arg(long, env = "KEEPR_ID_FROM_HOSTNAME", conflicts_with = "id")]
    pub id_from_hostname: bool,
    /// Where the Raft log and snapshots live; restarting with the same directory keeps the
    /// member's data.
    #[arg(long, env = "KEEPR_DATA_DIR")]
    pub data_dir: PathBuf,
    /// ZooKeeper protocol listen address.
    #[arg(long, env = "KEEPR_ZK", default_value = "127.0.0.1:2181")]
    pub zk: String,
    /// gRPC (client and admin API) listen address.
    #[arg(long, env = "KEEPR_GRPC", default_value = "127.0.0.1:7070")]
    pub grpc: String,
    /// Raft peer listen address.
    #[arg(long, env = "KEEPR_PEER", default_value = "127.0.0.1:7071")]
    pub peer: String,
    /// HTTP address for /metrics, /healthz and /readyz.
    #[arg(long, env = "KEEPR_HTTP", default_value = "127.0.0.1:9090")]
    pub http: String,
    /// The ensemble at first start: "1=HOST:PEERPORT,2=HOST:PEERPORT,...". Ignored once the
    /// data directory holds a cluster.
    #[arg(long, env = "KEEPR_INITIAL_MEMBERS")]
    pub initial_members: Option<String>,
    /// Join an existing ensemble instead of bootstrapping one: peer addresses of some of its
    /// members ("HOST:PEERPORT,..."). The member announces itself and waits to be added
    /// (`keepr members add`).
    #[arg(long, env = "KEEPR_JOIN", conflicts_with = "initial_members")]
    pub join: Option<String>,
    /// The peer address other members use to reach this one, if not the listen address.
    #[arg(long, env = "KEEPR_ADVERTISE_PEER")]
    pub advertise_peer: Option<String>,
    /// "user:base64(sha1(user:password))": that user bypasses every ACL.
    #[arg(long, env = "KEEPR_SUPER_DIGEST")]
    pub super_digest: Option<String>,
    /// ZooKeeper's tickTime in milliseconds.
    #[arg(long, env = "KEEPR_TICK_MS", default_value_t = 2000)]
    pub tick_ms: u64,
    /// Smallest session timeout granted, ms (default 2 ticks).
    #[arg(long, env = "KEEPR_MIN_SESSION_TIMEOUT_MS")]
    pub min_session_timeout_ms: Option<u64>,
    /// Largest session timeout granted, ms (default 20 ticks).
    #[arg(long, env = "KEEPR_MAX_SESSION_TIMEOUT_MS")]
    pub max_session_timeout_ms: Option<u64>,
    /// Enabled four-letter words, comma separated, or "*".
    #[arg(long, env = "KEEPR_FOUR_LETTER_WORDS")]
    pub four_letter_words: Option<String>,
    /// Largest frame accepted (jute.maxbuffer).
    #[arg(long, env = "KEEPR_MAX_FRAME", default_value_t = keepr_server::config::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Take a snapshot after this many log entries.
    #[arg(long, env = "KEEPR_SNAPSHOT_EVERY", default_value_t = 100_000)]
    pub snapshot_every: u64,
    /// Mixed into the cluster id when bootstrapping, so ensembles with the same member list
    /// stay apart.
    #[arg(long, env = "KEEPR_CLUSTER_TOKEN", default_value = "keepr")]
    pub cluster_token: String,
    /// How often the leader deletes empty containers and expired TTL nodes, ms.
    #[arg(long, env = "KEEPR_REAP_INTERVAL_MS", default_value_t = 60_000)]
    pub reap_interval_ms: u64,
    /// Log format: "text" or "json".
    #[arg(long, env = "KEEPR_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl ServerArgs {
    fn to_config(&self) -> anyhow::Result<Config> {
        let id = match self.id {
            Some(id) => id,
            None => {
                let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .context("reading this host's name for --id-from-hostname")?;
                id_from_hostname(hostname.trim())?
            }
        };
        let mut c = Config::new(id, self.data_dir.clone());
        c.zk_addr = self.zk.clone();
        c.grpc_addr = self.grpc.clone();
        c.peer_addr = self.peer.clone();
        c.http_addr = self.http.clone();
        c.initial_members = match (&self.initial_members, &self.join) {
            (Some(m), _) => parse_members(m)?,
            (None, Some(_)) => Default::default(),
            (None, None) => [(id, self.advertise_peer.clone().unwrap_or(self.peer.clone()))].into(),
        };
        c.join = match &self.join {
            Some(j) => parse_join(j)?,
            None => Vec::new(),
        };
        c.advertise_peer = self.advertise_peer.clone();
        c.super_digest = self.super_digest.clone();
        c.tick = Duration::from_millis(self.tick_ms);
        c.min_session_timeout = self
            .min_session_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(c.tick * 2);
        c.max_session_timeout = self
            .max_session_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(c.tick * 20);
        if let Some(w) = &self.four_letter_words {
            c.four_letter_words = parse_four_letter_words(w);
        }
        c.max_frame = self.max_frame;
        c.snapshot_every = self.snapshot_every;
        c.reap_interval = Duration::from_millis(self.reap_interval_ms);
        c.cluster_token = self.cluster_token.clone();
        c.validate()?;
        Ok(c)
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    let config = args.to_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let member = Member::start(config).await?;
        let raft_failed = tokio::select! {
            signalled = wait_for_signal() => {
                signalled?;
                None
            }
            reason = member.raft_failed() => Some(reason),
        };
        if let Some(reason) = &raft_failed {
            tracing::error!(%reason, "Raft stopped; exiting so that the member is restarted");
        } else {
            tracing::info!("shutting down");
        }
        member.shutdown().await;
        match raft_failed {
            Some(reason) => anyhow::bail!("Raft stopped: {reason}"),
            None => Ok(()),
        }
    })
}

pub async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
