//! Support for process-level tests of `keepr server`: the real binary on loopback ports with a
//! throw-away data directory, killed and restarted the way an operator or a crash would, and
//! real ZooKeeper clients talking to it.
//!
//! Every test binary includes this module but uses only part of it, hence the `dead_code`
//! allowance.

#![allow(dead_code, unused_imports)]

mod client;
mod member;
mod proxy;

pub use client::{connect, connect_with, open_acl};
pub use member::Member;
pub use proxy::Proxy;

use std::future::Future;
use std::time::{Duration, Instant};

/// How long any single awaited event may take before the test fails instead of hanging. Far
/// above what anything needs on a loaded 2-core machine; it bounds a test, it is not a
/// performance assertion.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// How long a whole test body may run: it must end by itself, whatever the server does.
pub const TEST_DEADLINE: Duration = Duration::from_secs(120);

/// Runs a test body, failing the test if it has not finished within [`TEST_DEADLINE`] (a
/// server that stops answering would otherwise hang it). Keep the [`Member`] outside the
/// body, so that it is dropped while the test panics and its log is shown.
pub async fn bounded<T>(body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_DEADLINE, body).await {
        Ok(v) => v,
        Err(_) => panic!("the test did not finish within {TEST_DEADLINE:?}"),
    }
}

/// Awaits `fut`, failing the test with `what` if it does not finish within [`EVENT_DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(EVENT_DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing happened within {EVENT_DEADLINE:?}"),
    }
}

/// The member that leads, with its term (from `/metrics`), once every member names the same
/// leader in the same term.
pub async fn leader(members: &[Member]) -> (usize, i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views: Vec<(Option<f64>, Option<f64>, Option<f64>)> = members
            .iter()
            .map(|m| {
                (
                    m.metric("keepr_raft_is_leader"),
                    m.metric("keepr_raft_leader"),
                    m.metric("keepr_raft_term"),
                )
            })
            .collect();
        let leaders: Vec<usize> = (0..views.len())
            .filter(|&i| views[i].0 == Some(1.0))
            .collect();
        let agreed = views
            .iter()
            .all(|v| v.1.is_some_and(|l| l != 0.0) && v.1 == views[0].1 && v.2 == views[0].2);
        if let ([i], true) = (leaders.as_slice(), agreed) {
            if let Some(term) = views[*i].2 {
                return (*i, term as i64);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader within 30 s: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
