mod common;

use common::*;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{EventType, TxnOp, WatchEvent, WatchKind, WatchManager, WatchedRead, WatcherId};
use keepr_wire::codes::{create_flags as f, perms, watcher_type as wt};
use keepr_wire::{ErrorCode, SetWatches, SetWatches2};

const W1: WatcherId = 1;
const W2: WatcherId = 2;

/// Events of the last applied command, as (watcher, path, event).
fn events(h: &Harness, wm: &mut WatchManager) -> Vec<(WatcherId, String, EventType)> {
    let mut out = Vec::new();
    wm.process(&h.triggers, &mut out);
    out.into_iter()
        .map(|e: WatchEvent| (e.watcher, e.path.to_string(), e.event))
        .collect()
}

fn ev(w: WatcherId, p: &str, e: EventType) -> (WatcherId, String, EventType) {
    (w, p.to_string(), e)
}

#[test]
fn data_watch_fires_once_on_change_and_is_then_gone() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/a", "");
    wm.add_watch(W1, "/a", WatchKind::Data);
    assert_eq!(wm.watch_count(), 1);
    h.set("/a", data("1"), -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/a", EventType::NodeDataChanged)]
    );
    assert_eq!(wm.watch_count(), 0);
    h.set("/a", data("2"), -1).unwrap();
    assert!(events(&h, &mut wm).is_empty());
}

#[test]
fn exists_registers_a_watch_even_on_no_node_and_it_fires_node_created() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    let code = h.tree.exists("/later", &[]).unwrap_err();
    wm.watch_after_read(W1, WatchedRead::Exists, "/later", code);
    h.mk("/later", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/later", EventType::NodeCreated)]
    );
}

#[test]
fn get_data_and_get_children_register_nothing_on_no_node_or_no_auth() {
    assert_eq!(WatchedRead::GetData.watch_for(ErrorCode::NoNode), None);
    assert_eq!(WatchedRead::GetData.watch_for(ErrorCode::NoAuth), None);
    assert_eq!(WatchedRead::GetChildren.watch_for(ErrorCode::NoNode), None);
    assert_eq!(WatchedRead::Exists.watch_for(ErrorCode::NoAuth), None);
    assert_eq!(WatchedRead::Exists.watch_for(ErrorCode::BadArguments), None);
    assert_eq!(
        WatchedRead::GetData.watch_for(ErrorCode::Ok),
        Some(WatchKind::Data)
    );
    assert_eq!(
        WatchedRead::GetChildren.watch_for(ErrorCode::Ok),
        Some(WatchKind::Child)
    );
    assert_eq!(
        WatchedRead::Exists.watch_for(ErrorCode::Ok),
        Some(WatchKind::Data)
    );
}

#[test]
fn child_watch_fires_on_child_create_and_node_deleted_on_own_delete() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/p", "");
    wm.add_watch(W1, "/p", WatchKind::Child);
    h.mk("/p/c", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeChildrenChanged)]
    );
    wm.add_watch(W1, "/p", WatchKind::Child);
    h.delete("/p/c", -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeChildrenChanged)]
    );
    wm.add_watch(W1, "/p", WatchKind::Child);
    h.delete("/p", -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeDeleted)]
    );
}

#[test]
fn root_children_changes_are_reported_on_slash() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/", WatchKind::Child);
    h.mk("/top", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/", EventType::NodeChildrenChanged)]
    );
}

#[test]
fn delete_tells_a_connection_once_even_with_data_and_child_watches() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/a", "");
    wm.add_watch(W1, "/a", WatchKind::Data);
    wm.add_watch(W1, "/a", WatchKind::Child);
    wm.add_watch(W2, "/a", WatchKind::Child);
    h.delete("/a", -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![
            ev(W1, "/a", EventType::NodeDeleted),
            ev(W2, "/a", EventType::NodeDeleted)
        ]
    );
    assert_eq!(wm.watch_count(), 0);
}

