//! The control plane: keys and certificates, static tokens and kubeconfigs, then etcd (on a
//! tmpfs: the cluster is thrown away with its state), kube-apiserver, kube-controller-manager
//! and kube-scheduler, all in the cluster's namespace at node 1's address.
//!
//! Authentication is by static tokens (one per component identity, in the apiserver's token
//! file) and the apiserver's client certificate for kubelets, so that `kubectl logs/exec`
//! pass the kubelets' webhook authentication and authorisation as in a real cluster.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::host::{self, io_err, Result};
use crate::layout::*;

/// Component identities with a static token: (kubeconfig name, user, uid, groups).
fn identities(nodes: u32) -> Vec<(String, String, String)> {
    let mut v = vec![
        (
            "admin".to_string(),
            "admin".to_string(),
            "system:masters".to_string(),
        ),
        (
            "kube-proxy".to_string(),
            "system:kube-proxy".to_string(),
            String::new(),
        ),
    ];
    for n in 1..=nodes {
        v.push((
            format!("kubelet-{}", node_name(n)),
            format!("system:node:{}", node_name(n)),
            "system:nodes".to_string(),
        ));
    }
    v
}

/// Keys, certificates, the token file and kubeconfigs, made once per cluster.
pub fn pki(paths: &Paths) -> Result<()> {
    let dir = paths.pki();
    fs::create_dir_all(&dir).map_err(io_err("creating the PKI directory"))?;
    let openssl = |args: &[&str]| host::run(Command::new("openssl").args(args).current_dir(&dir));
    if !dir.join("sa.key").is_file() {
        openssl(&["genrsa", "-out", "sa.key", "2048"])?;
        openssl(&["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    }
    if !dir.join("kubelet-client.crt").is_file() {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=keepr-e2e-ca",
            "-days",
            "3650",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "kubelet-client.key",
            "-subj",
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
            "-out",
            "kubelet-client.csr",
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "kubelet-client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "kubelet-client.crt",
            "-days",
            "3650",
        ])?;
    }
    // Tokens cover every node a later `up --nodes` may add; the file is re-read only at
    // apiserver start, so it always lists MAX_NODES kubelets.
    let mut tokens = String::new();
    for (name, user, groups) in identities(MAX_NODES) {
        let token = token_of(&dir, &name)?;
        tokens.push_str(&format!("{token},{user},{name}"));
        if !groups.is_empty() {
            tokens.push_str(&format!(",{groups}"));
        }
        tokens.push('\n');
        let kc = kubeconfig(
            &format!("https://{}:{APISERVER_PORT}", apiserver_ip()),
            &token,
        );
        host::write_file(&paths.component_kubeconfig(&name), kc.as_bytes())?;
    }
    host::write_file(&dir.join("tokens.csv"), tokens.as_bytes())?;
    fs::copy(paths.component_kubeconfig("admin"), paths.kubeconfig())
        .map_err(io_err("writing the kubeconfig"))?;
    Ok(())
}

/// A random token per identity, kept in the PKI directory.
fn token_of(dir: &Path, name: &str) -> Result<String> {
    let file = dir.join(format!("{name}.token"));
    if let Ok(t) = fs::read_to_string(&file) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let t = host::sh("openssl", ["rand", "-hex", "24"])?
        .trim()
        .to_string();
    host::write_file(&file, t.as_bytes())?;
    Ok(t)
}

/// A kubeconfig for `server` with a bearer token. The apiserver's certificate is
/// self-signed per cluster, so verification is skipped (loopback-only test cluster).
fn kubeconfig(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: keepr-e2e\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: keepr-e2e\n  user:\n    token: {token}\ncontexts:\n- name: keepr-e2e\n  context:\n    cluster: keepr-e2e\n    user: keepr-e2e\ncurrent-context: keepr-e2e\n"
    )
}

fn s(v: impl Into<String>) -> String {
    v.into()
}

