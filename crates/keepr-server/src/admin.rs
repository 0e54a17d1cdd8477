//! The admin API (`proto/admin.proto`): status and membership changes.
//!
//! Mutations run on the leader. A member that does not lead passes the call to the leader
//! over the peer port, so a caller can talk to any member. Each call first looks at the
//! current membership and does nothing when it already is as asked (retries are safe),
//! refuses a second change while one is in flight, and refuses a removal that would leave
//! fewer than a quorum of healthy voters unless forced. One membership step per call: the
//! caller (an operator, the Kubernetes operator) sequences add → catch up → promote.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use keepr_proto::admin::admin_client::AdminClient;
use keepr_proto::admin::admin_server::Admin;
use keepr_proto::admin::{
    AddLearnerRequest, Candidate, InitializeRequest, Member, MembershipReply, PromoteRequest,
    RemoveRequest, Role, StatusReply, StatusRequest, TransferLeadershipReply,
    TransferLeadershipRequest,
};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{ChangeMembers, RaftMetrics, ServerState};
use tonic::{Request, Response, Status};

use crate::identity;
use crate::member::Inner;
use crate::peer::client::CLUSTER_ID_HEADER;
use crate::raft::types::{MemberNode, TypeConfig};

/// A learner this many entries behind the leader or fewer may be promoted.
pub const PROMOTE_MAX_LAG: u64 = 1000;
/// A member heard from (it announces itself every 2 s) within this long counts as healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(6);

pub struct AdminService {
    inner: Arc<Inner>,
    /// Mounted on the peer port: callers are members and carry the cluster id.
    from_peers: bool,
}

type Metrics = RaftMetrics<TypeConfig>;

impl AdminService {
    pub fn new(inner: Arc<Inner>, from_peers: bool) -> AdminService {
        AdminService { inner, from_peers }
    }

    fn metrics(&self) -> Metrics {
        self.inner.raft.metrics().borrow_watched().clone()
    }

    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if !self.from_peers {
            return Ok(());
        }
        let theirs = req
            .metadata()
            .get(CLUSTER_ID_HEADER)
            .and_then(|v| v.to_str().ok());
        match (self.inner.cluster.get(), theirs) {
            (Some(ours), Some(theirs)) if ours == theirs => Ok(()),
            _ => Err(Status::failed_precondition("cluster id mismatch")),
        }
    }

    /// `None` when this member leads; else a client for the leader's admin service.
    fn leader_client(
        &self,
        m: &Metrics,
    ) -> Result<
        Option<
            AdminClient<
                tonic::service::interceptor::InterceptedService<
                    tonic::transport::Channel,
                    crate::peer::client::ClusterIdInterceptor,
                >,
            >,
        >,
        Status,
    > {
        match m.current_leader {
            Some(l) if l == self.inner.raft_id => Ok(None),
            Some(l) => {
                let addr = self
                    .inner
                    .peer_addr_of(l)
                    .ok_or_else(|| Status::unavailable(format!("leader {l} has no address")))?;
                self.inner
                    .channels
                    .admin_client(&addr)
                    .map(Some)
                    .map_err(Status::unavailable)
            }
            None => Err(Status::unavailable("no leader at the moment; retry")),
        }
    }

    fn in_progress(m: &Metrics) -> bool {
        m.membership_config.log_id() != m.committed_membership_config.log_id()
    }

    fn members(&self, m: &Metrics) -> Vec<Member> {
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let last = m.last_log_index.unwrap_or(0);
        let announced = self.inner.announcements();
        let recent = self.inner.heard_within(HEALTHY_WITHIN);
        membership
            .nodes()
            .map(|(id, node)| {
                let (ordinal, incarnation) = identity::split(*id);
                let matched = if *id == self.inner.raft_id {
                    Some(last)
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(id))
                        .map(|l| l.as_ref().map(|l| l.index).unwrap_or(0))
                };
                let healthy = *id == self.inner.raft_id || recent.contains(id);
                let stale = announced
                    .iter()
                    .any(|(other, _)| other != id && identity::split(*other).0 == ordinal);
                Member {
                    id: *id,
                    ordinal: ordinal as u32,
                    incarnation,
                    peer_address: node.peer.clone(),
                    role: if voters.contains(id) {
                        Role::Voter
                    } else {
                        Role::Learner
                    } as i32,
                    match_index: matched.unwrap_or(0),
                    lag: matched.map(|i| last.saturating_sub(i)).unwrap_or(0),
                    healthy,
                    stale,
                }
            })
            .collect()
    }

    fn reply(&self, changed: bool) -> MembershipReply {
        MembershipReply {
            changed,
            members: self.members(&self.metrics()),
        }
    }
}

/// How long a membership call waits for its change to commit. A change that needs an
/// unreachable member stays in flight in Raft and completes once that member answers; the
/// caller is told so instead of being held indefinitely.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

