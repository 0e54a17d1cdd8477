//! Nodes: one containerd and one kubelet per node, all in the cluster's namespace, each with
//! its own address, CNI bridge and pod subnet, state directory and cgroup root; and one
//! kube-proxy for the whole namespace (all nodes share its iptables).
//!
//! Two settings this machine requires: containerd's `restrict_oom_score_adj` (the session's
//! root lacks CAP_SYS_RESOURCE, so runc cannot set the -998 the CRI asks for, and every
//! sandbox fails without it), and a cgroup root per kubelet that exists in every v1
//! hierarchy before the kubelet starts (it does not create it; separate roots keep three
//! kubelets from fighting over one).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::host::{self, io_err, Result};
use crate::layout::*;

/// cgroup v1 hierarchies a kubelet's root must exist in (those present are used).
const CGROUP_CONTROLLERS: [&str; 13] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "systemd",
    "hugetlb",
    "blkio",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
];

pub fn containerd_name(n: u32) -> String {
    format!("containerd-{}", node_name(n))
}

pub fn kubelet_name(n: u32) -> String {
    format!("kubelet-{}", node_name(n))
}

pub const KUBE_PROXY: &str = "kube-proxy";

/// The node's cgroup directories (one per hierarchy present on this machine).
pub fn cgroup_dirs(n: u32) -> Vec<PathBuf> {
    CGROUP_CONTROLLERS
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c))
        .filter(|d| d.is_dir())
        .map(|d| d.join(format!("{CGROUP_PREFIX}{n}")))
        .collect()
}

fn containerd_config(paths: &Paths, n: u32) -> String {
    let d = paths.node(n);
    let d = d.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/run/containerd-state"
[grpc]
  address = "{d}/run/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/net.d"
"#
    )
}

