//! The Kubernetes binaries, built once from Debian 12's `kubernetes` source package and
//! cached outside the repository; and the two base images every node needs (the pause
//! sandbox, built from the same source, and a busybox for probes).
//!
//! Debian ships the 1.20.2 source with every Go dependency vendored, so the build needs no
//! network beyond the package archive. Two changes make it run here (found when the recipe
//! in `shared/reference/local-kubernetes.md` was verified):
//! - the vendored `modern-go/reflect2` 1.0.1 crashes under Go >= 1.18 (a fault as soon as
//!   the apiserver encodes a Node); Debian's packaged 1.0.2 replaces it;
//! - the kubelet gets two one-line changes: no five one-second waits for a Docker daemon
//!   that does not exist, and only a warning (instead of a rewrite) for host sysctls it
//!   would like different (`vm.overcommit_memory`, `kernel.panic`...): the cluster must
//!   leave the host as it found it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::host::{self, io_err, HostError, Result};
use crate::layout::Paths;
use crate::oci;

/// The components built from the source, all static (CGO off).
pub const BINARIES: [&str; 6] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
];

const SOURCE_TARBALL: &str = "kubernetes_1.20.5+really1.20.2.orig.tar.gz";
const SOURCE_DIR: &str = "kubernetes-1.20.2";
const REFLECT2_VENDORED: &str = "vendor/github.com/modern-go/reflect2";
const REFLECT2_DEBIAN: &str = "/usr/share/gocode/src/github.com/modern-go/reflect2";

/// A source edit: in `file`, the line containing `find` becomes `replace`.
struct Patch {
    file: &'static str,
    find: &'static str,
    replace: &'static str,
}

const KUBELET_PATCHES: [Patch; 2] = [
    Patch {
        file: "vendor/github.com/google/cadvisor/container/docker/factory.go",
        find: "const rootDirRetries = 5",
        replace: "const rootDirRetries = 0 // keepr-e2e: no Docker daemon to wait for",
    },
    Patch {
        file: "pkg/kubelet/cm/container_manager_linux.go",
        find: "b := KernelTunableModify",
        replace: "b := KernelTunableWarn // keepr-e2e: never rewrite host sysctls",
    },
];

/// Whether every binary and base image is in the cache.
pub fn cached(paths: &Paths) -> bool {
    BINARIES.iter().all(|b| paths.bin(b).is_file())
        && paths.base_images().join("pause.tar").is_file()
        && paths.base_images().join("busybox.tar").is_file()
}

/// Builds what the cache lacks. Returns whether anything was built.
pub fn ensure(paths: &Paths) -> Result<bool> {
    let mut built = false;
    if !BINARIES.iter().all(|b| paths.bin(b).is_file()) {
        build_binaries(paths)?;
        built = true;
    }
    if !paths.base_images().join("pause.tar").is_file()
        || !paths.base_images().join("busybox.tar").is_file()
    {
        build_base_images(paths)?;
        built = true;
    }
    Ok(built)
}

/// Where sources are fetched and unpacked (beside the binaries' cache, not in the repo).
fn work_dir(paths: &Paths) -> PathBuf {
    paths
        .cache
        .parent()
        .map(|p| p.join("k8s-build"))
        .unwrap_or_else(|| PathBuf::from("/var/cache/keepr/k8s-build"))
}

fn source_tarball(paths: &Paths) -> Result<PathBuf> {
    let dir = work_dir(paths);
    let tarball = dir.join(SOURCE_TARBALL);
    if tarball.is_file() {
        return Ok(tarball);
    }
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    crate::packages::enable_source_packages()?;
    tracing::info!("fetching Debian's kubernetes source package");
    host::run(
        Command::new("apt-get")
            .args(["source", "--download-only", "-qq", "kubernetes"])
            .current_dir(&dir),
    )?;
    if !tarball.is_file() {
        return Err(HostError::Io {
            what: format!("apt-get source did not leave {}", tarball.display()),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    Ok(tarball)
}

fn build_binaries(paths: &Paths) -> Result<()> {
    let started = std::time::Instant::now();
    let tarball = source_tarball(paths)?;
    let work = work_dir(paths);
    let src = work.join(SOURCE_DIR);
    // Always from a fresh tree: a half-patched one from a killed build must not be reused.
    if src.exists() {
        fs::remove_dir_all(&src).map_err(io_err(format!("removing {}", src.display())))?;
    }
    tracing::info!("unpacking the kubernetes source");
    host::run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .current_dir(&work),
    )?;
    replace_reflect2(&src)?;
    for p in &KUBELET_PATCHES {
        apply_patch(&src, p)?;
    }
    // Debian's rules build inside a GOPATH whose k8s.io/kubernetes is the tree itself.
    let gopath = src.join(".go");
    fs::create_dir_all(gopath.join("src/k8s.io")).map_err(io_err("creating the GOPATH"))?;
    std::os::unix::fs::symlink("../../..", gopath.join("src/k8s.io/kubernetes"))
        .map_err(io_err("linking the GOPATH"))?;
    let home = work.join("home");
    fs::create_dir_all(&home).map_err(io_err("creating the build HOME"))?;
    let what: Vec<String> = BINARIES.iter().map(|b| format!("cmd/{b}")).collect();
    tracing::info!("building {} (several minutes on 2 cores)", what.join(" "));
    host::run(
        Command::new("nice")
            .args(["-n", "10", "make"])
            .arg(format!("WHAT={}", what.join(" ")))
            .current_dir(&src)
            .env("GOPATH", &gopath)
            .env("CGO_ENABLED", "0")
            .env("HOME", &home)
            .env("GOCACHE", work.join("go-cache")),
    )?;
    fs::create_dir_all(&paths.cache).map_err(io_err("creating the binary cache"))?;
    let out = src.join("_output/local/bin/linux/amd64");
    for b in BINARIES {
        let tmp = paths.cache.join(format!("{b}.new"));
        fs::copy(out.join(b), &tmp).map_err(io_err(format!("copying {b}")))?;
        fs::rename(&tmp, paths.bin(b)).map_err(io_err(format!("installing {b}")))?;
    }
    let pause_c = src.join("build/pause/linux/pause.c");
    fs::create_dir_all(paths.base_images()).map_err(io_err("creating the image cache"))?;
    fs::copy(&pause_c, paths.base_images().join("pause.c")).map_err(io_err("keeping pause.c"))?;
    // 3 GB of tree and objects: only the tarball and the Go cache are worth keeping.
    fs::remove_dir_all(&src).map_err(io_err("removing the build tree"))?;
    tracing::info!(
        secs = started.elapsed().as_secs(),
        "kubernetes binaries built and cached in {}",
        paths.cache.display()
    );
    Ok(())
}

/// Replaces the vendored reflect2 with Debian's (see the module docs).
fn replace_reflect2(src: &Path) -> Result<()> {
    let vendored = src.join(REFLECT2_VENDORED);
    for e in fs::read_dir(&vendored)
        .map_err(io_err(format!("reading {}", vendored.display())))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".go") || name.ends_with(".s") {
            fs::remove_file(e.path()).map_err(io_err(format!("removing {name}")))?;
        }
    }
    for e in fs::read_dir(REFLECT2_DEBIAN)
        .map_err(io_err(format!(
            "reading {REFLECT2_DEBIAN} (Debian's golang-github-modern-go-reflect2-dev)"
        )))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".go") && !name.ends_with("_test.go")) || name.ends_with(".s") {
            fs::copy(e.path(), vendored.join(&name)).map_err(io_err(format!("copying {name}")))?;
        }
    }
    Ok(())
}

