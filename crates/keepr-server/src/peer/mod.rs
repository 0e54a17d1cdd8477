//! Member-to-member traffic over gRPC on the `peer` port (`proto/peer.proto`): the calling
//! side ([`client`], openraft's network), the answering side ([`service`]) and the path of
//! client writes from followers to the leader ([`forward`]).

pub mod client;
pub mod forward;
pub mod service;
pub mod snapshot_transfer;
