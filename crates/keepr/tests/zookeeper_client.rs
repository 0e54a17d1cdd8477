//! The `zookeeper-client` crate, an independent async ZooKeeper client, against a real
//! `keepr server` process: what an application written for ZooKeeper relies on, through a
//! client keepr's authors did not write.

mod support;

use std::time::Duration;

use base64::Engine;
use futures::FutureExt;
use sha1::{Digest, Sha1};
use support::{bounded, connect, connect_with, open_acl, within, Member, Proxy};
use zookeeper_client as zk;
use zookeeper_client::{Acl, Acls, AuthId, AuthUser, EventType, Permission};

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(open_acl())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(open_acl())
}

/// `base64(sha1("user:password"))`, the id ZooKeeper's digest scheme stores.
fn digest(user: &str, password: &str) -> String {
    let hash = Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_node_keeps_its_data_and_reports_a_fresh_stat() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;

        let (created, seq) = c.create("/p", b"hello", &persistent()).await.unwrap();
        assert_eq!(seq.into_i64(), -1, "a plain node has no sequence number");
        let (data, stat) = c.get_data("/p").await.unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(stat, created, "create2 returns the node's stat");
        assert_eq!(stat.version, 0);
        assert_eq!(stat.cversion, 0);
        assert_eq!(stat.aversion, 0);
        assert_eq!(stat.ephemeral_owner, 0);
        assert_eq!(stat.data_length, 5);
        assert_eq!(stat.num_children, 0);
        assert_eq!(stat.czxid, stat.mzxid);
        assert_eq!(stat.czxid, stat.pzxid);
        assert_eq!(stat.ctime, stat.mtime);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_nodes_get_increasing_ten_digit_suffixes_per_parent() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create("/q", b"", &persistent()).await.unwrap();
        // Any create under the parent advances the counter, sequential or not.
        c.create("/q/plain", b"", &persistent()).await.unwrap();

        let mut names = Vec::new();
        for mode in [
            zk::CreateMode::PersistentSequential,
            zk::CreateMode::EphemeralSequential,
            zk::CreateMode::PersistentSequential,
        ] {
            let (_, seq) = c
                .create("/q/job-", b"", &mode.with_acls(open_acl()))
                .await
                .unwrap();
            names.push(format!("job-{seq}"));
        }
        assert_eq!(
            names,
            ["job-0000000001", "job-0000000002", "job-0000000003"]
        );
        let mut children = c.list_children("/q").await.unwrap();
        children.sort();
        assert_eq!(
            children,
            [
                "job-0000000001",
                "job-0000000002",
                "job-0000000003",
                "plain"
            ]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_node_belongs_to_its_session_and_goes_when_the_client_closes() {
    let member = Member::start(&[]);
    bounded(async {
        let owner = connect(&member.zk_addr()).await;
        let observer = connect(&member.zk_addr()).await;

        let (stat, _) = owner.create("/eph", b"", &ephemeral()).await.unwrap();
        assert_eq!(stat.ephemeral_owner, owner.session_id().0);
        assert_eq!(
            owner.create("/eph/child", b"", &persistent()).await,
            Err(zk::Error::NoChildrenForEphemerals)
        );

        let (exists, gone) = observer.check_and_watch_stat("/eph").await.unwrap();
        assert!(exists.is_some());
        drop(owner); // the last handle: the client closes its session
        let event = within("ephemeral deleted on close", gone.changed()).await;
        assert_eq!(event.event_type, EventType::NodeDeleted);
        assert_eq!(event.path, "/eph");
        assert_eq!(observer.check_stat("/eph").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_is_deleted_once_its_last_child_is_gone_but_never_used_one_stays() {
    let member = Member::start(&["--tick-ms", "200", "--reap-interval-ms", "50"]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        let container = zk::CreateMode::Container.with_acls(open_acl());
        c.create("/never-used", b"", &container).await.unwrap();
        let (stat, _) = c.create("/c", b"", &container).await.unwrap();
        assert_eq!(
            stat.ephemeral_owner, 0,
            "clients never see the container marker"
        );
        c.create("/c/x", b"", &persistent()).await.unwrap();

        let (_, reaped) = c.check_and_watch_stat("/c").await.unwrap();
        c.delete("/c/x", None).await.unwrap();
        let event = within("container reaped", reaped.changed()).await;
        assert_eq!(event.event_type, EventType::NodeDeleted);
        assert_eq!(event.path, "/c");
        assert!(
            c.check_stat("/never-used").await.unwrap().is_some(),
            "a container that never had a child is not a candidate"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_node_is_deleted_after_its_ttl_passes_without_a_change() {
    let member = Member::start(&["--tick-ms", "200", "--reap-interval-ms", "50"]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        let ttl = persistent().with_ttl(Duration::from_millis(100));
        let (stat, _) = c.create("/ttl", b"x", &ttl).await.unwrap();
        assert_eq!(stat.ephemeral_owner, 0, "clients never see the TTL marker");
        let (_, expired) = c.check_and_watch_stat("/ttl").await.unwrap();
        let event = within("TTL node reaped", expired.changed()).await;
        assert_eq!(event.event_type, EventType::NodeDeleted);
        assert_eq!(c.check_stat("/ttl").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_set_delete_honour_expected_versions_and_report_zookeeper_errors() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create("/v", b"0", &persistent()).await.unwrap();

        let stat = c.set_data("/v", b"1", Some(0)).await.unwrap();
        assert_eq!(stat.version, 1);
        assert_eq!(
            c.set_data("/v", b"stale", Some(0)).await,
            Err(zk::Error::BadVersion)
        );
        assert_eq!(
            c.get_data("/v").await.unwrap().0,
            b"1",
            "a refused set changes nothing"
        );
        let stat = c.set_data("/v", b"2", None).await.unwrap();
        assert_eq!(stat.version, 2, "no expected version means any version");

        assert_eq!(
            c.create("/v", b"", &persistent()).await,
            Err(zk::Error::NodeExists)
        );
        assert_eq!(
            c.create("/missing/child", b"", &persistent()).await,
            Err(zk::Error::NoNode)
        );
        assert_eq!(
            c.set_data("/missing", b"", None).await,
            Err(zk::Error::NoNode)
        );
        assert_eq!(c.get_data("/missing").await, Err(zk::Error::NoNode));

        c.create("/v/child", b"", &persistent()).await.unwrap();
        assert_eq!(c.delete("/v", None).await, Err(zk::Error::NotEmpty));
        c.delete("/v/child", None).await.unwrap();
        assert_eq!(c.delete("/v", Some(1)).await, Err(zk::Error::BadVersion));
        c.delete("/v", Some(2)).await.unwrap();
        assert_eq!(c.check_stat("/v").await.unwrap(), None);
        assert_eq!(c.delete("/v", None).await, Err(zk::Error::NoNode));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_come_with_the_parent_stat_counting_creates_and_deletes() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create("/k", b"", &persistent()).await.unwrap();
        for name in ["x", "y", "z"] {
            c.create(&format!("/k/{name}"), b"", &persistent())
                .await
                .unwrap();
        }
        let (_, z) = c.get_data("/k/z").await.unwrap();
        c.delete("/k/y", None).await.unwrap();

        let (mut children, stat) = c.get_children("/k").await.unwrap();
        children.sort();
        assert_eq!(children, ["x", "z"]);
        assert_eq!(stat.num_children, 2);
        assert_eq!(stat.cversion, 4, "three creates and one delete");
        assert!(
            stat.pzxid > z.czxid,
            "pzxid is the zxid of the last child change, the delete"
        );
        assert_eq!(
            stat.version, 0,
            "child changes leave the data version alone"
        );
        assert_eq!(c.get_children("/missing").await, Err(zk::Error::NoNode));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_applies_all_operations_at_one_zxid() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create("/m", b"", &persistent()).await.unwrap();

        let mut w = c.new_multi_writer();
        w.add_create("/m/a", b"1", &persistent()).unwrap();
        w.add_set_data("/m/a", b"2", Some(0)).unwrap();
        w.add_check_version("/m/a", 1).unwrap();
        w.add_create("/m/b", b"", &persistent()).unwrap();
        w.add_delete("/m/b", Some(0)).unwrap();
        let results = w.commit().await.unwrap();

        assert_eq!(results.len(), 5);
        assert!(matches!(&results[0], zk::MultiWriteResult::Create { path, .. } if path == "/m/a"));
        assert!(matches!(&results[1], zk::MultiWriteResult::SetData { stat } if stat.version == 1));
        assert!(matches!(results[2], zk::MultiWriteResult::Check));
        assert!(matches!(&results[3], zk::MultiWriteResult::Create { path, .. } if path == "/m/b"));
        assert!(matches!(results[4], zk::MultiWriteResult::Delete));
        let (data, stat) = c.get_data("/m/a").await.unwrap();
        assert_eq!(data, b"2");
        assert_eq!(
            stat.czxid, stat.mzxid,
            "create and set in one multi share a zxid"
        );
        assert_eq!(c.check_stat("/m/b").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_changes_nothing_and_names_the_failing_operation() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create("/m", b"", &persistent()).await.unwrap();

        let mut w = c.new_multi_writer();
        w.add_create("/m/c", b"", &persistent()).unwrap();
        w.add_set_data("/m/missing", b"", None).unwrap();
        w.add_create("/m/d", b"", &persistent()).unwrap();
        assert_eq!(
            w.commit().await,
            Err(zk::MultiWriteError::OperationFailed {
                index: 1,
                source: zk::Error::NoNode
            })
        );
        assert_eq!(c.check_stat("/m/c").await.unwrap(), None, "rolled back");
        assert_eq!(c.check_stat("/m/d").await.unwrap(), None);

        let mut guarded = c.new_check_writer("/m", Some(7)).unwrap();
        guarded.add_create("/m/e", b"", &persistent()).unwrap();
        assert_eq!(
            guarded.commit().await,
            Err(zk::CheckWriteError::CheckFailed {
                source: zk::Error::BadVersion
            })
        );
        assert_eq!(c.check_stat("/m/e").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_read_answers_each_read_on_its_own() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create("/r", b"", &persistent()).await.unwrap();
        c.create("/r/a", b"data", &persistent()).await.unwrap();

        let mut r = c.new_multi_reader();
        r.add_get_data("/r/a").unwrap();
        r.add_get_children("/r").unwrap();
        r.add_get_data("/r/missing").unwrap();
        let results = r.commit().await.unwrap();
        assert_eq!(results.len(), 3);
        assert!(matches!(&results[0], zk::MultiReadResult::Data { data, .. } if data == b"data"));
        assert!(
            matches!(&results[1], zk::MultiReadResult::Children { children } if children == &["a"])
        );
        assert!(matches!(
            &results[2],
            zk::MultiReadResult::Error {
                err: zk::Error::NoNode
            }
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_watches_fire_for_data_children_and_existence() {
    let member = Member::start(&[]);
    bounded(async {
        let watcher = connect(&member.zk_addr()).await;
        let writer = connect(&member.zk_addr()).await;
        watcher.create("/w", b"", &persistent()).await.unwrap();

        let (_, _, data_changed) = watcher.get_and_watch_data("/w").await.unwrap();
        let (_, _, children_changed) = watcher.get_and_watch_children("/w").await.unwrap();
        let (none, created) = watcher.check_and_watch_stat("/w/new").await.unwrap();
        assert_eq!(none, None, "an exists watch can be left on a missing node");

        writer.set_data("/w", b"1", None).await.unwrap();
        let e = within("data watch", data_changed.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDataChanged, "/w")
        );

        writer.create("/w/new", b"", &persistent()).await.unwrap();
        let e = within("exists watch", created.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeCreated, "/w/new")
        );
        let e = within("child watch", children_changed.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeChildrenChanged, "/w")
        );

        let (_, deleted) = watcher.check_and_watch_stat("/w/new").await.unwrap();
        writer.delete("/w/new", None).await.unwrap();
        let e = within("exists watch on delete", deleted.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/w/new")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_event_arrives_before_a_read_that_shows_the_change() {
    let member = Member::start(&[]);
    bounded(async {
        let reader = connect(&member.zk_addr()).await;
        let writer = connect(&member.zk_addr()).await;
        reader
            .create("/order", b"old", &persistent())
            .await
            .unwrap();

        let (_, _, changed) = reader.get_and_watch_data("/order").await.unwrap();
        writer.set_data("/order", b"new", None).await.unwrap();
        let (data, _) = reader.get_data("/order").await.unwrap();
        assert_eq!(data, b"new", "the write was acknowledged before the read");
        let event = changed
            .changed()
            .now_or_never()
            .expect("the event must be delivered before the reply that reflects the change");
        assert_eq!(event.event_type, EventType::NodeDataChanged);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_keeps_firing_for_the_node_and_its_child_list() {
    let member = Member::start(&[]);
    bounded(async {
        let watcher = connect(&member.zk_addr()).await;
        let writer = connect(&member.zk_addr()).await;
        let mut events = watcher
            .watch("/pw", zk::AddWatchMode::Persistent)
            .await
            .unwrap();

        writer.create("/pw", b"", &persistent()).await.unwrap();
        writer.set_data("/pw", b"1", None).await.unwrap();
        writer.set_data("/pw", b"2", None).await.unwrap();
        writer.create("/pw/c", b"", &persistent()).await.unwrap();
        writer
            .set_data("/pw/c", b"not watched", None)
            .await
            .unwrap();
        writer.delete("/pw/c", None).await.unwrap();
        writer.delete("/pw", None).await.unwrap();

        let mut seen = Vec::new();
        for _ in 0..6 {
            let e = within("persistent watch event", events.changed()).await;
            seen.push((e.event_type, e.path));
        }
        let expected = [
            (EventType::NodeCreated, "/pw"),
            (EventType::NodeDataChanged, "/pw"),
            (EventType::NodeDataChanged, "/pw"),
            (EventType::NodeChildrenChanged, "/pw"),
            (EventType::NodeChildrenChanged, "/pw"),
            (EventType::NodeDeleted, "/pw"),
        ];
        let seen: Vec<(EventType, &str)> = seen.iter().map(|(t, p)| (*t, p.as_str())).collect();
        assert_eq!(seen, expected);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch_sees_every_descendant_but_no_child_list_events() {
    let member = Member::start(&[]);
    bounded(async {
        let watcher = connect(&member.zk_addr()).await;
        let writer = connect(&member.zk_addr()).await;
        let mut events = watcher
            .watch("/rw", zk::AddWatchMode::PersistentRecursive)
            .await
            .unwrap();

        writer.create("/rw", b"", &persistent()).await.unwrap();
        writer.create("/rw/a", b"", &persistent()).await.unwrap();
        writer.create("/rw/a/b", b"", &persistent()).await.unwrap();
        writer.set_data("/rw/a/b", b"1", None).await.unwrap();
        writer.delete("/rw/a/b", None).await.unwrap();
        writer
            .create("/elsewhere", b"", &persistent())
            .await
            .unwrap();
        writer.set_data("/rw", b"last", None).await.unwrap();

        let mut seen = Vec::new();
        for _ in 0..6 {
            let e = within("recursive watch event", events.changed()).await;
            seen.push((e.event_type, e.path));
        }
        let expected = [
            (EventType::NodeCreated, "/rw"),
            (EventType::NodeCreated, "/rw/a"),
            (EventType::NodeCreated, "/rw/a/b"),
            (EventType::NodeDataChanged, "/rw/a/b"),
            (EventType::NodeDeleted, "/rw/a/b"),
            (EventType::NodeDataChanged, "/rw"),
        ];
        let seen: Vec<(EventType, &str)> = seen.iter().map(|(t, p)| (*t, p.as_str())).collect();
        assert_eq!(seen, expected);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_lets_in_only_the_user_who_authenticated() {
    let member = Member::start(&[]);
    bounded(async {
        let alice = connect(&member.zk_addr()).await;
        within("the auth reply", alice.auth("digest", b"alice:secret"))
            .await
            .unwrap();
        alice
            .create(
                "/alice",
                b"private",
                &zk::CreateMode::Persistent.with_acls(Acls::creator_all()),
            )
            .await
            .unwrap();
        let (acl, _) = alice.get_acl("/alice").await.unwrap();
        assert_eq!(
            acl,
            [Acl::new(
                Permission::ALL,
                AuthId::new("digest", &digest("alice", "secret"))
            )],
            "the auth scheme expands to the caller's digest id"
        );

        let anonymous = connect(&member.zk_addr()).await;
        assert_eq!(anonymous.get_data("/alice").await, Err(zk::Error::NoAuth));
        assert_eq!(
            anonymous.set_data("/alice", b"x", None).await,
            Err(zk::Error::NoAuth)
        );
        assert_eq!(
            anonymous.create("/alice/x", b"", &persistent()).await,
            Err(zk::Error::NoAuth)
        );

        let mallory = connect_with(
            zk::Client::connector().with_auth("digest", b"alice:guess"),
            &member.zk_addr(),
        )
        .await;
        assert_eq!(
            mallory.get_data("/alice").await,
            Err(zk::Error::NoAuth),
            "a wrong password is a different id, not an error"
        );

        let alice_again = connect_with(
            zk::Client::connector().with_auth("digest", b"alice:secret"),
            &member.zk_addr(),
        )
        .await;
        assert_eq!(alice_again.get_data("/alice").await.unwrap().0, b"private");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_permissions_and_acl_version_are_enforced() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        c.create(
            "/ro",
            b"public",
            &zk::CreateMode::Persistent.with_acls(Acls::anyone_read()),
        )
        .await
        .unwrap();
        assert_eq!(c.get_data("/ro").await.unwrap().0, b"public");
        assert_eq!(c.set_data("/ro", b"x", None).await, Err(zk::Error::NoAuth));
        assert_eq!(
            c.create(
                "/creator",
                b"",
                &zk::CreateMode::Persistent.with_acls(Acls::creator_all())
            )
            .await,
            Err(zk::Error::InvalidAcl),
            "the auth scheme needs an authenticated id"
        );

        c.create("/acl", b"", &persistent()).await.unwrap();
        let admin_read_write = [Acl::new(
            Permission::READ | Permission::WRITE | Permission::ADMIN,
            AuthId::anyone(),
        )];
        let stat = c.set_acl("/acl", &admin_read_write, Some(0)).await.unwrap();
        assert_eq!(stat.aversion, 1);
        assert_eq!(
            c.set_acl("/acl", &admin_read_write, Some(0)).await,
            Err(zk::Error::BadVersion)
        );
        let read_write = [Acl::new(
            Permission::READ | Permission::WRITE,
            AuthId::anyone(),
        )];
        c.set_acl("/acl", &read_write, Some(1)).await.unwrap();
        assert_eq!(c.get_acl("/acl").await.unwrap().0, read_write);
        assert_eq!(
            c.set_acl("/acl", &admin_read_write, None).await,
            Err(zk::Error::NoAuth),
            "changing the ACL needs ADMIN, which it no longer grants"
        );
        assert_eq!(
            c.delete("/acl", None).await,
            Ok(()),
            "DELETE is checked on the parent, not on the node"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_digest_user_bypasses_every_acl() {
    let member = Member::start(&["--super-digest", &digest("super", "hunter2")]);
    bounded(async {
        let alice = connect_with(
            zk::Client::connector().with_auth("digest", b"alice:secret"),
            &member.zk_addr(),
        )
        .await;
        alice
            .create(
                "/locked",
                b"mine",
                &zk::CreateMode::Persistent.with_acls(Acls::creator_all()),
            )
            .await
            .unwrap();

        let admin = connect_with(
            zk::Client::connector().with_auth("digest", b"super:hunter2"),
            &member.zk_addr(),
        )
        .await;
        assert_eq!(admin.get_data("/locked").await.unwrap().0, b"mine");
        admin.set_data("/locked", b"seized", None).await.unwrap();
        admin.delete("/locked", None).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_auth_scheme_ends_the_session_with_auth_failed() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        let mut state = c.state_watcher();
        assert_eq!(
            c.auth("no-such-scheme", b"x").await,
            Err(zk::Error::AuthFailed)
        );
        within("AuthFailed state", async {
            while state.state() != zk::SessionState::AuthFailed {
                state.changed().await;
            }
        })
        .await;
        assert_eq!(c.get_data("/").await, Err(zk::Error::AuthFailed));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_lists_the_connection_address_and_authenticated_users() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        assert_eq!(
            c.list_auth_users().await.unwrap(),
            [AuthUser::new("ip", "127.0.0.1")]
        );
        within("the auth reply", c.auth("digest", b"bob:pw"))
            .await
            .unwrap();
        let users = c.list_auth_users().await.unwrap();
        assert!(
            users.contains(&AuthUser::new("ip", "127.0.0.1")),
            "{users:?}"
        );
        assert!(users.contains(&AuthUser::new("digest", "bob")), "{users:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_read_sees_another_clients_acknowledged_write() {
    let member = Member::start(&[]);
    bounded(async {
        let reader = connect(&member.zk_addr()).await;
        let writer = connect(&member.zk_addr()).await;
        writer
            .create("/synced", b"v1", &persistent())
            .await
            .unwrap();
        reader.sync("/synced").await.unwrap();
        assert_eq!(reader.get_data("/synced").await.unwrap().0, b"v1");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_ephemerals_lists_this_sessions_ephemerals_by_path_prefix() {
    let member = Member::start(&[]);
    bounded(async {
        let a = connect(&member.zk_addr()).await;
        let b = connect(&member.zk_addr()).await;
        for parent in ["/eph", "/ephx", "/other"] {
            a.create(parent, b"", &persistent()).await.unwrap();
        }
        for path in ["/eph/a1", "/eph/a2", "/ephx/a3", "/other/a4"] {
            a.create(path, b"", &ephemeral()).await.unwrap();
        }
        b.create("/eph/b1", b"", &ephemeral()).await.unwrap();

        let mut under = a.list_ephemerals("/eph").await.unwrap();
        under.sort();
        assert_eq!(
            under,
            ["/eph/a1", "/eph/a2", "/ephx/a3"],
            "the prefix is a plain string prefix, as in ZooKeeper"
        );
        let mut all = a.list_ephemerals("/").await.unwrap();
        all.sort();
        assert_eq!(all, ["/eph/a1", "/eph/a2", "/ephx/a3", "/other/a4"]);
        assert_eq!(b.list_ephemerals("/").await.unwrap(), ["/eph/b1"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_children_number_counts_every_descendant() {
    let member = Member::start(&[]);
    bounded(async {
        let c = connect(&member.zk_addr()).await;
        for path in ["/t", "/t/a", "/t/a/b", "/t/a/b/c", "/t/d"] {
            c.create(path, b"", &persistent()).await.unwrap();
        }
        assert_eq!(c.count_descendants_number("/t").await.unwrap(), 4);
        assert_eq!(c.count_descendants_number("/t/a").await.unwrap(), 2);
        assert_eq!(c.count_descendants_number("/t/d").await.unwrap(), 0);
        assert_eq!(
            c.count_descendants_number("/missing").await,
            Err(zk::Error::NoNode)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_session_loses_its_ephemerals_and_its_client_learns_it_expired() {
    // Short ticks allow a short session; the proxy takes the client's connection away
    // without the client closing its session.
    let member = Member::start(&["--tick-ms", "100"]);
    bounded(async {
        let proxy = Proxy::start(&member.zk_addr()).await;
        let client = connect_with(
            zk::Client::connector().with_session_timeout(Duration::from_millis(1000)),
            &proxy.addr(),
        )
        .await;
        assert_eq!(client.session_timeout(), Duration::from_millis(1000));
        let session = client.session().clone();
        let mut state = client.state_watcher();
        client.create("/lapse", b"", &ephemeral()).await.unwrap();

        let observer = connect(&member.zk_addr()).await;
        let (exists, deleted) = observer.check_and_watch_stat("/lapse").await.unwrap();
        assert!(exists.is_some());
        proxy.cut();
        let event = within("the member expires the silent session", deleted.changed()).await;
        assert_eq!(event.event_type, EventType::NodeDeleted);

        proxy.restore();
        within("the client learns its session expired", async {
            while state.state() != zk::SessionState::Expired {
                state.changed().await;
            }
        })
        .await;
        assert_eq!(client.get_data("/").await, Err(zk::Error::SessionExpired));
        let resumed = zk::Client::connector()
            .with_session(session)
            .with_fail_eagerly()
            .connect(&member.zk_addr())
            .await;
        assert_eq!(
            resumed.err(),
            Some(zk::Error::SessionExpired),
            "the member refuses to resume an expired session"
        );
    })
    .await;
}
