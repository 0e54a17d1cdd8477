//! One running member: Raft, the state it applies, the listeners and the leader's chores
//! (expiring sessions, reaping containers and TTL nodes), started and stopped together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;
use keepr_log::{LogConfig, LogStore};
use keepr_tree::{Command, Tree, TreeConfig, TxnOp};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::ServerState;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::http::MemberStatus;
use crate::identity;
use crate::metrics::{Metrics, Snapshot as MetricsSnapshot};
use crate::peer::client::{Network, PeerChannels};
use crate::peer::forward::{self, InFlight, Proposal};
use crate::peer::service::PeerService;
use crate::raft::snapshot_store::SnapshotStore;
use crate::raft::state_machine::StateMachine;
use crate::raft::types::{MemberNode, TypeConfig};
use crate::sessions::{SessionIds, SessionTracker};
use crate::state::{CloseReason, ConnSignal, Shared};
use crate::zk::backend::{Applied, Backend, Mode, ProposeError, ZkSettings};

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

pub struct Inner {
    pub config: Config,
    pub cluster_id: String,
    settings: ZkSettings,
    pub shared: Arc<Shared>,
    pub raft: Raft,
    pub snapshots: SnapshotStore,
    channels: PeerChannels,
    proposals: mpsc::UnboundedSender<Proposal>,
    pub sessions: SessionTracker,
    session_ids: SessionIds,
}

/// A started member. Dropping it does not stop it; call [`Member::shutdown`].
pub struct Member {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    pub zk_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub peer_addr: SocketAddr,
}

