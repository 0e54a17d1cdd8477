//! A Raft log entry's payload: a tree command as a member reads it back from its log or
//! receives it from the leader. Decoding must never panic; what decodes must survive
//! encode → decode unchanged with a stable encoding. It is then applied, with the next
//! zxid as the state machine stamps it, to a small tree
//! (sessions 0x1000 and 0x2000, nodes of every kind), as every member would: applying must
//! not panic, must keep the tree's invariants, and the resulting tree must survive a
//! snapshot round trip (a member must be able to restart from any state it can reach).
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use keepr_tree::{Command, Tree, TreeConfig, Triggers};
use libfuzzer_sys::fuzz_target;

#[path = "../common/base_tree.rs"]
mod base_tree;

/// Built once; every input applies to a copy.
fn base() -> &'static Tree {
    static BASE: OnceLock<Tree> = OnceLock::new();
    BASE.get_or_init(base_tree::base_tree)
}

fuzz_target!(|data: &[u8]| {
    let Ok(cmd) = Command::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let bytes = cmd.to_bytes();
    let again = Command::decode(bytes.clone()).expect("a re-encoded command decodes");
    assert_eq!(again, cmd);
    assert_eq!(again.to_bytes(), bytes);

    let mut tree = base().clone();
    let mut cmd = cmd;
    // The state machine stamps the log index over whatever the entry carried.
    cmd.zxid = tree.last_zxid() + 1;
    let mut triggers = Triggers::new();
    let _ = tree.apply(&cmd, &mut triggers);
    if let Err(e) = tree.check_invariants() {
        panic!("applying {cmd:?} broke an invariant: {e}");
    }
    let mut snapshot = Vec::new();
    tree.encode_snapshot(&mut snapshot)
        .expect("writing to memory");
    let restored = Tree::decode_snapshot(&snapshot[..], TreeConfig::default())
        .unwrap_or_else(|e| panic!("after {cmd:?} the snapshot is refused: {e}"));
    let mut again = Vec::new();
    restored
        .encode_snapshot(&mut again)
        .expect("writing to memory");
    assert_eq!(again, snapshot, "restored tree differs after {cmd:?}");
});
