//! Durability of `keepr server` as a process: what a client was told is written must still be
//! there after the process is SIGKILLed, after the last log record is torn, after the newest
//! snapshot is damaged, and sessions must outlive a clean restart.
//!
//! These run the real binary on a real file system and damage its files the way crashes and
//! bad disks do, because that is where recovery code breaks: a unit test of the log cannot
//! tell whether the server acknowledges before the fsync, or whether a restart finds the
//! snapshot the purge kept the log behind.
//!
//! The SIGKILL tests are randomised: when to kill (after how many acknowledged writes) and
//! the payload sizes are drawn from a seed that is printed first; `KEEPR_TEST_SEED=<seed>`
//! draws the same again.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{bounded, connect, connect_with, open_acl, within, Member};
use tokio::sync::watch;
use zookeeper_client as zk;

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(open_acl())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(open_acl())
}

/// The seed of this run: `KEEPR_TEST_SEED` if set, else a fresh one, printed either way.
fn seed(test: &str) -> u64 {
    let seed = match std::env::var("KEEPR_TEST_SEED") {
        Ok(s) => s.parse().expect("KEEPR_TEST_SEED is a u64"),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: seed {seed} (replay with KEEPR_TEST_SEED={seed})");
    seed
}

// --- acknowledged writes under SIGKILL ---------------------------------------------------------

/// Concurrent writers, each with its own client and its own nodes.
const WRITERS: usize = 4;
/// Kill-restart rounds per test.
const ROUNDS: usize = 6;
/// A round kills the member once this many writes (drawn uniformly) were acknowledged. The
/// least total is enough for the snapshot variant to snapshot and purge several times
/// (`--snapshot-every 200`; the log keeps 200 entries behind a snapshot and purges at least
/// 1024 at a time).
const ACKS_BEFORE_KILL: std::ops::RangeInclusive<u64> = 400..=1200;
/// Largest random filler in a payload, so log records vary in size.
const MAX_FILLER: usize = 1500;
/// Reads of one verification batch, sent back to back.
const READ_BATCH: usize = 256;

/// What one writer was told, and the one write per kind whose answer the kill swallowed.
///
/// Writer `w` appends sequential nodes under `/load/w{w}` and bumps `/load/c{w}` with
/// conditional sets; nobody else touches them, so after a restart each must hold exactly the
/// acknowledged state, or that plus the one write in flight when the member died.
struct Ledger {
    writer: usize,
    rng: StdRng,
    payloads: u64,
    /// Acknowledged sequential nodes: name → data.
    nodes: BTreeMap<String, Vec<u8>>,
    /// Data of a create sent but never answered; its node may or may not exist.
    unsure_create: Option<Vec<u8>>,
    /// Acknowledged (version, data) of the counter node.
    counter: (i32, Vec<u8>),
    /// (version, data) a set sent but never answered would have produced.
    unsure_set: Option<(i32, Vec<u8>)>,
    /// Highest sequence number handed out so far; a new one must be higher.
    last_sequence: i64,
}

impl Ledger {
    fn new(writer: usize, seed: u64) -> Ledger {
        Ledger {
            writer,
            rng: StdRng::seed_from_u64(seed ^ (writer as u64 + 1).wrapping_mul(0x9E37_79B9)),
            payloads: 0,
            nodes: BTreeMap::new(),
            unsure_create: None,
            counter: (0, Vec::new()),
            unsure_set: None,
            last_sequence: -1,
        }
    }

    fn dir(&self) -> String {
        format!("/load/w{}", self.writer)
    }

    fn counter_path(&self) -> String {
        format!("/load/c{}", self.writer)
    }

    /// A payload no other write carries, with a random amount of filler.
    fn payload(&mut self) -> Vec<u8> {
        self.payloads += 1;
        let mut p = format!("w{}-{}:", self.writer, self.payloads).into_bytes();
        let filler = self.rng.random_range(0..=MAX_FILLER);
        p.resize(p.len() + filler, b'a' + (self.payloads % 26) as u8);
        p
    }
}

/// Whether an error says the member lost or contradicted acknowledged state, rather than
/// that it went away (connection reset or lost, session gone), which the kill makes it do.
fn is_data_error(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::NoNode
            | zk::Error::NodeExists
            | zk::Error::BadVersion
            | zk::Error::NotEmpty
            | zk::Error::NoAuth
            | zk::Error::InvalidAcl
            | zk::Error::BadArguments(_)
            | zk::Error::NoChildrenForEphemerals
            | zk::Error::RuntimeInconsistent
            | zk::Error::MarshallingError
            | zk::Error::UnexpectedErrorCode(_)
    )
}

