//! delete, setData, setACL, check, deleteContainer, sessions.
mod common;

use common::*;
use keepr_tree::acl::{open_acl_unsafe, read_acl_unsafe};
use keepr_tree::{EventType, OpResult, TxnOp};
use keepr_wire::codes::{create_flags as f, perms};
use keepr_wire::{CheckVersionRequest, ErrorCode};

#[test]
fn delete_removes_node_and_moves_parent_pzxid_not_cversion_store() {
    let mut h = Harness::new();
    h.mk("/p", "");
    h.mk("/p/c", "");
    let zxid = h.next_zxid();
    assert_eq!(h.delete("/p/c", -1), Ok(OpResult::Delete));
    let p = h.stat("/p");
    assert_eq!(p.num_children, 0);
    assert_eq!(p.pzxid, zxid);
    // One create and one delete: cversion 2.
    assert_eq!(p.cversion, 2);
    assert!(h.tree.stat("/p/c").is_none());
    assert_eq!(
        h.fired(),
        vec![
            ("/p/c".into(), EventType::NodeDeleted),
            ("/p".into(), EventType::NodeChildrenChanged)
        ]
    );
}

#[test]
fn delete_checks_version() {
    let mut h = Harness::new();
    h.mk("/a", "");
    h.set("/a", data("x"), -1).unwrap();
    assert_eq!(err(h.delete("/a", 0)), ErrorCode::BadVersion);
    assert_eq!(h.delete("/a", 1), Ok(OpResult::Delete));
}

#[test]
fn delete_of_node_with_children_is_not_empty_after_version_check() {
    let mut h = Harness::new();
    h.mk("/a", "");
    h.mk("/a/b", "");
    assert_eq!(err(h.delete("/a", 5)), ErrorCode::BadVersion);
    assert_eq!(err(h.delete("/a", -1)), ErrorCode::NotEmpty);
}

#[test]
fn delete_of_missing_node_or_parent_is_no_node() {
    let mut h = Harness::new();
    assert_eq!(err(h.delete("/nope", -1)), ErrorCode::NoNode);
    assert_eq!(err(h.delete("/nope/deeper", -1)), ErrorCode::NoNode);
    assert_eq!(err(h.delete("/a//b", -1)), ErrorCode::NoNode);
}

#[test]
fn reserved_nodes_cannot_be_deleted() {
    let mut h = Harness::new();
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(err(h.delete(p, -1)), ErrorCode::BadArguments, "{p}");
    }
    assert_eq!(err(h.delete("noslash", -1)), ErrorCode::BadArguments);
    assert_eq!(err(h.delete("/a\0", -1)), ErrorCode::BadArguments);
}

#[test]
fn delete_needs_delete_permission_on_the_parent_checked_before_the_node_exists() {
    let mut h = Harness::new();
    let no_delete = vec![acl(perms::ALL & !perms::DELETE, "world", "anyone")];
    h.run(TxnOp::Create(create_req("/p", None, no_delete, 0)))
        .unwrap();
    h.mk("/p/c", "");
    assert_eq!(err(h.delete("/p/c", -1)), ErrorCode::NoAuth);
    assert_eq!(err(h.delete("/p/missing", -1)), ErrorCode::NoAuth);
    // The node's own ACL does not matter.
    h.run(TxnOp::Create(create_req(
        "/locked",
        None,
        read_acl_unsafe(),
        0,
    )))
    .unwrap();
    assert_eq!(h.delete("/locked", -1), Ok(OpResult::Delete));
}

#[test]
fn set_data_bumps_version_mzxid_mtime_and_returns_stat() {
    let mut h = Harness::new();
    h.mk("/a", "old");
    let created = h.stat("/a");
    let zxid = h.next_zxid();
    let r = h.set("/a", data("newer"), 0).unwrap();
    let stat = h.stat("/a");
    assert_eq!(r, OpResult::SetData { stat: stat.clone() });
    assert_eq!(stat.version, 1);
    assert_eq!(stat.mzxid, zxid);
    assert_eq!(stat.mtime, h.time);
    assert_eq!(stat.czxid, created.czxid);
    assert_eq!(stat.ctime, created.ctime);
    assert_eq!(stat.data_length, 5);
    assert_eq!(
        h.tree.get_data("/a", &[]).unwrap().data,
        Some(&b"newer"[..])
    );
    assert_eq!(h.fired(), vec![("/a".into(), EventType::NodeDataChanged)]);
}

