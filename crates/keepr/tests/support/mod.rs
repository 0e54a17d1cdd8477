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
use std::time::Duration;

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
