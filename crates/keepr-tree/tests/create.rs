mod common;

use common::*;
use keepr_tree::acl::{creator_all_acl, open_acl_unsafe, read_acl_unsafe};
use keepr_tree::{EventType, OpResult, TreeConfig, TxnOp, MAX_TTL};
use keepr_wire::codes::{create_flags as f, perms};
use keepr_wire::{ErrorCode, Stat};

#[test]
fn create2_returns_stat_stamped_with_zxid_and_time() {
    let mut h = Harness::new();
    let zxid = h.next_zxid();
    let r = h
        .run(TxnOp::Create2(create_req(
            "/a",
            data("hello"),
            open_acl_unsafe(),
            0,
        )))
        .unwrap();
    let expected = Stat {
        czxid: zxid,
        mzxid: zxid,
        ctime: h.time,
        mtime: h.time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: zxid,
    };
    assert_eq!(
        r,
        OpResult::Create2 {
            path: "/a".into(),
            stat: expected.clone()
        }
    );
    assert_eq!(h.stat("/a"), expected);
}

#[test]
fn plain_create_returns_only_the_path() {
    let mut h = Harness::new();
    let r = h
        .run(TxnOp::Create(create_req("/a", None, open_acl_unsafe(), 0)))
        .unwrap();
    assert_eq!(r, OpResult::Create { path: "/a".into() });
}

#[test]
fn create_bumps_parent_cversion_pzxid_and_child_count_but_not_mzxid() {
    let mut h = Harness::new();
    h.mk("/p", "");
    let before = h.stat("/p");
    let zxid = h.next_zxid();
    h.mk("/p/c", "");
    let after = h.stat("/p");
    assert_eq!(after.cversion, 1);
    assert_eq!(after.num_children, 1);
    assert_eq!(after.pzxid, zxid);
    assert_eq!(after.mzxid, before.mzxid);
    assert_eq!(after.version, 0);
}

#[test]
fn fresh_root_shows_cversion_minus_one_like_zookeeper() {
    // The root got /zookeeper without a create, so 2 * 0 - 1.
    let h = Harness::new();
    assert_eq!(h.stat("/").cversion, -1);
    assert_eq!(h.stat("/").num_children, 1);
    assert_eq!(h.stat("/zookeeper").cversion, -2);
}

#[test]
fn create_sequential_suffix_uses_parent_create_count_not_child_count() {
    let mut h = Harness::new();
    h.mk("/q", "");
    assert_eq!(
        h.created_path("/q/n-", f::PERSISTENT_SEQUENTIAL),
        "/q/n-0000000000"
    );
    h.mk("/q/plain", "");
    h.delete("/q/n-0000000000", -1).unwrap();
    h.delete("/q/plain", -1).unwrap();
    // Two creates and two deletes: no children left, yet the counter is at 2.
    assert_eq!(h.stat("/q").num_children, 0);
    assert_eq!(h.stat("/q").cversion, 4);
    assert_eq!(
        h.created_path("/q/n-", f::EPHEMERAL_SEQUENTIAL),
        "/q/n-0000000002"
    );
}

#[test]
fn sequential_suffix_follows_java_int_overflow() {
    let mut h = Harness::new();
    h.mk("/q", "");
    // 2^31 creates would take too long: start from a snapshot whose create count is at the
    // edge.
    let mut bytes = Vec::new();
    h.tree.encode_snapshot(&mut bytes).unwrap();
    let mut tree = patch_create_count(&bytes, "/q", i32::MAX);
    let mut t = keepr_tree::Triggers::new();
    let cmd = |zxid, path: &str| keepr_tree::Command {
        zxid,
        time: 5,
        session: S1,
        owner: 0,
        auth: vec![],
        op: TxnOp::Create(create_req(
            path,
            None,
            open_acl_unsafe(),
            f::PERSISTENT_SEQUENTIAL,
        )),
    };
    assert_eq!(
        tree.apply(&cmd(1000, "/q/s"), &mut t),
        Ok(OpResult::Create {
            path: "/q/s2147483647".into()
        })
    );
    assert_eq!(
        tree.apply(&cmd(1001, "/q/s"), &mut t),
        Ok(OpResult::Create {
            path: "/q/s-2147483648".into()
        })
    );
    assert_eq!(
        tree.apply(&cmd(1002, "/q/s"), &mut t),
        Ok(OpResult::Create {
            path: "/q/s-2147483647".into()
        })
    );
}

