//! The cluster add-ons a bare control plane lacks: DNS for `*.svc.cluster.local` and a
//! dynamic provisioner for host-path volumes. Both are kube-rs watchers (no polling), run by
//! `keepr-e2e addons` inside the cluster's network namespace.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the add-ons serve and keep their state.
#[derive(Debug, Clone)]
pub struct AddonConfig {
    /// The DNS server's UDP and TCP address (the `kube-dns` Service's endpoint).
    pub dns_listen: SocketAddr,
    /// `cluster.local`.
    pub cluster_domain: String,
    /// Host directory under which each provisioned volume gets its own directory.
    pub volumes_dir: PathBuf,
    /// Name of the default StorageClass the provisioner serves.
    pub storage_class: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error("add-on not implemented yet")]
    NotImplemented,
}

/// Runs DNS and the provisioner until `shutdown` resolves or one of them fails.
pub async fn run(
    _client: kube::Client,
    _config: AddonConfig,
    _shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AddonError> {
    Err(AddonError::NotImplemented)
}
