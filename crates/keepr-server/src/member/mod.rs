//! One running member: Raft, the state it applies, the listeners and the background chores,
//! started and stopped together.
//!
//! [`start`](Member::start) resolves the member's identity ([`bootstrap`]), builds Raft on
//! the durable log and the state machine, opens the peer listener before Raft runs (other
//! members' calls must find it), bootstraps a new ensemble if this is its first start, then
//! opens the client, admin and HTTP listeners.

mod backend;
mod bootstrap;
mod chores;
mod failover;
mod reconfig;
mod repair;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use keepr_log::{LogConfig, LogStore};
use keepr_tree::{Tree, TreeConfig};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::http::MemberStatus;
use crate::identity::{self, Identity};
use crate::metrics::Metrics;
use crate::peer::client::{ClusterIdCell, Network, PeerChannels};
use crate::peer::forward::{self, Proposal};
use crate::peer::service::PeerService;
use crate::raft::snapshot_store::SnapshotStore;
use crate::raft::state_machine::StateMachine;
use crate::raft::types::TypeConfig;
use crate::sessions::{SessionIds, SessionTracker};
use crate::state::{CloseReason, ConnSignal, Shared};
use crate::zk::backend::ZkSettings;

pub use chores::stopped;

pub type Raft = openraft::Raft<TypeConfig, StateMachine>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("opening the Raft log: {0}")]
    Log(#[from] keepr_log::LogError),
    #[error("snapshot store: {0}")]
    Snapshots(std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
    #[error("identity: {0}")]
    Identity(#[from] identity::IdentityError),
    #[error("peer transport: {0}")]
    Peer(String),
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
}

/// How recently an announcement must have come to count (see [`Inner::announcements`]).
pub const ANNOUNCE_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Inner {
    pub config: Config,
    /// This member's Raft node id (ordinal and incarnation).
    pub raft_id: u64,
    /// The peer address other members reach this one at.
    pub advertised_peer: String,
    pub cluster: ClusterIdCell,
    identity: Mutex<Identity>,
    settings: ZkSettings,
    pub shared: Arc<Shared>,
    pub raft: Raft,
    pub snapshots: SnapshotStore,
    pub channels: PeerChannels,
    proposals: mpsc::UnboundedSender<Proposal>,
    pub sessions: SessionTracker,
    session_ids: SessionIds,
    /// Members that announced themselves recently: raft id → (peer address, when).
    announcements: Mutex<HashMap<u64, (String, Instant)>>,
    /// Serialises membership changes made through this member.
    pub membership_lock: tokio::sync::Mutex<()>,
    /// No quorum reachable: only read-only clients are served (see `chores::watch_quorum`).
    pub read_only: std::sync::atomic::AtomicBool,
    /// When the leader last called this member (followers' evidence of a quorum).
    pub last_leader_contact: Mutex<Instant>,
    /// The highest commit index a leader has told this member of since it started: a
    /// follower is ready once it has applied that far (see `readiness`).
    leader_commit_seen: Mutex<Option<u64>>,
    /// This member itself, for work that outlives a borrow (reconfig).
    this: std::sync::OnceLock<std::sync::Weak<Inner>>,
}

impl Inner {
    /// Joins the cluster whose leader first contacted this (new) member.
    pub fn adopt_cluster_id(&self, id: &str) -> Result<(), String> {
        let mut identity = self.identity.lock();
        if let Some(existing) = &identity.cluster_id {
            return if existing == id {
                Ok(())
            } else {
                Err(format!("already in cluster {existing}"))
            };
        }
        identity.cluster_id = Some(id.to_string());
        identity::save(&self.config.data_dir, &identity).map_err(|e| e.to_string())?;
        self.cluster.set(id)?;
        tracing::info!(cluster = id, "joined cluster");
        Ok(())
    }

    /// Notes a call from the leader: when, and the commit index it carried.
    pub fn heard_from_leader(&self, rpc: &openraft::raft::AppendEntriesRequest<TypeConfig>) {
        *self.last_leader_contact.lock() = Instant::now();
        let commit = rpc.leader_commit.as_ref().map(|l| l.index).unwrap_or(0);
        let mut seen = self.leader_commit_seen.lock();
        *seen = Some(seen.map_or(commit, |s| s.max(commit)));
    }

    pub fn record_announcement(&self, raft_id: u64, peer: String) {
        self.announcements
            .lock()
            .insert(raft_id, (peer, Instant::now()));
    }

    /// Members heard from within `d`.
    pub fn heard_within(&self, d: std::time::Duration) -> std::collections::BTreeSet<u64> {
        self.announcements
            .lock()
            .iter()
            .filter(|(_, (_, at))| at.elapsed() < d)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Members heard from within [`ANNOUNCE_FRESH`]: raft id → peer address.
    pub fn announcements(&self) -> Vec<(u64, String)> {
        let mut a = self.announcements.lock();
        a.retain(|_, (_, at)| at.elapsed() < ANNOUNCE_FRESH);
        let mut v: Vec<(u64, String)> = a.iter().map(|(id, (p, _))| (*id, p.clone())).collect();
        v.sort();
        v
    }
}

/// A started member. Dropping it does not stop it; call [`Member::shutdown`].
pub struct Member {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    pub zk_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
}

/// The wall clock in milliseconds: the time the leader stamps on commands.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn bind(what: &'static str, addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    crate::address::bind_listener(what, addr)
        .await
        .map_err(|source| StartError::Bind {
            what,
            addr: addr.to_string(),
            source,
        })
}

impl Member {
    pub async fn start(config: Config) -> Result<Member, StartError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let identity = bootstrap::resolve_identity(&config).await?;
        let raft_id = identity.raft_id();
        tracing::info!(
            member = %identity::display(raft_id),
            cluster = identity.cluster_id.as_deref().unwrap_or("(none yet)"),
            "identity"
        );
        let cluster =
            ClusterIdCell::new(identity.cluster_id.as_deref()).map_err(StartError::Peer)?;
        let channels = PeerChannels::new(cluster.clone());
        let metrics = Arc::new(Metrics::new());
        let tree_config = TreeConfig::default();
        let shared = Arc::new(Shared::new(
            config.id,
            Tree::new(tree_config.clone()),
            metrics.clone(),
        ));
        let mut log =
            LogStore::<TypeConfig>::open(config.data_dir.join("log"), LogConfig::default())?;
        let snapshots = SnapshotStore::open(config.data_dir.join("snapshots"))
            .map_err(StartError::Snapshots)?;
        repair::restore_missing_snapshot(&config, &mut log, &snapshots, &channels).await?;
        let sm = StateMachine::new(shared.clone(), snapshots.clone(), tree_config);

        let raft_config = openraft::Config {
            cluster_name: "keepr".into(),
            // A follower that hears nothing from its leader for 0.6-1.2 s stands for election:
            // quick failover after a crash, while a loaded two-core machine's scheduling and
            // fsync stalls (tens of ms) stay far from a spurious election.
            heartbeat_interval: 100,
            election_timeout_min: 600,
            election_timeout_max: 1200,
            install_snapshot_timeout: 60_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            // openraft never purges by itself: `chores::purge_behind_snapshots` purges up to
            // the older kept snapshot, so a damaged newest snapshot can be replaced by the
            // older one plus the log.
            max_in_snapshot_log_to_keep: u64::MAX,
            purge_batch_size: 1024,
            // A restarted leader must win an election before it serves anything: restored
            // leadership would answer read indexes from its stale commit index, since the
            // committed index rides the next fsync instead of being waited for (decision 3),
            // and a kill in between left a `sync` reading before an acknowledged write
            // (docs/reliability.md, finding 4).
            enable_leader_restore: Some(false),
            ..Default::default()
        };
        let raft_config = Arc::new(
            raft_config
                .validate()
                .map_err(|e| StartError::Raft(e.to_string()))?,
        );
        let network = Network {
            channels: channels.clone(),
        };
        // Built now, run once the peer listener is up: other members' calls must find it.
        let raft = Raft::build(raft_id, raft_config, network, log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let settings = ZkSettings::from(&config);
        let (ptx, prx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            raft_id,
            advertised_peer: config.advertised_peer(),
            cluster,
            identity: Mutex::new(identity.clone()),
            sessions: SessionTracker::new(config.tick, Instant::now()),
            session_ids: SessionIds::new(config.id, now_ms()),
            settings,
            shared: shared.clone(),
            raft: raft.clone(),
            snapshots,
            channels: channels.clone(),
            proposals: ptx,
            announcements: Mutex::new(HashMap::new()),
            membership_lock: tokio::sync::Mutex::new(()),
            read_only: std::sync::atomic::AtomicBool::new(false),
            last_leader_contact: Mutex::new(Instant::now()),
            leader_commit_seen: Mutex::new(None),
            this: std::sync::OnceLock::new(),
            config: config.clone(),
        });
        let _ = inner.this.set(Arc::downgrade(&inner));

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let (peer_listener, peer_addr) = bind("peer", &config.peer_addr).await?;
        {
            let peer =
                keepr_proto::peer::peer_server::PeerServer::new(PeerService::new(inner.clone()))
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX);
            // Members pass admin calls to the leader over the peer port.
            let admin = keepr_proto::admin::admin_server::AdminServer::new(
                crate::admin::AdminService::new(inner.clone(), true),
            );
            let mut rx = shutdown_rx.clone();
            // Raft and forwarded writes are small, latency-bound messages: without TCP_NODELAY,
            // Nagle's algorithm and delayed acks add tens of milliseconds to a round trip.
            let incoming =
                tonic::transport::server::TcpIncoming::from(peer_listener).with_nodelay(Some(true));
            tasks.spawn(async move {
                let result = tonic::transport::Server::builder()
                    .tcp_nodelay(true)
                    .initial_stream_window_size(Some(4 << 20))
                    .initial_connection_window_size(Some(16 << 20))
                    .add_service(peer)
                    .add_service(admin)
                    .serve_with_incoming_shutdown(incoming, async move { stopped(&mut rx).await })
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "peer server failed");
                }
            });
        }
        raft.run();
        if identity.incarnation == 0 && identity.cluster_id.is_some() {
            bootstrap::initialize_static(&raft, &config).await?;
        }

        let (zk_listener, zk_addr) = bind("zk", &config.zk_addr).await?;
        let (http_listener, http_addr) = bind("http", &config.http_addr).await?;
        let (grpc_listener, grpc_addr) = bind("grpc", &config.grpc_addr).await?;

        tasks.spawn(forward::proposer(raft.clone(), raft_id, channels, prx));
        tasks.spawn(chores::accept_loop(
            inner.clone(),
            zk_listener,
            shutdown_rx.clone(),
        ));
        {
            let status: Arc<dyn MemberStatus> = inner.clone();
            let mut rx = shutdown_rx.clone();
            let metrics = metrics.clone();
            tasks.spawn(async move {
                let stop = async move { stopped(&mut rx).await };
                if let Err(e) = crate::http::serve(http_listener, status, metrics, stop).await {
                    tracing::error!(error = %e, "http server failed");
                }
            });
        }
        {
            let admin = keepr_proto::admin::admin_server::AdminServer::new(
                crate::admin::AdminService::new(inner.clone(), false),
            );
            let mut rx = shutdown_rx.clone();
            let incoming =
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
            tasks.spawn(async move {
                let result = tonic::transport::Server::builder()
                    .add_service(admin)
                    .serve_with_incoming_shutdown(incoming, async move { stopped(&mut rx).await })
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "grpc server failed");
                }
            });
        }
        tasks.spawn(chores::leader_chores(inner.clone(), shutdown_rx.clone()));
        tasks.spawn(chores::report_sessions(inner.clone(), shutdown_rx.clone()));
        tasks.spawn(chores::announce(inner.clone(), shutdown_rx.clone()));
        tasks.spawn(chores::watch_quorum(inner.clone(), shutdown_rx.clone()));
        tasks.spawn(failover::replace_dead_leader(
            inner.clone(),
            shutdown_rx.clone(),
        ));
        tasks.spawn(chores::purge_behind_snapshots(
            inner.clone(),
            shutdown_rx.clone(),
        ));
        tracing::info!(
            member = %identity::display(raft_id),
            %zk_addr, %http_addr, %peer_addr, %grpc_addr,
            "member started"
        );
        Ok(Member {
            inner,
            shutdown,
            tasks,
            zk_addr,
            http_addr,
            peer_addr,
            grpc_addr,
        })
    }

    pub fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Resolves once Raft's core has stopped by itself (a fatal storage error or a panic),
    /// with the reason. Such a member can no longer commit or apply anything: its process
    /// should exit so that a supervisor restarts it.
    pub async fn raft_failed(&self) -> String {
        use openraft::async_runtime::watch::WatchReceiver;
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Err(e) = &metrics.borrow_watched().running_state {
                return e.to_string();
            }
            if metrics.changed().await.is_err() {
                return "the Raft core task ended".to_string();
            }
        }
    }

    /// Stops listening, disconnects clients and shuts Raft down (flushing the log).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.inner
            .shared
            .watches
            .lock()
            .broadcast(ConnSignal::Close(CloseReason::Shutdown));
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("member stopped");
    }
}
