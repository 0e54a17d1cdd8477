//! keepr's images, built from the workspace's release binaries without a registry or a
//! builder, and loaded into every node's containerd.
//!
//! Each image holds one binary under `/usr/local/bin`, the shared libraries it links (as
//! `ldd` lists them: glibc's loader, libc, libm, libgcc_s), `/etc/passwd` and `/etc/group`
//! naming the non-root user it runs as, and an empty `/tmp`. Nothing else: no shell, no
//! package manager. The layout is the `Containerfile`'s, so what the tests run is what a
//! user builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::host::{self, HostError, Result};
use crate::layout::Paths;
use crate::nodes;
use crate::oci;

/// The user images run as (the distroless `nonroot` convention).
pub const UID: u32 = 65532;

/// One image: its repository and the binary it runs.
pub struct ImageSpec {
    pub repository: &'static str,
    pub package: &'static str,
    pub binary: &'static str,
}

pub const IMAGES: [ImageSpec; 2] = [
    ImageSpec {
        repository: "keepr",
        package: "keepr",
        binary: "keepr",
    },
    ImageSpec {
        repository: "keepr-operator",
        package: "keepr-operator",
        binary: "keepr-operator",
    },
];

/// The workspace this crate belongs to.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The workspace version: image tag besides `dev`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The names containerd stores an image under for each tag (a bare `keepr:dev` in a pod
/// spec means `docker.io/library/keepr:dev` to the CRI).
pub fn references(repository: &str) -> [String; 2] {
    [
        format!("docker.io/library/{repository}:dev"),
        format!("docker.io/library/{repository}:{VERSION}"),
    ]
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the release binaries, writes the image archives under the state directory and
/// imports them into nodes `1..=nodes`. Returns the archives.
pub fn build_and_load(paths: &Paths, nodes_n: u32) -> Result<Vec<PathBuf>> {
    let specs: Vec<&ImageSpec> = IMAGES
        .iter()
        .filter(|s| workspace_root().join("crates").join(s.package).is_dir())
        .collect();
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--release", "--locked"])
        .current_dir(workspace_root());
    for s in &specs {
        cargo.args(["-p", s.package]);
    }
    tracing::info!("building release binaries for the images");
    host::run(&mut cargo)?;
    let out_dir = paths.state.join("images");
    let mut archives = Vec::new();
    for s in specs {
        let binary = target_dir().join("release").join(s.binary);
        let archive = out_dir.join(format!("{}.tar", s.repository));
        let [dev, _] = references(s.repository);
        image_of(&binary, &dev)?.write_archive(&archive)?;
        for n in 1..=nodes_n {
            nodes::import(paths, n, &archive)?;
            for r in &references(s.repository)[1..] {
                host::run(nodes::ctr(paths, n).args(["images", "tag", "--force", &dev, r]))?;
            }
        }
        tracing::info!(image = %dev, nodes = nodes_n, "loaded");
        archives.push(archive);
    }
    Ok(archives)
}

/// The image of one binary (see the module docs for what goes in).
pub fn image_of(binary: &Path, reference: &str) -> Result<oci::Image> {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| HostError::Io {
            what: format!("{} is not a file", binary.display()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
    let mut img = oci::Image::new(reference, vec![format!("/usr/local/bin/{name}")]);
    img.run_as(UID, UID);
    img.add_file_from(&format!("usr/local/bin/{name}"), binary, 0o755)?;
    for lib in linked_libraries(binary)? {
        let rel = lib.display().to_string();
        img.add_file_from(rel.trim_start_matches('/'), &lib, 0o755)?;
    }
    img.add_file(
        "etc/passwd",
        format!("root:x:0:0:root:/:/sbin/nologin\nkeepr:x:{UID}:{UID}:keepr:/:/sbin/nologin\n")
            .into_bytes(),
        0o644,
    );
    img.add_file(
        "etc/group",
        format!("root:x:0:\nkeepr:x:{UID}:\n").into_bytes(),
        0o644,
    );
    img.add_dir("tmp", 0o1777);
    Ok(img)
}

/// The shared libraries `binary` loads, as absolute paths (from `ldd`).
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = host::run(Command::new("ldd").arg(binary))?;
    let mut libs: Vec<PathBuf> = out.lines().filter_map(parse_ldd_line).collect();
    libs.sort();
    libs.dedup();
    for l in &libs {
        if !l.is_file() {
            return Err(HostError::Io {
                what: format!("ldd named {} for {}", l.display(), binary.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
    }
    Ok(libs)
}

/// The library path of one `ldd` line (`libc.so.6 => /lib/.../libc.so.6 (0x...)` or
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`); none for the vDSO.
fn parse_ldd_line(line: &str) -> Option<PathBuf> {
    let line = line.trim();
    let path = match line.split_once("=>") {
        Some((_, rest)) => rest.split_whitespace().next()?,
        None => line.split_whitespace().next()?,
    };
    path.starts_with('/').then(|| PathBuf::from(path))
}

/// Whether every image is loaded in every node (a cheap check for tests).
pub fn loaded(paths: &Paths, nodes_n: u32) -> bool {
    (1..=nodes_n).all(|n| {
        host::run(nodes::ctr(paths, n).args(["images", "ls", "-q"])).is_ok_and(|list| {
            IMAGES
                .iter()
                .filter(|s| workspace_root().join("crates").join(s.package).is_dir())
                .all(|s| list.lines().any(|l| l == references(s.repository)[0]))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::parse_ldd_line;
    use std::path::PathBuf;

    #[test]
    fn ldd_lines_give_library_paths_and_skip_the_vdso() {
        assert_eq!(parse_ldd_line("\tlinux-vdso.so.1 (0x00007ffd)"), None);
        assert_eq!(
            parse_ldd_line("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(
            parse_ldd_line("\t/lib64/ld-linux-x86-64.so.2 (0x00007f)"),
            Some(PathBuf::from("/lib64/ld-linux-x86-64.so.2"))
        );
    }
}