#[test]
fn every_watcher_of_a_path_is_told_in_watcher_order() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/a", "");
    for w in [9, 3, 5] {
        wm.add_watch(w, "/a", WatchKind::Data);
    }
    h.set("/a", None, -1).unwrap();
    let got: Vec<WatcherId> = events(&h, &mut wm).into_iter().map(|e| e.0).collect();
    assert_eq!(got, vec![3, 5, 9]);
}

#[test]
fn persistent_watch_hears_its_path_and_children_and_stays() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/p", WatchKind::Persistent);
    assert_eq!(
        wm.watch_count(),
        2,
        "a persistent watch sits in both tables"
    );
    h.mk("/p", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeCreated)]
    );
    h.mk("/p/c", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeChildrenChanged)]
    );
    h.set("/p/c", None, -1).unwrap();
    assert!(events(&h, &mut wm).is_empty(), "not recursive");
    h.set("/p", None, -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeDataChanged)]
    );
    h.delete("/p/c", -1).unwrap();
    h.delete("/p", -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/p", EventType::NodeDeleted)]
    );
    assert_eq!(wm.watch_count(), 2);
}

#[test]
fn persistent_recursive_watch_hears_descendants_but_never_children_changed() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/r", WatchKind::PersistentRecursive);
    h.mk("/r", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/r", EventType::NodeCreated)]
    );
    h.mk("/r/a", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/r/a", EventType::NodeCreated)]
    );
    h.mk("/r/a/b", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/r/a/b", EventType::NodeCreated)]
    );
    h.set("/r/a/b", None, -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/r/a/b", EventType::NodeDataChanged)]
    );
    h.delete("/r/a/b", -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/r/a/b", EventType::NodeDeleted)]
    );
    h.mk("/rx", "");
    assert!(
        events(&h, &mut wm).is_empty(),
        "a name prefix is not a descendant"
    );
}

#[test]
fn recursive_watch_on_root_hears_everything_once_per_trigger() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/", WatchKind::PersistentRecursive);
    wm.add_watch(W1, "/a", WatchKind::Data);
    h.mk("/a", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/a", EventType::NodeCreated)]
    );
}

#[test]
fn one_shot_watch_alongside_persistent_is_spent_but_persistent_stays() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/a", "");
    wm.add_watch(W1, "/a", WatchKind::Persistent);
    wm.add_watch(W1, "/a", WatchKind::Data);
    h.set("/a", None, -1).unwrap();
    assert_eq!(events(&h, &mut wm).len(), 1);
    assert_eq!(wm.check_watches(W1, "/a", wt::PERSISTENT), Ok(()));
    h.set("/a", None, -1).unwrap();
    assert_eq!(
        events(&h, &mut wm).len(),
        1,
        "the persistent watch still fires"
    );
}

#[test]
fn events_are_withheld_from_watchers_without_read_but_the_one_shot_is_spent() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    let bob = vec![id("digest", "bob:h")];
    h.run(TxnOp::Create(create_req(
        "/s",
        None,
        vec![acl(perms::ALL, "digest", "bob:h")],
        0,
    )))
    .unwrap();
    wm.add_watch(W1, "/s", WatchKind::Data);
    wm.add_watch(W2, "/s", WatchKind::Data);
    wm.set_auth(W2, bob.clone());
    h.run_as(
        S1,
        &bob,
        TxnOp::SetData(keepr_wire::SetDataRequest {
            path: "/s".into(),
            data: None,
            version: -1,
        }),
    )
    .unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W2, "/s", EventType::NodeDataChanged)]
    );
    assert_eq!(wm.watch_count(), 0);
}

#[test]
fn children_changed_is_filtered_by_the_parents_acl_and_created_by_the_nodes() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.run(TxnOp::Create(create_req(
        "/open",
        None,
        open_acl_unsafe(),
        0,
    )))
    .unwrap();
    wm.add_watch(W1, "/open", WatchKind::Child);
    wm.add_watch(W1, "/open/s", WatchKind::Data);
    h.run(TxnOp::Create(create_req(
        "/open/s",
        None,
        vec![acl(perms::ALL, "digest", "bob:h")],
        0,
    )))
    .unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/open", EventType::NodeChildrenChanged)]
    );
}

