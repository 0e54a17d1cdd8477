//! Getting writes to the leader, in order.
//!
//! Every write a member's clients send goes through one proposer task, so writes leave in
//! the order they were queued. On the leader the proposer hands them to Raft; on a follower
//! it sends them over one long-lived stream to the leader, which proposes them in the order
//! they arrive and answers each with the log index it was applied at. The follower answers
//! its client only once it has applied that index itself, so the client reads its own
//! write and has received the watch events it raised.
//!
//! If the leader changes or the stream breaks, writes in flight have no known outcome and
//! fail; their clients are disconnected and learn ConnectionLoss, as with ZooKeeper.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keepr_proto::peer::{ForwardReply, ForwardRequest};
use keepr_tree::Command;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::ProgressResponder;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::client::PeerChannels;
use crate::member::{now_ms, Raft};
use crate::raft::types::{LogCommand, WriteReply};
use crate::zk::backend::{Applied, ProposeError};

type ClientWriteRx = openraft::type_config::alias::OneshotReceiverOf<
    TypeConfigAlias,
    openraft::raft::ClientWriteResult<TypeConfigAlias>,
>;
type TypeConfigAlias = crate::raft::types::TypeConfig;

/// Where a queued write's outcome will come from.
pub enum InFlight {
    /// Proposed to the local Raft (this member leads).
    Local(ClientWriteRx),
    /// Sent to the leader; resolves with the index and reply once the leader applied it.
    Forwarded(oneshot::Receiver<Result<(u64, WriteReply), ProposeError>>),
}

impl InFlight {
    /// The write's reply, and the index this member must apply before answering.
    pub async fn outcome(self) -> Result<Applied, ProposeError> {
        match self {
            InFlight::Local(rx) => match rx.await {
                Ok(Ok(resp)) => Ok(Applied {
                    index: resp.log_id.index,
                    reply: resp.data,
                }),
                Ok(Err(openraft::error::ClientWriteError::ForwardToLeader(_))) => {
                    Err(ProposeError::NoLeader)
                }
                Ok(Err(e)) => Err(ProposeError::Unknown(e.to_string())),
                Err(_) => Err(ProposeError::Unknown("raft dropped the write".into())),
            },
            InFlight::Forwarded(rx) => {
                let (index, reply) = rx
                    .await
                    .map_err(|_| ProposeError::Unknown("forwarding stream closed".into()))??;
                Ok(Applied { index, reply })
            }
        }
    }
}

pub type Proposal = (Command, oneshot::Sender<Result<InFlight, ProposeError>>);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<(u64, WriteReply), ProposeError>>>>>;

/// An open forwarding stream to one leader.
struct Stream {
    leader: u64,
    tx: mpsc::UnboundedSender<ForwardRequest>,
    pending: Pending,
    broken: Arc<std::sync::atomic::AtomicBool>,
}

impl Stream {
    fn usable_for(&self, leader: u64) -> bool {
        self.leader == leader && !self.broken.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// How long a write waits for a leader to be elected before it fails.
const LEADER_WAIT: Duration = Duration::from_secs(5);

pub async fn proposer(
    raft: Raft,
    node_id: u64,
    channels: PeerChannels,
    mut rx: mpsc::UnboundedReceiver<Proposal>,
) {
    let mut stream: Option<Stream> = None;
    let mut next_seq: u64 = 1;
    while let Some((mut cmd, reply)) = rx.recv().await {
        let Some(leader) = wait_for_leader(&raft).await else {
            let _ = reply.send(Err(ProposeError::NoLeader));
            continue;
        };
        if leader == node_id {
            cmd.time = now_ms();
            let (responder, result) = ProgressResponder::complete_only();
            let sent = match raft.write(LogCommand::new(cmd)).responder(responder).await {
                Ok(()) => Ok(InFlight::Local(result)),
                Err(fatal) => Err(ProposeError::Unknown(fatal.to_string())),
            };
            let _ = reply.send(sent);
            continue;
        }
        if !stream.as_ref().is_some_and(|s| s.usable_for(leader)) {
            stream = None;
            match open_stream(&raft, &channels, leader).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    let _ = reply.send(Err(ProposeError::Unknown(e)));
                    continue;
                }
            }
        }
        let Some(s) = stream.as_ref() else {
            let _ = reply.send(Err(ProposeError::NoLeader));
            continue;
        };
        let seq = next_seq;
        next_seq += 1;
        let (tx, rx_reply) = oneshot::channel();
        s.pending.lock().insert(seq, tx);
        let msg = ForwardRequest {
            seq,
            command: cmd.to_bytes().to_vec(),
        };
        // The reader task fails what is pending when the stream breaks; a write registered
        // after that must fail here instead of waiting forever.
        if s.tx.send(msg).is_err() || s.broken.load(std::sync::atomic::Ordering::Acquire) {
            s.pending.lock().remove(&seq);
            let _ = reply.send(Err(ProposeError::Unknown(
                "forwarding stream closed".into(),
            )));
            continue;
        }
        let _ = reply.send(Ok(InFlight::Forwarded(rx_reply)));
    }
}

/// The current leader, waiting a bounded time for an election to finish.
async fn wait_for_leader(raft: &Raft) -> Option<u64> {
    if let Some(l) = raft.metrics().borrow_watched().current_leader {
        return Some(l);
    }
    let waited = raft
        .wait(Some(LEADER_WAIT))
        .metrics(|m| m.current_leader.is_some(), "leader elected")
        .await
        .ok()?;
    waited.current_leader
}

async fn open_stream(raft: &Raft, channels: &PeerChannels, leader: u64) -> Result<Stream, String> {
    let addr = raft
        .metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.peer.clone())
        .ok_or_else(|| format!("leader {leader} has no known address"))?;
    let mut client = channels.client(&addr)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let response = client
        .forward(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .map_err(|s| format!("forwarding to leader {leader} at {addr}: {}", s.message()))?;
    let mut replies = response.into_inner();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, b) = (pending.clone(), broken.clone());
    tokio::spawn(async move {
        while let Some(Ok(ForwardReply {
            seq,
            index,
            err,
            body,
            error,
        })) = replies.next().await
        {
            if let Some(tx) = p.lock().remove(&seq) {
                let outcome = if error.is_empty() {
                    Ok((index, WriteReply { err, body }))
                } else {
                    Err(ProposeError::Unknown(error))
                };
                let _ = tx.send(outcome);
            }
        }
        b.store(true, std::sync::atomic::Ordering::Release);
        for (_, tx) in p.lock().drain() {
            let _ = tx.send(Err(ProposeError::Unknown(
                "forwarding stream to the leader broke".into(),
            )));
        }
    });
    Ok(Stream {
        leader,
        tx,
        pending,
        broken,
    })
}
