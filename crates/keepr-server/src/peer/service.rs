//! The answering side of the peer transport: Raft RPCs handed to the local Raft, writes
//! forwarded by followers proposed in order, sync read indexes and session liveness reports.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use keepr_proto::peer::peer_server::Peer;
use keepr_proto::peer::{
    FetchSnapshotRequest, ForwardReply, ForwardRequest, ProbeReply, ProbeRequest, RaftMessage,
    ReadIndexReply, ReadIndexRequest, SessionTouches, SnapshotChunk, TouchSessionsReply,
};
use keepr_tree::Command;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::ProgressResponder;
use openraft::raft::{AppendEntriesRequest, SnapshotResponse, TransferLeaderRequest, VoteRequest};
use openraft::type_config::alias::VoteOf;
use tonic::{Request, Response, Status, Streaming};

use super::client::{decode, encode, CLUSTER_ID_HEADER};
use super::snapshot_transfer;
use crate::member::{now_ms, Inner};
use crate::raft::types::{LogCommand, Snapshot, SnapshotMeta, TypeConfig};

pub struct PeerService {
    inner: Arc<Inner>,
}

impl PeerService {
    pub fn new(inner: Arc<Inner>) -> PeerService {
        PeerService { inner }
    }

    /// Refuses calls from members of another cluster. A member that has not joined any
    /// cluster yet joins the caller's: only a leader that added it calls it.
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let theirs = req
            .metadata()
            .get(CLUSTER_ID_HEADER)
            .and_then(|v| v.to_str().ok());
        match (self.inner.cluster.get(), theirs) {
            (Some(ours), Some(theirs)) if ours == theirs => Ok(()),
            (None, Some(theirs)) => self
                .inner
                .adopt_cluster_id(theirs)
                .map_err(|e| Status::internal(format!("adopting cluster id: {e}"))),
            (ours, theirs) => Err(Status::failed_precondition(format!(
                "cluster id mismatch: this member belongs to {}, the caller to {}",
                ours.as_deref().unwrap_or("(none yet)"),
                theirs.unwrap_or("(none)")
            ))),
        }
    }
}

