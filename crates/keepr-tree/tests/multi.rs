mod common;

use common::*;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{EventType, MultiOp, OpResult, TxnOp};
use keepr_wire::codes::create_flags as f;
use keepr_wire::{CheckVersionRequest, CreateTtlRequest, DeleteRequest, ErrorCode, SetDataRequest};

fn create(path: &str, flags: i32) -> MultiOp {
    MultiOp::Create(create_req(path, None, open_acl_unsafe(), flags))
}
fn delete(path: &str, version: i32) -> MultiOp {
    MultiOp::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}
fn set(path: &str, d: &str, version: i32) -> MultiOp {
    MultiOp::SetData(SetDataRequest {
        path: path.into(),
        data: data(d),
        version,
    })
}
fn check(path: &str, version: i32) -> MultiOp {
    MultiOp::Check(CheckVersionRequest {
        path: path.into(),
        version,
    })
}

fn results(r: keepr_tree::TxnResult) -> Vec<Result<OpResult, ErrorCode>> {
    match r {
        Ok(OpResult::Multi(v)) => v,
        other => panic!("not a multi result: {other:?}"),
    }
}

#[test]
fn multi_applies_all_ops_with_one_zxid_and_each_sees_the_previous() {
    let mut h = Harness::new();
    let zxid = h.next_zxid();
    let r = results(h.run(TxnOp::Multi(vec![
        create("/a", 0),
        create("/a/s-", f::PERSISTENT_SEQUENTIAL),
        set("/a", "x", 0),
        check("/a", 1),
        delete("/a/s-0000000000", 0),
    ])));
    assert_eq!(r[0], Ok(OpResult::Create { path: "/a".into() }));
    assert_eq!(
        r[1],
        Ok(OpResult::Create {
            path: "/a/s-0000000000".into()
        })
    );
    assert!(
        matches!(&r[2], Ok(OpResult::SetData { stat }) if stat.version == 1 && stat.mzxid == zxid)
    );
    assert_eq!(r[3], Ok(OpResult::Check));
    assert_eq!(r[4], Ok(OpResult::Delete));
    let a = h.stat("/a");
    assert_eq!((a.czxid, a.mzxid, a.pzxid), (zxid, zxid, zxid));
    assert_eq!(a.cversion, 2);
}

#[test]
fn multi_failure_reports_rolled_back_then_error_then_runtime_inconsistency() {
    let mut h = Harness::new();
    h.mk("/keep", "v");
    let before_root = h.stat("/");
    let before_keep = h.stat("/keep");
    let r = results(h.run(TxnOp::Multi(vec![
        create("/new", 0),
        set("/keep", "changed", -1),
        delete("/keep", -1),
        check("/keep", 0),
        create("/other", 0),
    ])));
    assert_eq!(
        r,
        vec![
            Err(ErrorCode::Ok),
            Err(ErrorCode::Ok),
            Err(ErrorCode::Ok),
            Err(ErrorCode::NoNode),
            Err(ErrorCode::RuntimeInconsistency),
        ]
    );
    // Nothing changed and nothing fired.
    assert!(h.tree.stat("/new").is_none());
    assert_eq!(h.stat("/"), before_root);
    assert_eq!(h.stat("/keep"), before_keep);
    assert_eq!(h.tree.get_data("/keep", &[]).unwrap().data, Some(&b"v"[..]));
    assert!(h.fired().is_empty());
}

#[test]
fn failed_multi_leaves_the_sequence_counter_untouched() {
    let mut h = Harness::new();
    h.mk("/q", "");
    let r = results(h.run(TxnOp::Multi(vec![
        create("/q/s", f::PERSISTENT_SEQUENTIAL),
        check("/q", 9),
    ])));
    assert_eq!(r[1], Err(ErrorCode::BadVersion));
    assert_eq!(
        h.created_path("/q/s", f::PERSISTENT_SEQUENTIAL),
        "/q/s0000000000"
    );
}

#[test]
fn failed_multi_restores_deleted_ephemerals_to_their_session() {
    let mut h = Harness::new();
    h.create("/e", f::EPHEMERAL).unwrap();
    let r = results(h.run(TxnOp::Multi(vec![delete("/e", -1), check("/missing", -1)])));
    assert_eq!(r, vec![Err(ErrorCode::Ok), Err(ErrorCode::NoNode)]);
    assert_eq!(h.tree.get_ephemerals(S1, ""), vec!["/e".to_string()]);
    h.run_as(S1, &[], TxnOp::CloseSession).unwrap();
    assert!(h.tree.stat("/e").is_none());
}

#[test]
fn first_op_failing_reports_its_error_and_inconsistency_for_the_rest() {
    let mut h = Harness::new();
    let r = results(h.run(TxnOp::Multi(vec![delete("/nope", -1), create("/a", 0)])));
    assert_eq!(
        r,
        vec![Err(ErrorCode::NoNode), Err(ErrorCode::RuntimeInconsistency)]
    );
}

