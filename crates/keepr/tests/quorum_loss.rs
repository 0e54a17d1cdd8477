//! Sessions survive a quorum loss longer than their timeout (issue 8).
//!
//! The client's member is killed (the session moves to another member), then a second
//! member is killed: one member is left and there is no quorum, for longer than the session
//! timeout. Then one member comes back. Nobody could reach a quorum meanwhile, so nobody
//! could have kept the session alive: a client that resumes as soon as the quorum is back
//! must find its session and its ephemeral, as Apache ZooKeeper gives it (its leader steps
//! down and the next one gives every session a fresh timeout).
//!
//! The case that failed: the survivor is the Raft leader. It keeps its term without a
//! quorum, counted the sessions down, proposed their expiry, and the proposals committed the
//! moment a follower returned. The other case (the survivor is a follower, the quorum's
//! return elects a new leader) is checked too.
//!
//! Resuming is done by a fresh client that presents the session id and password (the
//! `zookeeper-client` crate gives a session up by itself once it has been disconnected for
//! longer than the timeout; kazoo, the Go and the Java clients keep trying, which is what
//! such a client sends when it gets through).

mod support;

use std::time::Duration;

use support::{bounded, connect_with, leader, open_acl, within, Member};
use zookeeper_client as zk;

const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// How long the quorum stays lost: well past the session timeout and its tick rounding.
const OUTAGE: Duration = Duration::from_secs(7);
/// How long after the quorum's return the client resumes: within its timeout.
const RESUME_AFTER: Duration = Duration::from_secs(2);
const HOLDER: &str = "/holder";

/// A detached client (dropping it leaves the session open) on `member`, resuming `session`
/// if given.
async fn client_on(member: &Member, session: Option<zk::SessionInfo>) -> zk::Client {
    let mut connector = zk::Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .with_detached();
    if let Some(session) = session {
        connector = connector.with_session(session);
    }
    connect_with(connector, &member.zk_addr()).await
}

/// The ephemeral's owner as `client` sees it, after a sync.
async fn holder_owner(client: &zk::Client) -> Option<i64> {
    within("sync", client.sync("/")).await.expect("sync");
    within("exists", client.check_stat(HOLDER))
        .await
        .expect("exists")
        .map(|stat| stat.ephemeral_owner)
}

/// Kills `first` (the client's member: its session moves to `second`), then `second`,
/// leaving the third member alone for [`OUTAGE`]; restarts `first` and resumes the session
/// there [`RESUME_AFTER`] later. The session and its ephemeral must have survived.
async fn lose_the_quorum_and_resume(members: &mut [Member], first: usize, second: usize) {
    let client = client_on(&members[first], None).await;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(open_acl());
    within("create", client.create(HOLDER, b"", &ephemeral))
        .await
        .expect("creating the ephemeral");
    let session = client.session().clone();
    let id = client.session_id().0;
    drop(client);

    members[first].kill();
    let moved = client_on(&members[second], Some(session.clone())).await;
    assert_eq!(
        holder_owner(&moved).await,
        Some(id),
        "after the session moved"
    );
    drop(moved);

    members[second].kill();
    // The fault itself: no quorum for longer than the session timeout.
    tokio::time::sleep(OUTAGE).await;

    members[first].restart();
    // The client comes back within its timeout after the quorum did, but not at once (a
    // real client's reconnect backoff): a leader that still held the session's old
    // deadline would expire it in the meantime.
    tokio::time::sleep(RESUME_AFTER).await;
    let resumed = client_on(&members[first], Some(session)).await;
    assert_eq!(resumed.session_id().0, id);
    assert_eq!(
        holder_owner(&resumed).await,
        Some(id),
        "the ephemeral of a session resumed right after the quorum returned is gone"
    );
    within(
        "a write in the resumed session",
        resumed.set_data(HOLDER, b"still mine", None),
    )
    .await
    .expect("writing in the resumed session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_quorum_loss_when_the_leader_is_the_survivor() {
    let mut members = Member::ensemble(3, &[]);
    bounded(async {
        let (lead, _) = leader(&members).await;
        let followers: Vec<usize> = (0..3).filter(|&i| i != lead).collect();
        lose_the_quorum_and_resume(&mut members, followers[0], followers[1]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_quorum_loss_when_a_follower_is_the_survivor() {
    let mut members = Member::ensemble(3, &[]);
    bounded(async {
        let (lead, _) = leader(&members).await;
        let follower = (0..3).find(|&i| i != lead).expect("a follower");
        lose_the_quorum_and_resume(&mut members, follower, lead).await;
    })
    .await;
}
