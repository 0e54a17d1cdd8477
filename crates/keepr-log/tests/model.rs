//! Property test: random sequences of appends, truncations, purges, vote and commit saves and
//! reopens, on small segments and a small cache, against a plain in-memory model. After every
//! step the store must show exactly the model's state, also right after a reopen.

mod common;

use std::collections::BTreeMap;

use common::*;
use keepr_log::LogConfig;
use openraft::entry::RaftEntry;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::LogIdOf;
use openraft::RaftLogReader;
use openraft::Vote;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Append(u64),
    /// Truncate after the entry this many back from the last one.
    TruncateBack(u64),
    /// Purge up to the entry this many after the purged one.
    PurgeForward(u64),
    Vote(u64),
    CommitBack(u64),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..6).prop_map(Step::Append),
        1 => (0u64..8).prop_map(Step::TruncateBack),
        1 => (1u64..12).prop_map(Step::PurgeForward),
        1 => (1u64..5).prop_map(Step::Vote),
        1 => (0u64..5).prop_map(Step::CommitBack),
        1 => Just(Step::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    entries: BTreeMap<u64, LogIdOf<TestConfig>>,
    purged: Option<LogIdOf<TestConfig>>,
    last: Option<LogIdOf<TestConfig>>,
    vote: Option<Vote<openraft::impls::leader_id_adv::LeaderId<u64, u64>>>,
    committed: Option<LogIdOf<TestConfig>>,
    term: u64,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.last.map_or(0, |l| l.index)
    }

    fn purged_index(&self) -> u64 {
        self.purged.map_or(0, |l| l.index)
    }
}

async fn check(store: &mut Store, model: &Model, context: &str) {
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, model.purged, "{context}: purged");
    assert_eq!(state.last_log_id, model.last, "{context}: last");
    assert_eq!(
        store.read_vote().await.unwrap(),
        model.vote,
        "{context}: vote"
    );
    assert_eq!(
        store.read_committed().await.unwrap(),
        model.committed,
        "{context}: committed"
    );
    let got: Vec<_> = store
        .try_get_log_entries(0..u64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(
                e.payload,
                openraft::EntryPayload::Normal(payload(e.index())),
                "{context}: payload"
            );
            e.log_id
        })
        .collect();
    let want: Vec<_> = model.entries.values().copied().collect();
    assert_eq!(got, want, "{context}: entries");
}

async fn run(steps: Vec<Step>, config: LogConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), config.clone());
    let mut model = Model {
        term: 1,
        ..Model::default()
    };
    for (n, step) in steps.iter().enumerate() {
        let context = format!("step {n} {step:?}");
        match *step {
            Step::Append(count) => {
                let first = model.last_index() + 1;
                let new: Vec<_> = (first..first + count)
                    .map(|i| Entry::new_normal(log_id(model.term, i), payload(i)))
                    .collect();
                for e in &new {
                    model.entries.insert(e.index(), e.log_id);
                    model.last = Some(e.log_id);
                }
                append_durably(&mut store, new).await;
            }
            Step::TruncateBack(back) => {
                let target = model.last_index().saturating_sub(back);
                let after = if target <= model.purged_index() {
                    model.purged
                } else {
                    model.entries.get(&target).copied()
                };
                store.truncate_after(after).await.unwrap();
                let keep = after.map(|a| a.index);
                model.entries.retain(|&i, _| Some(i) <= keep);
                if model.last.map(|l| l.index) > keep {
                    model.last = after;
                }
                // The next leader writes in a new term.
                model.term += 1;
            }
            Step::PurgeForward(fwd) => {
                let target = (model.purged_index() + fwd).min(model.last_index());
                let Some(upto) = model.entries.get(&target).copied() else {
                    continue;
                };
                store.purge(upto).await.unwrap();
                model.entries.retain(|&i, _| i > upto.index);
                model.purged = Some(upto);
            }
            Step::Vote(bump) => {
                let vote = Vote::new(model.term + bump, 1);
                store.save_vote(&vote).await.unwrap();
                model.vote = Some(vote);
            }
            Step::CommitBack(back) => {
                let target = model.last_index().saturating_sub(back);
                let committed = model.entries.get(&target).copied().or(model.purged);
                store.save_committed(committed).await.unwrap();
                model.committed = committed;
            }
            Step::Reopen => {
                drop(store);
                store = open(dir.path(), config.clone());
            }
        }
        check(&mut store, &model, &context).await;
    }
    drop(store);
    let mut store = open(dir.path(), config);
    check(&mut store, &model, "final reopen").await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_store_matches_a_model_across_writes_and_reopens(
        steps in prop::collection::vec(step(), 1..60),
        segment_size in 200u64..3000,
        cache_bytes in 0usize..3000,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(steps, LogConfig { segment_size, cache_bytes }));
    }
}