/// Starts etcd, the apiserver, the controller manager and the scheduler (those not
/// running), and waits until the apiserver serves.
pub fn start(paths: &Paths) -> Result<()> {
    let etcd_dir = paths.etcd();
    fs::create_dir_all(&etcd_dir).map_err(io_err("creating etcd's directory"))?;
    if !is_mountpoint(&etcd_dir) {
        host::sh(
            "mount",
            [
                "-t",
                "tmpfs",
                "-o",
                "size=1g",
                "tmpfs",
                &etcd_dir.display().to_string(),
            ],
        )?;
    }
    let pki = paths.pki();
    let p = |f: &str| pki.join(f).display().to_string();
    let client_url = format!("http://127.0.0.1:{ETCD_CLIENT_PORT}");
    let peer_url = format!("http://127.0.0.1:{ETCD_PEER_PORT}");
    host::start_daemon(
        paths,
        "etcd",
        Path::new("/usr/bin/etcd"),
        &[
            s("--name=keepr-e2e"),
            format!("--data-dir={}", etcd_dir.join("data").display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=keepr-e2e={peer_url}"),
            s("--listen-metrics-urls="),
        ],
    )?;
    host::start_daemon(
        paths,
        "kube-apiserver",
        &paths.bin("kube-apiserver"),
        &[
            format!("--etcd-servers={client_url}"),
            format!("--bind-address={}", apiserver_ip()),
            format!("--advertise-address={}", apiserver_ip()),
            format!("--secure-port={APISERVER_PORT}"),
            s("--insecure-port=0"),
            format!("--cert-dir={}", pki.join("apiserver-certs").display()),
            format!("--token-auth-file={}", p("tokens.csv")),
            s("--authorization-mode=Node,RBAC"),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            s("--service-account-issuer=https://kubernetes.default.svc"),
            format!("--service-cluster-ip-range={SERVICE_NET}"),
            format!("--kubelet-client-certificate={}", p("kubelet-client.crt")),
            format!("--kubelet-client-key={}", p("kubelet-client.key")),
            s("--kubelet-preferred-address-types=InternalIP,Hostname"),
            s("--allow-privileged=true"),
        ],
    )?;
    wait_serving(paths)?;
    let admin = paths.component_kubeconfig("admin").display().to_string();
    host::start_daemon(
        paths,
        "kube-controller-manager",
        &paths.bin("kube-controller-manager"),
        &[
            format!("--kubeconfig={admin}"),
            format!("--service-account-private-key-file={}", p("sa.key")),
            // Service-account secrets get a ca.crt, so in-cluster TLS to the apiserver
            // verifies (its self-signed certificate names the kubernetes Service).
            format!(
                "--root-ca-file={}",
                pki.join("apiserver-certs/apiserver.crt").display()
            ),
            // No cloud, and pod CIDRs are static per node (CNI host-local).
            s("--controllers=*,-nodeipam,-cloud-node-lifecycle"),
            s("--leader-elect=false"),
            s("--secure-port=0"),
            s("--port=0"),
        ],
    )?;
    host::start_daemon(
        paths,
        "kube-scheduler",
        &paths.bin("kube-scheduler"),
        &[
            format!("--kubeconfig={admin}"),
            s("--leader-elect=false"),
            s("--secure-port=0"),
            s("--port=0"),
        ],
    )?;
    Ok(())
}

/// A kubectl command (the 1.20 client built with the cluster) with the admin kubeconfig.
pub fn kubectl(paths: &Paths) -> Command {
    let mut c = Command::new(paths.bin("kubectl"));
    c.arg(format!("--kubeconfig={}", paths.kubeconfig().display()));
    c
}

/// One look: does `/readyz` answer ok?
pub fn wait_serving_once(paths: &Paths) -> bool {
    paths.kubeconfig().is_file()
        && host::run(kubectl(paths).args(["--request-timeout=5s", "get", "--raw", "/readyz"]))
            .is_ok_and(|s| s.trim() == "ok")
}

/// Until `/readyz` answers ok.
pub fn wait_serving(paths: &Paths) -> Result<()> {
    host::wait_until(
        "the apiserver serving /readyz",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || wait_serving_once(paths).then_some(()),
    )
    .map(|_| ())
}

pub fn is_mountpoint(path: &Path) -> bool {
    let p = path.display().to_string();
    fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(p.as_str()))
        })
        .unwrap_or(false)
}

/// Processes of the control plane, in the order they stop.
pub const DAEMONS: [&str; 4] = [
    "kube-controller-manager",
    "kube-scheduler",
    "kube-apiserver",
    "etcd",
];