/// Rewrites the stored create count of `path` in a snapshot (and its checksum).
fn patch_create_count(snapshot: &[u8], path: &str, cversion: i32) -> keepr_tree::Tree {
    let mut b = snapshot.to_vec();
    let needle: Vec<u8> = [&(path.len() as u32).to_be_bytes()[..], path.as_bytes()].concat();
    let at = b
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap()
        + needle.len();
    let data_len = i32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let fields = at + 4 + data_len.max(0) as usize + 5 * 8;
    b[fields + 4..fields + 8].copy_from_slice(&cversion.to_be_bytes());
    let n = b.len() - 4;
    let crc = crc32c::crc32c(&b[..n]);
    b[n..].copy_from_slice(&crc.to_be_bytes());
    keepr_tree::Tree::decode_snapshot(&b[..], TreeConfig::default()).unwrap()
}

#[test]
fn create_existing_node_is_node_exists() {
    let mut h = Harness::new();
    h.mk("/a", "");
    assert_eq!(err(h.create("/a", 0)), ErrorCode::NodeExists);
    assert_eq!(err(h.create("/", 0)), ErrorCode::NodeExists);
    assert_eq!(err(h.create("/zookeeper", 0)), ErrorCode::NodeExists);
}

#[test]
fn sequential_create_of_root_path_makes_a_child_of_the_root() {
    // ZooKeeper appends the suffix to "/" itself, giving "/0000000000".
    let mut h = Harness::new();
    assert_eq!(h.created_path("/", f::PERSISTENT_SEQUENTIAL), "/0000000000");
}

#[test]
fn create_with_missing_parent_is_no_node() {
    let mut h = Harness::new();
    assert_eq!(err(h.create("/x/y", 0)), ErrorCode::NoNode);
    // No leading slash but a slash somewhere: the "parent" does not exist.
    assert_eq!(err(h.create("x/y", 0)), ErrorCode::NoNode);
}

#[test]
fn create_path_without_slash_or_with_nul_is_bad_arguments() {
    let mut h = Harness::new();
    assert_eq!(err(h.create("abc", 0)), ErrorCode::BadArguments);
    assert_eq!(err(h.create("", 0)), ErrorCode::BadArguments);
    assert_eq!(err(h.create("/a\0b", 0)), ErrorCode::BadArguments);
}

#[test]
fn invalid_final_path_is_checked_after_parent_and_permission() {
    let mut h = Harness::new();
    h.mk("/a", "");
    assert_eq!(err(h.create("/a/", 0)), ErrorCode::BadArguments);
    assert_eq!(err(h.create("/a/.", 0)), ErrorCode::BadArguments);
    assert_eq!(err(h.create("/a/b\u{1}", 0)), ErrorCode::BadArguments);
    // With the parent missing, NONODE wins.
    assert_eq!(err(h.create("/nope/", 0)), ErrorCode::NoNode);
    // Without CREATE on the parent, NOAUTH wins.
    h.run(TxnOp::Create(create_req("/ro", None, read_acl_unsafe(), 0)))
        .unwrap();
    assert_eq!(err(h.create("/ro/", 0)), ErrorCode::NoAuth);
}

#[test]
fn create_checks_acl_validity_before_parent_existence() {
    let mut h = Harness::new();
    let r = h.run(TxnOp::Create(create_req("/missing/x", None, vec![], 0)));
    assert_eq!(err(r), ErrorCode::InvalidAcl);
}

#[test]
fn create_without_create_permission_on_parent_is_no_auth_even_if_node_exists() {
    let mut h = Harness::new();
    let acl = vec![acl(perms::ALL & !perms::CREATE, "world", "anyone")];
    h.run(TxnOp::Create(create_req("/p", None, acl, 0)))
        .unwrap();
    assert_eq!(err(h.create("/p/c", 0)), ErrorCode::NoAuth);
}

#[test]
fn create_under_ephemeral_is_no_children_for_ephemerals() {
    let mut h = Harness::new();
    h.create("/e", f::EPHEMERAL).unwrap();
    assert_eq!(err(h.create("/e/c", 0)), ErrorCode::NoChildrenForEphemerals);
    // NODEEXISTS comes first when both apply.
    assert_eq!(err(h.create("/e", 0)), ErrorCode::NodeExists);
}

