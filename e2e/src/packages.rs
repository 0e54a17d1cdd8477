//! The Debian packages the cluster needs, installed when missing (never upgraded or
//! removed): everything else is built from source or by this crate.

use std::process::Command;

use crate::host::{self, Result};

/// What each package is for.
pub const PACKAGES: [(&str, &str); 13] = [
    ("golang-go", "builds Kubernetes from source (Go 1.19)"),
    ("rsync", "used by the Kubernetes build"),
    (
        "golang-github-modern-go-reflect2-dev",
        "replaces the vendored reflect2 that crashes under Go >= 1.18",
    ),
    ("etcd-server", "the cluster's store"),
    ("containerd", "one container runtime per node"),
    ("runc", "containerd's OCI runtime"),
    (
        "containernetworking-plugins",
        "CNI bridge, host-local and portmap",
    ),
    ("busybox-static", "the probe image"),
    ("conntrack", "kube-proxy flushes stale UDP flows with it"),
    ("iptables", "kube-proxy's service rules"),
    ("iproute2", "the cluster's namespace, links and routes"),
    ("openssl", "the cluster's keys and certificates"),
    (
        "util-linux",
        "nsenter runs components in the cluster's namespace",
    ),
];

fn installed(package: &str) -> bool {
    host::run(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|s| s.contains("install ok installed"))
}

/// Installs the packages that are missing; returns their names.
pub fn ensure() -> Result<Vec<String>> {
    let missing: Vec<String> = PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .map(str::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    tracing::info!(packages = %missing.join(" "), "installing");
    host::run(Command::new("apt-get").args(["update", "-qq"]))?;
    host::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(missing)
}

const SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const SOURCE_ENTRY: &str = "/etc/apt/sources.list.d/keepr-e2e-src.sources";

/// Makes `apt-get source` work: a deb-src entry for the same archive as the machine's own
/// deb entry (the source package is the only way to get Kubernetes 1.20 here).
pub fn enable_source_packages() -> Result<()> {
    let current = std::fs::read_to_string(SOURCES).unwrap_or_default();
    let already = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| {
            d.flatten().any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("Types: deb-src"))
            })
        })
        .unwrap_or(false);
    if already || current.contains("deb-src") {
        return Ok(());
    }
    let Some(entry) = source_entry(&current) else {
        return Err(host::HostError::Io {
            what: format!("{SOURCES} has no deb entry to mirror as deb-src"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    };
    host::write_file(std::path::Path::new(SOURCE_ENTRY), entry.as_bytes())?;
    host::run(Command::new("apt-get").args(["update", "-qq"]))?;
    Ok(())
}

/// The deb-src stanza for the first `Types: deb` stanza's archive (bookworm main).
fn source_entry(sources: &str) -> Option<String> {
    let stanza = sources
        .split("\n\n")
        .find(|s| s.lines().any(|l| l.trim() == "Types: deb"))?;
    let field = |name: &str| {
        stanza
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let uri = field("URIs:")?.split_whitespace().next()?.to_string();
    let signed_by = field("Signed-By:")
        .unwrap_or_else(|| "/usr/share/keyrings/debian-archive-keyring.gpg".to_string());
    Some(format!(
        "Types: deb-src\nURIs: {uri}\nSuites: bookworm\nComponents: main\nSigned-By: {signed_by}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::source_entry;

    #[test]
    fn the_source_entry_mirrors_the_first_deb_stanza() {
        let sources = "Types: deb\nURIs: http://archive.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n\nTypes: deb\nURIs: http://other.invalid/\n";
        let e = source_entry(sources).unwrap();
        assert!(e.starts_with("Types: deb-src\nURIs: http://archive.invalid/debian\n"));
        assert!(e.contains("Signed-By: /k.gpg"));
        assert_eq!(source_entry("Types: deb-src\nURIs: x\n"), None);
    }
}
