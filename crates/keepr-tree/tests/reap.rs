mod common;

use common::*;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{OpResult, TxnOp};
use keepr_wire::codes::create_flags as f;

fn container(h: &mut Harness, path: &str) {
    h.run(TxnOp::CreateContainer(create_req(
        path,
        None,
        open_acl_unsafe(),
        0,
    )))
    .unwrap();
}

#[test]
fn container_is_reapable_only_after_it_had_a_child_and_is_empty_again() {
    let mut h = Harness::new();
    container(&mut h, "/c");
    assert!(
        h.tree.reapable(h.time).is_empty(),
        "never-used container is kept"
    );
    h.mk("/c/x", "");
    assert!(
        h.tree.reapable(h.time).is_empty(),
        "container with a child is kept"
    );
    h.delete("/c/x", -1).unwrap();
    assert_eq!(h.tree.reapable(h.time), vec!["/c".to_string()]);
}

#[test]
fn ttl_node_is_reapable_when_empty_and_unmodified_for_longer_than_its_ttl() {
    let mut h = Harness::new();
    h.run(TxnOp::CreateTtl(ttl_req(
        "/t",
        f::PERSISTENT_WITH_TTL,
        5000,
    )))
    .unwrap();
    let mtime = h.stat("/t").mtime;
    assert!(
        h.tree.reapable(mtime + 5000).is_empty(),
        "exactly ttl is not past it"
    );
    assert_eq!(h.tree.reapable(mtime + 5001), vec!["/t".to_string()]);
    h.set("/t", data("touch"), -1).unwrap();
    let mtime2 = h.stat("/t").mtime;
    assert!(
        h.tree.reapable(mtime2 + 5000).is_empty(),
        "setData refreshes the clock"
    );
    h.mk("/t/kid", "");
    assert!(
        h.tree.reapable(mtime2 + 1_000_000).is_empty(),
        "a TTL node with children is kept"
    );
}

#[test]
fn a_ttl_counts_from_the_start_of_the_leaders_quorum_when_that_is_later_than_the_last_change() {
    let mut h = Harness::new();
    h.run(TxnOp::CreateTtl(ttl_req(
        "/t",
        f::PERSISTENT_WITH_TTL,
        5000,
    )))
    .unwrap();
    container(&mut h, "/c");
    h.mk("/c/x", "");
    h.delete("/c/x", -1).unwrap();
    let mtime = h.stat("/t").mtime;
    // The quorum returned long after the node's last change: nobody could touch it
    // meanwhile, so it gets its whole TTL from the quorum's return.
    let back = mtime + 60_000;
    assert_eq!(
        h.tree.reapable_since(back + 5000, back),
        vec!["/c".to_string()],
        "the TTL node is kept; the empty container (no clock) is not"
    );
    assert_eq!(
        h.tree.reapable_since(back + 5001, back),
        vec!["/c".to_string(), "/t".to_string()]
    );
    // A quorum held since before the change: the change is the clock, as in `reapable`.
    assert_eq!(
        h.tree.reapable_since(mtime + 5001, mtime - 1),
        h.tree.reapable(mtime + 5001)
    );
}

#[test]
fn reapable_nodes_are_sorted_by_path() {
    let mut h = Harness::new();
    for p in ["/z", "/b", "/m"] {
        container(&mut h, p);
        h.mk(&format!("{p}/x"), "");
        h.delete(&format!("{p}/x"), -1).unwrap();
    }
    h.run(TxnOp::CreateTtl(ttl_req("/a", f::PERSISTENT_WITH_TTL, 1)))
        .unwrap();
    assert_eq!(h.tree.reapable(h.time + 10), vec!["/a", "/b", "/m", "/z"]);
}

#[test]
fn reaping_is_a_command_that_deletes_and_then_the_parent_may_become_reapable() {
    let mut h = Harness::new();
    container(&mut h, "/outer");
    container(&mut h, "/outer/inner");
    h.mk("/outer/inner/x", "");
    h.delete("/outer/inner/x", -1).unwrap();
    assert_eq!(h.tree.reapable(h.time), vec!["/outer/inner"]);
    let r = h.run_as(
        0,
        &[],
        TxnOp::DeleteContainer {
            path: "/outer/inner".into(),
        },
    );
    assert_eq!(r, Ok(OpResult::Delete));
    assert_eq!(h.tree.reapable(h.time), vec!["/outer"]);
}