#[test]
fn set_data_with_identical_bytes_still_bumps_version_and_fires() {
    let mut h = Harness::new();
    h.mk("/a", "same");
    h.set("/a", data("same"), -1).unwrap();
    assert_eq!(h.stat("/a").version, 1);
    assert_eq!(h.fired().len(), 1);
}

#[test]
fn set_data_can_set_null_and_back() {
    let mut h = Harness::new();
    h.mk("/a", "x");
    h.set("/a", None, -1).unwrap();
    assert_eq!(h.tree.get_data("/a", &[]).unwrap().data, None);
    h.set("/a", data(""), -1).unwrap();
    assert_eq!(h.tree.get_data("/a", &[]).unwrap().data, Some(&b""[..]));
    assert_eq!(h.tree.approximate_data_size(), 1 + 10 + 16 + 17 + 2);
}

#[test]
fn set_data_errors_in_zookeeper_order() {
    let mut h = Harness::new();
    assert_eq!(err(h.set("bad", None, -1)), ErrorCode::BadArguments);
    assert_eq!(err(h.set("/a/", None, -1)), ErrorCode::BadArguments);
    assert_eq!(err(h.set("/missing", None, -1)), ErrorCode::NoNode);
    h.run(TxnOp::Create(create_req("/ro", None, read_acl_unsafe(), 0)))
        .unwrap();
    // NOAUTH before BADVERSION.
    assert_eq!(err(h.set("/ro", None, 7)), ErrorCode::NoAuth);
    h.mk("/rw", "");
    assert_eq!(err(h.set("/rw", None, 7)), ErrorCode::BadVersion);
}

#[test]
fn root_data_can_be_set() {
    let mut h = Harness::new();
    h.set("/", data("r"), -1).unwrap();
    assert_eq!(h.stat("/").version, 1);
}

#[test]
fn config_node_is_read_only_for_everyone() {
    let mut h = Harness::new();
    assert_eq!(
        err(h.set("/zookeeper/config", data("x"), -1)),
        ErrorCode::NoAuth
    );
    assert!(h.tree.get_data("/zookeeper/config", &[]).is_ok());
}

#[test]
fn set_acl_replaces_acl_bumps_aversion_only_and_fires_nothing() {
    let mut h = Harness::new();
    h.mk("/a", "d");
    let before = h.stat("/a");
    let r = h.set_acl(&[], "/a", read_acl_unsafe(), 0).unwrap();
    let after = h.stat("/a");
    assert_eq!(
        r,
        OpResult::SetAcl {
            stat: after.clone()
        }
    );
    assert_eq!(after.aversion, 1);
    assert_eq!(after.version, before.version);
    assert_eq!(after.mzxid, before.mzxid);
    assert!(h.fired().is_empty());
    assert_eq!(h.tree.get_acl("/a", &[]).unwrap().0, read_acl_unsafe());
}

#[test]
fn set_acl_checks_aversion_and_admin_permission() {
    let mut h = Harness::new();
    h.mk("/a", "");
    assert_eq!(
        err(h.set_acl(&[], "/a", read_acl_unsafe(), 3)),
        ErrorCode::BadVersion
    );
    h.set_acl(&[], "/a", read_acl_unsafe(), -1).unwrap();
    assert_eq!(
        err(h.set_acl(&[], "/a", open_acl_unsafe(), -1)),
        ErrorCode::NoAuth
    );
    assert!(h
        .set_acl(&[id("super", "")], "/a", open_acl_unsafe(), 1)
        .is_ok());
}

#[test]
fn set_acl_validates_acl_before_looking_up_the_node() {
    let mut h = Harness::new();
    assert_eq!(
        err(h.set_acl(&[], "/missing", vec![], -1)),
        ErrorCode::InvalidAcl
    );
    assert_eq!(
        err(h.set_acl(&[], "bad", vec![], -1)),
        ErrorCode::BadArguments
    );
    assert_eq!(
        err(h.set_acl(&[], "/missing", open_acl_unsafe(), -1)),
        ErrorCode::NoNode
    );
}

#[test]
fn identical_acls_are_stored_once() {
    let mut h = Harness::new();
    let lists_before = h.tree.acl_count();
    for i in 0..50 {
        h.mk(&format!("/n{i}"), "");
    }
    assert_eq!(h.tree.acl_count(), lists_before);
    h.set_acl(&[], "/n1", vec![acl(perms::READ, "ip", "10.0.0.0/8")], -1)
        .unwrap();
    assert_eq!(h.tree.acl_count(), lists_before + 1);
    h.delete("/n1", -1).unwrap();
    assert_eq!(h.tree.acl_count(), lists_before);
}