fn apply_patch(src: &Path, patch: &Patch) -> Result<()> {
    let path = src.join(patch.file);
    let text = fs::read_to_string(&path).map_err(io_err(format!("reading {}", path.display())))?;
    let new = patch_text(&text, patch.find, patch.replace).ok_or_else(|| HostError::Io {
        what: format!(
            "{}: the line with {:?} to patch is not there",
            patch.file, patch.find
        ),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    fs::write(&path, new).map_err(io_err(format!("writing {}", path.display())))
}

/// `text` with the one line containing `find` replaced by `replace` (indentation kept);
/// `None` unless exactly one line matches.
fn patch_text(text: &str, find: &str, replace: &str) -> Option<String> {
    let matches = text.lines().filter(|l| l.contains(find)).count();
    if matches != 1 {
        return None;
    }
    let mut out = String::with_capacity(text.len() + replace.len());
    for line in text.split_inclusive('\n') {
        if line.contains(find) {
            let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
            out.push_str(&indent);
            out.push_str(replace);
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    Some(out)
}

/// The pause sandbox (static, from the Kubernetes source) and busybox (Debian's static
/// build with its applets linked) as one-layer OCI archives.
fn build_base_images(paths: &Paths) -> Result<()> {
    let images = paths.base_images();
    fs::create_dir_all(&images).map_err(io_err("creating the image cache"))?;
    let pause_c = images.join("pause.c");
    if !pause_c.is_file() {
        // Cached binaries from an earlier build without pause.c: take it from the source.
        let tarball = source_tarball(paths)?;
        let text = host::run(
            Command::new("tar")
                .arg("-xzOf")
                .arg(&tarball)
                .arg(format!("{SOURCE_DIR}/build/pause/linux/pause.c")),
        )?;
        fs::write(&pause_c, text).map_err(io_err("writing pause.c"))?;
    }
    let tmp = tempdir(&images)?;
    let pause_bin = tmp.join("pause");
    host::run(
        Command::new("gcc")
            .args(["-Os", "-Wall", "-static", "-DVERSION=v3.4-local", "-o"])
            .arg(&pause_bin)
            .arg(&pause_c),
    )?;
    let mut pause = oci::Image::new(crate::layout::PAUSE_IMAGE, vec!["/pause".into()]);
    pause.add_file_from("pause", &pause_bin, 0o755)?;
    pause.write_archive(&images.join("pause.tar"))?;

    let busybox = Path::new("/usr/bin/busybox");
    let mut bb = oci::Image::new(crate::layout::BUSYBOX_IMAGE, vec!["/bin/sh".into()]);
    bb.add_file_from("bin/busybox", busybox, 0o755)?;
    let applets = host::run(Command::new(busybox).arg("--list"))?;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        if applet != "busybox" {
            bb.add_symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    bb.add_file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
        0o644,
    );
    bb.add_file("etc/group", b"root:x:0:\n".to_vec(), 0o644);
    for d in ["tmp", "data", "www"] {
        bb.add_dir(d, 0o1777);
    }
    bb.write_archive(&images.join("busybox.tar"))?;
    let _ = fs::remove_dir_all(&tmp);
    Ok(())
}

fn tempdir(under: &Path) -> Result<PathBuf> {
    let dir = under.join(format!(".tmp-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::patch_text;

    #[test]
    fn a_patch_replaces_exactly_the_one_matching_line_and_keeps_its_indent() {
        let text = "a\n\tb := KernelTunableModify\nc\n";
        assert_eq!(
            patch_text(text, "b := KernelTunableModify", "b := X").as_deref(),
            Some("a\n\tb := X\nc\n")
        );
        assert_eq!(patch_text(text, "missing", "x"), None);
        assert_eq!(patch_text("x\nx\n", "x", "y"), None, "ambiguous");
    }
}
