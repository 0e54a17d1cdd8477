//! keepr's gRPC services, and the etcd client calls its benchmark makes, generated from
//! `proto/`.

/// Traffic between members (`proto/peer.proto`).
pub mod peer {
    tonic::include_proto!("keepr.peer.v1");
}

/// Administering an ensemble (`proto/admin.proto`).
pub mod admin {
    tonic::include_proto!("keepr.admin.v1");
}

/// The subset of etcd's v3 API that `keepr bench --protocol etcd` drives
/// (`proto/etcd_kv.proto`).
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}