fn message<T: serde::Serialize>(v: &T) -> Result<Response<RaftMessage>, Status> {
    encode(v)
        .map(|payload| Response::new(RaftMessage { payload }))
        .map_err(Status::internal)
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check(&req)?;
        let rpc: AppendEntriesRequest<TypeConfig> =
            decode(&req.into_inner().payload).map_err(Status::invalid_argument)?;
        self.inner.heard_from_leader(&rpc);
        let result = self
            .inner
            .raft
            .append_entries(rpc)
            .await
            .map_err(|e| e.to_string());
        message(&result)
    }

    type StreamAppendStream = BoxStream<RaftMessage>;

    async fn stream_append(
        &self,
        req: Request<Streaming<RaftMessage>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        self.check(&req)?;
        let inner = self.inner.clone();
        // Requests until the first bad or failed message, which ends the stream (the leader
        // then starts a new one); a request is never silently skipped.
        let requests = req
            .into_inner()
            .map(move |m| {
                let rpc = m
                    .ok()
                    .and_then(|m| decode::<AppendEntriesRequest<TypeConfig>>(&m.payload).ok());
                if let Some(rpc) = &rpc {
                    inner.heard_from_leader(rpc);
                }
                rpc
            })
            .take_while(|r| futures::future::ready(r.is_some()))
            .filter_map(futures::future::ready);
        let results = self.inner.raft.stream_append(requests).map(|r| {
            encode(&r.map_err(|fatal| fatal.to_string()))
                .map(|payload| RaftMessage { payload })
                .map_err(Status::internal)
        });
        Ok(Response::new(Box::pin(results)))
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check(&req)?;
        let rpc: VoteRequest<TypeConfig> =
            decode(&req.into_inner().payload).map_err(Status::invalid_argument)?;
        let result = self.inner.raft.vote(rpc).await.map_err(|e| e.to_string());
        message(&result)
    }

    async fn transfer_leader(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check(&req)?;
        let rpc: TransferLeaderRequest<TypeConfig> =
            decode(&req.into_inner().payload).map_err(Status::invalid_argument)?;
        let result = self
            .inner
            .raft
            .handle_transfer_leader(rpc)
            .await
            .map_err(|e| e.to_string());
        message(&result)
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check(&req)?;
        // The whole file is checked before Raft acts on it.
        let received = snapshot_transfer::receive(&self.inner.snapshots, req.into_inner()).await?;
        let (vote, meta): (VoteOf<TypeConfig>, SnapshotMeta) = match decode(&received.header) {
            Ok(header) => header,
            Err(e) => {
                received.discard();
                return Err(Status::invalid_argument(format!("snapshot header: {e}")));
            }
        };
        if received.meta.last_log_id != meta.last_log_id {
            received.discard();
            return Err(Status::invalid_argument(
                "snapshot file does not match its meta",
            ));
        }
        let snapshot = Snapshot {
            meta,
            snapshot: received.file,
        };
        let result: Result<SnapshotResponse<TypeConfig>, String> = self
            .inner
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| e.to_string());
        message(&result)
    }

    type FetchSnapshotStream = BoxStream<SnapshotChunk>;

    async fn fetch_snapshot(
        &self,
        req: Request<FetchSnapshotRequest>,
    ) -> Result<Response<Self::FetchSnapshotStream>, Status> {
        self.check(&req)?;
        let min_index = req.into_inner().min_index;
        let (meta, file) = self
            .inner
            .snapshot_at_least(min_index)
            .await
            .map_err(Status::failed_precondition)?;
        let header = encode(&meta).map_err(Status::internal)?;
        let (chunks, _reader) = snapshot_transfer::send(file.file, header);
        let stream = tokio_stream::wrappers::ReceiverStream::new(chunks).map(Ok);
        Ok(Response::new(Box::pin(stream)))
    }

    type ForwardStream = BoxStream<ForwardReply>;

    async fn forward(
        &self,
        req: Request<Streaming<ForwardRequest>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        self.check(&req)?;
        let mut inbound = req.into_inner();
        let raft = self.inner.raft.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<ForwardReply, Status>>();
        tokio::spawn(async move {
            // Proposed strictly in arrival order: one session's writes keep their order.
            while let Some(Ok(msg)) = inbound.next().await {
                let seq = msg.seq;
                let fail = move |error: String| ForwardReply {
                    seq,
                    error,
                    ..ForwardReply::default()
                };
                let mut cmd = match Command::decode(msg.command.into()) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Ok(fail(format!("undecodable command: {e}"))));
                        continue;
                    }
                };
                cmd.time = now_ms();
                let (responder, result) = ProgressResponder::complete_only();
                if let Err(e) = raft.write(LogCommand::new(cmd)).responder(responder).await {
                    let _ = tx.send(Ok(fail(e.to_string())));
                    continue;
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    let reply = match result.await {
                        Ok(Ok(resp)) => ForwardReply {
                            seq,
                            index: resp.log_id.index,
                            err: resp.data.err,
                            body: resp.data.body,
                            error: String::new(),
                        },
                        Ok(Err(e)) => fail(e.to_string()),
                        Err(_) => fail("write dropped".into()),
                    };
                    let _ = tx.send(Ok(reply));
                });
            }
        });
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn read_index(
        &self,
        req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexReply>, Status> {
        self.check(&req)?;
        let index = self
            .inner
            .leader_read_index()
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(ReadIndexReply { index }))
    }

    async fn probe(&self, req: Request<ProbeRequest>) -> Result<Response<ProbeReply>, Status> {
        let req = req.into_inner();
        if req.id != 0 {
            self.inner.record_announcement(req.id, req.peer_address);
        }
        let m = self.inner.raft.metrics().borrow_watched().clone();
        let initialized = m
            .membership_config
            .membership()
            .voter_ids()
            .next()
            .is_some();
        Ok(Response::new(ProbeReply {
            id: self.inner.raft_id,
            cluster_id: self.inner.cluster.get().unwrap_or_default(),
            initialized,
            leader: m.current_leader.unwrap_or(0),
            committed: m.local_committed.as_ref().map(|l| l.index).unwrap_or(0),
            last_command: u64::try_from(self.inner.shared.tree.read().tree.last_zxid())
                .unwrap_or(0),
        }))
    }

    async fn touch_sessions(
        &self,
        req: Request<SessionTouches>,
    ) -> Result<Response<TouchSessionsReply>, Status> {
        self.check(&req)?;
        let now = Instant::now();
        for t in req.into_inner().touches {
            self.inner.sessions.touch(t.session, t.timeout_ms, now);
        }
        Ok(Response::new(TouchSessionsReply {}))
    }
}
