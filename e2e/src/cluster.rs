//! The cluster's life: `up` (idempotent; a half-dead cluster is torn down and made again),
//! `down` (everything it started, by pid, and every trace on the host), `status`, and the
//! check that nothing is left ([`leftovers`]).
//!
//! `up` records what it finds on the host before it changes anything (the sysctls the
//! components could touch, `/var/log/pods`, whether `/run/netns` was a mount) so that `down`
//! can restore exactly that and [`leftovers`] can compare against it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::control_plane::{self, kubectl};
use crate::host::{self, io_err, Result};
use crate::layout::*;
use crate::{kubernetes_build, network, nodes, packages};

/// The add-ons daemon's pid-file name.
pub const ADDONS: &str = "addons";

/// Host sysctls a component of the cluster could change (the kubelet patch and the flags
/// keep them as they are; the record proves it).
const WATCHED_SYSCTLS: [&str; 7] = [
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/ip_forward",
];

/// What the host looked like before `up`.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HostRecord {
    pub sysctls: BTreeMap<String, String>,
    pub var_log_pods: Vec<String>,
    pub run_netns_was_mount: bool,
    pub host_kube_chains: usize,
}

impl HostRecord {
    pub fn read_now() -> HostRecord {
        HostRecord {
            sysctls: WATCHED_SYSCTLS
                .iter()
                .filter_map(|s| {
                    fs::read_to_string(format!("/proc/sys/{s}"))
                        .ok()
                        .map(|v| (s.to_string(), v.trim().to_string()))
                })
                .collect(),
            var_log_pods: list_dir(Path::new("/var/log/pods")),
            run_netns_was_mount: control_plane::is_mountpoint(Path::new("/run/netns")),
            host_kube_chains: host_kube_chains().len(),
        }
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `KUBE-*` chains in the host's own iptables tables.
fn host_kube_chains() -> Vec<String> {
    host::sh("iptables-save", std::iter::empty::<&str>())
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with(":KUBE-"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// How `up` should go.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub nodes: u32,
    /// The `keepr-e2e` binary, run again as the add-ons daemon.
    pub addons_program: PathBuf,
}

/// Whether a complete cluster of `nodes` nodes runs: the ready marker, every daemon alive,
/// the apiserver serving.
pub fn is_up(paths: &Paths, nodes: u32) -> bool {
    let marker = fs::read_to_string(paths.ready_marker()).ok();
    marker.as_deref().map(str::trim) == Some(nodes.to_string().as_str())
        && expected_daemons(nodes)
            .iter()
            .all(|d| host::running(paths, d))
        && control_plane::wait_serving_once(paths)
}

fn expected_daemons(nodes: u32) -> Vec<String> {
    let mut v: Vec<String> = control_plane::DAEMONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in 1..=nodes {
        v.push(nodes::containerd_name(n));
        v.push(nodes::kubelet_name(n));
    }
    v.push(nodes::KUBE_PROXY.to_string());
    v.push(ADDONS.to_string());
    v
}

/// Brings the cluster up; returns whether it was already up (then nothing changed).
pub fn up(paths: &Paths, options: &UpOptions) -> Result<bool> {
    if !(1..=MAX_NODES).contains(&options.nodes) {
        return Err(host::HostError::Io {
            what: format!("--nodes must be 1 to {MAX_NODES}"),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    if is_up(paths, options.nodes) {
        tracing::info!("the cluster is already up");
        return Ok(true);
    }
    let t0 = Instant::now();
    if paths.state.exists() || network::netns_exists() {
        tracing::info!("cleaning up what an earlier cluster left");
        down(paths);
    }
    packages::ensure()?;
    kubernetes_build::ensure(paths)?;
    fs::create_dir_all(&paths.state).map_err(io_err("creating the state directory"))?;
    let record = HostRecord::read_now();
    host::write_file(
        &paths.host_record(),
        &serde_json::to_vec_pretty(&record).map_err(|e| host::HostError::Io {
            what: "encoding the host record".into(),
            source: std::io::Error::other(e),
        })?,
    )?;
    network::up(options.nodes)?;
    control_plane::pki(paths)?;
    control_plane::start(paths)?;
    tracing::info!(secs = t0.elapsed().as_secs_f32(), "control plane serving");
    for n in 1..=options.nodes {
        nodes::prepare(paths, n)?;
        nodes::start(paths, n)?;
    }
    fs::create_dir_all(paths.volumes()).map_err(io_err("creating the volumes directory"))?;
    host::start_daemon(
        paths,
        ADDONS,
        &options.addons_program,
        &[
            "addons".into(),
            format!("--kubeconfig={}", paths.kubeconfig().display()),
            format!("--dns-listen={}:{DNS_PORT}", apiserver_ip()),
            format!("--volumes-dir={}", paths.volumes().display()),
            format!("--storage-class={STORAGE_CLASS}"),
        ],
    )?;
    wait_nodes_ready(paths, options.nodes)?;
    tracing::info!(
        secs = t0.elapsed().as_secs_f32(),
        nodes = options.nodes,
        "nodes Ready"
    );
    apply_kube_dns(paths)?;
    wait_cluster_usable(paths)?;
    host::write_file(&paths.ready_marker(), options.nodes.to_string().as_bytes())?;
    tracing::info!(secs = t0.elapsed().as_secs_f32(), "cluster up");
    Ok(false)
}

/// The `kube-dns` Service the kubelets name as the pods' nameserver, pointing at the DNS
/// add-on in the namespace (no selector: its endpoint is not a pod).
fn apply_kube_dns(paths: &Paths) -> Result<()> {
    let ip = apiserver_ip();
    let manifest = format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: kube-dns, namespace: kube-system, labels: {{k8s-app: kube-dns}}}}
spec:
  clusterIP: {DNS_SERVICE_IP}
  ports: [{{name: dns, port: 53, protocol: UDP}}, {{name: dns-tcp, port: 53, protocol: TCP}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: kube-dns, namespace: kube-system}}
subsets:
- addresses: [{{ip: {ip}}}]
  ports: [{{name: dns, port: 53, protocol: UDP}}, {{name: dns-tcp, port: 53, protocol: TCP}}]
"#
    );
    apply(paths, &manifest)
}

/// `kubectl apply -f -` of a manifest.
pub fn apply(paths: &Paths, manifest: &str) -> Result<()> {
    use std::io::Write;
    let mut child = kubectl(paths)
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io_err("running kubectl apply"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(manifest.as_bytes())
            .map_err(io_err("writing to kubectl apply"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io_err("waiting for kubectl apply"))?;
    if !out.status.success() {
        return Err(host::HostError::Failed {
            cmd: "kubectl apply".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

fn wait_nodes_ready(paths: &Paths, nodes: u32) -> Result<()> {
    host::wait_until(
        &format!("{nodes} nodes Ready and schedulable"),
        Duration::from_secs(120),
        Duration::from_millis(250),
        || {
            let out = host::run(kubectl(paths).args([
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status} {.spec.taints}{\"\\n\"}{end}",
            ]))
            .ok()?;
            let ready = out
                .lines()
                .filter(|l| {
                    let mut w = l.split_whitespace();
                    w.next().is_some() && w.next() == Some("True") && w.next().is_none()
                })
                .count();
            (ready as u32 == nodes).then_some(())
        },
    )
    .map_err(|e| with_logs(paths, e, &[&nodes::kubelet_name(1)]))
}

/// Until a pod could be created and find DNS and volumes: the default service account,
/// the default StorageClass and the DNS add-on answering.
fn wait_cluster_usable(paths: &Paths) -> Result<()> {
    host::wait_until(
        "the default service account, StorageClass and DNS",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            host::run(kubectl(paths).args(["get", "serviceaccount", "default"])).ok()?;
            host::run(kubectl(paths).args(["get", "storageclass", STORAGE_CLASS])).ok()?;
            dns_answers().then_some(())
        },
    )
    .map_err(|e| with_logs(paths, e, &[ADDONS]))
}

/// Whether the DNS add-on answers for the kubernetes Service (a TCP connect to its port, from
/// inside the namespace, is enough to know it listens; resolution is the add-on's own test).
fn dns_answers() -> bool {
    host::run(host::in_netns("bash").args([
        "-c",
        &format!("exec 3<>/dev/tcp/{}/{DNS_PORT}", apiserver_ip()),
    ]))
    .is_ok()
}

/// An error with the tail of the named components' logs appended.
fn with_logs(paths: &Paths, e: host::HostError, names: &[&str]) -> host::HostError {
    let mut detail = String::new();
    for name in names {
        let log = fs::read_to_string(paths.log(name)).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        detail.push_str(&format!("\n--- last lines of {name}.log ---\n"));
        for l in tail.iter().rev() {
            detail.push_str(l);
            detail.push('\n');
        }
    }
    match e {
        host::HostError::Timeout { what, secs, .. } => {
            host::HostError::Timeout { what, secs, detail }
        }
        other => other,
    }
}

/// Stops everything the cluster started and removes every trace of it. Never fails: each
/// step does what it can, and [`leftovers`] says whether anything remained.
pub fn down(paths: &Paths) {
    let t0 = Instant::now();
    let record: Option<HostRecord> = fs::read(paths.host_record())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let node_count = nodes::configured(paths).max(1);
    let mut pod_uids = Vec::new();
    // 1. Let the kubelets stop the pods: CNI then removes their netns, veths and addresses.
    if network::netns_exists() && control_plane::wait_serving_once(paths) {
        pod_uids = host::run(kubectl(paths).args([
            "get",
            "pods",
            "-A",
            "-o",
            "jsonpath={range .items[*]}{.metadata.uid}{\"\\n\"}{end}",
        ]))
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
        let _ = host::run(kubectl(paths).args([
            "delete",
            "statefulsets,deployments,daemonsets,replicasets,jobs,cronjobs",
            "--all",
            "-A",
            "--wait=false",
        ]));
        let _ = host::run(kubectl(paths).args([
            "delete",
            "pods",
            "--all",
            "-A",
            "--force",
            "--grace-period=0",
            "--wait=false",
        ]));
        let _ = host::wait_until(
            "the kubelets stopping every pod",
            Duration::from_secs(45),
            Duration::from_millis(250),
            || {
                (1..=node_count)
                    .all(|n| nodes::tasks(paths, n).is_empty())
                    .then_some(())
            },
        );
    }
    let sandboxes: Vec<String> = (1..=node_count)
        .flat_map(|n| nodes::sandbox_netns(paths, n))
        .collect();
    // 2. Processes, by pid, outermost first.
    host::stop_daemon(paths, ADDONS, Duration::from_secs(5));
    for n in 1..=node_count {
        host::stop_daemon(paths, &nodes::kubelet_name(n), Duration::from_secs(10));
    }
    host::stop_daemon(paths, nodes::KUBE_PROXY, Duration::from_secs(5));
    for n in 1..=node_count {
        for t in nodes::tasks(paths, n) {
            let _ = host::run(nodes::ctr(paths, n).args(["tasks", "kill", "-s", "SIGKILL", &t]));
        }
        for t in nodes::tasks(paths, n) {
            let _ = host::run(nodes::ctr(paths, n).args(["tasks", "delete", "-f", &t]));
        }
        host::stop_daemon(paths, &nodes::containerd_name(n), Duration::from_secs(10));
        // Shims run in sessions of their own; they name their containerd's socket.
        let socket = paths.containerd_socket(n).display().to_string();
        for pid in host::pids_with_cmdline(&socket) {
            host::stop_pid(pid, Duration::from_secs(3));
        }
    }
    for d in control_plane::DAEMONS {
        host::stop_daemon(paths, d, Duration::from_secs(10));
    }
    // Anything else recorded (a component of a newer version of this crate).
    for (name, _) in host::recorded_daemons(paths) {
        host::stop_daemon(paths, &name, Duration::from_secs(5));
    }
    // 3. Mounts under the state directory (overlay roots, volumes, shm, etcd's tmpfs).
    for m in mounts_under(&paths.state) {
        host::sh_quiet("umount", ["-l", &m]);
    }
    // 4. Pod network namespaces CNI did not get to remove.
    for ns in sandboxes {
        if Path::new(&ns).exists() {
            host::sh_quiet("umount", [&ns]);
            let _ = fs::remove_file(&ns);
        }
    }
    // 5. cgroups, deepest first (they are empty once the processes are gone).
    for n in 1..=MAX_NODES {
        for dir in nodes::cgroup_dirs(n) {
            remove_cgroup_tree(&dir);
        }
    }
    // 6. The namespace with everything in it, the veth, the routes.
    network::down();
    // 7. Host files the kubelet and CNI write outside the state directory.
    for f in list_dir(Path::new("/var/lib/cni/results")) {
        if f.starts_with(CNI_NETWORK_PREFIX) {
            let _ = fs::remove_file(Path::new("/var/lib/cni/results").join(f));
        }
    }
    let before: Vec<String> = record
        .as_ref()
        .map(|r| r.var_log_pods.clone())
        .unwrap_or_default();
    for d in list_dir(Path::new("/var/log/pods")) {
        let ours = pod_uids.iter().any(|u| d.ends_with(u.as_str()))
            || (record.is_some() && !before.contains(&d));
        if ours {
            let _ = fs::remove_dir_all(Path::new("/var/log/pods").join(&d));
        }
    }
    remove_dangling_links(Path::new("/var/log/containers"));
    if let Some(r) = &record {
        for (s, v) in &r.sysctls {
            let now = fs::read_to_string(format!("/proc/sys/{s}")).unwrap_or_default();
            if now.trim() != v {
                tracing::warn!(sysctl = %s, was = %v, now = %now.trim(), "restoring");
                let _ = fs::write(format!("/proc/sys/{s}"), v);
            }
        }
        if !r.run_netns_was_mount
            && control_plane::is_mountpoint(Path::new("/run/netns"))
            && list_dir(Path::new("/run/netns")).is_empty()
        {
            host::sh_quiet("umount", ["/run/netns"]);
        }
    }
    // 8. The state itself.
    let _ = fs::remove_dir_all(&paths.state);
    tracing::info!(secs = t0.elapsed().as_secs_f32(), "cluster down");
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let root = dir.display().to_string();
    let mut v: Vec<String> = fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(unescape_mount)
        .filter(|m| m.starts_with(&prefix) || *m == root)
        .collect();
    // Deepest first.
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v.dedup();
    v
}

/// /proc/mounts escapes spaces and the like as octal (`\040`).
fn unescape_mount(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn remove_cgroup_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    // A cgroup directory is removed with rmdir (its files are not real files).
    let _ = fs::remove_dir(dir);
}

fn remove_dangling_links(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_symlink() && !p.exists() {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Everything of a cluster still on the host, compared with `before` (what the host held
/// before `up`); empty when `down` left the machine as it was.
pub fn leftovers(paths: &Paths, before: &HostRecord) -> Vec<String> {
    let mut out = Vec::new();
    for (name, pid) in host::recorded_daemons(paths) {
        if host::alive(pid) {
            out.push(format!("process {name} ({pid})"));
        }
    }
    for n in 1..=MAX_NODES {
        let socket = paths.containerd_socket(n).display().to_string();
        for pid in host::pids_with_cmdline(&socket) {
            out.push(format!("process {pid} using {socket}"));
        }
        for dir in nodes::cgroup_dirs(n) {
            if dir.exists() {
                out.push(format!("cgroup {}", dir.display()));
            }
        }
    }
    out.extend(network::leftovers());
    out.extend(
        mounts_under(&paths.state)
            .into_iter()
            .map(|m| format!("mount {m}")),
    );
    let now = HostRecord::read_now();
    for (s, v) in &before.sysctls {
        if now.sysctls.get(s) != Some(v) {
            out.push(format!(
                "sysctl {s} was {v}, is {}",
                now.sysctls.get(s).map_or("?", |s| s.as_str())
            ));
        }
    }
    for d in &now.var_log_pods {
        if !before.var_log_pods.contains(d) {
            out.push(format!("/var/log/pods/{d}"));
        }
    }
    if now.run_netns_was_mount && !before.run_netns_was_mount {
        out.push("mount /run/netns".into());
    }
    if now.host_kube_chains > before.host_kube_chains {
        out.push(format!(
            "{} KUBE-* iptables chains on the host (were {})",
            now.host_kube_chains, before.host_kube_chains
        ));
    }
    for f in list_dir(Path::new("/var/lib/cni/results")) {
        if f.starts_with(CNI_NETWORK_PREFIX) {
            out.push(format!("/var/lib/cni/results/{f}"));
        }
    }
    if paths.state.exists() {
        out.push(format!("state directory {}", paths.state.display()));
    }
    out
}

/// A human summary: each daemon, its pid and log; the nodes.
pub fn status(paths: &Paths) -> (bool, String) {
    let mut s = String::new();
    let daemons = host::recorded_daemons(paths);
    if daemons.is_empty() {
        return (false, "no cluster: nothing is running\n".into());
    }
    let nodes_n = nodes::configured(paths);
    let up = is_up(paths, nodes_n);
    s.push_str(&format!(
        "cluster {} ({} nodes), state in {}\n",
        if up { "up" } else { "NOT fully up" },
        nodes_n,
        paths.state.display()
    ));
    for (name, pid) in daemons {
        s.push_str(&format!(
            "  {:<26} pid {:<8} {}  log {}\n",
            name,
            pid,
            if host::alive(pid) {
                "running"
            } else {
                "DEAD   "
            },
            paths.log(&name).display()
        ));
    }
    if let Ok(nodes) = host::run(kubectl(paths).args(["get", "nodes", "-o", "wide"])) {
        s.push_str(&nodes);
    }
    s.push_str(&format!(
        "export KUBECONFIG={}\n",
        paths.kubeconfig().display()
    ));
    (up, s)
}