#[test]
fn multi_fires_every_ops_triggers_in_order() {
    let mut h = Harness::new();
    h.mk("/a", "");
    h.run(TxnOp::Multi(vec![
        create("/a/b", 0),
        set("/a", "x", -1),
        delete("/a/b", -1),
    ]))
    .unwrap();
    assert_eq!(
        h.fired(),
        vec![
            ("/a/b".into(), EventType::NodeCreated),
            ("/a".into(), EventType::NodeChildrenChanged),
            ("/a".into(), EventType::NodeDataChanged),
            ("/a/b".into(), EventType::NodeDeleted),
            ("/a".into(), EventType::NodeChildrenChanged),
        ]
    );
}

#[test]
fn empty_multi_succeeds_with_no_results() {
    let mut h = Harness::new();
    assert_eq!(h.run(TxnOp::Multi(vec![])), Ok(OpResult::Multi(vec![])));
}

#[test]
fn create_results_carry_stat_for_create2_container_and_ttl() {
    let mut h = Harness::new();
    let r = results(h.run(TxnOp::Multi(vec![
        MultiOp::Create2(create_req("/c2", None, open_acl_unsafe(), 0)),
        MultiOp::CreateContainer(create_req("/cc", None, open_acl_unsafe(), 0)),
        MultiOp::CreateTtl(ttl_req("/ct", f::PERSISTENT_WITH_TTL, 1000)),
    ])));
    for (res, path) in r.iter().zip(["/c2", "/cc", "/ct"]) {
        match res {
            Ok(o @ OpResult::Create2 { path: p, .. }) => {
                assert_eq!(p, path);
                assert_eq!(o.multi_type(), 15);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn container_flag_in_multi_create_makes_a_container() {
    // ZooKeeper's multi decoder turns a create with container flags into createContainer.
    let mut h = Harness::new();
    let r = results(h.run(TxnOp::Multi(vec![create("/c", f::CONTAINER)])));
    assert!(matches!(r[0], Ok(OpResult::Create2 { .. })));
    h.mk("/c/x", "");
    h.delete("/c/x", -1).unwrap();
    assert_eq!(h.tree.reapable(h.time), vec!["/c".to_string()]);
}

#[test]
fn ttl_flag_in_multi_create_fails_for_lack_of_a_ttl() {
    let mut h = Harness::new();
    let r = results(h.run(TxnOp::Multi(vec![create("/t", f::PERSISTENT_WITH_TTL)])));
    assert_eq!(r, vec![Err(ErrorCode::BadArguments)]);
}

#[test]
fn create_ttl_op_with_plain_flags_in_multi_acts_as_create() {
    let mut h = Harness::new();
    let op = MultiOp::CreateTtl(CreateTtlRequest {
        path: "/p".into(),
        data: None,
        acl: open_acl_unsafe(),
        flags: 0,
        ttl: 5,
    });
    let r = results(h.run(TxnOp::Multi(vec![op])));
    assert_eq!(r, vec![Ok(OpResult::Create { path: "/p".into() })]);
    let bad = MultiOp::CreateTtl(CreateTtlRequest {
        path: "/q".into(),
        data: None,
        acl: open_acl_unsafe(),
        flags: 42,
        ttl: 5,
    });
    assert_eq!(
        results(h.run(TxnOp::Multi(vec![bad]))),
        vec![Err(ErrorCode::BadArguments)]
    );
}

#[test]
fn unknown_flags_on_a_multi_create_fail_the_whole_request() {
    let mut h = Harness::new();
    let r = h.run(TxnOp::Multi(vec![create("/a", 0), create("/b", 99)]));
    assert_eq!(r, Err(ErrorCode::MarshallingError));
    assert!(h.tree.stat("/a").is_none());
}

#[test]
fn multi_from_an_expired_session_fails_on_its_first_op() {
    let mut h = Harness::new();
    let r = results(h.run_as(
        0x4242,
        &[],
        TxnOp::Multi(vec![create("/a", 0), create("/b", 0)]),
    ));
    assert_eq!(
        r,
        vec![
            Err(ErrorCode::SessionExpired),
            Err(ErrorCode::RuntimeInconsistency)
        ]
    );
}

#[test]
fn rollback_restores_data_stat_and_acl_sharing_after_delete_and_recreate() {
    let mut h = Harness::new();
    h.mk("/a", "one");
    h.set("/a", data("two"), -1).unwrap();
    let before = h.stat("/a");
    let acls = h.tree.acl_count();
    let r = results(h.run(TxnOp::Multi(vec![
        set("/a", "three", 1),
        delete("/a", -1),
        MultiOp::Create(create_req(
            "/a",
            data("four"),
            vec![acl(1, "ip", "1.2.3.4")],
            0,
        )),
        check("/", 7),
    ])));
    assert_eq!(r[3], Err(ErrorCode::BadVersion));
    assert_eq!(h.stat("/a"), before);
    assert_eq!(h.tree.get_data("/a", &[]).unwrap().data, Some(&b"two"[..]));
    assert_eq!(h.tree.acl_count(), acls);
    assert_eq!(h.tree.get_acl("/a", &[]).unwrap().0, open_acl_unsafe());
}
