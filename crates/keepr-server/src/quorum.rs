//! Whether the leader has held its quorum without a lapse, and since when.
//!
//! The leader alone decides that a session is dead (no touch within its timeout) or that a
//! TTL node is stale (not modified within its TTL). Both are conclusions from silence, and
//! silence means something only while the leader could have heard: while a quorum answers
//! its heartbeats. A leader left alone (its peers killed, or cut off) keeps its term, so the
//! per-term reset a new leader does never comes; without this check it would count every
//! session down, propose their expiries, and those would commit the moment a follower
//! returned, before any client could resume (issue 8).
//!
//! So the leader feeds each observation of its Raft state (term, when a quorum last
//! acknowledged a heartbeat) to [`QuorumContinuity`]. When the quorum was silent for longer
//! than the allowed lapse, or two consecutive acknowledgements are further apart than that,
//! the continuity is broken: nothing expires, and when acknowledgements resume every session
//! starts a fresh full timeout, exactly as after an election. Pure: time comes in.

use std::time::{Duration, Instant};

/// The leader's view, from one look at its Raft metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leading {
    pub term: u64,
    /// When a quorum last acknowledged this leader (openraft's `last_quorum_acked`: the send
    /// time of the heartbeat a quorum answered); `None` before the first acknowledgement.
    pub quorum_acked: Option<Instant>,
}

/// What one observation means for time-based decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Not the leader: nothing to decide.
    NotLeading,
    /// Leading without a recent quorum: decide nothing that rests on silence.
    Lapsed,
    /// A quorum holds from now on, after an election or a lapse: every session gets a fresh
    /// full timeout before anything expires.
    Began,
    /// The quorum has held without a lapse since `since`.
    Held { since: Instant },
}

#[derive(Debug, Clone, Copy)]
enum State {
    NotLeading,
    Lapsed,
    Held {
        term: u64,
        since: Instant,
        last_ack: Instant,
    },
}

#[derive(Debug)]
pub struct QuorumContinuity {
    lapse: Duration,
    state: State,
}

impl QuorumContinuity {
    /// `lapse`: the longest a quorum may be silent without breaking continuity. It must be
    /// well below the smallest session timeout, so that a client that was heard from until the
    /// quorum went away cannot reach its deadline within the lapse.
    pub fn new(lapse: Duration) -> QuorumContinuity {
        QuorumContinuity {
            lapse,
            state: State::NotLeading,
        }
    }

    /// One observation at `now`: `None` when this member does not lead.
    pub fn observe(&mut self, leading: Option<Leading>, now: Instant) -> Continuity {
        let Some(Leading { term, quorum_acked }) = leading else {
            self.state = State::NotLeading;
            return Continuity::NotLeading;
        };
        let Some(ack) = quorum_acked.filter(|a| now.saturating_duration_since(*a) <= self.lapse)
        else {
            self.state = State::Lapsed;
            return Continuity::Lapsed;
        };
        match self.state {
            State::Held {
                term: t,
                since,
                last_ack,
            } if t == term && ack.saturating_duration_since(last_ack) <= self.lapse => {
                self.state = State::Held {
                    term,
                    since,
                    last_ack: ack.max(last_ack),
                };
                Continuity::Held { since }
            }
            _ => {
                self.state = State::Held {
                    term,
                    since: now,
                    last_ack: ack,
                };
                Continuity::Began
            }
        }
    }

    /// The quorum failed a confirmation (a read-index round timed out): treated as a lapse,
    /// so the next acknowledgement begins a new period.
    pub fn broken(&mut self) {
        if !matches!(self.state, State::NotLeading) {
            self.state = State::Lapsed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAPSE: Duration = Duration::from_millis(600);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn leading(term: u64, ack: Instant) -> Option<Leading> {
        Some(Leading {
            term,
            quorum_acked: Some(ack),
        })
    }

    #[test]
    fn a_new_leader_begins_at_its_first_acknowledgement_and_then_holds() {
        let t0 = Instant::now();
        let mut q = QuorumContinuity::new(LAPSE);
        let none = Some(Leading {
            term: 2,
            quorum_acked: None,
        });
        assert_eq!(q.observe(none, t0), Continuity::Lapsed);
        assert_eq!(q.observe(leading(2, t0), t0 + ms(50)), Continuity::Began);
        assert_eq!(
            q.observe(leading(2, t0 + ms(100)), t0 + ms(150)),
            Continuity::Held { since: t0 + ms(50) }
        );
    }

    #[test]
    fn a_silent_quorum_lapses_and_its_return_begins_a_new_period() {
        let t0 = Instant::now();
        let mut q = QuorumContinuity::new(LAPSE);
        assert_eq!(q.observe(leading(3, t0), t0), Continuity::Began);
        // The followers die: the acknowledgement stays at t0 while time goes on.
        assert_eq!(
            q.observe(leading(3, t0), t0 + ms(500)),
            Continuity::Held { since: t0 }
        );
        assert_eq!(q.observe(leading(3, t0), t0 + ms(700)), Continuity::Lapsed);
        assert_eq!(q.observe(leading(3, t0), t0 + ms(9000)), Continuity::Lapsed);
        // Same term, quorum back.
        let back = t0 + ms(9100);
        assert_eq!(q.observe(leading(3, back), back), Continuity::Began);
        assert_eq!(
            q.observe(leading(3, back + ms(100)), back + ms(100)),
            Continuity::Held { since: back }
        );
    }

    #[test]
    fn a_lapse_between_two_observations_is_seen_from_the_gap_in_acknowledgements() {
        let t0 = Instant::now();
        let mut q = QuorumContinuity::new(LAPSE);
        q.observe(leading(1, t0), t0);
        // Observed late (the chore was delayed): the acks before and after are 2 s apart.
        let later = t0 + ms(2000);
        assert_eq!(q.observe(leading(1, later), later), Continuity::Began);
    }

    #[test]
    fn a_new_term_begins_a_new_period_even_without_a_lapse() {
        let t0 = Instant::now();
        let mut q = QuorumContinuity::new(LAPSE);
        q.observe(leading(1, t0), t0);
        assert_eq!(
            q.observe(leading(2, t0 + ms(100)), t0 + ms(100)),
            Continuity::Began
        );
    }

    #[test]
    fn losing_leadership_and_a_failed_confirmation_both_end_the_period() {
        let t0 = Instant::now();
        let mut q = QuorumContinuity::new(LAPSE);
        q.observe(leading(1, t0), t0);
        assert_eq!(q.observe(None, t0 + ms(100)), Continuity::NotLeading);
        assert_eq!(
            q.observe(leading(1, t0 + ms(200)), t0 + ms(200)),
            Continuity::Began
        );
        q.broken();
        assert_eq!(
            q.observe(leading(1, t0 + ms(300)), t0 + ms(300)),
            Continuity::Began
        );
    }
}
