//! Snapshot encoding: round trips, canonical bytes, and rejection of every kind of corrupt
//! input without panicking.
mod common;

use common::*;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{SnapshotError, Tree, TreeConfig, TxnOp};
use keepr_wire::codes::create_flags as f;
use proptest::prelude::*;

fn encode(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    tree.encode_snapshot(&mut out).unwrap();
    out
}

fn decode(bytes: &[u8]) -> Result<Tree, SnapshotError> {
    Tree::decode_snapshot(bytes, TreeConfig::default())
}

/// A tree with a bit of everything: data, null data, ephemerals of two sessions, a
/// container, a TTL node, several ACLs and a used sequence counter.
fn sample() -> Harness {
    let mut h = Harness::new();
    h.mk("/app", "config");
    h.run(TxnOp::Create(create_req(
        "/app/null",
        None,
        open_acl_unsafe(),
        0,
    )))
    .unwrap();
    h.created_path("/app/seq-", f::PERSISTENT_SEQUENTIAL);
    h.create("/app/e1", f::EPHEMERAL).unwrap();
    h.run_as(
        S2,
        &[],
        TxnOp::Create(create_req(
            "/app/e2",
            data("x"),
            open_acl_unsafe(),
            f::EPHEMERAL,
        )),
    )
    .unwrap();
    h.run(TxnOp::CreateContainer(create_req(
        "/c",
        None,
        vec![acl(31, "ip", "10.0.0.0/8")],
        0,
    )))
    .unwrap();
    h.run(TxnOp::CreateTtl(ttl_req(
        "/t",
        f::PERSISTENT_WITH_TTL,
        60_000,
    )))
    .unwrap();
    h.set_acl(
        &[],
        "/app",
        vec![acl(31, "digest", "bob:h"), acl(1, "world", "anyone")],
        -1,
    )
    .unwrap();
    h.set("/app/null", data("now"), -1).unwrap();
    h
}

/// Every node with its Stat, data, ACL and children, through the public API.
fn dump(tree: &Tree) -> Vec<String> {
    let su = [id("super", "")];
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let d = tree.get_data(&p, &su).unwrap();
        let kids = tree.get_children(&p, &su).unwrap();
        out.push(format!(
            "{p} {:?} {:?} {:?} {kids:?}",
            d.stat,
            d.data,
            tree.get_acl(&p, &su).unwrap().0
        ));
        for k in kids {
            stack.push(if p == "/" {
                format!("/{k}")
            } else {
                format!("{p}/{k}")
            });
        }
    }
    out.push(format!("{:?} {:?}", tree.sessions(), tree.metrics()));
    for s in tree.sessions() {
        out.push(format!("{:?}", tree.get_ephemerals(s.0, "")));
    }
    out
}

#[test]
fn snapshot_round_trip_restores_an_identical_tree() {
    let h = sample();
    let bytes = encode(&h.tree);
    let restored = decode(&bytes).unwrap();
    assert_eq!(dump(&restored), dump(&h.tree));
    assert_eq!(restored.last_zxid(), h.tree.last_zxid());
    assert_eq!(
        restored.reapable(i64::MAX / 2),
        h.tree.reapable(i64::MAX / 2)
    );
    assert_eq!(restored.acl_count(), h.tree.acl_count());
    restored.check_invariants().unwrap();
    assert_eq!(encode(&restored), bytes);
}

#[test]
fn restored_tree_keeps_working_like_the_original() {
    let mut a = sample();
    let mut b = sample();
    b.tree = decode(&encode(&b.tree)).unwrap();
    for h in [&mut a, &mut b] {
        let bob = [id("digest", "bob:h")];
        let seq = create_req(
            "/app/seq-",
            None,
            open_acl_unsafe(),
            f::PERSISTENT_SEQUENTIAL,
        );
        h.run_as(S1, &bob, TxnOp::Create(seq)).unwrap();
        h.run_as(S2, &[], TxnOp::CloseSession).unwrap();
        let del = keepr_wire::DeleteRequest {
            path: "/app/e1".into(),
            version: -1,
        };
        h.run_as(S1, &bob, TxnOp::Delete(del)).unwrap();
    }
    assert_eq!(dump(&a.tree), dump(&b.tree));
}