fn cni_config(paths: &Paths, n: u32) -> String {
    let ipam = paths.node(n).join("cni-ipam");
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": format!("{CNI_NETWORK_PREFIX}{n}"),
        "plugins": [
            {"type": "bridge", "bridge": format!("{LINK_PREFIX}pods{n}"), "isGateway": true,
             "ipMasq": false, "hairpinMode": true,
             "ipam": {"type": "host-local", "dataDir": ipam.display().to_string(),
                      "ranges": [[{"subnet": pod_subnet(n), "gateway": format!("10.201.{n}.1")}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

fn kubelet_config(paths: &Paths, n: u32) -> String {
    let d = paths.node(n);
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {ip}
port: {KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true, cacheTTL: 30s}}
  x509: {{clientCAFile: {ca}}}
authorization:
  mode: Webhook
  webhook: {{cacheAuthorizedTTL: 30s, cacheUnauthorizedTTL: 10s}}
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_PREFIX}{n}
failSwapOn: false
clusterDNS: [{DNS_SERVICE_IP}]
clusterDomain: cluster.local
resolvConf: {resolv}
volumePluginDir: {plugins}
# Eviction only when the machine is nearly full: the disk is shared with everything else.
evictionHard: {{memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
# Images cannot be pulled again (no registry): never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 50
rotateCertificates: false
syncFrequency: 10s
# Ready in about 3 s instead of about 16 s.
nodeStatusUpdateFrequency: 2s
"#,
        ip = node_ip(n),
        healthz = KUBELET_HEALTHZ_BASE + n as u16,
        ca = paths.pki().join("ca.crt").display(),
        resolv = d.join("resolv.conf").display(),
        plugins = d.join("volume-plugins").display(),
    )
}

/// Writes node `n`'s configuration and directories.
pub fn prepare(paths: &Paths, n: u32) -> Result<()> {
    let d = paths.node(n);
    for sub in [
        "run",
        "net.d",
        "containerd",
        "kubelet",
        "kubelet-pki",
        "cni-ipam",
        "volume-plugins",
    ] {
        fs::create_dir_all(d.join(sub)).map_err(io_err(format!("creating {sub} of node {n}")))?;
    }
    host::write_file(
        &d.join("containerd.toml"),
        containerd_config(paths, n).as_bytes(),
    )?;
    host::write_file(
        &d.join("net.d/10-keepr-e2e.conflist"),
        cni_config(paths, n).as_bytes(),
    )?;
    // Pods with dnsPolicy Default, and the kubelet's own lookups, ask the cluster's DNS.
    host::write_file(
        &d.join("resolv.conf"),
        format!("nameserver {}\n", apiserver_ip()).as_bytes(),
    )?;
    host::write_file(&d.join("kubelet.yaml"), kubelet_config(paths, n).as_bytes())?;
    for dir in cgroup_dirs(n) {
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    // A new cpuset is empty: it must be given the CPUs and memory nodes of its parent.
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    if cpuset.is_dir() {
        let mine = cpuset.join(format!("{CGROUP_PREFIX}{n}"));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let v = fs::read_to_string(cpuset.join(f)).map_err(io_err(format!("reading {f}")))?;
            fs::write(mine.join(f), v.trim()).map_err(io_err(format!("writing {f}")))?;
        }
    }
    Ok(())
}

/// `ctr` against node `n`'s containerd, in the `k8s.io` namespace the CRI uses.
pub fn ctr(paths: &Paths, n: u32) -> std::process::Command {
    let mut c = std::process::Command::new("ctr");
    c.arg("--address")
        .arg(paths.containerd_socket(n))
        .args(["-n", "k8s.io"]);
    c
}

/// Starts node `n`'s containerd (and waits for it), imports the base images, starts its
/// kubelet; node 1 also starts kube-proxy.
pub fn start(paths: &Paths, n: u32) -> Result<()> {
    let d = paths.node(n);
    host::start_daemon(
        paths,
        &containerd_name(n),
        Path::new("/usr/bin/containerd"),
        &[
            "--config".to_string(),
            d.join("containerd.toml").display().to_string(),
        ],
    )?;
    host::wait_until(
        &format!("containerd of node {n} answering"),
        Duration::from_secs(30),
        Duration::from_millis(100),
        || host::run(ctr(paths, n).arg("version")).ok(),
    )?;
    for image in ["pause.tar", "busybox.tar"] {
        import(paths, n, &paths.base_images().join(image))?;
    }
    let kc = paths.component_kubeconfig(&format!("kubelet-{}", node_name(n)));
    let sock = paths.containerd_socket(n).display().to_string();
    host::start_daemon(
        paths,
        &kubelet_name(n),
        &paths.bin("kubelet"),
        &[
            format!("--config={}", d.join("kubelet.yaml").display()),
            format!("--kubeconfig={}", kc.display()),
            "--container-runtime=remote".into(),
            format!("--container-runtime-endpoint=unix://{sock}"),
            format!("--containerd={sock}"),
            format!("--hostname-override={}", node_name(n)),
            format!("--node-ip={}", node_ip(n)),
            format!("--root-dir={}", d.join("kubelet").display()),
            format!("--cert-dir={}", d.join("kubelet-pki").display()),
            format!("--pod-infra-container-image={PAUSE_IMAGE}"),
            "--v=1".into(),
        ],
    )?;
    if n == 1 {
        host::start_daemon(
            paths,
            KUBE_PROXY,
            &paths.bin("kube-proxy"),
            &[
                format!(
                    "--kubeconfig={}",
                    paths.component_kubeconfig("kube-proxy").display()
                ),
                "--proxy-mode=iptables".into(),
                format!("--hostname-override={}", node_name(1)),
                format!("--cluster-cidr={POD_NET}"),
                "--metrics-bind-address=127.0.0.1:10249".into(),
                "--healthz-bind-address=127.0.0.1:10256".into(),
                // Zeros: leave the conntrack sysctls (global, not per namespace) alone.
                "--conntrack-max-per-core=0".into(),
                "--conntrack-tcp-timeout-established=0".into(),
                "--conntrack-tcp-timeout-close-wait=0".into(),
            ],
        )?;
    }
    Ok(())
}

/// Imports an OCI archive into node `n`'s containerd.
pub fn import(paths: &Paths, n: u32, archive: &Path) -> Result<()> {
    host::run(ctr(paths, n).args(["images", "import"]).arg(archive)).map(|_| ())
}

/// Ids of the tasks (running containers) in node `n`'s containerd.
pub fn tasks(paths: &Paths, n: u32) -> Vec<String> {
    if !paths.containerd_socket(n).exists() {
        return Vec::new();
    }
    host::run(ctr(paths, n).args(["tasks", "ls", "-q"]))
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Network namespace paths of node `n`'s containers (pod sandboxes), from their OCI specs.
pub fn sandbox_netns(paths: &Paths, n: u32) -> Vec<String> {
    let mut out = Vec::new();
    if !paths.containerd_socket(n).exists() {
        return out;
    }
    let Ok(ids) = host::run(ctr(paths, n).args(["containers", "ls", "-q"])) else {
        return out;
    };
    for id in ids.lines() {
        let Ok(info) = host::run(ctr(paths, n).args(["containers", "info", id])) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&info) else {
            continue;
        };
        if let Some(namespaces) = v
            .pointer("/Spec/linux/namespaces")
            .and_then(|n| n.as_array())
        {
            for ns in namespaces {
                if ns["type"] == "network" {
                    if let Some(p) = ns["path"].as_str().filter(|p| !p.is_empty()) {
                        out.push(p.to_string());
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// How many nodes the state directory has configurations for.
pub fn configured(paths: &Paths) -> u32 {
    (1..=MAX_NODES)
        .take_while(|n| paths.node(*n).join("kubelet.yaml").is_file())
        .count() as u32
}
