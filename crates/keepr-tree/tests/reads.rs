mod common;

use common::*;
use keepr_tree::acl::{open_acl_unsafe, read_acl_unsafe};
use keepr_tree::{ReadOp, ReadResult, TxnOp};
use keepr_wire::codes::{create_flags as f, perms};
use keepr_wire::{ErrorCode, PathWatchRequest};

fn secret(h: &mut Harness, path: &str) {
    // Only digest bob:h may do anything.
    h.run(TxnOp::Create(create_req(
        path,
        data("s"),
        vec![acl(perms::ALL, "digest", "bob:h")],
        0,
    )))
    .unwrap();
}

#[test]
fn exists_returns_stat_and_needs_read() {
    let mut h = Harness::new();
    h.mk("/a", "xy");
    assert_eq!(h.tree.exists("/a", &[]).unwrap(), h.stat("/a"));
    secret(&mut h, "/s");
    assert_eq!(h.tree.exists("/s", &[]), Err(ErrorCode::NoAuth));
    assert!(h.tree.exists("/s", &[id("digest", "bob:h")]).is_ok());
    assert_eq!(h.tree.exists("/missing", &[]), Err(ErrorCode::NoNode));
}

#[test]
fn exists_rejects_only_nul_and_treats_other_bad_paths_as_missing() {
    let h = Harness::new();
    assert_eq!(h.tree.exists("/a\0", &[]), Err(ErrorCode::BadArguments));
    assert_eq!(h.tree.exists("/a/", &[]), Err(ErrorCode::NoNode));
    assert_eq!(h.tree.exists("relative", &[]), Err(ErrorCode::NoNode));
    // "" is ZooKeeper's alias of the root in its node map.
    assert_eq!(h.tree.exists("", &[]).unwrap(), h.stat("/"));
}