#[test]
fn same_logical_tree_encodes_to_the_same_bytes_whatever_its_history() {
    // Children stored in different internal orders (insertion order, swap-removal, a
    // snapshot listing them differently) must not change the bytes.
    let one = Snap::new(&[], &[OPEN]).nodes(&with_system(&[
        ("/b", 0, 0, 0),
        ("/a", 0, 0, 0),
        ("/b/z", 0, 0, 0),
        ("/b/y", 0, 0, 0),
    ]));
    let two = Snap::new(&[], &[OPEN]).nodes(&with_system(&[
        ("/a", 0, 0, 0),
        ("/b", 0, 0, 0),
        ("/b/y", 0, 0, 0),
        ("/b/z", 0, 0, 0),
    ]));
    let e1 = encode(&decode(&one).unwrap());
    assert_eq!(e1, encode(&decode(&two).unwrap()));
}

#[test]
fn fresh_tree_round_trips() {
    let t = Tree::default();
    assert_eq!(dump(&decode(&encode(&t)).unwrap()), dump(&t));
}

#[test]
fn bad_magic_version_and_checksum_are_rejected() {
    let bytes = encode(&sample().tree);
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(decode(&b), Err(SnapshotError::BadMagic)));
    let mut b = bytes.clone();
    b[11] = 9;
    assert!(matches!(
        decode(&b),
        Err(SnapshotError::UnsupportedVersion(9))
    ));
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 1] ^= 1;
    assert!(matches!(decode(&b), Err(SnapshotError::Checksum { .. })));
    let mut b = bytes.clone();
    b.push(0);
    assert!(matches!(decode(&b), Err(SnapshotError::Corrupt(_))));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&sample().tree);
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "truncated at {len} decoded");
    }
}

/// Builds snapshots by hand, in the documented layout, to reach structural checks with a
/// valid checksum.
struct Snap {
    b: Vec<u8>,
}