#[test]
fn super_watchers_receive_everything() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.run(TxnOp::Create(create_req(
        "/s",
        None,
        vec![acl(perms::ALL, "digest", "bob:h")],
        0,
    )))
    .unwrap();
    wm.set_auth(W1, vec![id("super", "")]);
    wm.add_watch(W1, "/s", WatchKind::Data);
    h.run_as(
        S1,
        &[id("super", "")],
        TxnOp::Delete(keepr_wire::DeleteRequest {
            path: "/s".into(),
            version: -1,
        }),
    )
    .unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/s", EventType::NodeDeleted)]
    );
}

#[test]
fn close_session_fires_deleted_and_children_changed_for_its_ephemerals() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/locks", "");
    h.create("/locks/l1", f::EPHEMERAL).unwrap();
    wm.add_watch(W2, "/locks/l1", WatchKind::Data);
    wm.add_watch(W2, "/locks", WatchKind::Child);
    h.run_as(S1, &[], TxnOp::CloseSession).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![
            ev(W2, "/locks/l1", EventType::NodeDeleted),
            ev(W2, "/locks", EventType::NodeChildrenChanged)
        ]
    );
}

#[test]
fn remove_watches_by_type_and_no_watcher_when_none() {
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/a", WatchKind::Data);
    wm.add_watch(W1, "/a", WatchKind::Child);
    assert_eq!(wm.remove_watches(W1, "/a", wt::DATA), Ok(()));
    assert_eq!(
        wm.remove_watches(W1, "/a", wt::DATA),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(wm.check_watches(W1, "/a", wt::CHILDREN), Ok(()));
    assert_eq!(
        wm.remove_watches(W2, "/a", wt::CHILDREN),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(wm.remove_watches(W1, "/a", wt::ANY), Ok(()));
    assert_eq!(
        wm.check_watches(W1, "/a", wt::ANY),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(wm.watch_count(), 0);
    assert_eq!(
        wm.remove_watches(W1, "/a", 9),
        Err(ErrorCode::MarshallingError)
    );
    assert_eq!(
        wm.check_watches(W1, "/a", 0),
        Err(ErrorCode::MarshallingError)
    );
}

#[test]
fn removing_by_table_takes_persistent_watches_too_as_zookeeper_3_8_does() {
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/a", WatchKind::Persistent);
    // A persistent watch sits in both tables; type DATA takes its data-table entry.
    assert_eq!(wm.remove_watches(W1, "/a", wt::DATA), Ok(()));
    assert_eq!(
        wm.check_watches(W1, "/a", wt::DATA),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(wm.check_watches(W1, "/a", wt::CHILDREN), Ok(()));
    assert_eq!(
        wm.check_watches(W1, "/a", wt::PERSISTENT_RECURSIVE),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(wm.remove_watches(W1, "/a", wt::PERSISTENT), Ok(()));
    assert_eq!(wm.watch_count(), 0);
    wm.add_watch(W1, "/r", WatchKind::PersistentRecursive);
    assert_eq!(wm.check_watches(W1, "/r", wt::PERSISTENT_RECURSIVE), Ok(()));
    assert_eq!(wm.remove_watches(W1, "/r", wt::ANY), Ok(()));
    assert_eq!(wm.watch_count(), 0);
}

#[test]
fn closing_a_connection_removes_all_its_watches() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/a", "");
    wm.add_watch(W1, "/a", WatchKind::Data);
    wm.add_watch(W1, "/", WatchKind::PersistentRecursive);
    wm.add_watch(W2, "/a", WatchKind::Data);
    assert_eq!(wm.summary().connections, 2);
    assert_eq!(wm.paths_of(W1), vec!["/", "/a"]);
    wm.remove_watcher(W1);
    assert_eq!(wm.watch_count(), 1);
    assert_eq!(wm.watchers_on("/a"), vec![W2]);
    h.set("/a", None, -1).unwrap();
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W2, "/a", EventType::NodeDataChanged)]
    );
}

#[test]
fn summary_counts_connections_paths_and_entries() {
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/a", WatchKind::Data);
    wm.add_watch(W1, "/a", WatchKind::Data);
    wm.add_watch(W2, "/a", WatchKind::Child);
    wm.add_watch(W2, "/b", WatchKind::Persistent);
    let s = wm.summary();
    assert_eq!((s.connections, s.paths, s.watches), (2, 2, 4));
}

#[test]
fn set_watches_fires_missed_changes_and_rearms_the_rest() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    h.mk("/same", "");
    h.mk("/kids", "");
    let rel = h.zxid;
    h.mk("/changed", "");
    h.set("/changed", None, -1).unwrap();
    h.mk("/kids2", "");
    h.mk("/kids2/c", "");
    h.mk("/born", "");
    let req = SetWatches {
        relative_zxid: rel,
        data_watches: vec!["/same".into(), "/changed".into(), "/gone".into()],
        exist_watches: vec!["/born".into(), "/unborn".into()],
        child_watches: vec!["/kids".into(), "/kids2".into(), "/gone2".into()],
    };
    let mut out = Vec::new();
    wm.set_watches(W1, &h.tree, &req, &mut out);
    let got: Vec<_> = out.iter().map(|e| (e.path.to_string(), e.event)).collect();
    assert_eq!(
        got,
        vec![
            ("/changed".to_string(), EventType::NodeDataChanged),
            ("/gone".to_string(), EventType::NodeDeleted),
            ("/born".to_string(), EventType::NodeCreated),
            ("/kids2".to_string(), EventType::NodeChildrenChanged),
            ("/gone2".to_string(), EventType::NodeDeleted),
        ]
    );
    // Re-armed: /same (data), /unborn (exist), /kids (child).
    assert_eq!(wm.watch_count(), 3);
    h.mk("/unborn", "");
    assert_eq!(
        events(&h, &mut wm),
        vec![ev(W1, "/unborn", EventType::NodeCreated)]
    );
}