/// Writes until the member stops answering, recording every acknowledgement; returns the
/// ledger with at most one unsure write of each kind.
async fn write_until_disconnected(
    mut ledger: Ledger,
    client: zk::Client,
    acked: watch::Sender<u64>,
) -> Ledger {
    let seq_prefix = format!("{}/n-", ledger.dir());
    let seq_options = zk::CreateMode::PersistentSequential.with_acls(open_acl());
    loop {
        let data = ledger.payload();
        ledger.unsure_create = Some(data.clone());
        match client.create(&seq_prefix, &data, &seq_options).await {
            Ok((_, sequence)) => {
                let n = sequence.into_i64();
                assert!(
                    n > ledger.last_sequence,
                    "writer {}: sequence number {n} handed out after {}",
                    ledger.writer,
                    ledger.last_sequence
                );
                ledger.last_sequence = n;
                ledger.nodes.insert(format!("n-{sequence}"), data);
                ledger.unsure_create = None;
                acked.send_modify(|n| *n += 1);
            }
            Err(e) if is_data_error(&e) => panic!("writer {}: create failed: {e}", ledger.writer),
            Err(_) => return ledger,
        }

        let data = ledger.payload();
        let version = ledger.counter.0;
        ledger.unsure_set = Some((version + 1, data.clone()));
        match client
            .set_data(&ledger.counter_path(), &data, Some(version))
            .await
        {
            Ok(stat) => {
                assert_eq!(stat.version, version + 1, "writer {}", ledger.writer);
                ledger.counter = (stat.version, data);
                ledger.unsure_set = None;
                acked.send_modify(|n| *n += 1);
            }
            // Only this writer sets the counter: a version mismatch means the member lost
            // an acknowledged set.
            Err(e) if is_data_error(&e) => panic!(
                "writer {}: set of {} at version {version} failed: {e}",
                ledger.writer,
                ledger.counter_path()
            ),
            Err(_) => return ledger,
        }
    }
}

/// Reads every node of `paths` with pipelined requests.
async fn read_all(client: &zk::Client, paths: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(READ_BATCH) {
        let reads: Vec<_> = chunk.iter().map(|p| client.get_data(p)).collect();
        for (path, result) in chunk.iter().zip(futures::future::join_all(reads).await) {
            match result {
                Ok((data, _)) => out.push((path.clone(), data)),
                Err(e) => panic!("reading {path}: {e}"),
            }
        }
    }
    out
}

/// Checks that the member holds every acknowledged write of `ledger`, and at most the one
/// unsure write of each kind, which from now on counts as acknowledged (it is durable now).
async fn verify_ledger(client: &zk::Client, ledger: &mut Ledger) {
    let w = ledger.writer;
    let present: BTreeSet<String> = client
        .list_children(&ledger.dir())
        .await
        .unwrap_or_else(|e| panic!("listing {}: {e}", ledger.dir()))
        .into_iter()
        .collect();
    let acknowledged: BTreeSet<String> = ledger.nodes.keys().cloned().collect();
    let lost: Vec<&String> = acknowledged.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "writer {w}: {} acknowledged creates lost after the kill, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let extra: Vec<String> = present.difference(&acknowledged).cloned().collect();
    assert!(
        extra.len() <= usize::from(ledger.unsure_create.is_some()),
        "writer {w}: nodes nobody was told about: {extra:?}"
    );

    let paths: Vec<String> = present
        .iter()
        .map(|name| format!("{}/{name}", ledger.dir()))
        .collect();
    for (path, data) in read_all(client, &paths).await {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        match ledger.nodes.get(&name) {
            Some(expected) => assert!(
                data == *expected,
                "writer {w}: {path} holds {} bytes, not the {} acknowledged",
                data.len(),
                expected.len()
            ),
            None => {
                assert_eq!(
                    Some(&data),
                    ledger.unsure_create.as_ref(),
                    "writer {w}: {path} holds data no create sent"
                );
                ledger.nodes.insert(name, data);
            }
        }
    }
    ledger.unsure_create = None;
    if let Some(highest) = ledger.nodes.keys().next_back() {
        let n: i64 = highest.trim_start_matches("n-").parse().unwrap_or(-1);
        ledger.last_sequence = ledger.last_sequence.max(n);
    }

    let (data, stat) = client
        .get_data(&ledger.counter_path())
        .await
        .unwrap_or_else(|e| panic!("reading {}: {e}", ledger.counter_path()));
    let found = (stat.version, data);
    if found != ledger.counter {
        assert_eq!(
            Some(&found),
            ledger.unsure_set.as_ref(),
            "writer {w}: counter at version {} after the kill; version {} was acknowledged",
            found.0,
            ledger.counter.0
        );
        ledger.counter = found;
    }
    ledger.unsure_set = None;
}

