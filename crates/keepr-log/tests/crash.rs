//! Crash test: a child process appends under load and reports each index once its `IOFlushed`
//! callback fired; the parent SIGKILLs it at a random moment, reopens the log and checks that
//! every acknowledged entry is present and intact. Several rounds share one directory, so
//! later rounds also recover from the tails earlier kills left.
//!
//! The child is this same test binary, run with `--ignored --exact` on the child test below
//! and told where to write through the environment.

mod common;

use std::io::BufRead;
use std::io::BufReader;
use std::process::Command;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use keepr_log::LogConfig;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::RaftLogReader;
use openraft::Vote;

const DIR_ENV: &str = "KEEPR_LOG_CRASH_DIR";
const ROUND_ENV: &str = "KEEPR_LOG_CRASH_ROUND";
const SEED_ENV: &str = "KEEPR_LOG_CRASH_SEED";
const CHILD_TEST: &str = "crash_child_appends_until_killed";
const ROUNDS: u64 = 10;
/// A bound on how long the parent waits for the child's next line before declaring it stuck.
const STALL_LIMIT: Duration = Duration::from_secs(60);

fn crash_config() -> LogConfig {
    LogConfig {
        segment_size: 16 * 1024,
        cache_bytes: 64 * 1024,
    }
}

/// Small deterministic generator, so a failing run can be replayed from its printed seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(s) => s.parse().expect("seed must be a number"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            nanos | 1
        }
    }
}

/// The child: appends batches of entries forever, printing `@@ACK <last index>` when a batch's
/// callback reports it durable, and `@@VOTE <term>` once its vote is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of acknowledged_entries_survive_sigkill; runs only when spawned by it"]
async fn crash_child_appends_until_killed() {
    let dir = std::env::var(DIR_ENV)
        .expect("run by acknowledged_entries_survive_sigkill, which sets the directory");
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let mut rng = XorShift(round.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut store = open(std::path::Path::new(&dir), crash_config());

    store.save_vote(&Vote::new(round, 1)).await.unwrap();
    println!("@@VOTE {round}");

    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<(u64, _)>(512);
    let acks = tokio::spawn(async move {
        while let Some((index, rx)) = ack_rx.recv().await {
            let flushed: Result<std::io::Result<()>, _> = rx.await;
            match flushed {
                Ok(Ok(())) => println!("@@ACK {index}"),
                other => panic!("flush of {index} failed: {other:?}"),
            }
        }
    });

    let mut next = store
        .get_log_state()
        .await
        .unwrap()
        .last_log_id
        .map_or(1, |l| l.index + 1);
    // Bounded even if nobody kills it.
    for batch in 0..200_000u64 {
        let n = 1 + rng.below(8);
        let last = next + n - 1;
        let (tx, rx) = TestConfig::oneshot();
        store
            .append(entries(1, next..=last), IOFlushed::signal(tx))
            .await
            .unwrap();
        ack_tx.send((last, rx)).await.unwrap();
        next = last + 1;
        if batch % 20 == 19 {
            store.save_committed(Some(log_id(1, last))).await.unwrap();
        }
        if batch % 100 == 99 && last > 300 {
            store.purge(log_id(1, last - 300)).await.unwrap();
        }
    }
    drop(ack_tx);
    acks.await.unwrap();
}

enum Line {
    Ack(u64),
    Vote(u64),
    Other,
}

fn parse(line: &str) -> Line {
    if let Some(at) = line.find("@@ACK ") {
        return Line::Ack(line[at + 6..].trim().parse().expect("ack index"));
    }
    if let Some(at) = line.find("@@VOTE ") {
        return Line::Vote(line[at + 7..].trim().parse().expect("vote term"));
    }
    Line::Other
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_survive_sigkill() {
    let seed = seed();
    eprintln!("crash test seed {seed} (set {SEED_ENV} to replay)");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<u64> = Vec::new();

    for round in 1..=ROUNDS {
        let kill_after = rng.below(1500);
        let mut child = Command::new(&exe)
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let pump = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        let mut voted = None;
        let mut round_acks = 0;
        let mut killed = false;
        loop {
            let line = match rx.recv_timeout(STALL_LIMIT) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    child.kill().ok();
                    panic!("round {round}: the child printed nothing for {STALL_LIMIT:?}");
                }
            };
            match parse(&line) {
                Line::Ack(i) => {
                    acked.push(i);
                    round_acks += 1;
                }
                Line::Vote(t) => voted = Some(t),
                Line::Other => {}
            }
            if !killed && voted.is_some() && round_acks >= kill_after {
                child.kill().expect("SIGKILL child");
                killed = true;
                // Keep reading: what it printed before it died was acknowledged too.
            }
        }
        let status = child.wait().unwrap();
        pump.join().unwrap();
        assert!(
            killed,
            "round {round}: child exited on its own ({status}) before being killed"
        );
        assert_eq!(
            voted,
            Some(round),
            "round {round}: the child never saved its vote"
        );

        let mut store = open(dir.path(), crash_config());
        let state = store.get_log_state().await.unwrap();
        let purged = state.last_purged_log_id.map_or(0, |l| l.index);
        let last = state.last_log_id.map_or(0, |l| l.index);
        let max_acked = acked.iter().copied().max().unwrap_or(0);
        assert!(
            last >= max_acked,
            "round {round} (seed {seed}): last index {last} is below acknowledged {max_acked}"
        );
        assert_eq!(
            store.read_vote().await.unwrap(),
            Some(Vote::new(round, 1)),
            "round {round}: the saved vote is lost"
        );
        let present = store.try_get_log_entries(purged + 1..=last).await.unwrap();
        assert_eq!(
            present.len() as u64,
            last - purged,
            "round {round}: entries missing"
        );
        for e in &present {
            assert_eq!(e.log_id, log_id(1, e.log_id.index));
            assert_eq!(
                e.payload,
                openraft::EntryPayload::Normal(payload(e.log_id.index))
            );
        }
        for &i in acked.iter().filter(|&&i| i > purged) {
            assert!(
                i <= last,
                "round {round} (seed {seed}): acknowledged entry {i} lost"
            );
        }
        eprintln!(
            "round {round}: killed after {round_acks} acks; log ({purged}, {last}], {} segments",
            segment_files(dir.path()).len()
        );
    }
    assert!(!acked.is_empty(), "no round acknowledged anything");
}
