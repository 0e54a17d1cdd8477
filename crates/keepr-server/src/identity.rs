//! Who a data directory belongs to: the member ordinal it was created for, its incarnation
//! and the cluster it joined, in `identity.json`.
//!
//! The Raft node id is `ordinal << 32 | incarnation`. The ordinal is the `--id` an operator
//! gives (ZooKeeper's myid, a StatefulSet ordinal); the incarnation changes whenever a member
//! starts on an empty directory that is not the first of its ensemble. So a member that lost
//! its disk never answers to its old Raft id with different data (which could elect two
//! leaders or lose committed entries); it waits to be added again and its old id is reported
//! stale. Members of a statically bootstrapped ensemble all start at incarnation 0.
//!
//! The cluster id of a statically bootstrapped ensemble is derived from the initial
//! membership and a cluster token, like etcd's, so every member computes the same id without
//! talking first. A joining member has none until the leader first contacts it, and adopts
//! that one. It is stored once and never recomputed. Peers put it on every call and refuse
//! calls from another cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "identity.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub ordinal: u64,
    pub incarnation: u32,
    /// `None` until a joining member is first contacted by its cluster's leader.
    pub cluster_id: Option<String>,
}

impl Identity {
    pub fn raft_id(&self) -> u64 {
        raft_id(self.ordinal, self.incarnation)
    }
}

/// The Raft node id of an ordinal's incarnation.
pub fn raft_id(ordinal: u64, incarnation: u32) -> u64 {
    (ordinal << 32) | incarnation as u64
}

/// The ordinal and incarnation of a Raft node id.
pub fn split(raft_id: u64) -> (u64, u32) {
    (raft_id >> 32, raft_id as u32)
}

/// How ids appear to people: the ordinal, plus the incarnation when it is not the first.
pub fn display(raft_id: u64) -> String {
    match split(raft_id) {
        (o, 0) => o.to_string(),
        (o, i) => format!("{o}.{i:08x}"),
    }
}

/// Parses what [`display`] prints (or a raw Raft id).
pub fn parse(s: &str) -> Option<u64> {
    match s.split_once('.') {
        Some((o, i)) => Some(raft_id(o.parse().ok()?, u32::from_str_radix(i, 16).ok()?)),
        None => {
            let n: u64 = s.parse().ok()?;
            // Small numbers are ordinals of a first incarnation; big ones raw ids.
            Some(if n <= 254 { raft_id(n, 0) } else { n })
        }
    }
}

/// A fresh incarnation number for a member that must not reuse its ordinal's old id.
pub fn new_incarnation() -> u32 {
    loop {
        let i: u32 = rand::random();
        if i != 0 {
            return i;
        }
    }
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
        "data directory belongs to member {found}, not {wanted}; use that id or a new directory"
    )]
    WrongMember { found: u64, wanted: u64 },
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

/// The identity stored in `dir`, if any, checked against the ordinal this member was
/// started as.
pub fn load(dir: &Path, ordinal: u64) -> Result<Option<Identity>, IdentityError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let id: Identity =
                serde_json::from_slice(&bytes).map_err(|source| IdentityError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
            if id.ordinal != ordinal {
                return Err(IdentityError::WrongMember {
                    found: id.ordinal,
                    wanted: ordinal,
                });
            }
            Ok(Some(id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Io { path, source }),
    }
}

/// Writes `id` to `dir` durably (temporary file, fsync, rename, directory fsync).
pub fn save(dir: &Path, id: &Identity) -> Result<(), IdentityError> {
    let path = dir.join(FILE);
    let io = |source| IdentityError::Io {
        path: path.clone(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    let json = serde_json::to_vec_pretty(id).map_err(|e| io(std::io::Error::other(e)))?;
    f.write_all(&json).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
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
    fn identity_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), 3).unwrap(), None);
        let id = Identity {
            ordinal: 3,
            incarnation: 7,
            cluster_id: Some("c1".into()),
        };
        save(dir.path(), &id).unwrap();
        assert_eq!(load(dir.path(), 3).unwrap(), Some(id));
    }

    #[test]
    fn directory_of_another_member_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity {
            ordinal: 1,
            incarnation: 0,
            cluster_id: None,
        };
        save(dir.path(), &id).unwrap();
        assert!(matches!(
            load(dir.path(), 2),
            Err(IdentityError::WrongMember {
                found: 1,
                wanted: 2
            })
        ));
    }

    #[test]
    fn raft_ids_carry_ordinal_and_incarnation_and_print_readably() {
        let id = raft_id(3, 0x1a2b);
        assert_eq!(split(id), (3, 0x1a2b));
        assert_eq!(display(raft_id(3, 0)), "3");
        assert_eq!(display(id), "3.00001a2b");
        assert_eq!(parse("3.00001a2b"), Some(id));
        assert_eq!(parse("3"), Some(raft_id(3, 0)));
        assert_eq!(parse(&id.to_string()), Some(id));
        assert_eq!(parse("x"), None);
    }
}
