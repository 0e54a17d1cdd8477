//! Session liveness and expiry, kept apart from the replicated tree.
//!
//! Which sessions exist (and their ephemerals) is replicated: creating and closing a session
//! are Raft commands. Whether a session is still alive is not: it is the leader's view of
//! when each session was last heard from. Any packet from the client touches its session;
//! a session not touched within its timeout is expired by proposing `CloseSession`.
//! A leader that has just been elected knows nothing of recent touches, so it gives every
//! session a fresh full timeout before expiring anything, as ZooKeeper's new leaders do.
//!
//! Deadlines are rounded up to the next tick, as ZooKeeper's `ExpiryQueue` does, so expiry
//! happens in batches at tick boundaries. Time is passed in, so this is unit-testable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: Instant,
    timeout: Duration,
    /// CloseSession proposed; not expired again while it is in flight.
    closing: bool,
}

#[derive(Debug)]
pub struct SessionTracker {
    tick: Duration,
    origin: Instant,
    sessions: Mutex<HashMap<i64, Entry>>,
    /// Sessions touched since the last report to the leader (followers send these).
    touched: Mutex<HashMap<i64, i32>>,
}

impl SessionTracker {
    pub fn new(tick: Duration, now: Instant) -> SessionTracker {
        SessionTracker {
            tick: tick.max(Duration::from_millis(1)),
            origin: now,
            sessions: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// `now + timeout`, rounded up to the next tick boundary.
    fn deadline(&self, now: Instant, timeout: Duration) -> Instant {
        let t = (now + timeout).saturating_duration_since(self.origin);
        let tick = self.tick.as_nanos();
        let rounded = t.as_nanos().div_ceil(tick) * tick;
        self.origin + Duration::from_nanos(rounded.min(u64::MAX as u128) as u64)
    }

    /// A client of this member was heard from: tracked here, and remembered for the next
    /// report to the leader.
    pub fn touch_local(&self, session: i64, timeout_ms: i32, now: Instant) {
        self.touched.lock().insert(session, timeout_ms);
        self.touch(session, timeout_ms, now);
    }

    /// Puts back touches whose report failed, unless the session was touched again since.
    pub fn requeue_touched(&self, touches: &[(i64, i32)]) {
        let mut touched = self.touched.lock();
        for &(session, timeout_ms) in touches {
            touched.entry(session).or_insert(timeout_ms);
        }
    }

    /// Sessions touched by local clients since the last call.
    pub fn take_touched(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self.touched.lock().drain().collect();
        v.sort_unstable();
        v
    }

    /// The client was heard from (here or, reported by a follower, elsewhere).
    pub fn touch(&self, session: i64, timeout_ms: i32, now: Instant) {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        let deadline = self.deadline(now, timeout);
        let mut s = self.sessions.lock();
        let e = s.entry(session).or_insert(Entry {
            deadline,
            timeout,
            closing: false,
        });
        e.timeout = timeout;
        if deadline > e.deadline {
            e.deadline = deadline;
        }
    }

    /// Brings the tracked set in line with the sessions that exist: unknown ones get a full
    /// timeout from `now`, vanished ones are dropped.
    pub fn reconcile(&self, live: &[(i64, i32)], now: Instant) {
        let mut s = self.sessions.lock();
        let mut seen: HashMap<i64, Entry> = HashMap::with_capacity(live.len());
        for &(id, timeout_ms) in live {
            let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
            let e = s.remove(&id).unwrap_or(Entry {
                deadline: self.deadline(now, timeout),
                timeout,
                closing: false,
            });
            seen.insert(id, e);
        }
        *s = seen;
    }

    /// Every session gets a full timeout from `now` (a new leader's first act).
    pub fn reset_all(&self, now: Instant) {
        let mut s = self.sessions.lock();
        for e in s.values_mut() {
            e.deadline = self.deadline(now, e.timeout);
            e.closing = false;
        }
    }

    /// Sessions whose deadline has passed and whose close is not yet in flight; they are
    /// marked closing.
    pub fn take_expired(&self, now: Instant) -> Vec<i64> {
        let mut s = self.sessions.lock();
        let mut out: Vec<i64> = s
            .iter_mut()
            .filter(|(_, e)| !e.closing && e.deadline <= now)
            .map(|(id, e)| {
                e.closing = true;
                *id
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// A proposed close failed (e.g. leadership was lost): allow expiring it again.
    pub fn close_failed(&self, session: i64) {
        if let Some(e) = self.sessions.lock().get_mut(&session) {
            e.closing = false;
        }
    }

    pub fn forget(&self, session: i64) {
        self.sessions.lock().remove(&session);
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Session ids as ZooKeeper forms them: the member id in the top byte and a millisecond
/// clock below, incremented for each new session. The tree refuses a duplicate, so a clock
/// that went backwards costs a retry, never a shared id.
#[derive(Debug)]
pub struct SessionIds {
    next: AtomicI64,
}

impl SessionIds {
    pub fn new(node_id: u64, now_ms: i64) -> SessionIds {
        let base = ((now_ms << 24) as u64 >> 8) as i64 | ((node_id as i64) << 56);
        SessionIds {
            next: AtomicI64::new(base),
        }
    }

    pub fn next(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// A fresh 16-byte session password (clients require exactly 16 bytes).
pub fn new_password() -> [u8; 16] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(2000);

    #[test]
    fn session_expires_only_after_its_timeout_rounded_to_tick() {
        let t0 = Instant::now();
        let t = SessionTracker::new(TICK, t0);
        t.touch(7, 5000, t0);
        assert!(t.take_expired(t0 + Duration::from_millis(5000)).is_empty());
        assert_eq!(t.take_expired(t0 + Duration::from_millis(6000)), vec![7]);
    }

    #[test]
    fn touch_pushes_the_deadline_and_expired_session_is_reported_once() {
        let t0 = Instant::now();
        let t = SessionTracker::new(TICK, t0);
        t.touch(1, 4000, t0);
        t.touch(1, 4000, t0 + Duration::from_millis(3000));
        assert!(t.take_expired(t0 + Duration::from_millis(6000)).is_empty());
        let later = t0 + Duration::from_millis(9000);
        assert_eq!(t.take_expired(later), vec![1]);
        assert!(t.take_expired(later).is_empty(), "close already in flight");
        t.close_failed(1);
        assert_eq!(t.take_expired(later), vec![1]);
    }

    #[test]
    fn new_leader_gives_every_session_a_fresh_timeout() {
        let t0 = Instant::now();
        let t = SessionTracker::new(TICK, t0);
        t.reconcile(&[(1, 4000), (2, 4000)], t0);
        let t1 = t0 + Duration::from_secs(100);
        t.reset_all(t1);
        assert!(t.take_expired(t1 + Duration::from_millis(3999)).is_empty());
        assert_eq!(t.take_expired(t1 + Duration::from_millis(4000)), vec![1, 2]);
    }

    #[test]
    fn reconcile_adds_unknown_and_drops_vanished_sessions() {
        let t0 = Instant::now();
        let t = SessionTracker::new(TICK, t0);
        t.touch(1, 4000, t0);
        t.reconcile(&[(2, 4000)], t0);
        assert_eq!(t.len(), 1);
        assert_eq!(t.take_expired(t0 + Duration::from_secs(10)), vec![2]);
    }

    #[test]
    fn local_touches_are_reported_once() {
        let t0 = Instant::now();
        let t = SessionTracker::new(TICK, t0);
        t.touch_local(5, 4000, t0);
        t.touch_local(5, 4000, t0);
        t.touch(6, 4000, t0);
        assert_eq!(t.take_touched(), vec![(5, 4000)]);
        assert!(t.take_touched().is_empty());
    }

    #[test]
    fn session_ids_carry_the_member_id_in_the_top_byte_and_increase() {
        let ids = SessionIds::new(3, 1_700_000_000_000);
        let a = ids.next();
        let b = ids.next();
        assert_eq!(a >> 56, 3);
        assert_eq!(b, a + 1);
    }
}
