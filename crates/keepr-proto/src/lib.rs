//! keepr's gRPC services, generated from `proto/`.

/// Traffic between members (`proto/peer.proto`).
pub mod peer {
    tonic::include_proto!("keepr.peer.v1");
}

/// Administering an ensemble (`proto/admin.proto`).
pub mod admin {
    tonic::include_proto!("keepr.admin.v1");
}
