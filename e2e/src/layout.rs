//! Where everything of the test cluster lives: its addresses, ports, names and paths, in one
//! place, so that `up`, `down` and the leftover check agree on what "ours" is.
//!
//! The whole cluster runs inside one network namespace it creates ([`NETNS`]): node
//! addresses sit on a bridge in it, pods on one bridge per node, and kube-proxy's and the
//! kubelets' iptables rules live in its own tables. The host reaches it through one veth pair
//! and three routes; deleting the namespace takes every link, route and rule of the cluster
//! with it. Address ranges are apart from the reference recipe's (10.250/10.244/10.96), so the
//! two never collide.

use std::path::{Path, PathBuf};

/// The network namespace holding the cluster.
pub const NETNS: &str = "keepr-e2e";
/// Host side of the veth pair into [`NETNS`].
pub const HOST_LINK: &str = "k2e-host";
/// Namespace side of the veth pair.
pub const NS_LINK: &str = "k2e-ns";
/// The port-less bridge in [`NETNS`] that carries the node addresses.
pub const NODE_BRIDGE: &str = "k2e-nodes";
/// Host address of the veth pair (/30).
pub const HOST_LINK_ADDR: &str = "10.200.254.1";
/// Namespace address of the veth pair (/30): the host's gateway to the cluster.
pub const NS_LINK_ADDR: &str = "10.200.254.2";
/// Node N has address 10.200.0.N; the control plane runs at node 1's.
pub const NODE_NET: &str = "10.200.0.0/24";
/// Node N's pods are in 10.201.N.0/24.
pub const POD_NET: &str = "10.201.0.0/16";
/// Services' cluster IPs.
pub const SERVICE_NET: &str = "10.202.0.0/16";
/// The `kube-dns` Service's cluster IP (kubelets give it to pods as their nameserver).
pub const DNS_SERVICE_IP: &str = "10.202.0.10";
/// The three ranges the host routes into the namespace, each shadowed by an `unreachable`
/// route that outlives the veth, so nothing for them ever leaves the machine.
pub const ROUTED_NETS: [&str; 3] = [NODE_NET, POD_NET, SERVICE_NET];
/// Metric of the host's fallback `unreachable` routes (the veth routes have 0 and win).
pub const UNREACHABLE_METRIC: u32 = 4000;
/// Prefix of every link the cluster makes (host veth, node bridge, pod bridges).
pub const LINK_PREFIX: &str = "k2e-";
/// Name prefix of the per-node cgroup roots, one per v1 hierarchy.
pub const CGROUP_PREFIX: &str = "keepr-e2e-n";
/// Prefix of the CNI network names (and so of CNI's cached results).
pub const CNI_NETWORK_PREFIX: &str = "keepr-e2e-n";
/// The most nodes a cluster may have (node addresses are .1 to .9).
pub const MAX_NODES: u32 = 9;

pub const APISERVER_PORT: u16 = 6443;
pub const ETCD_CLIENT_PORT: u16 = 23790;
pub const ETCD_PEER_PORT: u16 = 23800;
pub const KUBELET_PORT: u16 = 10250;
/// Kubelet N's healthz port on the namespace's loopback: this plus N.
pub const KUBELET_HEALTHZ_BASE: u16 = 10260;
pub const DNS_PORT: u16 = 53;

/// Kubernetes version built and run.
pub const KUBERNETES_VERSION: &str = "1.20.2";
/// The sandbox image every pod starts with, built from the Kubernetes source.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.4-local";
/// A busybox image for probing from inside the cluster.
pub const BUSYBOX_IMAGE: &str = "local.test/busybox:1";
/// The default StorageClass the provisioner serves.
pub const STORAGE_CLASS: &str = "hostpath";

/// The address of node `n` (1-based).
pub fn node_ip(n: u32) -> String {
    format!("10.200.0.{n}")
}

/// The control plane's address (node 1's).
pub fn apiserver_ip() -> String {
    node_ip(1)
}

/// Node `n`'s pod subnet.
pub fn pod_subnet(n: u32) -> String {
    format!("10.201.{n}.0/24")
}

/// Node `n`'s Kubernetes name.
pub fn node_name(n: u32) -> String {
    format!("n{n}")
}

/// Paths of the build cache and of one cluster's state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Built Kubernetes binaries and base images, kept across clusters and runs.
    pub cache: PathBuf,
    /// Everything of the running cluster: PKI, configs, data, logs, pid files.
    pub state: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            cache: std::env::var_os("KEEPR_E2E_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/cache/keepr/k8s-1.20.2")),
            state: std::env::var_os("KEEPR_E2E_STATE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp/keepr-e2e")),
        }
    }
}

impl Paths {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.cache.join(name)
    }
    pub fn base_images(&self) -> PathBuf {
        self.cache.join("images")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.state.join("kubeconfig")
    }
    pub fn pki(&self) -> PathBuf {
        self.state.join("pki")
    }
    pub fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }
    pub fn log(&self, process: &str) -> PathBuf {
        self.logs().join(format!("{process}.log"))
    }
    pub fn pids(&self) -> PathBuf {
        self.state.join("pids")
    }
    pub fn pid_file(&self, process: &str) -> PathBuf {
        self.pids().join(format!("{process}.pid"))
    }
    pub fn etcd(&self) -> PathBuf {
        self.state.join("etcd")
    }
    pub fn volumes(&self) -> PathBuf {
        self.state.join("volumes")
    }
    pub fn node(&self, n: u32) -> PathBuf {
        self.state.join(format!("n{n}"))
    }
    pub fn containerd_socket(&self, n: u32) -> PathBuf {
        self.node(n).join("run/containerd.sock")
    }
    /// What `up` recorded of the host before it changed anything (see `host_record`).
    pub fn host_record(&self) -> PathBuf {
        self.state.join("host-before.json")
    }
    /// Written last by `up`: the node count of a complete cluster.
    pub fn ready_marker(&self) -> PathBuf {
        self.state.join("ready")
    }
    /// The kubeconfig of a component's identity (`admin`, `kube-proxy`, `kubelet-nN`).
    pub fn component_kubeconfig(&self, who: &str) -> PathBuf {
        self.pki().join(format!("{who}.kubeconfig"))
    }
}

/// Whether `path` lies inside `dir` (both as given, not canonicalised).
pub fn is_within(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
}
