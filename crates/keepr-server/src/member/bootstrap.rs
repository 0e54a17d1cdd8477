//! A member's first start on an empty data directory: which incarnation it is, and whether
//! it forms a new ensemble or waits to be added to an existing one.
//!
//! - `--join ADDR,...`: a new incarnation with no cluster id; it announces itself to those
//!   members and waits for an operator (or the Kubernetes operator) to add it.
//! - `--initial-members`: normally the first start of a new ensemble: incarnation 0, the
//!   derived cluster id, and Raft is initialized with the listed members. But if the other
//!   members already run an ensemble that applied a client command (a session counts) or
//!   committed more than its bootstrap entries, this directory may have lost data (and
//!   votes) it once held: reusing the id could elect two leaders or lose committed writes,
//!   so the member takes a new incarnation and waits to be re-added (its old id shows as
//!   stale in `Status`). Members started together all see an ensemble at most one election
//!   old and start as listed. (Which member acknowledged what is not recorded anywhere that
//!   survives a leader change, so "committed anything yet" is the safe test. An entry count
//!   alone is not: one session and one write commit as many entries as a retried election.
//!   A member that first starts after the ensemble took writes is added as a new member.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keepr_proto::peer::{ProbeReply, ProbeRequest};

use super::{Raft, StartError};
use crate::config::Config;
use crate::identity::{self, Identity};
use crate::peer::client::{ClusterIdCell, PeerChannels};
use crate::raft::types::MemberNode;

/// How long a starting member looks for a leader among its peers before it assumes the
/// ensemble is new (or cannot form without it).
const PROBE_FOR: Duration = Duration::from_secs(10);

/// The most a freshly bootstrapped ensemble commits before any client write: the initial
/// membership, then a blank entry per election (allowing for one retried election).
const BOOTSTRAP_ENTRIES: u64 = 3;

pub(super) async fn resolve_identity(config: &Config) -> Result<Identity, StartError> {
    if let Some(id) = identity::load(&config.data_dir, config.id)? {
        return Ok(id);
    }
    let ordinal = config.id;
    let identity = if !config.join.is_empty() {
        Identity {
            ordinal,
            incarnation: identity::new_incarnation(),
            cluster_id: None,
        }
    } else {
        let derived = identity::cluster_id_for(&config.cluster_token, &config.initial_members);
        match probe_existing(config).await {
            Existing::Fresh => Identity {
                ordinal,
                incarnation: 0,
                cluster_id: Some(derived),
            },
            Existing::Unreached { cluster_id } => Identity {
                ordinal,
                incarnation: 0,
                cluster_id: Some(cluster_id),
            },
            Existing::HeldData => {
                let incarnation = identity::new_incarnation();
                tracing::warn!(
                    old = %identity::display(identity::raft_id(ordinal, 0)),
                    new = %identity::display(identity::raft_id(ordinal, incarnation)),
                    "the ensemble already replicated to this member, but its data directory \
                     is empty: starting as a new incarnation that waits to be added; remove \
                     the old id once the new one is a voter"
                );
                Identity {
                    ordinal,
                    incarnation,
                    cluster_id: None,
                }
            }
        }
    };
    identity::save(&config.data_dir, &identity)?;
    Ok(identity)
}

enum Existing {
    /// No running ensemble among the initial members: form it.
    Fresh,
    /// An ensemble runs but has committed nothing beyond its bootstrap.
    Unreached { cluster_id: String },
    /// An ensemble runs and has committed data this directory may once have held.
    HeldData,
}

async fn probe(channels: &PeerChannels, addr: &str) -> Option<ProbeReply> {
    let mut client = channels.client(addr).ok()?;
    let call = client.probe(ProbeRequest::default());
    match tokio::time::timeout(Duration::from_secs(1), call).await {
        Ok(Ok(r)) => {
            let r = r.into_inner();
            tracing::info!(
                peer = addr,
                member = %identity::display(r.id),
                initialized = r.initialized,
                leader = %identity::display(r.leader),
                "probed peer"
            );
            Some(r)
        }
        Ok(Err(e)) => {
            tracing::info!(peer = addr, error = %e, "peer did not answer the probe");
            None
        }
        Err(_) => {
            tracing::info!(peer = addr, "peer probe timed out");
            None
        }
    }
}

async fn probe_existing(config: &Config) -> Existing {
    let others: BTreeMap<u64, String> = config
        .initial_members
        .iter()
        .filter(|(o, _)| **o != config.id)
        .map(|(o, a)| (*o, a.clone()))
        .collect();
    if others.is_empty() {
        return Existing::Fresh;
    }
    let channels = PeerChannels::new(ClusterIdCell::default());
    let deadline = Instant::now() + PROBE_FOR;
    let mut saw_initialized = false;
    loop {
        let mut leader = None;
        for addr in others.values() {
            if let Some(r) = probe(&channels, addr).await {
                if r.initialized {
                    saw_initialized = true;
                    if r.leader != 0 {
                        leader = Some(r.leader);
                    }
                }
            }
        }
        if !saw_initialized {
            // Nobody has formed anything: this is a new ensemble.
            return Existing::Fresh;
        }
        let (ordinal, _) = identity::split(leader.unwrap_or(0));
        if let Some(addr) = leader.and(others.get(&ordinal)) {
            if let Some(r) = probe(&channels, addr).await {
                if r.leader == r.id && !r.cluster_id.is_empty() {
                    return if r.committed <= BOOTSTRAP_ENTRIES && r.last_command == 0 {
                        Existing::Unreached {
                            cluster_id: r.cluster_id,
                        }
                    } else {
                        Existing::HeldData
                    };
                }
            }
        }
        if Instant::now() >= deadline {
            // Members initialized but no leader: they are starting too, or cannot elect one
            // without us. Either way the ensemble needs this member as it was listed.
            tracing::warn!("peers are initialized but have no leader; starting as listed");
            return Existing::Fresh;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Static bootstrap: a member of a new ensemble initializes Raft with the listed members.
/// Every member does so with the same list, which openraft allows; the first election then
/// forms one cluster.
pub(super) async fn initialize_static(raft: &Raft, config: &Config) -> Result<(), StartError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if initialized || config.initial_members.is_empty() {
        return Ok(());
    }
    let members: BTreeMap<u64, MemberNode> = config
        .initial_members
        .iter()
        .map(|(ordinal, addr)| {
            (
                identity::raft_id(*ordinal, 0),
                MemberNode { peer: addr.clone() },
            )
        })
        .collect();
    tracing::info!(?members, "bootstrapping a new ensemble");
    if let Err(e) = raft.initialize(members).await {
        // Another member's vote or log reached us first: the ensemble is forming anyway.
        tracing::info!(error = %e, "initialize not applied");
    }
    Ok(())
}