#[test]
fn check_passes_or_fails_on_version_without_changing_anything() {
    let mut h = Harness::new();
    h.mk("/a", "");
    let check = |path: &str, version| {
        TxnOp::Check(CheckVersionRequest {
            path: path.into(),
            version,
        })
    };
    assert_eq!(h.run(check("/a", 0)), Ok(OpResult::Check));
    assert_eq!(err(h.run(check("/a", 1))), ErrorCode::BadVersion);
    assert_eq!(err(h.run(check("/b", 0))), ErrorCode::NoNode);
    assert_eq!(err(h.run(check("b", 0))), ErrorCode::BadArguments);
    h.set_acl(&[], "/a", vec![acl(perms::WRITE, "world", "anyone")], -1)
        .unwrap();
    assert_eq!(err(h.run(check("/a", 0))), ErrorCode::NoAuth);
    assert!(h.fired().is_empty());
}

#[test]
fn create_session_records_timeout_and_close_session_forgets_it() {
    const S3: i64 = 0x33;
    let mut h = Harness::new();
    assert_eq!(h.tree.session_timeout(S1), Some(10_000));
    assert_eq!(
        h.run_as(
            S3,
            &[],
            TxnOp::CreateSession {
                timeout: 4000,
                passwd: [7; 16]
            }
        ),
        Ok(OpResult::Session)
    );
    assert_eq!(h.tree.session_timeout(S3), Some(4000));
    let mut expected = vec![(S1, 10_000), (S2, 10_000), (S3, 4000)];
    expected.sort_unstable();
    assert_eq!(h.tree.sessions(), expected);
    h.run_as(S1, &[], TxnOp::CloseSession).unwrap();
    assert!(!h.tree.has_session(S1));
    assert_eq!(h.tree.session_count(), 2);
    // Closing an unknown session is a no-op.
    assert_eq!(
        h.run_as(0x77, &[], TxnOp::CloseSession),
        Ok(OpResult::Session)
    );
}

#[test]
fn session_id_zero_is_refused() {
    let mut h = Harness::new();
    assert_eq!(
        err(h.run_as(
            0,
            &[],
            TxnOp::CreateSession {
                timeout: 1,
                passwd: [7; 16]
            }
        )),
        ErrorCode::BadArguments
    );
}

#[test]
fn close_session_deletes_its_ephemerals_in_path_order_and_fires_their_watches() {
    let mut h = Harness::new();
    h.mk("/x", "");
    h.create("/x/b", f::EPHEMERAL).unwrap();
    h.create("/a", f::EPHEMERAL).unwrap();
    h.create("/x/a", f::EPHEMERAL).unwrap();
    h.run_as(
        S2,
        &[],
        TxnOp::Create(create_req("/other", None, open_acl_unsafe(), f::EPHEMERAL)),
    )
    .unwrap();
    let zxid = h.next_zxid();
    h.run_as(S1, &[], TxnOp::CloseSession).unwrap();
    assert_eq!(
        h.fired(),
        vec![
            ("/a".into(), EventType::NodeDeleted),
            ("/".into(), EventType::NodeChildrenChanged),
            ("/x/a".into(), EventType::NodeDeleted),
            ("/x".into(), EventType::NodeChildrenChanged),
            ("/x/b".into(), EventType::NodeDeleted),
            ("/x".into(), EventType::NodeChildrenChanged),
        ]
    );
    assert_eq!(h.children("/"), vec!["other", "x", "zookeeper"]);
    assert_eq!(h.stat("/x").pzxid, zxid);
    assert_eq!(h.tree.ephemerals_count(), 1);
}

#[test]
fn delete_container_removes_empty_container_without_session_or_acl() {
    let mut h = Harness::new();
    h.run(TxnOp::CreateContainer(create_req(
        "/c",
        None,
        read_acl_unsafe(),
        0,
    )))
    .unwrap();
    let r = h.run_as(0, &[], TxnOp::DeleteContainer { path: "/c".into() });
    assert_eq!(r, Ok(OpResult::Delete));
    assert_eq!(
        h.fired(),
        vec![
            ("/c".into(), EventType::NodeDeleted),
            ("/".into(), EventType::NodeChildrenChanged)
        ]
    );
}

#[test]
fn delete_container_is_a_no_op_if_the_node_gained_children() {
    let mut h = Harness::new();
    h.run(TxnOp::CreateContainer(create_req(
        "/c",
        None,
        open_acl_unsafe(),
        0,
    )))
    .unwrap();
    h.mk("/c/kid", "");
    assert_eq!(
        err(h.run_as(0, &[], TxnOp::DeleteContainer { path: "/c".into() })),
        ErrorCode::NotEmpty
    );
    assert!(h.tree.stat("/c").is_some());
    assert!(h.fired().is_empty());
}

