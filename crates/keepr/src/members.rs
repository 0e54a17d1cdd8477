//! `keepr members`: look at and change an ensemble's membership through the admin API of
//! any member (it passes changes to the leader).
//!
//! Member ids print as the ordinal (`3`) for a first incarnation and `ordinal.incarnation`
//! (`3.9f2c1a07`) after a member came back on an empty disk; either form is accepted.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use keepr_proto::admin::admin_client::AdminClient;
use keepr_proto::admin::{
    AddLearnerRequest, InitializeRequest, MemberSpec, MembershipReply, PromoteRequest,
    RemoveRequest, Role, StatusRequest, TransferLeadershipRequest,
};
use keepr_server::identity;

#[derive(Args, Debug)]
pub struct MembersArgs {
    /// The admin (gRPC) address of any member.
    #[arg(long, env = "KEEPR_ENDPOINT", default_value = "127.0.0.1:7070")]
    pub endpoint: String,
    #[command(subcommand)]
    pub command: MembersCommand,
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// Show the ensemble: roles, leader, indexes, each member's lag and health.
    List,
    /// Form a new ensemble on a member that was never initialized: ID=PEER,...
    Init { members: String },
    /// Add a learner (non-voting member) at its peer address.
    Add { id: String, peer: String },
    /// Make a caught-up learner a voter.
    Promote { id: String },
    /// Remove a member (refused if it would leave fewer than a quorum of healthy voters).
    Remove {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Move leadership to a voter.
    Transfer { id: String },
}

fn parse_id(s: &str) -> anyhow::Result<u64> {
    identity::parse(s)
        .with_context(|| format!("{s:?} is not a member id (ORDINAL or ORDINAL.INCARNATION)"))
}

fn print_members(r: &MembershipReply) {
    println!(
        "{:<14} {:<8} {:<24} {:>10} {:>8} {:<8} STALE",
        "ID", "ROLE", "PEER", "MATCH", "LAG", "HEALTHY"
    );
    for m in &r.members {
        println!(
            "{:<14} {:<8} {:<24} {:>10} {:>8} {:<8} {}",
            identity::display(m.id),
            if m.role == Role::Voter as i32 {
                "voter"
            } else {
                "learner"
            },
            m.peer_address,
            m.match_index,
            m.lag,
            m.healthy,
            if m.stale { "stale: remove it" } else { "" }
        );
    }
}

/// The server's message, without gRPC's framing around it.
fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

pub fn run(args: MembersArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut c = AdminClient::connect(format!("http://{}", args.endpoint))
            .await
            .with_context(|| format!("connecting to {}", args.endpoint))?;
        let reply = match args.command {
            MembersCommand::List => {
                let s = c
                    .status(StatusRequest {})
                    .await
                    .map_err(status_error)?
                    .into_inner();
                println!(
                    "member {}  cluster {}  role {}  term {}  leader {}",
                    identity::display(s.member_id),
                    s.cluster_id,
                    s.role,
                    s.term,
                    identity::display(s.leader)
                );
                println!(
                    "commit {}  applied {}  last log {}{}",
                    s.commit_index,
                    s.applied_index,
                    s.last_log_index,
                    if s.membership_change_in_progress {
                        "  (membership change in progress)"
                    } else {
                        ""
                    }
                );
                print_members(&MembershipReply {
                    changed: false,
                    members: s.members,
                });
                for cand in s.candidates {
                    println!(
                        "candidate {} at {} is waiting to be added",
                        identity::display(cand.id),
                        cand.peer_address
                    );
                }
                return Ok(());
            }
            MembersCommand::Init { members } => {
                let mut specs = Vec::new();
                for part in members.split(',').filter(|p| !p.trim().is_empty()) {
                    let Some((id, peer)) = part.split_once('=') else {
                        bail!("{part:?} is not ID=PEER");
                    };
                    specs.push(MemberSpec {
                        id: parse_id(id.trim())?,
                        peer_address: peer.trim().to_string(),
                    });
                }
                c.initialize(InitializeRequest { members: specs })
                    .await
                    .map_err(status_error)?
            }
            MembersCommand::Add { id, peer } => c
                .add_learner(AddLearnerRequest {
                    id: parse_id(&id)?,
                    peer_address: peer,
                })
                .await
                .map_err(status_error)?,
            MembersCommand::Promote { id } => c
                .promote(PromoteRequest { id: parse_id(&id)? })
                .await
                .map_err(status_error)?,
            MembersCommand::Remove { id, force } => c
                .remove(RemoveRequest {
                    id: parse_id(&id)?,
                    force,
                })
                .await
                .map_err(status_error)?,
            MembersCommand::Transfer { id } => {
                let r = c
                    .transfer_leadership(TransferLeadershipRequest { to: parse_id(&id)? })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                println!("leader is now {}", identity::display(r.leader));
                return Ok(());
            }
        }
        .into_inner();
        println!(
            "{}",
            if reply.changed {
                "changed"
            } else {
                "already so: nothing changed"
            }
        );
        print_members(&reply);
        Ok(())
    })
}