#[test]
fn get_data_returns_data_and_stat_and_needs_read() {
    let mut h = Harness::new();
    h.mk("/a", "hello");
    let d = h.tree.get_data("/a", &[]).unwrap();
    assert_eq!(d.data, Some(&b"hello"[..]));
    assert_eq!(d.stat, h.stat("/a"));
    secret(&mut h, "/s");
    assert_eq!(h.tree.get_data("/s", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(
        h.tree.get_data("/s", &[id("super", "")]).unwrap().data,
        Some(&b"s"[..])
    );
    assert_eq!(h.tree.get_data("/nope", &[]), Err(ErrorCode::NoNode));
}

#[test]
fn get_children_lists_names_sorted_and_needs_read() {
    let mut h = Harness::new();
    h.mk("/p", "");
    for c in ["zeta", "alpha", "mid", "Beta"] {
        h.mk(&format!("/p/{c}"), "");
    }
    h.delete("/p/mid", -1).unwrap();
    assert_eq!(
        h.tree.get_children("/p", &[]).unwrap(),
        vec!["Beta", "alpha", "zeta"]
    );
    let (children, stat) = h.tree.get_children2("/p", &[]).unwrap();
    assert_eq!(children.len(), 3);
    assert_eq!(stat, h.stat("/p"));
    assert_eq!(stat.cversion, 5);
    assert_eq!(
        h.tree.get_children("/", &[]).unwrap(),
        vec!["p", "zookeeper"]
    );
    assert_eq!(
        h.tree.get_children("/zookeeper", &[]).unwrap(),
        vec!["config", "quota"]
    );
    secret(&mut h, "/s");
    assert_eq!(h.tree.get_children("/s", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.get_children2("/s", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.get_children("/nope", &[]), Err(ErrorCode::NoNode));
}

#[test]
fn get_all_children_number_counts_all_descendants() {
    let mut h = Harness::new();
    h.mk("/a", "");
    h.mk("/a/b", "");
    h.mk("/a/b/c", "");
    h.mk("/a/d", "");
    assert_eq!(h.tree.get_all_children_number("/a", &[]), Ok(3));
    assert_eq!(h.tree.get_all_children_number("/a/d", &[]), Ok(0));
    // The root counts everything but itself, system nodes included.
    assert_eq!(h.tree.get_all_children_number("/", &[]), Ok(3 + 4));
    assert_eq!(h.tree.get_all_children_number("/zookeeper", &[]), Ok(2));
    assert_eq!(
        h.tree.get_all_children_number("/x", &[]),
        Err(ErrorCode::NoNode)
    );
    secret(&mut h, "/s");
    assert_eq!(
        h.tree.get_all_children_number("/s", &[]),
        Err(ErrorCode::NoAuth)
    );
}

#[test]
fn get_ephemerals_lists_only_the_callers_session_by_plain_prefix() {
    let mut h = Harness::new();
    h.mk("/app", "");
    h.create("/app/e1", f::EPHEMERAL).unwrap();
    h.create("/apple", f::EPHEMERAL).unwrap();
    h.create("/b", f::EPHEMERAL).unwrap();
    h.run_as(
        S2,
        &[],
        TxnOp::Create(create_req(
            "/app/other",
            None,
            open_acl_unsafe(),
            f::EPHEMERAL,
        )),
    )
    .unwrap();
    assert_eq!(h.tree.get_ephemerals(S1, "/app"), vec!["/app/e1", "/apple"]);
    assert_eq!(h.tree.get_ephemerals(S1, "/app/"), vec!["/app/e1"]);
    for all in ["", "/", "  / ", "\t"] {
        assert_eq!(
            h.tree.get_ephemerals(S1, all),
            vec!["/app/e1", "/apple", "/b"],
            "{all:?}"
        );
    }
    assert_eq!(h.tree.get_ephemerals(S2, ""), vec!["/app/other"]);
    assert!(h.tree.get_ephemerals(0x5555, "").is_empty());
}

#[test]
fn get_acl_needs_read_or_admin_and_masks_digests_without_admin() {
    let mut h = Harness::new();
    let list = vec![
        acl(perms::READ, "world", "anyone"),
        acl(perms::ALL, "digest", "bob:secrethash"),
    ];
    h.run(TxnOp::Create(create_req("/a", None, list.clone(), 0)))
        .unwrap();
    let (got, stat) = h.tree.get_acl("/a", &[]).unwrap();
    assert_eq!(
        got,
        vec![
            acl(perms::READ, "world", "anyone"),
            acl(perms::ALL, "digest", "bob:x")
        ]
    );
    assert_eq!(stat, h.stat("/a"));
    assert_eq!(
        h.tree
            .get_acl("/a", &[id("digest", "bob:secrethash")])
            .unwrap()
            .0,
        list
    );
    // ADMIN alone is enough to read the ACL.
    h.run(TxnOp::Create(create_req(
        "/adm",
        None,
        vec![acl(perms::ADMIN, "world", "anyone")],
        0,
    )))
    .unwrap();
    assert!(h.tree.get_acl("/adm", &[]).is_ok());
    h.run(TxnOp::Create(create_req(
        "/w",
        None,
        vec![acl(perms::WRITE, "world", "anyone")],
        0,
    )))
    .unwrap();
    assert_eq!(h.tree.get_acl("/w", &[]), Err(ErrorCode::NoAuth));
    assert_eq!(h.tree.get_acl("/nope", &[]), Err(ErrorCode::NoNode));
    assert_eq!(
        h.tree.get_acl("/zookeeper/config", &[]).unwrap().0,
        read_acl_unsafe()
    );
}

#[test]
fn multi_read_answers_each_op_independently() {
    let mut h = Harness::new();
    h.mk("/a", "A");
    h.mk("/a/k", "");
    secret(&mut h, "/s");
    let pw = |p: &str| PathWatchRequest {
        path: p.into(),
        watch: false,
    };
    let r = h.tree.multi_read(
        &[
            ReadOp::GetData(pw("/a")),
            ReadOp::GetData(pw("/missing")),
            ReadOp::GetChildren(pw("/a")),
            ReadOp::GetChildren(pw("/s")),
        ],
        &[],
    );
    assert!(matches!(&r[0], Ok(ReadResult::Data(d)) if d.data == Some(&b"A"[..])));
    assert_eq!(r[1], Err(ErrorCode::NoNode));
    assert_eq!(r[2], Ok(ReadResult::Children(vec!["k"])));
    assert_eq!(r[3], Err(ErrorCode::NoAuth));
}

#[test]
fn ip_acl_grants_reads_to_connections_in_the_network() {
    let mut h = Harness::new();
    h.run(TxnOp::Create(create_req(
        "/lan",
        data("x"),
        vec![acl(perms::READ, "ip", "192.168.0.0/16")],
        0,
    )))
    .unwrap();
    assert!(h.tree.get_data("/lan", &[id("ip", "192.168.4.5")]).is_ok());
    assert_eq!(
        h.tree.get_data("/lan", &[id("ip", "10.0.0.1")]),
        Err(ErrorCode::NoAuth)
    );
}

#[test]
fn metrics_follow_zookeeper_names_and_counts() {
    let mut h = Harness::new();
    h.mk("/a", "12345");
    h.create("/e", f::EPHEMERAL).unwrap();
    let m = h.tree.metrics();
    assert_eq!(h.tree.node_count(), 6);
    assert_eq!(m.znode_count, 7);
    assert_eq!(m.ephemerals_count, 1);
    assert_eq!(m.global_sessions, 2);
    assert_eq!(m.approximate_data_size, 44 + 2 + 5 + 2);
}