impl Snap {
    fn new(sessions: &[(i64, i32)], acl_lists: &[&[(i32, &str, &str)]]) -> Snap {
        let mut s = Snap {
            b: b"KEEPRSNP".to_vec(),
        };
        s.u32(3);
        s.i64(0);
        s.b.extend((sessions.len() as u64).to_be_bytes());
        for (id, t) in sessions {
            s.i64(*id);
            s.i32(*t);
            s.b.extend([7u8; 16]);
            s.b.extend(0u64.to_be_bytes());
        }
        s.u32(acl_lists.len() as u32);
        for l in acl_lists {
            s.u32(l.len() as u32);
            for (p, sc, i) in l.iter() {
                s.i32(*p);
                s.str(sc);
                s.str(i);
            }
        }
        s
    }
    fn u32(&mut self, v: u32) {
        self.b.extend(v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.b.extend(v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.b.extend(v.to_be_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.b.extend(s.as_bytes());
    }
    fn nodes(mut self, nodes: &[(&str, u8, i64, u32)]) -> Vec<u8> {
        self.b.extend((nodes.len() as u64).to_be_bytes());
        for (path, kind, owner, acl) in nodes {
            self.str(path);
            self.i32(-1);
            for _ in 0..5 {
                self.i64(0);
            }
            for _ in 0..3 {
                self.i32(0);
            }
            self.b.push(*kind);
            self.i64(*owner);
            self.u32(*acl);
        }
        let crc = crc32c::crc32c(&self.b);
        self.b.extend(crc.to_be_bytes());
        self.b
    }
}

const OPEN: &[(i32, &str, &str)] = &[(31, "world", "anyone")];
const SYSTEM: [(&str, u8, i64, u32); 4] = [
    ("/", 0, 0, 0),
    ("/zookeeper", 0, 0, 0),
    ("/zookeeper/quota", 0, 0, 0),
    ("/zookeeper/config", 0, 0, 0),
];

fn with_system(extra: &[(&'static str, u8, i64, u32)]) -> Vec<(&'static str, u8, i64, u32)> {
    SYSTEM
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

fn corrupt(bytes: Vec<u8>) -> String {
    match decode(&bytes) {
        Err(SnapshotError::Corrupt(why)) => why.to_string(),
        other => format!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn hand_built_snapshot_in_the_documented_layout_decodes() {
    let b = Snap::new(&[(7, 3000)], &[OPEN]).nodes(&with_system(&[
        ("/e", 1, 7, 0),
        ("/t", 3, 500, 0),
        ("/c", 2, 0, 0),
    ]));
    let t = decode(&b).unwrap();
    assert_eq!(t.get_ephemerals(7, ""), vec!["/e"]);
    assert_eq!(t.node_count(), 7);
}

#[test]
fn structurally_inconsistent_snapshots_are_rejected() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            Snap::new(&[], &[OPEN]).nodes(&[("/zookeeper", 0, 0, 0)]),
            "first node is not the root",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&SYSTEM[..3]),
            "reserved node missing",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/a/b", 0, 0, 0)])),
            "node before its parent",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/a", 0, 0, 0), ("/a", 0, 0, 0)])),
            "duplicate node",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/a/", 0, 0, 0)])),
            "invalid node path",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/e", 1, 9, 0)])),
            "node owner does not fit its kind",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/t", 3, 0, 0)])),
            "node owner does not fit its kind",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/p", 0, 5, 0)])),
            "node owner does not fit its kind",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/k", 9, 0, 0)])),
            "unknown node kind",
        ),
        (
            Snap::new(&[], &[OPEN]).nodes(&with_system(&[("/k", 0, 0, 3)])),
            "ACL list out of range",
        ),
        (
            Snap::new(&[(1, 0)], &[OPEN])
                .nodes(&with_system(&[("/e", 1, 1, 0), ("/e/c", 0, 0, 0)])),
            "ephemeral node with children",
        ),
        (
            Snap::new(&[], &[OPEN, &[(1, "world", "anyone")]]).nodes(&SYSTEM),
            "unused ACL list",
        ),
        (
            Snap::new(&[], &[OPEN, &[(1, "world", "anyone")]]).nodes(&[
                ("/", 0, 0, 1),
                ("/zookeeper", 0, 0, 0),
                ("/zookeeper/quota", 0, 0, 0),
                ("/zookeeper/config", 0, 0, 0),
            ]),
            "ACL lists not numbered by first use",
        ),
        (Snap::new(&[], &[&[]]).nodes(&SYSTEM), "empty ACL list"),
        (
            Snap::new(&[(2, 0), (1, 0)], &[OPEN]).nodes(&SYSTEM),
            "sessions not strictly ordered by nonzero id",
        ),
        (
            Snap::new(&[(0, 0)], &[OPEN]).nodes(&SYSTEM),
            "sessions not strictly ordered by nonzero id",
        ),
        (
            Snap::new(&[(1, 0)], &[OPEN]).nodes(&[("/", 0, 0, 0), ("/zookeeper", 1, 1, 0)]),
            "reserved node is not persistent",
        ),
    ];
    for (i, (bytes, why)) in cases.into_iter().enumerate() {
        assert_eq!(corrupt(bytes), why, "case {i}");
    }
}

#[test]
fn huge_claimed_lengths_fail_without_allocating_them() {
    // A node path claiming 4 GiB in a tiny snapshot: truncated, not an allocation failure.
    let mut b = Snap::new(&[], &[OPEN]).b;
    b.extend(1u64.to_be_bytes());
    b.extend(u32::MAX.to_be_bytes());
    b.extend(b"/");
    assert!(matches!(decode(&b), Err(SnapshotError::Truncated)));
    // Billions of sessions claimed, none present.
    let mut b = b"KEEPRSNP".to_vec();
    b.extend(3u32.to_be_bytes());
    b.extend(0i64.to_be_bytes());
    b.extend(u64::MAX.to_be_bytes());
    assert!(matches!(decode(&b), Err(SnapshotError::Truncated)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_snapshots_never_panic_and_never_decode_differently(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let bytes = encode(&sample().tree);
        let mut b = bytes.clone();
        for (i, x) in &flips {
            let i = i.index(b.len());
            b[i] ^= x;
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        // A flipped bit anywhere is caught (at the latest by the checksum).
        prop_assert!(decode(&b).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut with_magic = b"KEEPRSNP\0\0\0\x01".to_vec();
        with_magic.extend(&b);
        let _ = decode(&b);
        let _ = decode(&with_magic);
    }
}