/// The wall clock in milliseconds: the time the leader stamps on commands.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
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
        let identity = identity::load_or_create(&config.data_dir, config.id, || {
            identity::cluster_id_for(&config.cluster_token, &config.initial_members)
        })?;
        tracing::info!(cluster = %identity.cluster_id, "identity");
        let channels = PeerChannels::new(&identity.cluster_id).map_err(StartError::Peer)?;
        let metrics = Arc::new(Metrics::new());
        let tree_config = TreeConfig::default();
        let shared = Arc::new(Shared::new(
            config.id,
            Tree::new(tree_config.clone()),
            metrics.clone(),
        ));
        let log = LogStore::<TypeConfig>::open(config.data_dir.join("log"), LogConfig::default())?;
        let snapshots = SnapshotStore::open(config.data_dir.join("snapshots"))
            .map_err(StartError::Snapshots)?;
        let sm = StateMachine::new(shared.clone(), snapshots.clone(), tree_config);

        let raft_config = openraft::Config {
            cluster_name: "keepr".into(),
            heartbeat_interval: 150,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            install_snapshot_timeout: 60_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            // Keep the log back to the snapshot before the newest, so a damaged newest
            // snapshot can be replaced by the older one plus the log.
            max_in_snapshot_log_to_keep: config.snapshot_every,
            purge_batch_size: 1024,
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
        // Build first, run once the peer listener is up: other members' calls must find it.
        let raft = Raft::build(config.id, raft_config, network, log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let settings = ZkSettings {
            node_id: config.id,
            tick: config.tick,
            min_session_timeout: config.min_session_timeout,
            max_session_timeout: config.max_session_timeout,
            super_digest: config.super_digest.clone(),
            max_frame: config.max_frame,
            four_letter_words: config.four_letter_words.clone(),
            client_addr: config.zk_addr.clone(),
            data_dir: config.data_dir.display().to_string(),
        };
        let (ptx, prx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            sessions: SessionTracker::new(config.tick, Instant::now()),
            session_ids: SessionIds::new(config.id, now_ms()),
            settings,
            shared: shared.clone(),
            raft: raft.clone(),
            snapshots,
            channels: channels.clone(),
            proposals: ptx,
            cluster_id: identity.cluster_id.clone(),
            config: config.clone(),
        });

        let peer_listener = bind("peer", &config.peer_addr).await?;
        let peer_addr = peer_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                what: "peer",
                addr: config.peer_addr.clone(),
                source,
            })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        {
            let service =
                keepr_proto::peer::peer_server::PeerServer::new(PeerService::new(inner.clone()))
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX);
            let mut rx = shutdown_rx.clone();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(peer_listener);
            tasks.spawn(async move {
                let result = tonic::transport::Server::builder()
                    .tcp_nodelay(true)
                    .initial_stream_window_size(Some(4 << 20))
                    .initial_connection_window_size(Some(16 << 20))
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, async move { stopped(&mut rx).await })
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "peer server failed");
                }
            });
        }
        raft.run();
        Self::bootstrap(&raft, &config).await?;

        let zk_listener = bind("zk", &config.zk_addr).await?;
        let http_listener = bind("http", &config.http_addr).await?;
        let zk_addr = zk_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                what: "zk",
                addr: config.zk_addr.clone(),
                source,
            })?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                what: "http",
                addr: config.http_addr.clone(),
                source,
            })?;

        tasks.spawn(forward::proposer(raft.clone(), config.id, channels, prx));
        tasks.spawn(accept_loop(inner.clone(), zk_listener, shutdown_rx.clone()));
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
        tasks.spawn(leader_chores(inner.clone(), shutdown_rx.clone()));
        tasks.spawn(report_sessions(inner.clone(), shutdown_rx.clone()));
        tracing::info!(id = config.id, %zk_addr, %http_addr, %peer_addr, "member started");
        Ok(Member {
            inner,
            shutdown,
            tasks,
            zk_addr,
            http_addr,
            peer_addr,
        })
    }

    /// Static bootstrap: a member with an empty log that is listed in `--initial-members`
    /// initializes Raft with that membership. Every member does it with the same list, which
    /// openraft allows; the first election then forms one cluster.
    async fn bootstrap(raft: &Raft, config: &Config) -> Result<(), StartError> {
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        if initialized || config.initial_members.is_empty() {
            return Ok(());
        }
        let members: std::collections::BTreeMap<u64, MemberNode> = config
            .initial_members
            .iter()
            .map(|(id, addr)| (*id, MemberNode { peer: addr.clone() }))
            .collect();
        tracing::info!(?members, "bootstrapping a new ensemble");
        if let Err(e) = raft.initialize(members).await {
            // Another member's vote or log reached us first: the ensemble is forming anyway.
            tracing::info!(error = %e, "initialize not applied");
        }
        Ok(())
    }

    pub fn inner(&self) -> &Arc<Inner> {
        &self.inner
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

/// Resolves once shutdown was requested.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let backend: Arc<dyn Backend> = inner;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(crate::zk::connection::serve(backend.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// While this member leads: expire sessions not heard from within their timeout, and
/// delete empty containers and expired TTL nodes.
async fn leader_chores(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let tick = inner.config.tick;
    let mut interval = tokio::time::interval((tick / 4).max(Duration::from_millis(50)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_leader = false;
    let mut last_reap = Instant::now();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let leader = inner.raft.is_leader();
        if !leader {
            was_leader = false;
            continue;
        }
        let now = Instant::now();
        let live = inner.shared.tree.read().tree.sessions();
        inner.sessions.reconcile(&live, now);
        if !was_leader {
            // Nothing is known of recent activity: everyone gets a full timeout.
            inner.sessions.reset_all(now);
            was_leader = true;
        }
        for session in inner.sessions.take_expired(now) {
            inner.shared.metrics.stale_sessions_expired.inc();
            tracing::info!(session = format_args!("{session:#x}"), "session expired");
            let cmd = Command {
                zxid: 0,
                time: 0,
                session,
                auth: Vec::new(),
                op: TxnOp::CloseSession,
            };
            let fut = inner.propose(cmd);
            let inner2 = inner.clone();
            tokio::spawn(async move {
                if fut.await.is_err() {
                    inner2.sessions.close_failed(session);
                }
            });
        }
        if now.duration_since(last_reap) >= inner.config.reap_interval {
            last_reap = now;
            let paths = inner.shared.tree.read().tree.reapable(now_ms());
            for path in paths {
                let cmd = Command {
                    zxid: 0,
                    time: 0,
                    session: 0,
                    auth: Vec::new(),
                    op: TxnOp::DeleteContainer { path },
                };
                drop(inner.propose(cmd));
            }
        }
    }
}

/// On a follower: tells the leader which sessions this member's clients were heard from,
/// twice a tick, so the leader (which alone expires sessions) sees them alive.
async fn report_sessions(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut interval =
        tokio::time::interval((inner.config.tick / 2).max(Duration::from_millis(50)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = interval.tick() => {}
        }
        let touched = inner.sessions.take_touched();
        let leader = inner.raft.metrics().borrow_watched().current_leader;
        let Some(leader) = leader.filter(|l| *l != inner.config.id) else {
            continue;
        };
        if touched.is_empty() {
            continue;
        }
        let Some(addr) = inner.peer_addr_of(leader) else {
            continue;
        };
        let Ok(mut client) = inner.channels.client(&addr) else {
            continue;
        };
        let touches = keepr_proto::peer::SessionTouches {
            touches: touched
                .into_iter()
                .map(|(session, timeout_ms)| keepr_proto::peer::SessionTouch {
                    session,
                    timeout_ms,
                })
                .collect(),
        };
        if let Err(e) = client.touch_sessions(touches).await {
            tracing::debug!(error = %e, leader, "session report failed");
        }
    }
}

impl Inner {
    pub fn peer_addr_of(&self, node: u64) -> Option<String> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .get_node(&node)
            .map(|n| n.peer.clone())
    }

    /// On the leader: an index that covers every write committed before this call, after
    /// confirming with a quorum that this member still leads.
    pub async fn leader_read_index(&self) -> Result<u64, ProposeError> {
        let (read, _applied) = self
            .raft
            .get_read_log_id(openraft::raft::ReadPolicy::ReadIndex)
            .await
            .map_err(|e| ProposeError::Unknown(e.to_string()))?;
        Ok(read.log_id().index)
    }
}

impl Backend for Inner {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn settings(&self) -> &ZkSettings {
        &self.settings
    }

    fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    fn session_ids(&self) -> &SessionIds {
        &self.session_ids
    }

    fn mode(&self) -> Mode {
        let m = self.raft.metrics().borrow_watched().clone();
        let voters = m.membership_config.membership().voter_ids().count();
        match m.state {
            ServerState::Leader if voters <= 1 => Mode::Standalone,
            ServerState::Leader => Mode::Leader,
            ServerState::Follower | ServerState::Learner if m.current_leader.is_some() => {
                Mode::Follower
            }
            _ => Mode::Looking,
        }
    }

    fn writable(&self) -> bool {
        self.raft
            .metrics()
            .borrow_watched()
            .current_leader
            .is_some()
    }

    fn propose(&self, cmd: Command) -> BoxFuture<'static, Result<Applied, ProposeError>> {
        let (tx, rx) = oneshot::channel();
        let queued = self.proposals.send((cmd, tx)).is_ok();
        let shared = self.shared.clone();
        async move {
            if !queued {
                return Err(ProposeError::Unknown("member is shutting down".into()));
            }
            let in_flight = rx
                .await
                .map_err(|_| ProposeError::Unknown("member is shutting down".into()))??;
            let forwarded = matches!(in_flight, InFlight::Forwarded(_));
            let applied = in_flight.outcome().await?;
            if forwarded {
                // Answer only once this member shows the write (and has queued its events).
                shared.wait_applied(applied.index).await;
            }
            Ok(applied)
        }
        .boxed()
    }

    fn sync(&self) -> BoxFuture<'static, Result<(), ProposeError>> {
        let shared = self.shared.clone();
        let leader = self.raft.metrics().borrow_watched().current_leader;
        let me = self.config.id;
        let raft = self.raft.clone();
        let target = leader
            .filter(|l| *l != me)
            .and_then(|l| self.peer_addr_of(l))
            .map(|addr| self.channels.client(&addr));
        async move {
            let index = match (leader, target) {
                (Some(l), _) if l == me => {
                    let (read, _) = raft
                        .get_read_log_id(openraft::raft::ReadPolicy::ReadIndex)
                        .await
                        .map_err(|e| ProposeError::Unknown(e.to_string()))?;
                    read.log_id().index
                }
                (Some(_), Some(Ok(mut client))) => {
                    client
                        .read_index(keepr_proto::peer::ReadIndexRequest {})
                        .await
                        .map_err(|s| ProposeError::Unknown(s.message().to_string()))?
                        .into_inner()
                        .index
                }
                _ => return Err(ProposeError::NoLeader),
            };
            shared.wait_applied(index).await;
            Ok(())
        }
        .boxed()
    }
}