/// Kills the member at random moments under concurrent load, restarts it, and checks every
/// acknowledged write after each restart.
async fn acknowledged_writes_survive_sigkill_rounds(member: &mut Member, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let setup = connect(&member.zk_addr()).await;
    setup.create("/load", b"", &persistent()).await.unwrap();
    let mut ledgers = Vec::new();
    for w in 0..WRITERS {
        let ledger = Ledger::new(w, seed);
        setup
            .create(&ledger.dir(), b"", &persistent())
            .await
            .unwrap();
        setup
            .create(&ledger.counter_path(), b"", &persistent())
            .await
            .unwrap();
        ledgers.push(ledger);
    }
    drop(setup);

    for round in 0..ROUNDS {
        let target = rng.random_range(ACKS_BEFORE_KILL);
        let (acked, mut acked_rx) = watch::channel(0u64);
        let mut writers = Vec::new();
        for ledger in ledgers.drain(..) {
            let client = connect(&member.zk_addr()).await;
            writers.push(tokio::spawn(write_until_disconnected(
                ledger,
                client,
                acked.clone(),
            )));
        }
        within(
            "writers reaching the kill point",
            acked_rx.wait_for(|n| *n >= target),
        )
        .await
        .expect("writers hold the sender");
        member.kill();
        for writer in writers {
            let ledger = within("a writer noticing the kill", writer)
                .await
                .expect("writer task");
            ledgers.push(ledger);
        }
        let total: usize = ledgers.iter().map(|l| l.nodes.len() + 1).sum();
        eprintln!(
            "round {round}: killed after {target} acknowledged writes ({total} nodes so far)"
        );

        member.restart();
        let verifier = connect(&member.zk_addr()).await;
        // Once this write is applied, so is everything the log held before it.
        verifier
            .create(&format!("/load/round-{round}"), b"", &persistent())
            .await
            .unwrap();
        for ledger in &mut ledgers {
            verify_ledger(&verifier, ledger).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let seed = seed("acknowledged_writes_survive_sigkill");
    let mut member = Member::start(&[]);
    bounded(async {
        acknowledged_writes_survive_sigkill_rounds(&mut member, seed).await;
        assert!(member.terminate().success(), "SIGTERM is a clean exit");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_while_snapshots_and_purges_run() {
    let seed = seed("acknowledged_writes_survive_sigkill_while_snapshots_and_purges_run");
    let mut member = Member::start(&["--snapshot-every", "200"]);
    bounded(async {
        acknowledged_writes_survive_sigkill_rounds(&mut member, seed).await;
        let snapshot_index = member.metric("keepr_raft_snapshot_index").unwrap_or(0.0);
        let purged_index = member.metric("keepr_raft_purged_index").unwrap_or(0.0);
        eprintln!("snapshot index {snapshot_index}, purged index {purged_index}");
        assert!(snapshot_index > 0.0, "the load took snapshots");
        assert!(purged_index > 0.0, "the load purged the log behind them");
        assert!(member.terminate().success(), "SIGTERM is a clean exit");
    })
    .await;
}

// --- a torn log record -------------------------------------------------------------------------

/// The newest segment file of a log directory (`<seq>-<first index>.log`, hex-named so name
/// order is sequence order).
fn newest_segment(log_dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(log_dir)
        .expect("listing the log directory")
        .map(|e| e.expect("log directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments.pop().expect("the log has a segment")
}

/// Offsets and total lengths of the records of a segment: `[u32 len LE][u32 crc LE][len bytes]`.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(len) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        let end = at + 8 + len;
        assert!(
            end <= bytes.len(),
            "a whole segment ends with a whole record"
        );
        out.push((at, end - at));
        at = end;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_log_record_is_discarded_and_earlier_data_kept() {
    let mut member = Member::start(&[]);
    bounded(async {
        let client = connect(&member.zk_addr()).await;
        client.create("/torn", b"", &persistent()).await.unwrap();
        for i in 0..50 {
            let data = format!("value {i}");
            client
                .create(&format!("/torn/n{i}"), data.as_bytes(), &persistent())
                .await
                .unwrap();
        }
        // The record torn below may be this write's; nothing is asserted about it.
        client
            .create("/torn/last", b"", &persistent())
            .await
            .unwrap();
        assert!(member.terminate().success());
        drop(client);

        let segment = newest_segment(&member.data_dir().join("log"));
        let bytes = std::fs::read(&segment).expect("reading the segment");
        let recs = records(&bytes);
        assert!(recs.len() >= 2, "the segment holds more than its header");
        let (start, len) = recs[recs.len() - 1];
        let cut = start + len / 2;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .and_then(|f| f.set_len(cut as u64))
            .expect("truncating the segment");

        member.restart();
        let log = member.log_of_last_run();
        let name = segment.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            log.contains("discarding torn tail") && log.contains(name.as_ref()),
            "the member reports the torn tail of {name}"
        );
        let client = connect(&member.zk_addr()).await;
        for i in 0..50 {
            let (data, _) = client.get_data(&format!("/torn/n{i}")).await.unwrap();
            assert_eq!(data, format!("value {i}").as_bytes());
        }

        // The cut is durable and the log goes on from it.
        client
            .create("/torn/after", b"new", &persistent())
            .await
            .unwrap();
        member.kill();
        member.restart();
        let client = connect(&member.zk_addr()).await;
        assert_eq!(client.get_data("/torn/after").await.unwrap().0, b"new");
        assert_eq!(client.get_data("/torn/n49").await.unwrap().0, b"value 49");
    })
    .await;
}

// --- a damaged snapshot ------------------------------------------------------------------------

/// Snapshot files of a member, oldest first (names embed the zero-padded index).
fn snapshot_files(member: &Member) -> Vec<PathBuf> {
    let dir = member.data_dir().join("snapshots");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("listing the snapshot directory")
        .map(|e| e.expect("snapshot directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    files
}

/// `--snapshot-every` of the snapshot tests: small, so snapshots come quickly.
const SNAPSHOT_EVERY: &str = "50";
/// Upper bound on writes spent waiting for snapshots or a purge.
const MAX_SNAPSHOT_WRITES: usize = 20_000;

/// Creates `/snap/n{i}` holding `value {i}` for every `i` in `range`, all sent before any
/// answer is awaited.
async fn create_snap_nodes(client: &zk::Client, range: std::ops::Range<usize>) {
    let nodes: Vec<(String, String)> = range
        .map(|i| (format!("/snap/n{i}"), format!("value {i}")))
        .collect();
    let creates: Vec<_> = nodes
        .iter()
        .map(|(path, data)| client.create(path, data.as_bytes(), &persistent()))
        .collect();
    for result in futures::future::join_all(creates).await {
        result.unwrap();
    }
}

/// Flips 16 bytes in the middle of a snapshot file, as a bad disk would.
fn damage(snapshot: &Path) {
    let mut bytes = std::fs::read(snapshot).expect("reading the snapshot");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0xFF;
    }
    std::fs::write(snapshot, &bytes).expect("damaging the snapshot");
}

/// With the member stopped: flips bytes in the middle of its newest snapshot, restarts it,
/// and checks that it said it skipped that file and serves `/snap/n0` .. `/snap/n{written-1}`
/// with their data and nothing else.
async fn restart_with_newest_snapshot_damaged(member: &mut Member, written: usize) {
    let snapshots = snapshot_files(member);
    assert!(snapshots.len() >= 2, "{snapshots:?}");
    let newest = snapshots.last().expect("two snapshots").clone();
    damage(&newest);

    member.restart();
    let log = member.log_of_last_run();
    let name = newest.file_name().unwrap_or_default().to_string_lossy();
    assert!(
        log.contains("snapshot is damaged") && log.contains(name.as_ref()),
        "the member reports skipping {name}"
    );
    let client = connect(&member.zk_addr()).await;
    let paths: Vec<String> = (0..written).map(|i| format!("/snap/n{i}")).collect();
    for (path, data) in read_all(&client, &paths).await {
        let i = path.trim_start_matches("/snap/n");
        assert_eq!(data, format!("value {i}").as_bytes(), "{path}");
    }
    assert_eq!(client.list_children("/snap").await.unwrap().len(), written);
}

/// Waits until no snapshot is due: fewer than `--snapshot-every` entries were applied since
/// the last one, so none is being built and the files on disk stay as they are.
async fn snapshots_settled(member: &Member) {
    let every: f64 = SNAPSHOT_EVERY.parse().expect("a number");
    within("the due snapshot being written", async {
        loop {
            let applied = member.metric("keepr_raft_applied_index").unwrap_or(0.0);
            let snapshot = member.metric("keepr_raft_snapshot_index").unwrap_or(0.0);
            if applied - snapshot < every {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_newest_snapshot_is_skipped_for_the_older_one_and_the_log() {
    let mut member = Member::start(&["--snapshot-every", SNAPSHOT_EVERY]);
    bounded(async {
        let client = connect(&member.zk_addr()).await;
        client.create("/snap", b"", &persistent()).await.unwrap();
        let mut written = 0;
        while snapshot_files(&member).len() < 2 {
            create_snap_nodes(&client, written..written + 1).await;
            written += 1;
            assert!(
                written < MAX_SNAPSHOT_WRITES,
                "no two snapshots after {written} writes"
            );
        }
        // Writes only the log holds, fewer than would trigger another snapshot.
        create_snap_nodes(&client, written..written + 10).await;
        written += 10;
        assert!(member.terminate().success());
        drop(client);
        restart_with_newest_snapshot_damaged(&mut member, written).await;
    })
    .await;
}

/// Writes `PIPELINE` creates at a time until the member purged its log past `purged_before`,
/// then waits for the due snapshot; returns the new count of nodes written.
async fn write_until_a_purge_past(
    member: &Member,
    client: &zk::Client,
    mut written: usize,
    purged_before: f64,
) -> usize {
    /// Creates in flight at once, as busy clients send them: Raft then applies in batches,
    /// so snapshots land more than --snapshot-every entries apart, as in production.
    const PIPELINE: usize = 64;
    let start = written;
    loop {
        create_snap_nodes(client, written..written + PIPELINE).await;
        written += PIPELINE;
        snapshots_settled(member).await;
        if member.metric("keepr_raft_purged_index").unwrap_or(0.0) > purged_before {
            return written;
        }
        assert!(
            written - start < MAX_SNAPSHOT_WRITES,
            "no purge past {purged_before} after {} writes",
            written - start
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_newest_snapshot_right_after_a_purge_is_skipped_for_the_older_one_and_the_log() {
    let mut member = Member::start(&["--snapshot-every", SNAPSHOT_EVERY]);
    bounded(async {
        let client = connect(&member.zk_addr()).await;
        client.create("/snap", b"", &persistent()).await.unwrap();
        // The hardest moment for the fallback is right after a purge: the log has just been
        // cut back towards the older snapshot, the oldest state it must still reach. Stop
        // there, before another snapshot replaces the pair on disk.
        let written = write_until_a_purge_past(&member, &client, 0, 0.0).await;
        member.kill();
        drop(client);
        restart_with_newest_snapshot_damaged(&mut member, written).await;
    })
    .await;
}

/// The same member's newest snapshot damaged again after it recovered from the first damage,
/// as the fault suite's repeated `flip-snapshot` does. Restarted from the older snapshot, the
/// member is a snapshot's worth of entries past it and writes a new snapshot at once. The
/// file damaged first must not count as one of the two kept: it did, so that new snapshot
/// pruned the valid older one, the log was purged up to the damaged one, and with the newest
/// damaged again nothing was left to start from ("need logs from index 0, but purged up to
/// ...").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_snapshot_damaged_again_after_recovering_is_skipped_again() {
    let mut member = Member::start(&["--snapshot-every", SNAPSHOT_EVERY]);
    bounded(async {
        let client = connect(&member.zk_addr()).await;
        client.create("/snap", b"", &persistent()).await.unwrap();
        let mut written = write_until_a_purge_past(&member, &client, 0, 0.0).await;
        member.kill();
        drop(client);
        restart_with_newest_snapshot_damaged(&mut member, written).await;
        for _ in 0..2 {
            // Writes only the log holds, fewer than would trigger another snapshot.
            let client = connect(&member.zk_addr()).await;
            create_snap_nodes(&client, written..written + 10).await;
            written += 10;
            // The snapshot taken on restart, and the purge that follows it (once a second).
            snapshots_settled(&member).await;
            tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
            member.kill();
            drop(client);
            restart_with_newest_snapshot_damaged(&mut member, written).await;
        }
    })
    .await;
}

/// A follower that caught up from the leader's snapshot has no older snapshot of its own, and
/// openraft purged its log up to the installed one. Damage to that one file left nothing on
/// its disk to start from ("need logs from index 0, but purged up to ..."), and the member
/// could only be wiped and re-added (docs/reliability.md, finding 5). It now fetches a peer's
/// snapshot before Raft starts and comes back with its identity, vote and log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_whose_installed_snapshot_is_damaged_restores_from_a_peer() {
    let mut members = Member::ensemble(3, &["--snapshot-every", SNAPSHOT_EVERY]);
    bounded(async {
        let is_leader = |m: &Member| m.metric("keepr_raft_is_leader") == Some(1.0);
        let leader = within("a leader", async {
            loop {
                if let Some(i) = members.iter().position(is_leader) {
                    return i;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        let lagging = (leader + 1) % members.len();
        let behind = members[lagging]
            .metric("keepr_raft_applied_index")
            .unwrap_or(0.0);
        members[lagging].kill();

        // The leader takes writes until its log no longer reaches back to where the stopped
        // member's ends: that member can only catch up from a snapshot.
        let client = connect(&members[leader].zk_addr()).await;
        client.create("/snap", b"", &persistent()).await.unwrap();
        let written = write_until_a_purge_past(&members[leader], &client, 0, behind).await;
        let leader_applied = members[leader]
            .metric("keepr_raft_applied_index")
            .unwrap_or(0.0);
        // Ready means caught up with the leader's commit, not just with what this member's
        // own log knows committed (which, after a restart far behind, is old).
        members[lagging].restart();
        let applied = members[lagging]
            .metric("keepr_raft_applied_index")
            .unwrap_or(0.0);
        assert!(
            applied >= leader_applied,
            "ready at applied index {applied}, behind the leader's {leader_applied}"
        );
        assert!(members[lagging]
            .log_of_last_run()
            .contains("snapshot installed from the leader"));
        let installed = snapshot_files(&members[lagging]);
        assert_eq!(
            installed.len(),
            1,
            "only the installed snapshot, none of its own yet: {installed:?}"
        );
        assert!(members[lagging].terminate().success());

        damage(&installed[0]);

        members[lagging].restart();
        let log = members[lagging].log_of_last_run();
        assert!(
            log.contains("fetching one from a peer")
                && log.contains("restored from a peer's snapshot"),
            "the member says it restored from a peer"
        );
        let client = connect(&members[lagging].zk_addr()).await;
        client.sync("/snap").await.expect("sync with the leader");
        let paths: Vec<String> = (0..written).map(|i| format!("/snap/n{i}")).collect();
        for (path, data) in read_all(&client, &paths).await {
            let i = path.trim_start_matches("/snap/n");
            assert_eq!(data, format!("value {i}").as_bytes(), "{path}");
        }
        assert_eq!(client.list_children("/snap").await.unwrap().len(), written);
        // Still a voter under its own id: with the leader gone, the two others elect a new
        // one and take writes.
        members[leader].kill();
        within("a write after the leader is gone", async {
            loop {
                match client.create("/after", b"", &persistent()).await {
                    Ok(_) | Err(zk::Error::NodeExists) => return,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        })
        .await;
    })
    .await;
}

// --- Raft failing under a running process -----------------------------------------------------

/// A member whose Raft core stops (here: a snapshot cannot be written, a fatal storage error
/// to openraft) can commit nothing any more; its process must exit non-zero so that its
/// supervisor restarts it, not linger unready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_raft_core_fails_exits_nonzero() {
    let mut member = Member::start(&["--snapshot-every", SNAPSHOT_EVERY]);
    bounded(async {
        let client = connect(&member.zk_addr()).await;
        client.create("/snap", b"", &persistent()).await.unwrap();
        let snapshots = member.data_dir().join("snapshots");
        std::fs::remove_dir_all(&snapshots).expect("removing the snapshot directory");
        std::fs::write(&snapshots, b"").expect("a file where the snapshot directory was");
        // Enough writes for a snapshot to be due; those after the failure are not answered.
        let paths: Vec<String> = (0..100).map(|i| format!("/snap/n{i}")).collect();
        let creates: Vec<_> = paths
            .iter()
            .map(|path| client.create(path, b"", &persistent()))
            .collect();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            futures::future::join_all(creates),
        )
        .await;
        let status = member.wait_for_exit();
        assert!(!status.success(), "exited with {status}");
        assert!(
            member.log_of_last_run().contains("Raft stopped"),
            "the member says why it exits"
        );
    })
    .await;
}

// --- sessions across a clean restart -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_sessions_and_their_ephemerals_until_they_expire() {
    // Ticks of 500 ms allow sessions from 1 s to 10 s.
    let mut member = Member::start(&["--tick-ms", "500"]);
    bounded(async {
        let addr = member.zk_addr();
        let long = |c: zk::Connector| c.with_session_timeout(std::time::Duration::from_secs(10));

        // Stays connected across the restart and must come back by itself.
        let live = connect_with(long(zk::Client::connector()), &addr).await;
        live.create("/s", b"", &persistent()).await.unwrap();
        live.create("/s/live", b"", &ephemeral()).await.unwrap();
        let live_id = live.session_id();
        let mut live_state = live.state_watcher();

        // Its client goes away without closing the session; resumed by id after the restart.
        let parked = connect_with(long(zk::Client::connector()).with_detached(), &addr).await;
        parked.create("/s/parked", b"", &ephemeral()).await.unwrap();
        let parked_id = parked.session_id();
        let parked_session = parked.into_session();

        // Abandoned for good: must expire after the restart.
        let lapsing = connect_with(
            zk::Client::connector()
                .with_session_timeout(std::time::Duration::from_secs(4))
                .with_detached(),
            &addr,
        )
        .await;
        lapsing
            .create("/s/lapsing", b"", &ephemeral())
            .await
            .unwrap();
        let lapsing_id = lapsing.session_id();
        drop(lapsing.into_session());

        assert!(member.terminate().success(), "SIGTERM is a clean exit");
        member.restart();

        let observer = connect(&addr).await;
        for (path, owner) in [
            ("/s/live", live_id),
            ("/s/parked", parked_id),
            ("/s/lapsing", lapsing_id),
        ] {
            let stat = observer.check_stat(path).await.unwrap();
            assert_eq!(
                stat.map(|s| s.ephemeral_owner),
                Some(owner.0),
                "{path} is still there, owned by its session, right after the restart"
            );
        }
        let (_, lapsed) = observer.check_and_watch_stat("/s/lapsing").await.unwrap();

        within("the live client reconnecting with its session", async {
            while live_state.state() != zk::SessionState::SyncConnected {
                live_state.changed().await;
            }
        })
        .await;
        let (stat, _) = live.create("/s/live2", b"", &ephemeral()).await.unwrap();
        assert_eq!(stat.ephemeral_owner, live_id.0, "the same session, resumed");
        let mut mine = live.list_ephemerals("/s").await.unwrap();
        mine.sort();
        assert_eq!(mine, ["/s/live", "/s/live2"]);

        let resumed = connect_with(
            long(zk::Client::connector()).with_session(parked_session),
            &addr,
        )
        .await;
        assert_eq!(resumed.session_id(), parked_id);
        assert_eq!(resumed.list_ephemerals("/").await.unwrap(), ["/s/parked"]);

        let event = within("the abandoned session expiring", lapsed.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeDeleted);
        assert!(observer.check_stat("/s/live").await.unwrap().is_some());
        assert!(observer.check_stat("/s/parked").await.unwrap().is_some());
    })
    .await;
}
