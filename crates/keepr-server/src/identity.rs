//! Who a data directory belongs to: the node id it was created for and the cluster it
//! joined, in `identity.json`.
//!
//! The cluster id is derived from the initial membership and a cluster token, like etcd's,
//! so that every member of a statically bootstrapped ensemble computes the same id without
//! talking first; it is written once and never recomputed, so later flags cannot change it.
//! Peers put it on every call and refuse calls from another cluster, which keeps a member
//! pointed at the wrong peers (or the wrong data directory) from joining their log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "identity.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: u64,
    pub cluster_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid identity file: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "data directory belongs to node {found}, not {wanted}; use that id or a new directory"
    )]
    WrongNode { found: u64, wanted: u64 },
}

/// The cluster id an ensemble bootstrapped from `members` with `token` gets.
pub fn cluster_id_for(token: &str, members: &BTreeMap<u64, String>) -> String {
    // FNV-1a, 64 bits: stable across versions and platforms, which is all an id needs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(token.as_bytes());
    for (id, addr) in members {
        eat(b"\0");
        eat(id.to_string().as_bytes());
        eat(b"=");
        eat(addr.as_bytes());
    }
    format!("{h:016x}")
}

/// Reads the identity of `dir`, or writes one for a fresh directory. A directory holding
/// another node's identity is refused.
pub fn load_or_create(
    dir: &Path,
    node_id: u64,
    fresh_cluster_id: impl FnOnce() -> String,
) -> Result<Identity, IdentityError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let id: Identity =
                serde_json::from_slice(&bytes).map_err(|source| IdentityError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
            if id.node_id != node_id {
                return Err(IdentityError::WrongNode {
                    found: id.node_id,
                    wanted: node_id,
                });
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = Identity {
                node_id,
                cluster_id: fresh_cluster_id(),
            };
            write_durably(dir, &path, &id).map_err(|source| IdentityError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(id)
        }
        Err(source) => Err(IdentityError::Io { path, source }),
    }
}

fn write_durably(dir: &Path, path: &Path, id: &Identity) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(id).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_of_a_bootstrap_computes_the_same_cluster_id() {
        let m: BTreeMap<u64, String> = [(1, "a:1".into()), (2, "b:2".into())].into();
        assert_eq!(cluster_id_for("t", &m), cluster_id_for("t", &m.clone()));
        assert_ne!(cluster_id_for("t", &m), cluster_id_for("u", &m));
        let other: BTreeMap<u64, String> = [(1, "a:1".into()), (2, "b:3".into())].into();
        assert_ne!(cluster_id_for("t", &m), cluster_id_for("t", &other));
    }

    #[test]
    fn identity_is_written_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), 3, || "c1".into()).unwrap();
        let b = load_or_create(dir.path(), 3, || "c2".into()).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.cluster_id, "c1");
    }

    #[test]
    fn directory_of_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), 1, || "c".into()).unwrap();
        assert!(matches!(
            load_or_create(dir.path(), 2, || "c".into()),
            Err(IdentityError::WrongNode {
                found: 1,
                wanted: 2
            })
        ));
    }
}