async fn committed<T, E: std::fmt::Display>(
    change: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Status> {
    match tokio::time::timeout(COMMIT_WAIT, change).await {
        Ok(r) => r.map_err(raft_err),
        Err(_) => Err(Status::deadline_exceeded(
            "the change is in flight but not committed yet (a member it needs is unreachable); \
             it completes when that member answers",
        )),
    }
}

fn raft_err(e: impl std::fmt::Display) -> Status {
    let msg = e.to_string();
    if msg.contains("in progress") || msg.contains("InProgress") {
        Status::failed_precondition(format!("a membership change is in progress: {msg}"))
    } else if msg.contains("forward") || msg.contains("leader") {
        Status::unavailable(msg)
    } else {
        Status::internal(msg)
    }
}

/// Passes a call to the leader when this member does not lead, else runs `local`.
macro_rules! on_leader {
    ($self:ident, $req:ident, $method:ident, $local:expr) => {{
        $self.check(&$req)?;
        let m = $self.metrics();
        match $self.leader_client(&m)? {
            Some(mut leader) => leader.$method($req.into_inner()).await,
            None => {
                // One change at a time through this leader; a caller racing another gets the
                // same answer as a change already in Raft would give it.
                let Ok(_guard) = $self.inner.membership_lock.try_lock() else {
                    return Err(Status::failed_precondition(
                        "a membership change is in progress",
                    ));
                };
                let m = $self.metrics();
                #[allow(clippy::redundant_closure_call)]
                ($local)(m, $req.into_inner()).await
            }
        }
    }};
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, req: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        self.check(&req)?;
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let is_voter = membership.voter_ids().any(|v| v == self.inner.raft_id);
        let in_membership = membership.get_node(&self.inner.raft_id).is_some();
        let role = match m.state {
            _ if !in_membership => "joining",
            ServerState::Leader => "leader",
            ServerState::Candidate => "candidate",
            _ if !is_voter => "learner",
            _ => "follower",
        };
        let mut members = self.members(&m);
        // Replication progress is the leader's knowledge: ask it when we do not lead.
        if m.state != ServerState::Leader && !self.from_peers {
            if let Ok(Some(mut leader)) = self.leader_client(&m) {
                if let Ok(Ok(r)) =
                    tokio::time::timeout(Duration::from_secs(2), leader.status(StatusRequest {}))
                        .await
                {
                    members = r.into_inner().members;
                }
            }
        }
        let known: BTreeSet<u64> = membership.nodes().map(|(id, _)| *id).collect();
        let candidates = self
            .inner
            .announcements()
            .into_iter()
            .filter(|(id, _)| !known.contains(id))
            .map(|(id, peer_address)| {
                let (ordinal, incarnation) = identity::split(id);
                Candidate {
                    id,
                    ordinal: ordinal as u32,
                    incarnation,
                    peer_address,
                }
            })
            .collect();
        Ok(Response::new(StatusReply {
            member_id: self.inner.raft_id,
            cluster_id: self.inner.cluster.get().unwrap_or_default(),
            role: role.to_string(),
            term: m.current_term,
            leader: m.current_leader.unwrap_or(0),
            commit_index: m.local_committed.as_ref().map(|l| l.index).unwrap_or(0),
            applied_index: m.last_applied.as_ref().map(|l| l.index).unwrap_or(0),
            members,
            membership_change_in_progress: Self::in_progress(&m),
            candidates,
            last_log_index: m.last_log_index.unwrap_or(0),
        }))
    }

    async fn initialize(
        &self,
        req: Request<InitializeRequest>,
    ) -> Result<Response<MembershipReply>, Status> {
        self.check(&req)?;
        let wanted: BTreeMap<u64, MemberNode> = req
            .into_inner()
            .members
            .into_iter()
            .map(|s| {
                (
                    s.id,
                    MemberNode {
                        peer: s.peer_address,
                    },
                )
            })
            .collect();
        if wanted.is_empty() {
            return Err(Status::invalid_argument("no members given"));
        }
        let Ok(_guard) = self.inner.membership_lock.try_lock() else {
            return Err(Status::failed_precondition(
                "a membership change is in progress",
            ));
        };
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.voter_ids().next().is_some() {
            let current: BTreeMap<u64, MemberNode> =
                membership.nodes().map(|(id, n)| (*id, n.clone())).collect();
            return if current == wanted {
                Ok(Response::new(self.reply(false)))
            } else {
                Err(Status::failed_precondition(
                    "already initialized with a different membership",
                ))
            };
        }
        if self.inner.cluster.get().is_none() {
            // A new cluster formed through the API gets a fresh id; members added later
            // adopt it from the leader's calls.
            let id = format!("{:016x}", rand::random::<u64>());
            self.inner.adopt_cluster_id(&id).map_err(Status::internal)?;
        }
        self.inner.raft.initialize(wanted).await.map_err(raft_err)?;
        Ok(Response::new(self.reply(true)))
    }

    async fn add_learner(
        &self,
        req: Request<AddLearnerRequest>,
    ) -> Result<Response<MembershipReply>, Status> {
        on_leader!(
            self,
            req,
            add_learner,
            |m: Metrics, r: AddLearnerRequest| async move {
                if let Some(node) = m.membership_config.membership().get_node(&r.id) {
                    return if node.peer == r.peer_address {
                        Ok(Response::new(self.reply(false)))
                    } else {
                        Err(Status::already_exists(format!(
                            "member {} is already in the membership at {}",
                            identity::display(r.id),
                            node.peer
                        )))
                    };
                }
                if Self::in_progress(&m) {
                    return Err(Status::failed_precondition(
                        "a membership change is in progress",
                    ));
                }
                committed(self.inner.raft.add_learner(
                    r.id,
                    MemberNode {
                        peer: r.peer_address,
                    },
                    false,
                ))
                .await?;
                Ok(Response::new(self.reply(true)))
            }
        )
    }

    async fn promote(
        &self,
        req: Request<PromoteRequest>,
    ) -> Result<Response<MembershipReply>, Status> {
        on_leader!(
            self,
            req,
            promote,
            |m: Metrics, r: PromoteRequest| async move {
                let membership = m.membership_config.membership();
                if membership.voter_ids().any(|v| v == r.id) {
                    return Ok(Response::new(self.reply(false)));
                }
                if membership.get_node(&r.id).is_none() {
                    return Err(Status::not_found(format!(
                        "{} is not a learner; add it first",
                        identity::display(r.id)
                    )));
                }
                if Self::in_progress(&m) {
                    return Err(Status::failed_precondition(
                        "a membership change is in progress",
                    ));
                }
                let lag = self
                    .members(&m)
                    .iter()
                    .find(|mm| mm.id == r.id)
                    .map(|mm| mm.lag)
                    .unwrap_or(u64::MAX);
                let replicated = m
                    .replication
                    .as_ref()
                    .and_then(|rep| rep.get(&r.id))
                    .is_some_and(|l| l.is_some());
                if !replicated || lag > PROMOTE_MAX_LAG {
                    return Err(Status::failed_precondition(format!(
                        "learner {} has not caught up (lag {})",
                        identity::display(r.id),
                        if replicated {
                            lag.to_string()
                        } else {
                            "unknown".into()
                        }
                    )));
                }
                committed(
                    self.inner.raft.change_membership(
                        ChangeMembers::AddVoterIds(BTreeSet::from([r.id])),
                        false,
                    ),
                )
                .await?;
                Ok(Response::new(self.reply(true)))
            }
        )
    }

    async fn remove(
        &self,
        req: Request<RemoveRequest>,
    ) -> Result<Response<MembershipReply>, Status> {
        on_leader!(
            self,
            req,
            remove,
            |m: Metrics, r: RemoveRequest| async move {
                let membership = m.membership_config.membership();
                if membership.get_node(&r.id).is_none() {
                    return Ok(Response::new(self.reply(false)));
                }
                if Self::in_progress(&m) {
                    return Err(Status::failed_precondition(
                        "a membership change is in progress",
                    ));
                }
                let voters: BTreeSet<u64> = membership.voter_ids().collect();
                let change = if voters.contains(&r.id) {
                    let remaining: Vec<u64> =
                        voters.iter().copied().filter(|v| *v != r.id).collect();
                    if remaining.is_empty() {
                        return Err(Status::failed_precondition("cannot remove the last voter"));
                    }
                    let members = self.members(&m);
                    let healthy = remaining
                        .iter()
                        .filter(|v| members.iter().any(|mm| mm.id == **v && mm.healthy))
                        .count();
                    let quorum = remaining.len() / 2 + 1;
                    if healthy < quorum && !r.force {
                        return Err(Status::failed_precondition(format!(
                            "removing {} would leave {healthy} healthy voters of {}, fewer than a \
                         quorum of {quorum}; use force to remove anyway",
                            identity::display(r.id),
                            remaining.len()
                        )));
                    }
                    ChangeMembers::RemoveVoters(BTreeSet::from([r.id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([r.id]))
                };
                committed(self.inner.raft.change_membership(change, false)).await?;
                Ok(Response::new(self.reply(true)))
            }
        )
    }

    async fn transfer_leadership(
        &self,
        req: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipReply>, Status> {
        self.check(&req)?;
        let to = req.into_inner().to;
        let m = self.metrics();
        if m.current_leader == Some(to) {
            return Ok(Response::new(TransferLeadershipReply { leader: to }));
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == to)
        {
            return Err(Status::failed_precondition(format!(
                "{} is not a voter",
                identity::display(to)
            )));
        }
        if let Some(mut leader) = self.leader_client(&m)? {
            return leader
                .transfer_leadership(TransferLeadershipRequest { to })
                .await;
        }
        self.inner
            .raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(raft_err)?;
        let waited = self
            .inner
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.current_leader == Some(to), "leadership transferred")
            .await
            .map_err(|e| Status::deadline_exceeded(e.to_string()))?;
        Ok(Response::new(TransferLeadershipReply {
            leader: waited.current_leader.unwrap_or(0),
        }))
    }
}
