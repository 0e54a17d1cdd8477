//! ZooKeeper's `reconfig` request, mapped onto the admin API's membership steps, so that
//! ZooKeeper admin tools (zkCli's `reconfig`, Curator's) can change the ensemble.
//!
//! Incremental form only: `joiningServers` entries `server.N=HOST:PORT:PORT[:participant|
//! observer][;CLIENT]` add member N at peer address HOST:PORT (the first port; keepr has one
//! peer port) as a learner, and participants are promoted once caught up; `leavingServers`
//! (`N,M`) removes members by ordinal. Member N must have announced itself (started with
//! `--join`), which tells us its incarnation. `curConfigId` (unless -1) must equal the
//! current configuration's version, the index of the membership entry, else BADVERSION. The
//! reply is the new configuration in ZooKeeper's `server.N=...` / `version=` text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keepr_proto::admin::admin_server::Admin;
use keepr_proto::admin::{AddLearnerRequest, PromoteRequest, RemoveRequest};
use keepr_wire::{ErrorCode, ReconfigRequest};
use openraft::async_runtime::watch::WatchReceiver;
use tonic::Request;

use super::Inner;
use crate::admin::AdminService;
use crate::identity;

/// How long a joining participant may take to catch up before it is promoted.
const CATCH_UP: Duration = Duration::from_secs(60);

struct Joining {
    ordinal: u64,
    peer: String,
    participant: bool,
}

fn parse_joining(s: &str) -> Result<Vec<Joining>, ErrorCode> {
    let mut out = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key, value) = entry.split_once('=').ok_or(ErrorCode::BadArguments)?;
        let ordinal: u64 = key
            .trim()
            .strip_prefix("server.")
            .and_then(|n| n.parse().ok())
            .ok_or(ErrorCode::BadArguments)?;
        let server = value.split(';').next().unwrap_or_default();
        let parts: Vec<&str> = server.split(':').collect();
        let (host, port) = match parts.as_slice() {
            [h, p, ..] if !h.is_empty() && p.parse::<u16>().is_ok() => (*h, *p),
            _ => return Err(ErrorCode::BadArguments),
        };
        let participant = match parts.get(3).copied() {
            None | Some("participant") => true,
            Some("observer") => false,
            Some(_) => return Err(ErrorCode::BadArguments),
        };
        out.push(Joining {
            ordinal,
            peer: format!("{host}:{port}"),
            participant,
        });
    }
    Ok(out)
}

/// The ensemble's configuration as ZooKeeper prints it, and its version.
pub fn config_text(inner: &Inner) -> (String, u64) {
    let m = inner.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let mut lines = Vec::new();
    for (id, node) in membership.nodes() {
        let role = if voters.contains(id) {
            "participant"
        } else {
            "observer"
        };
        let (ordinal, _) = identity::split(*id);
        lines.push(format!(
            "server.{ordinal}={0}:{1}:{role}",
            node.peer,
            port_of(&node.peer)
        ));
    }
    let version = m
        .membership_config
        .log_id()
        .as_ref()
        .map(|l| l.index)
        .unwrap_or(0);
    lines.push(format!("version={version:x}"));
    (lines.join("\n"), version)
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').map(|(_, p)| p).unwrap_or_default()
}

fn status_code(s: tonic::Status) -> ErrorCode {
    match s.code() {
        tonic::Code::FailedPrecondition => ErrorCode::ReconfigInProgress,
        tonic::Code::Unavailable => ErrorCode::NewConfigNoQuorum,
        tonic::Code::NotFound | tonic::Code::AlreadyExists | tonic::Code::InvalidArgument => {
            ErrorCode::BadArguments
        }
        _ => ErrorCode::SystemError,
    }
}

/// Carries out a reconfig; returns the new configuration text.
pub async fn reconfig(inner: Arc<Inner>, req: ReconfigRequest) -> Result<String, ErrorCode> {
    if req
        .new_members
        .as_deref()
        .is_some_and(|m| !m.trim().is_empty())
    {
        // Non-incremental reconfiguration is not offered: list joiners and leavers.
        return Err(ErrorCode::BadArguments);
    }
    let (_, version) = config_text(&inner);
    if req.cur_config_id != -1 && req.cur_config_id as u64 != version {
        return Err(ErrorCode::BadVersion);
    }
    let joining = parse_joining(req.joining_servers.as_deref().unwrap_or_default())?;
    let leaving: Vec<u64> = req
        .leaving_servers
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| ErrorCode::BadArguments))
        .collect::<Result<_, _>>()?;
    let admin = AdminService::new(inner.clone(), false);
    for j in joining {
        // The incarnation comes from the member's own announcement.
        let id = inner
            .announcements()
            .into_iter()
            .filter(|(id, _)| identity::split(*id).0 == j.ordinal)
            .map(|(id, _)| id)
            .find(|id| inner.peer_addr_of(*id).is_none())
            .or_else(|| {
                let members = inner
                    .raft
                    .metrics()
                    .borrow_watched()
                    .membership_config
                    .clone();
                let found = members
                    .membership()
                    .nodes()
                    .map(|(id, _)| *id)
                    .find(|id| identity::split(*id).0 == j.ordinal);
                found
            })
            .ok_or(ErrorCode::NewConfigNoQuorum)?;
        admin
            .add_learner(Request::new(AddLearnerRequest {
                id,
                peer_address: j.peer.clone(),
            }))
            .await
            .map_err(status_code)?;
        if j.participant {
            let deadline = Instant::now() + CATCH_UP;
            loop {
                match admin.promote(Request::new(PromoteRequest { id })).await {
                    Ok(_) => break,
                    Err(s)
                        if s.code() == tonic::Code::FailedPrecondition
                            && Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(s) => return Err(status_code(s)),
                }
            }
        }
    }
    for ordinal in leaving {
        let members = inner
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let ids: Vec<u64> = members
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| identity::split(*id).0 == ordinal)
            .collect();
        for id in ids {
            admin
                .remove(Request::new(RemoveRequest { id, force: false }))
                .await
                .map_err(status_code)?;
        }
    }
    Ok(config_text(&inner).0)
}
