//! A snapshot file as a member reads it at restart or receives it from the leader. The
//! first byte chooses whether the rest is taken as is (even) or is a snapshot without its
//! CRC-32C trailer, which is computed and appended (odd), so that mutations reach past the
//! checksum into every structural check. Decoding must never panic; a tree it accepts must
//! keep the tree's invariants, and encoding it must give a snapshot that decodes to the same
//! encoding again (decoding may accept orders that encoding normalises).
#![no_main]

use keepr_tree::{Tree, TreeConfig};
use libfuzzer_sys::fuzz_target;

fn encode(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    tree.encode_snapshot(&mut out).expect("writing to memory");
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut input = body.to_vec();
    if mode % 2 == 1 {
        input.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    }
    let Ok(tree) = Tree::decode_snapshot(&input[..], TreeConfig::default()) else {
        return;
    };
    if let Err(e) = tree.check_invariants() {
        panic!("decoded tree breaks an invariant: {e}");
    }
    let bytes = encode(&tree);
    let again = Tree::decode_snapshot(&bytes[..], TreeConfig::default())
        .unwrap_or_else(|e| panic!("a re-encoded snapshot is refused: {e}"));
    assert_eq!(encode(&again), bytes, "encoding is not stable");
});
