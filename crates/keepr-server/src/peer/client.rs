//! The calling side of the peer transport: openraft's network over gRPC.
//!
//! One tonic channel per peer address, created lazily and reused by every call (a channel
//! multiplexes calls over one HTTP/2 connection and reconnects by itself). Every call
//! carries our cluster id. Raft messages are postcard-encoded openraft structures; the
//! remote side sends back the `Result` its Raft returned, encoded the same way.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keepr_proto::peer::peer_client::PeerClient as GrpcClient;
use keepr_proto::peer::RaftMessage;
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::VoteOf;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::raft::snapshot_store::SnapshotFile;
use crate::raft::types::{MemberNode, Snapshot, TypeConfig};

/// The metadata header carrying the sender's cluster id.
pub const CLUSTER_ID_HEADER: &str = "keepr-cluster-id";

pub type Client = GrpcClient<InterceptedService<Channel, ClusterIdInterceptor>>;

/// This member's cluster id, once known: a joining member learns it from the first call its
/// cluster's leader makes.
#[derive(Clone, Default)]
pub struct ClusterIdCell(Arc<parking_lot::RwLock<Option<MetadataValue<tonic::metadata::Ascii>>>>);

impl ClusterIdCell {
    pub fn new(id: Option<&str>) -> Result<ClusterIdCell, String> {
        let cell = ClusterIdCell::default();
        if let Some(id) = id {
            cell.set(id)?;
        }
        Ok(cell)
    }

    pub fn get(&self) -> Option<String> {
        self.0
            .read()
            .as_ref()
            .and_then(|v| v.to_str().ok().map(str::to_string))
    }

    pub fn set(&self, id: &str) -> Result<(), String> {
        let value = id
            .parse()
            .map_err(|_| format!("cluster id {id:?} is not a valid header value"))?;
        *self.0.write() = Some(value);
        Ok(())
    }
}

#[derive(Clone)]
pub struct ClusterIdInterceptor {
    cluster: ClusterIdCell,
}

impl tonic::service::Interceptor for ClusterIdInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = self.cluster.0.read().as_ref() {
            req.metadata_mut().insert(CLUSTER_ID_HEADER, v.clone());
        }
        Ok(req)
    }
}

/// Channels to peers by address, shared by Raft replication and the write forwarder.
#[derive(Clone)]
pub struct PeerChannels {
    interceptor: ClusterIdInterceptor,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl PeerChannels {
    pub fn new(cluster: ClusterIdCell) -> PeerChannels {
        PeerChannels {
            interceptor: ClusterIdInterceptor { cluster },
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// An admin client for the member at peer address `addr`, over the shared connection.
    pub fn admin_client(
        &self,
        addr: &str,
    ) -> Result<
        keepr_proto::admin::admin_client::AdminClient<
            InterceptedService<Channel, ClusterIdInterceptor>,
        >,
        String,
    > {
        let channel = self.channel(addr)?;
        Ok(
            keepr_proto::admin::admin_client::AdminClient::with_interceptor(
                channel,
                self.interceptor.clone(),
            ),
        )
    }

    /// A client for `addr` (`host:port`), sharing one connection per address.
    pub fn client(&self, addr: &str) -> Result<Client, String> {
        let channel = self.channel(addr)?;
        Ok(
            GrpcClient::with_interceptor(channel, self.interceptor.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        )
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock();
        let channel = match channels.get(addr) {
            Some(c) => c.clone(),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| format!("peer address {addr:?}: {e}"))?
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .keep_alive_while_idle(true)
                    .initial_stream_window_size(Some(4 << 20))
                    .initial_connection_window_size(Some(16 << 20));
                let c = endpoint.connect_lazy();
                channels.insert(addr.to_string(), c.clone());
                c
            }
        };
        Ok(channel)
    }
}

pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(v).map_err(|e| format!("encoding a raft message: {e}"))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("decoding a raft message: {e}"))
}

/// openraft's network factory over [`PeerChannels`].
#[derive(Clone)]
pub struct Network {
    pub channels: PeerChannels,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NetClient;

    async fn new_client(&mut self, target: u64, node: &MemberNode) -> NetClient {
        NetClient {
            target,
            client: self.channels.client(&node.peer),
        }
    }
}

pub struct NetClient {
    target: u64,
    /// `Err` when the member's address cannot even form an endpoint.
    client: Result<Client, String>,
}

fn unreachable(target: u64, what: impl std::fmt::Display) -> Unreachable<TypeConfig> {
    Unreachable::from_string(format!("member {target}: {what}"))
}