impl MemberStatus for Inner {
    fn metrics_snapshot(&self) -> MetricsSnapshot {
        let m = self.raft.metrics().borrow_watched().clone();
        let tree = self.shared.tree.read().tree.metrics();
        let (conns, watches) = {
            let w = self.shared.watches.lock();
            (w.connection_count(), w.manager.watch_count())
        };
        let membership = m.membership_config.membership();
        let leader_last = m.last_log_index.unwrap_or(0);
        let follower_lag = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != self.config.id)
                    .map(|(id, matched)| {
                        let idx = matched.as_ref().map(|l| l.index).unwrap_or(0);
                        (*id, leader_last.saturating_sub(idx) as i64)
                    })
                    .collect()
            })
            .unwrap_or_default();
        MetricsSnapshot {
            znode_count: tree.znode_count as i64,
            watch_count: watches as i64,
            ephemerals_count: tree.ephemerals_count as i64,
            approximate_data_size: tree.approximate_data_size as i64,
            num_alive_connections: conns as i64,
            outstanding_requests: self.shared.metrics.proposals_in_flight.get(),
            global_sessions: tree.global_sessions as i64,
            raft_term: m.current_term as i64,
            raft_leader: m.current_leader.unwrap_or(0) as i64,
            raft_is_leader: m.state == ServerState::Leader,
            raft_commit_index: m.local_committed.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_applied_index: m.last_applied.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_last_log_index: leader_last as i64,
            raft_snapshot_index: m.snapshot.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_purged_index: m.purged.as_ref().map(|l| l.index).unwrap_or(0) as i64,
            raft_voters: membership.voter_ids().count() as i64,
            raft_learners: membership.learner_ids().count() as i64,
            follower_lag,
        }
    }

    fn readiness(&self) -> Result<(), String> {
        let m = self.raft.metrics().borrow_watched().clone();
        if m.current_leader.is_none() {
            return Err("no leader known".into());
        }
        let committed = m.local_committed.as_ref().map(|l| l.index).unwrap_or(0);
        let applied = m.last_applied.as_ref().map(|l| l.index).unwrap_or(0);
        if applied < committed {
            return Err(format!("applied {applied} < committed {committed}"));
        }
        Ok(())
    }
}