#[test]
fn unknown_create_flags_are_bad_arguments() {
    let mut h = Harness::new();
    for flags in [-1, 7, 8, 100] {
        assert_eq!(
            err(h.create("/a", flags)),
            ErrorCode::BadArguments,
            "flags {flags}"
        );
    }
}

#[test]
fn writes_from_a_session_that_is_not_live_are_session_expired() {
    let mut h = Harness::new();
    let r = h.run_as(
        0x9999,
        &[],
        TxnOp::Create(create_req("/a", None, open_acl_unsafe(), f::EPHEMERAL)),
    );
    assert_eq!(err(r), ErrorCode::SessionExpired);
    let r = h.run_as(
        0x9999,
        &[],
        TxnOp::Create(create_req("/a", None, open_acl_unsafe(), 0)),
    );
    assert_eq!(err(r), ErrorCode::SessionExpired);
    h.run_as(S2, &[], TxnOp::CloseSession).unwrap();
    let r = h.run_as(
        S2,
        &[],
        TxnOp::Create(create_req("/a", None, open_acl_unsafe(), f::EPHEMERAL)),
    );
    assert_eq!(err(r), ErrorCode::SessionExpired);
}

#[test]
fn session_check_comes_after_flag_and_ttl_checks_but_before_path_checks() {
    let mut h = Harness::new();
    let dead = 0x9999;
    assert_eq!(
        err(h.run_as(dead, &[], TxnOp::Create(create_req("/a", None, vec![], 9)))),
        ErrorCode::BadArguments
    );
    assert_eq!(
        err(h.run_as(
            dead,
            &[],
            TxnOp::CreateTtl(ttl_req("/a", f::PERSISTENT_WITH_TTL, 0))
        )),
        ErrorCode::BadArguments
    );
    assert_eq!(
        err(h.run_as(
            dead,
            &[],
            TxnOp::Create(create_req("nopath", None, vec![], 0))
        )),
        ErrorCode::SessionExpired
    );
}

#[test]
fn null_data_is_kept_distinct_from_empty_data() {
    let mut h = Harness::new();
    h.run(TxnOp::Create(create_req(
        "/null",
        None,
        open_acl_unsafe(),
        0,
    )))
    .unwrap();
    h.run(TxnOp::Create(create_req(
        "/empty",
        data(""),
        open_acl_unsafe(),
        0,
    )))
    .unwrap();
    assert_eq!(h.tree.get_data("/null", &[]).unwrap().data, None);
    assert_eq!(h.tree.get_data("/empty", &[]).unwrap().data, Some(&b""[..]));
    assert_eq!(h.stat("/null").data_length, 0);
    assert_eq!(h.stat("/empty").data_length, 0);
}

#[test]
fn data_over_the_configured_limit_is_bad_arguments() {
    let mut h = Harness::with_config(TreeConfig { max_data_len: 4 });
    assert!(h
        .run(TxnOp::Create(create_req(
            "/ok",
            data("1234"),
            open_acl_unsafe(),
            0
        )))
        .is_ok());
    let r = h.run(TxnOp::Create(create_req(
        "/big",
        data("12345"),
        open_acl_unsafe(),
        0,
    )));
    assert_eq!(err(r), ErrorCode::BadArguments);
    assert_eq!(
        err(h.set("/ok", data("12345"), -1)),
        ErrorCode::BadArguments
    );
}

#[test]
fn default_data_limit_is_one_mebibyte() {
    assert_eq!(TreeConfig::default().max_data_len, 1 << 20);
}

#[test]
fn ephemeral_node_shows_its_session_as_owner() {
    let mut h = Harness::new();
    h.create("/e", f::EPHEMERAL).unwrap();
    assert_eq!(h.stat("/e").ephemeral_owner, S1);
    assert_eq!(h.tree.get_ephemerals(S1, "/"), vec!["/e".to_string()]);
    assert_eq!(h.tree.ephemerals_count(), 1);
}

#[test]
fn create_container_makes_a_container_whatever_its_flags() {
    let mut h = Harness::new();
    for (path, flags) in [("/c0", 0), ("/c1", f::EPHEMERAL), ("/c4", f::CONTAINER)] {
        let r = h
            .run(TxnOp::CreateContainer(create_req(
                path,
                None,
                open_acl_unsafe(),
                flags,
            )))
            .unwrap();
        assert!(matches!(r, OpResult::Create2 { .. }));
        assert_eq!(h.stat(path).ephemeral_owner, 0);
    }
    // A container may have children even when created with the ephemeral flag.
    h.mk("/c1/child", "");
    h.delete("/c1/child", -1).unwrap();
    assert_eq!(h.tree.reapable(h.time), vec!["/c1".to_string()]);
}