#[test]
fn delete_container_refuses_ephemerals_reserved_and_missing_nodes() {
    let mut h = Harness::new();
    h.create("/e", f::EPHEMERAL).unwrap();
    let dc = |p: &str| TxnOp::DeleteContainer { path: p.into() };
    assert_eq!(err(h.run_as(0, &[], dc("/e"))), ErrorCode::BadVersion);
    assert_eq!(
        err(h.run_as(0, &[], dc("/zookeeper"))),
        ErrorCode::BadArguments
    );
    assert_eq!(err(h.run_as(0, &[], dc("/gone"))), ErrorCode::NoNode);
}

#[test]
fn last_zxid_follows_applied_commands_even_failed_ones() {
    let mut h = Harness::new();
    h.delete("/nope", -1).unwrap_err();
    assert_eq!(h.tree.last_zxid(), h.zxid);
}

#[test]
fn last_zxid_is_the_zxid_applied_at_not_the_one_inside_the_command() {
    // The server learns the zxid from the log position after the command was encoded
    // with zxid 0; the tree's last zxid must follow the log anyway.
    let mut h = Harness::new();
    let cmd = keepr_tree::Command {
        zxid: 0,
        time: 1,
        session: 0x55,
        owner: 0,
        auth: Vec::new(),
        op: TxnOp::CreateSession {
            timeout: 30_000,
            passwd: [7; 16],
        },
    };
    let mut triggers = keepr_tree::Triggers::default();
    let zxid = h.zxid + 1000;
    h.tree.apply_at(zxid, &cmd, &mut triggers).unwrap();
    assert_eq!(h.tree.last_zxid(), zxid);
}

#[test]
fn create_session_refuses_an_id_in_use_and_keeps_the_first_password() {
    const S3: i64 = 0x33;
    let mut h = Harness::new();
    let first = TxnOp::CreateSession {
        timeout: 4000,
        passwd: [1; 16],
    };
    let second = TxnOp::CreateSession {
        timeout: 9000,
        passwd: [2; 16],
    };
    assert!(h.run_as(S3, &[], first).is_ok());
    assert_eq!(err(h.run_as(S3, &[], second)), ErrorCode::BadArguments);
    assert_eq!(h.tree.session_password(S3), Some(&[1; 16]));
    assert_eq!(h.tree.session_timeout(S3), Some(4000));
}

#[test]
fn write_from_a_connection_that_no_longer_owns_the_session_is_session_moved() {
    use keepr_tree::{Command, Triggers};
    let mut tree = keepr_tree::Tree::new(keepr_tree::TreeConfig::default());
    let mut triggers = Triggers::new();
    let mut run = |zxid: i64, owner: u64, op: TxnOp| {
        tree.apply(
            &Command {
                zxid,
                time: 1,
                session: 0x77,
                owner,
                auth: vec![],
                op,
            },
            &mut triggers,
        )
    };
    let create = |path: &str| {
        TxnOp::Create(keepr_wire::CreateRequest {
            path: path.into(),
            data: None,
            acl: open_acl_unsafe(),
            flags: f::PERSISTENT,
        })
    };
    assert!(run(
        1,
        10,
        TxnOp::CreateSession {
            timeout: 4000,
            passwd: [1; 16]
        }
    )
    .is_ok());
    assert!(run(2, 10, create("/a")).is_ok());
    // The client resumes its session on another connection.
    assert_eq!(
        run(3, 20, TxnOp::SetSessionOwner { previous: 10 }),
        Ok(OpResult::Session)
    );
    // A resume that saw the session on connection 10 comes too late: the session is on 20 now.
    assert_eq!(
        run(30, 30, TxnOp::SetSessionOwner { previous: 10 }),
        Err(ErrorCode::SessionMoved)
    );
    assert_eq!(run(4, 10, create("/b")), Err(ErrorCode::SessionMoved));
    assert_eq!(
        run(5, 10, TxnOp::CloseSession),
        Err(ErrorCode::SessionMoved)
    );
    assert!(run(6, 20, create("/c")).is_ok());
    // The server's own commands carry no owner and are never refused.
    assert_eq!(run(7, 0, TxnOp::CloseSession), Ok(OpResult::Session));
    assert_eq!(
        run(8, 20, TxnOp::SetSessionOwner { previous: 20 }),
        Err(ErrorCode::SessionExpired)
    );
}
