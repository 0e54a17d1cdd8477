//! Connecting the `zookeeper-client` crate (a real async ZooKeeper client) to a member.
//!
//! A member that just reported ready may still be settling (a client racing its first
//! election gets its connection closed), so connecting retries, within a bound, the way an
//! application's connection loop would.

use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// Total time connecting may take before the test fails.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// One attempt's bound: the client's own connect can wait up to its session timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A client with default options connected to `addr`.
pub async fn connect(addr: &str) -> zk::Client {
    connect_with(zk::Client::connector(), addr).await
}

/// A client built by `connector` connected to `addr`; retries refused or lost connections.
pub async fn connect_with(connector: zk::Connector, addr: &str) -> zk::Client {
    let deadline = Instant::now() + CONNECT_DEADLINE;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        let attempt = connector.clone().with_fail_eagerly().connect(addr);
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(Ok(client)) => return client,
            // A resumed session the server no longer knows will not come back by retrying.
            Ok(Err(e @ zk::Error::SessionExpired)) => panic!("connecting to {addr}: {e}"),
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = format!("no session within {ATTEMPT_TIMEOUT:?}"),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    panic!("could not connect to {addr} within {CONNECT_DEADLINE:?}: {last_error}");
}

/// `world:anyone` with every permission, the ACL of nodes nobody restricts.
pub fn open_acl() -> zk::Acls<'static> {
    zk::Acls::anyone_all()
}