#[test]
fn set_watches2_re_registers_persistent_watches_without_catch_up() {
    let h = Harness::new();
    let mut wm = WatchManager::new();
    let req = SetWatches2 {
        relative_zxid: 0,
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into()],
        ..SetWatches2::default()
    };
    let mut out = Vec::new();
    wm.set_watches2(W1, &h.tree, &req, &mut out);
    assert!(out.is_empty());
    assert_eq!(wm.check_watches(W1, "/p", wt::PERSISTENT), Ok(()));
    assert_eq!(wm.check_watches(W1, "/r", wt::PERSISTENT_RECURSIVE), Ok(()));
    assert_eq!(wm.watch_count(), 3);
}

#[test]
fn add_watch_modes_map_to_kinds() {
    assert_eq!(
        WatchKind::from_add_watch_mode(0),
        Some(WatchKind::Persistent)
    );
    assert_eq!(
        WatchKind::from_add_watch_mode(1),
        Some(WatchKind::PersistentRecursive)
    );
    assert_eq!(WatchKind::from_add_watch_mode(2), None);
}

#[test]
fn failed_multi_fires_no_watch() {
    let mut h = Harness::new();
    let mut wm = WatchManager::new();
    wm.add_watch(W1, "/a", WatchKind::Data);
    let ops = vec![
        keepr_tree::MultiOp::Create(create_req("/a", None, open_acl_unsafe(), 0)),
        keepr_tree::MultiOp::Delete(keepr_wire::DeleteRequest {
            path: "/nope".into(),
            version: -1,
        }),
    ];
    h.run(TxnOp::Multi(ops)).unwrap();
    assert!(events(&h, &mut wm).is_empty());
    assert_eq!(wm.watch_count(), 1);
}