#[test]
fn container_flag_on_plain_create_makes_a_persistent_node() {
    let mut h = Harness::new();
    h.create("/p", f::CONTAINER).unwrap();
    h.mk("/p/c", "");
    h.delete("/p/c", -1).unwrap();
    assert!(h.tree.reapable(h.time).is_empty());
}

#[test]
fn create_ttl_needs_a_ttl_mode_and_a_ttl_in_range() {
    let mut h = Harness::new();
    for (flags, ttl) in [
        (f::PERSISTENT_WITH_TTL, 0),
        (f::PERSISTENT_WITH_TTL, -1),
        (f::PERSISTENT_WITH_TTL, MAX_TTL + 1),
        (f::PERSISTENT, 100),
        (f::PERSISTENT, -1),
        (f::EPHEMERAL, 5),
    ] {
        assert_eq!(
            err(h.run(TxnOp::CreateTtl(ttl_req("/t", flags, ttl)))),
            ErrorCode::BadArguments,
            "{flags} {ttl}"
        );
    }
    let r = h
        .run(TxnOp::CreateTtl(ttl_req(
            "/t",
            f::PERSISTENT_WITH_TTL,
            MAX_TTL,
        )))
        .unwrap();
    assert!(
        matches!(r, OpResult::Create2 { ref path, ref stat } if path == "/t" && stat.ephemeral_owner == 0)
    );
    let p = match h
        .run(TxnOp::CreateTtl(ttl_req(
            "/s",
            f::PERSISTENT_SEQUENTIAL_WITH_TTL,
            1,
        )))
        .unwrap()
    {
        OpResult::Create2 { path, .. } => path,
        other => panic!("{other:?}"),
    };
    assert_eq!(p, "/s0000000001");
}

#[test]
fn ttl_flags_without_create_ttl_are_bad_arguments() {
    let mut h = Harness::new();
    assert_eq!(
        err(h.create("/t", f::PERSISTENT_WITH_TTL)),
        ErrorCode::BadArguments
    );
    let r = h.run(TxnOp::CreateContainer(create_req(
        "/t",
        None,
        open_acl_unsafe(),
        f::PERSISTENT_SEQUENTIAL_WITH_TTL,
    )));
    assert_eq!(err(r), ErrorCode::BadArguments);
}

#[test]
fn create_fires_node_created_then_parent_children_changed() {
    let mut h = Harness::new();
    h.mk("/a", "");
    assert_eq!(
        h.fired(),
        vec![
            ("/a".into(), EventType::NodeCreated),
            ("/".into(), EventType::NodeChildrenChanged)
        ]
    );
    h.mk("/a/b", "");
    assert_eq!(
        h.fired(),
        vec![
            ("/a/b".into(), EventType::NodeCreated),
            ("/a".into(), EventType::NodeChildrenChanged)
        ]
    );
}

#[test]
fn failed_create_fires_nothing_and_changes_nothing() {
    let mut h = Harness::new();
    h.mk("/a", "");
    let before = h.stat("/");
    assert!(h.create("/a", 0).is_err());
    assert!(h.fired().is_empty());
    assert_eq!(h.stat("/"), before);
}

#[test]
fn auth_acl_expands_to_the_creators_digest_identities() {
    let mut h = Harness::new();
    let me = [id("ip", "10.0.0.1"), id("digest", "bob:hash")];
    h.run_as(
        S1,
        &me,
        TxnOp::Create(create_req("/mine", None, creator_all_acl(), 0)),
    )
    .unwrap();
    let (list, _) = h.tree.get_acl("/mine", &me).unwrap();
    assert_eq!(list, vec![acl(perms::ALL, "digest", "bob:hash")]);
    let only_ip = [id("ip", "10.0.0.1")];
    let r = h.run_as(
        S1,
        &only_ip,
        TxnOp::Create(create_req("/x", None, creator_all_acl(), 0)),
    );
    assert_eq!(err(r), ErrorCode::InvalidAcl);
}
