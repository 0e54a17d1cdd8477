//! Membership changes through the admin API, against real `keepr server` processes: growing
//! and shrinking, idempotent retries, refusing a second change while one is in flight and a
//! removal that would lose the quorum, replacing a member whose disk was wiped, and keeping
//! members of different clusters apart.

mod support;

use std::time::{Duration, Instant};

use keepr_proto::admin::admin_client::AdminClient;
use keepr_proto::admin::{
    AddLearnerRequest, PromoteRequest, RemoveRequest, Role, StatusReply, StatusRequest,
};
use keepr_server::identity;
use support::{bounded, connect, open_acl, Member};
use tonic::transport::Channel;
use zookeeper_client as zk;

async fn admin(m: &Member) -> AdminClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match AdminClient::connect(m.grpc_url()).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("admin API of {} unreachable: {e}", m.grpc_url()),
        }
    }
}

async fn status(m: &Member) -> StatusReply {
    admin(m)
        .await
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// Polls `m`'s status until `pred` holds (bounded).
async fn wait_status(m: &Member, what: &str, pred: impl Fn(&StatusReply) -> bool) -> StatusReply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(m).await;
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: last status {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The joining member's own id, as it announces itself to the leader.
async fn candidate_id(leader: &Member, ordinal: u32) -> u64 {
    let s = wait_status(leader, "the joiner announces itself", |s| {
        s.candidates.iter().any(|c| c.ordinal == ordinal)
    })
    .await;
    s.candidates
        .iter()
        .find(|c| c.ordinal == ordinal)
        .map(|c| c.id)
        .expect("candidate present")
}

/// Adds `joiner` as a learner and promotes it once caught up (retrying while it catches up).
async fn add_and_promote(via: &Member, joiner: &Member, id: u64) {
    let mut a = admin(via).await;
    let added = a
        .add_learner(AddLearnerRequest {
            id,
            peer_address: joiner.peer_addr(),
        })
        .await
        .expect("add learner")
        .into_inner();
    assert!(added.changed);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match a.promote(PromoteRequest { id }).await {
            Ok(r) => {
                assert!(r.into_inner().changed);
                return;
            }
            Err(s) if s.code() == tonic::Code::FailedPrecondition && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("promote {}: {s}", identity::display(id)),
        }
    }
}

fn voters(s: &StatusReply) -> Vec<u64> {
    let mut v: Vec<u64> = s
        .members
        .iter()
        .filter(|m| m.role == Role::Voter as i32)
        .map(|m| m.id)
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_grows_from_one_to_three_and_back_with_idempotent_steps() {
    let first = Member::start(&[]);
    let mut second = Member::joiner(2, &first.peer_addr(), &[]);
    let mut third = Member::joiner(3, &first.peer_addr(), &[]);
    bounded(async {
        let c = connect(&first.zk_addr()).await;
        let opts = zk::CreateMode::Persistent.with_acls(open_acl());
        c.create("/before", b"1", &opts).await.unwrap();

        let id2 = candidate_id(&first, 2).await;
        let id3 = candidate_id(&first, 3).await;
        assert_ne!(
            identity::split(id2).1,
            0,
            "a joiner takes a fresh incarnation"
        );
        add_and_promote(&first, &second, id2).await;
        // Any member passes changes to the leader.
        add_and_promote(&second, &third, id3).await;
        second.wait_until_ready();
        third.wait_until_ready();

        // Retrying a step that already happened changes nothing.
        let mut a = admin(&third).await;
        let again = a
            .add_learner(AddLearnerRequest {
                id: id3,
                peer_address: third.peer_addr(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!again.changed);
        assert!(
            !a.promote(PromoteRequest { id: id3 })
                .await
                .unwrap()
                .into_inner()
                .changed
        );
        let s = status(&third).await;
        assert_eq!(voters(&s), {
            let mut v = vec![identity::raft_id(1, 0), id2, id3];
            v.sort();
            v
        });

        // The new members serve the data written before they joined.
        let c3 = connect(&third.zk_addr()).await;
        c3.sync("/").await.unwrap();
        assert_eq!(c3.get_data("/before").await.unwrap().0, b"1");

        // Shrink back to one; removing twice is a no-op the second time.
        assert!(
            a.remove(RemoveRequest {
                id: id3,
                force: false
            })
            .await
            .unwrap()
            .into_inner()
            .changed
        );
        assert!(
            !a.remove(RemoveRequest {
                id: id3,
                force: false
            })
            .await
            .unwrap()
            .into_inner()
            .changed
        );
        let mut a1 = admin(&first).await;
        assert!(
            a1.remove(RemoveRequest {
                id: id2,
                force: false
            })
            .await
            .unwrap()
            .into_inner()
            .changed
        );
        let s = wait_status(&first, "back to one voter", |s| voters(s).len() == 1).await;
        assert_eq!(voters(&s), vec![identity::raft_id(1, 0)]);
        c.create("/after", b"2", &opts).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_that_would_leave_no_healthy_quorum_is_refused_but_a_dead_member_can_go() {
    let mut members = Member::ensemble(3, &[]);
    bounded(async {
        // Health is hearsay (announcements every 2 s): wait until the leader has heard
        // from everyone, or the survivor would count as unhealthy too.
        let s = wait_status(
            &members[0],
            "a leader that sees every member healthy",
            |s| s.leader != 0 && s.members.iter().all(|m| m.healthy),
        )
        .await;
        let (leader_ordinal, _) = identity::split(s.leader);
        wait_status(&members[leader_ordinal as usize - 1], "all healthy", |s| {
            s.leader == s.member_id && s.members.iter().all(|m| m.healthy)
        })
        .await;
        // Kill one follower; the other follower and the leader stay.
        let followers: Vec<u64> = (1..=3u64).filter(|o| *o != leader_ordinal).collect();
        let (dead, survivor) = (followers[0], identity::raft_id(followers[1], 0));
        members[dead as usize - 1].kill();
        let dead_id = identity::raft_id(dead, 0);
        let live = &members[leader_ordinal as usize - 1];
        wait_status(live, "the leader sees the dead member unhealthy", |s| {
            s.members.iter().any(|m| m.id == dead_id && !m.healthy)
        })
        .await;

        let mut a = admin(live).await;
        let refused = a
            .remove(RemoveRequest {
                id: survivor,
                force: false,
            })
            .await
            .expect_err("removing a live voter while another is dead loses the quorum");
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
        assert!(refused.message().contains("quorum"), "{refused}");

        // Removing the dead one leaves two healthy voters: allowed, and it commits.
        let removed = a
            .remove(RemoveRequest {
                id: dead_id,
                force: false,
            })
            .await
            .expect("removing the dead member")
            .into_inner();
        assert!(removed.changed);
        assert_eq!(voters(&status(live).await).len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_change_while_one_is_in_flight_is_refused() {
    let first = Member::start(&[]);
    let mut second = Member::joiner(2, &first.peer_addr(), &[]);
    let third = Member::joiner(3, &first.peer_addr(), &[]);
    bounded(async {
        let id2 = candidate_id(&first, 2).await;
        let id3 = candidate_id(&first, 3).await;
        let mut a = admin(&first).await;
        a.add_learner(AddLearnerRequest {
            id: id2,
            peer_address: second.peer_addr(),
        })
        .await
        .unwrap();
        wait_status(&first, "the learner catches up", |s| {
            s.members
                .iter()
                .any(|m| m.id == id2 && m.match_index > 0 && m.lag == 0)
        })
        .await;
        // With the learner gone, promoting it cannot commit (the new configuration needs
        // both voters): the change stays in flight.
        second.kill();
        let mut a2 = admin(&first).await;
        let promote = tokio::spawn(async move { a2.promote(PromoteRequest { id: id2 }).await });
        wait_status(&first, "the promotion is in flight", |s| {
            s.membership_change_in_progress
        })
        .await;
        let refused = a
            .add_learner(AddLearnerRequest {
                id: id3,
                peer_address: third.peer_addr(),
            })
            .await
            .expect_err("a second change while one is in flight");
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");
        assert!(refused.message().contains("in progress"), "{refused}");
        // The learner returns, the first change completes, and the next one is accepted.
        second.restart_unready();
        promote.await.unwrap().expect("the promotion completes");
        assert!(
            a.add_learner(AddLearnerRequest {
                id: id3,
                peer_address: third.peer_addr(),
            })
            .await
            .unwrap()
            .into_inner()
            .changed
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_member_returns_as_a_new_incarnation_and_its_old_id_is_reported_stale() {
    let mut members = Member::ensemble(3, &[]);
    bounded(async {
        let c = connect(&members[0].zk_addr()).await;
        let opts = zk::CreateMode::Persistent.with_acls(open_acl());
        c.create("/kept", b"x", &opts).await.unwrap();
        // Member 3 loses its disk and restarts with its original flags.
        let old = identity::raft_id(3, 0);
        members[2].kill();
        members[2].wipe();
        members[2].restart_unready();
        let s = wait_status(&members[0], "the old id is reported stale", |s| {
            s.members.iter().any(|m| m.id == old && m.stale)
        })
        .await;
        let new = s
            .candidates
            .iter()
            .find(|c| c.ordinal == 3)
            .map(|c| c.id)
            .expect("the new incarnation waits to be added");
        assert_ne!(new, old, "the wiped member must not reuse its id");
        // Replace: add and promote the new incarnation, then remove the stale id.
        add_and_promote(&members[0], &members[2], new).await;
        let mut a = admin(&members[0]).await;
        a.remove(RemoveRequest {
            id: old,
            force: false,
        })
        .await
        .unwrap();
        members[2].wait_until_ready();
        let s = status(&members[0]).await;
        assert!(voters(&s).contains(&new) && !voters(&s).contains(&old));
        let c3 = connect(&members[2].zk_addr()).await;
        c3.sync("/").await.unwrap();
        assert_eq!(c3.get_data("/kept").await.unwrap().0, b"x");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_of_another_cluster_refuses_to_be_added() {
    let a = Member::start(&["--cluster-token", "cluster-a"]);
    let b = Member::start(&["--cluster-token", "cluster-b"]);
    bounded(async {
        let other = status(&b).await;
        assert_ne!(status(&a).await.cluster_id, other.cluster_id);
        // A's leader is told to replicate to B (as a learner under B's own id).
        let mut admin_a = admin(&a).await;
        admin_a
            .add_learner(AddLearnerRequest {
                id: identity::raft_id(2, 7),
                peer_address: b.peer_addr(),
            })
            .await
            .expect("the learner is recorded in A's membership");
        // B answers A's calls with a cluster mismatch and never takes A's log.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !a.log().contains("cluster id mismatch") {
            assert!(
                Instant::now() < deadline,
                "A's replication to B was not refused"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = status(&a).await;
        let learner = s
            .members
            .iter()
            .find(|m| m.id == identity::raft_id(2, 7))
            .expect("learner listed");
        assert_eq!(
            learner.match_index, 0,
            "nothing was replicated to the other cluster"
        );
        assert_eq!(status(&b).await.cluster_id, other.cluster_id);
    })
    .await;
}

/// Catch-up through a snapshot of more than 1 GiB: a member joins an ensemble whose log was
/// purged behind a snapshot of 1.2 GB of data, receives it streamed, and serves every node.
/// Not in CI (it writes 1.2 GB through the ZooKeeper protocol and holds it in two processes);
/// run it with
/// `cargo test --release -p keepr --test membership -- --ignored one_gib --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn learner_catches_up_from_a_snapshot_of_more_than_one_gib() {
    const NODES: usize = 1200;
    const SIZE: usize = 1_000_000; // under jute.maxbuffer (0xfffff) with the request header
    let first = Member::start(&["--snapshot-every", "200"]);
    let mut second = Member::joiner(2, &first.peer_addr(), &[]);
    let started = Instant::now();
    let c = connect(&first.zk_addr()).await;
    let opts = zk::CreateMode::Persistent.with_acls(open_acl());
    for i in 0..NODES {
        let mut data = vec![(i % 251) as u8; SIZE];
        data[..8].copy_from_slice(&(i as u64).to_be_bytes());
        c.create(&format!("/big-{i:05}"), &data, &opts)
            .await
            .expect("create a 1 MB node");
    }
    eprintln!(
        "wrote {} MB in {:?}",
        NODES * SIZE / 1_000_000,
        started.elapsed()
    );
    // A snapshot every 200 entries: the one at index 1199 holds more than 1 GiB of data, and
    // the log is purged behind the one before it, so the joiner can only start from one.
    let deadline = Instant::now() + Duration::from_secs(600);
    while first.metric("keepr_raft_snapshot_index").unwrap_or(0.0) < 1199.0 {
        assert!(Instant::now() < deadline, "no snapshot covering the writes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = candidate_id(&first, 2).await;
    let caught_up = Instant::now();
    let mut a = admin(&first).await;
    a.add_learner(AddLearnerRequest {
        id,
        peer_address: second.peer_addr(),
    })
    .await
    .expect("add learner");
    let s = wait_status(&first, "the learner catches up", |s| {
        s.members
            .iter()
            .any(|m| m.id == id && m.lag == 0 && m.match_index > NODES as u64)
    })
    .await;
    eprintln!(
        "learner caught up in {:?} (commit index {})",
        caught_up.elapsed(),
        s.commit_index
    );
    assert!(
        second.log().contains("snapshot installed from the leader"),
        "caught up without a snapshot"
    );
    second.wait_until_ready();
    let c2 = connect(&second.zk_addr()).await;
    for i in [0, NODES / 2, NODES - 1] {
        let (data, stat) = c2.get_data(&format!("/big-{i:05}")).await.unwrap();
        assert_eq!(data.len(), SIZE);
        assert_eq!(stat.data_length as usize, SIZE);
        assert_eq!(&data[..8], &(i as u64).to_be_bytes());
    }
    assert_eq!(
        c2.list_children("/").await.unwrap().len(),
        NODES + 1,
        "every node and /zookeeper"
    );
}