/// Maps a failed call: connection-level failures make openraft back off (`Unreachable`),
/// anything else is retried at once (`Network`).
fn rpc_error(target: u64, status: tonic::Status) -> RPCError<TypeConfig> {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            RPCError::Unreachable(unreachable(target, status.message()))
        }
        _ => RPCError::Network(NetworkError::from_string(format!(
            "member {target}: {}: {}",
            status.code(),
            status.message()
        ))),
    }
}

impl NetClient {
    fn client(&self) -> Result<Client, RPCError<TypeConfig>> {
        self.client
            .clone()
            .map_err(|e| RPCError::Unreachable(unreachable(self.target, e)))
    }

    /// One unary Raft call: encode, send with the deadline openraft gave, decode the remote
    /// `Result`.
    async fn call<Req, Resp, Fut>(
        &self,
        req: &Req,
        option: &RPCOption,
        send: impl FnOnce(Client, tonic::Request<RaftMessage>) -> Fut,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        Fut: Future<Output = Result<tonic::Response<RaftMessage>, tonic::Status>>,
    {
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::from_string(e)))?;
        let mut request = tonic::Request::new(RaftMessage { payload });
        request.set_timeout(option.hard_ttl());
        let resp = tokio::time::timeout(option.hard_ttl(), send(self.client()?, request))
            .await
            .map_err(|_| RPCError::Unreachable(unreachable(self.target, "timed out")))?
            .map_err(|s| rpc_error(self.target, s))?;
        let result: Result<Resp, String> = decode(&resp.into_inner().payload)
            .map_err(|e| RPCError::Network(NetworkError::from_string(e)))?;
        result.map_err(|remote| {
            RPCError::Network(NetworkError::from_string(format!(
                "member {} failed the call: {remote}",
                self.target
            )))
        })
    }
}

impl RaftNetworkV2<TypeConfig> for NetClient {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, r| async move {
            c.append_entries(r).await
        })
        .await
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        let target = self.target;
        let client = self.client();
        Box::pin(async move {
            // openraft sleeps its backoff inside the request stream, before it yields a
            // request. Taking the first request before connecting lets that backoff pace
            // reconnects to an unreachable member; otherwise every refused connect returns
            // at once and the leader retries in a busy loop.
            let mut input = input;
            let first = input.next().await;
            let mut client = client?;
            // An encoding failure would be a bug; the empty payload then fails on the other
            // side and ends the stream, which openraft retries.
            let outbound = futures::stream::iter(first)
                .chain(input)
                .map(|req| RaftMessage {
                    payload: encode(&req).unwrap_or_default(),
                });
            let replies = client
                .stream_append(outbound)
                .await
                .map_err(|s| rpc_error(target, s))?
                .into_inner();
            let results = replies.map(move |m| {
                let m = m.map_err(|s| rpc_error(target, s))?;
                let result: Result<StreamAppendResult<TypeConfig>, String> = decode(&m.payload)
                    .map_err(|e| RPCError::Network(NetworkError::from_string(e)))?;
                result.map_err(|remote| {
                    RPCError::Network(NetworkError::from_string(format!(
                        "member {target} failed the append: {remote}"
                    )))
                })
            });
            Ok(Box::pin(results) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, r| async move { c.vote(r).await })
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<openraft::raft::TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&req, &option, |mut c, r| async move {
            c.transfer_leader(r).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: Snapshot<SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let target = self.target;
        let mut client = self
            .client
            .clone()
            .map_err(|e| StreamingError::Unreachable(unreachable(target, e)))?;
        let header = encode(&(&vote, &snapshot.meta))
            .map_err(|e| StreamingError::Network(NetworkError::from_string(e)))?;
        // The handle the store verified: a snapshot pruned meanwhile stays readable through it.
        let (rx, reader) = super::snapshot_transfer::send(snapshot.snapshot.file, header);
        let call = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let resp = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = call => r,
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(StreamingError::Network(NetworkError::from_string(format!(
                    "reading snapshot file: {e}"
                ))))
            }
            Err(e) => {
                return Err(StreamingError::Network(NetworkError::from_string(format!(
                    "snapshot reader: {e}"
                ))))
            }
        }
        let resp = resp.map_err(|s| match rpc_error(target, s) {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::from_string(other.to_string())),
        })?;
        let result: Result<SnapshotResponse<TypeConfig>, String> =
            decode(&resp.into_inner().payload)
                .map_err(|e| StreamingError::Network(NetworkError::from_string(e)))?;
        result.map_err(|remote| {
            StreamingError::Network(NetworkError::from_string(format!(
                "member {target} refused the snapshot: {remote}"
            )))
        })
    }
}
