//! Container images without a registry or a builder: a root filesystem assembled in memory
//! and written as a one-layer OCI image archive (`oci-layout`, `index.json`, blobs), which
//! `ctr images import` loads into a node's containerd. Deterministic: the same files give
//! the same bytes (and digests), so a rebuilt image is recognised as unchanged.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::host::{io_err, HostError, Result};

enum Entry {
    Dir { mode: u32 },
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// An image being assembled: paths relative to `/`, an entrypoint, and the user it runs as.
pub struct Image {
    reference: String,
    entrypoint: Vec<String>,
    user: Option<String>,
    env: Vec<String>,
    entries: BTreeMap<String, Entry>,
}

impl Image {
    /// `reference` is the name containerd lists it under (`keepr:dev`).
    pub fn new(reference: &str, entrypoint: Vec<String>) -> Image {
        Image {
            reference: reference.to_string(),
            entrypoint,
            user: None,
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()],
            entries: BTreeMap::new(),
        }
    }

    /// Runs the entrypoint as `uid:gid` instead of root.
    pub fn run_as(&mut self, uid: u32, gid: u32) {
        self.user = Some(format!("{uid}:{gid}"));
    }

    fn parents(&mut self, path: &str) {
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.entries
                .entry(at.clone())
                .or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    pub fn add_dir(&mut self, path: &str, mode: u32) {
        let path = path.trim_matches('/').to_string();
        self.parents(&path);
        self.entries.insert(path, Entry::Dir { mode });
    }

    pub fn add_file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        let path = path.trim_matches('/').to_string();
        self.parents(&path);
        self.entries.insert(path, Entry::File { data, mode });
    }

    /// A file copied from the host (resolving symlinks: the image gets the contents).
    pub fn add_file_from(&mut self, path: &str, source: &Path, mode: u32) -> Result<()> {
        let data = fs::read(source).map_err(io_err(format!("reading {}", source.display())))?;
        self.add_file(path, data, mode);
        Ok(())
    }

    pub fn add_symlink(&mut self, path: &str, target: &str) {
        let path = path.trim_matches('/').to_string();
        self.parents(&path);
        self.entries.insert(
            path,
            Entry::Symlink {
                target: target.to_string(),
            },
        );
    }

    /// The layer: a tar of every entry, sorted, owned by root, mtime 0.
    fn layer(&self) -> Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        for (path, entry) in &self.entries {
            let mut h = tar::Header::new_ustar();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            let res = match entry {
                Entry::Dir { mode } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                }
                Entry::File { data, mode } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    tar.append_data(&mut h, path, data.as_slice())
                }
                Entry::Symlink { target } => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    tar.append_link(&mut h, path, target)
                }
            };
            res.map_err(io_err(format!("adding {path} to the layer")))?;
        }
        tar.into_inner().map_err(io_err("finishing the layer"))
    }

    /// Writes the OCI archive to `out` (via a temporary file). Returns the manifest digest.
    pub fn write_archive(&self, out: &Path) -> Result<String> {
        let layer = self.layer()?;
        let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let layer_digest = blob(&mut blobs, layer);
        let mut config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": self.entrypoint, "Env": self.env, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest.0]},
            "history": [{"created_by": "keepr-e2e"}],
        });
        if let Some(user) = &self.user {
            config["config"]["User"] = serde_json::Value::String(user.clone());
        }
        let config_digest = blob(&mut blobs, to_json(&config)?);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest.0, "size": config_digest.1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest.0, "size": layer_digest.1}],
        });
        let manifest_digest = blob(&mut blobs, to_json(&manifest)?);
        let tag = self
            .reference
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or("latest", |(_, t)| t);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": manifest_digest.0, "size": manifest_digest.1,
                           "platform": {"architecture": "amd64", "os": "linux"},
                           "annotations": {"io.containerd.image.name": self.reference,
                                           "org.opencontainers.image.ref.name": tag}}],
        });
        let mut archive = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| -> Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            archive
                .append_data(&mut h, name, data)
                .map_err(io_err(format!("adding {name} to the archive")))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &to_json(&index)?)?;
        for (digest, data) in &blobs {
            add(&format!("blobs/sha256/{digest}"), data)?;
        }
        let bytes = archive
            .into_inner()
            .map_err(io_err("finishing the archive"))?;
        crate::host::write_file(out, &bytes)?;
        Ok(manifest_digest.0)
    }
}

fn to_json(v: &serde_json::Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| HostError::Io {
        what: "encoding image metadata".into(),
        source: std::io::Error::other(e),
    })
}

/// Stores `data` as a blob; its `sha256:...` digest and size.
fn blob(blobs: &mut BTreeMap<String, Vec<u8>>, data: Vec<u8>) -> (String, usize) {
    let hex = format!("{:x}", Sha256::digest(&data));
    let size = data.len();
    blobs.insert(hex.clone(), data);
    (format!("sha256:{hex}"), size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(archive: &[u8]) -> Vec<String> {
        let mut t = tar::Archive::new(archive);
        t.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn the_same_files_give_the_same_archive_and_the_layout_containerd_imports() {
        let dir = std::env::temp_dir().join(format!("oci-test-{}", std::process::id()));
        let build = |name: &str| {
            let mut img = Image::new("keepr:dev", vec!["/usr/local/bin/keepr".into()]);
            img.run_as(65532, 65532);
            img.add_file("usr/local/bin/keepr", b"\x7fELF".to_vec(), 0o755);
            img.add_symlink("bin/sh", "nothing");
            let out = dir.join(name);
            let digest = img.write_archive(&out).unwrap();
            (digest, std::fs::read(&out).unwrap())
        };
        let (d1, a1) = build("a.tar");
        let (d2, a2) = build("b.tar");
        assert_eq!(d1, d2);
        assert_eq!(a1, a2);
        let names = entries(&a1);
        assert_eq!(&names[..2], ["oci-layout", "index.json"]);
        assert_eq!(names.len(), 2 + 3, "layer, config and manifest blobs");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
