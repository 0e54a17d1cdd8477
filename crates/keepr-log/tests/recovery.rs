//! What survives a reopen, and what recovery does with damaged files.

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::*;
use keepr_log::LogConfig;
use keepr_log::LogError;
use keepr_log::LogStore;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::LogState;
use openraft::RaftLogReader;
use openraft::Vote;

fn big_segments() -> LogConfig {
    LogConfig::default()
}

fn copy_dir(from: &Path, to: &Path) {
    for file in segment_files(from) {
        std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// A log of entries 1..=n in one segment, and the byte range of entry n's record in it.
async fn log_with_known_last_record(n: u64) -> (tempfile::TempDir, std::ops::Range<u64>) {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), big_segments());
        append_durably(&mut store, entries(1, 1..=n - 1)).await;
    }
    let segment = segment_files(dir.path()).pop().unwrap();
    let start = file_len(&segment);
    {
        let mut store = open(dir.path(), big_segments());
        append_durably(&mut store, vec![entry(1, n)]).await;
    }
    assert_eq!(segment_files(dir.path()).len(), 1);
    (dir, start..file_len(&segment))
}

async fn assert_holds_exactly(store: &mut Store, first: u64, last: u64) {
    let got = read_all(store, 0..u64::MAX).await;
    let want: Vec<(u64, String)> = (first..=last).map(|i| (i, payload(i))).collect();
    assert_eq!(got, want);
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(1, last))
    );
}

#[tokio::test]
async fn reopening_after_a_clean_shutdown_keeps_entries_vote_committed_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), small_segments());
        append_durably(&mut store, entries(1, 1..=50)).await;
        store.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
        store.save_committed(Some(log_id(1, 40))).await.unwrap();
        store.purge(log_id(1, 10)).await.unwrap();
    }
    let mut store = open(dir.path(), small_segments());
    assert_eq!(
        store.get_log_state().await.unwrap(),
        LogState {
            last_purged_log_id: Some(log_id(1, 10)),
            last_log_id: Some(log_id(1, 50)),
        }
    );
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(Vote::new_committed(3, 1))
    );
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 40)));
    assert_holds_exactly(&mut store, 11, 50).await;
}

#[tokio::test]
async fn a_torn_last_record_is_discarded_at_every_cut_offset_and_earlier_entries_survive() {
    let (pristine, last_record) = log_with_known_last_record(20).await;
    for cut in last_record.clone() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let segment = segment_files(dir.path()).pop().unwrap();
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let mut store = open(dir.path(), big_segments());
        assert_holds_exactly(&mut store, 1, 19).await;
        assert_eq!(
            file_len(&segment),
            last_record.start,
            "torn tail cut at {cut} not removed"
        );

        // The log continues where the intact part ends.
        append_durably(&mut store, vec![entry(1, 20)]).await;
        drop(store);
        let mut store = open(dir.path(), big_segments());
        assert_holds_exactly(&mut store, 1, 20).await;
    }
}

#[tokio::test]
async fn a_flipped_bit_in_the_last_record_discards_only_that_record() {
    let (pristine, last_record) = log_with_known_last_record(20).await;
    for at in last_record.clone() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let segment = segment_files(dir.path()).pop().unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[at as usize] ^= 1 << (at % 8);
        std::fs::write(&segment, &bytes).unwrap();

        let mut store = open(dir.path(), big_segments());
        assert_holds_exactly(&mut store, 1, 19).await;
    }
}

#[tokio::test]
async fn a_flipped_bit_in_a_middle_record_refuses_to_open() {
    let (pristine, last_record) = log_with_known_last_record(20).await;
    let segment = segment_files(pristine.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    // A payload byte of an entry in the middle of the segment.
    let at = (last_record.start / 2) as usize;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();

    match LogStore::<TestConfig>::open(pristine.path(), big_segments()) {
        Err(LogError::Corrupt {
            valid_record_at: Some(_),
            ..
        }) => {}
        Err(other) => panic!("expected corruption followed by valid data, got {other}"),
        Ok(_) => panic!("a log with a damaged acknowledged record opened"),
    }
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "recovery must not modify a corrupt log"
    );
}

#[tokio::test]
async fn damage_at_the_end_of_a_non_last_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), small_segments());
        append_durably(&mut store, entries(1, 1..=60)).await;
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    let first = &files[0];
    let len = file_len(first);
    OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    match LogStore::<TestConfig>::open(dir.path(), small_segments()) {
        Err(LogError::Corrupt { path, .. }) => assert_eq!(&path, first),
        Err(other) => panic!("expected a corrupt-record error, got {other}"),
        Ok(_) => panic!("a log with a damaged non-last segment opened"),
    }
}

#[tokio::test]
async fn truncate_after_then_append_replaces_the_tail_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), small_segments());
        append_durably(&mut store, entries(1, 1..=30)).await;
        store.truncate_after(Some(log_id(1, 12))).await.unwrap();
        assert_holds_exactly(&mut store, 1, 12).await;
        append_durably(&mut store, entries(2, 13..=25)).await;
        let got = read_all(&mut store, 10..16).await;
        assert_eq!(
            got.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14, 15]
        );
    }
    let mut store = open(dir.path(), small_segments());
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 25))
    );
    let ids: Vec<_> = store
        .try_get_log_entries(0..100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.log_id)
        .collect();
    let want: Vec<_> = (1..=12)
        .map(|i| log_id(1, i))
        .chain((13..=25).map(|i| log_id(2, i)))
        .collect();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn purge_deletes_whole_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let mut store = open(dir.path(), small_segments());
        append_durably(&mut store, entries(1, 1..=100)).await;
        before = segment_files(dir.path()).len();
        assert!(before >= 5, "expected several segments, got {before}");
        store.purge(log_id(1, 80)).await.unwrap();
        // The purge is durable (and its segments deletable) once a later write is.
        store.save_committed(Some(log_id(1, 90))).await.unwrap();
        assert_eq!(
            store.metrics().snapshot().segments_deleted as usize,
            before - segment_files(dir.path()).len()
        );
    }
    let after = segment_files(dir.path()).len();
    assert!(
        after < before - 2,
        "purge left {after} of {before} segments"
    );
    let mut store = open(dir.path(), small_segments());
    assert_eq!(
        store.get_log_state().await.unwrap().last_purged_log_id,
        Some(log_id(1, 80))
    );
    assert_holds_exactly(&mut store, 81, 100).await;
}

#[tokio::test]
async fn the_vote_survives_reopen_even_after_its_segment_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let first_segment;
    {
        let mut store = open(dir.path(), small_segments());
        store.save_vote(&Vote::new(7, 2)).await.unwrap();
        first_segment = segment_files(dir.path()).remove(0);
        append_durably(&mut store, entries(7, 1..=100)).await;
        store.purge(log_id(7, 100)).await.unwrap();
        store.save_committed(Some(log_id(7, 100))).await.unwrap();
    }
    assert!(
        !first_segment.exists(),
        "the segment holding the vote record should be purged"
    );
    let mut store = open(dir.path(), small_segments());
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(7, 2)));
    assert_eq!(
        store.get_log_state().await.unwrap(),
        LogState {
            last_purged_log_id: Some(log_id(7, 100)),
            last_log_id: Some(log_id(7, 100)),
        }
    );
    append_durably(&mut store, vec![entry(7, 101)]).await;
}

#[tokio::test]
async fn segments_roll_at_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let mut store = open(dir.path(), config.clone());
    for i in 1..=100 {
        append_durably(&mut store, vec![entry(1, i)]).await;
    }
    let files = segment_files(dir.path());
    assert!(files.len() > 3);
    for f in &files {
        assert!(
            file_len(f) <= config.segment_size,
            "{} exceeds the segment size",
            f.display()
        );
    }
    // Names carry consecutive sequence numbers and increasing first indexes.
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for (n, name) in names.iter().enumerate() {
        assert_eq!(u64::from_str_radix(&name[..16], 16).unwrap(), n as u64 + 1);
    }
    let firsts: Vec<u64> = names
        .iter()
        .map(|n| u64::from_str_radix(&n[17..33], 16).unwrap())
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    assert_eq!(
        store.metrics().snapshot().segments_created as usize,
        files.len()
    );
}

#[tokio::test]
async fn a_missing_middle_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), small_segments());
        append_durably(&mut store, entries(1, 1..=60)).await;
    }
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    assert!(matches!(
        LogStore::<TestConfig>::open(dir.path(), small_segments()),
        Err(LogError::MissingSegment { missing: 2, .. })
    ));
}

#[tokio::test]
async fn a_missing_oldest_segment_with_unpurged_entries_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), small_segments());
        append_durably(&mut store, entries(1, 1..=60)).await;
    }
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[0]).unwrap();
    assert!(matches!(
        LogStore::<TestConfig>::open(dir.path(), small_segments()),
        Err(LogError::MissingEntries { first: 0, .. })
    ));
}

#[tokio::test]
async fn a_segment_whose_header_never_reached_disk_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), big_segments());
        append_durably(&mut store, entries(1, 1..=5)).await;
    }
    // What a crash right after creating the next segment file leaves.
    let stray = dir.path().join("0000000000000002-0000000000000006.log");
    std::fs::write(&stray, [7u8, 0, 0]).unwrap();
    let mut store = open(dir.path(), big_segments());
    assert!(!stray.exists());
    assert_holds_exactly(&mut store, 1, 5).await;
}

#[tokio::test]
async fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path(), big_segments());
    assert!(matches!(
        LogStore::<TestConfig>::open(dir.path(), big_segments()),
        Err(LogError::Locked(_))
    ));
}

#[tokio::test]
async fn an_append_that_leaves_a_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), big_segments());
    append_durably(&mut store, entries(1, 1..=3)).await;
    let err = store
        .append(vec![entry(1, 5)], IOFlushed::noop())
        .await
        .expect_err("gap accepted");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = store
        .append(vec![entry(1, 4), entry(1, 6)], IOFlushed::noop())
        .await
        .expect_err("gap inside a batch accepted");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_holds_exactly(&mut store, 1, 3).await;
}

#[tokio::test]
async fn entries_evicted_from_the_cache_are_read_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_size: 4096,
        cache_bytes: 500,
    };
    let mut store = open(dir.path(), config.clone());
    append_durably(&mut store, entries(1, 1..=200)).await;
    assert!(
        store.cached_bytes() <= 500,
        "cache holds {} bytes",
        store.cached_bytes()
    );
    assert_holds_exactly(&mut store, 1, 200).await;
    drop(store);
    let mut store = open(dir.path(), config);
    assert!(store.cached_bytes() <= 500);
    assert_holds_exactly(&mut store, 1, 200).await;
}

#[tokio::test]
async fn appended_entries_are_readable_before_they_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), big_segments());
    let mut reader = store.get_log_reader().await;
    store
        .append(entries(1, 1..=10), IOFlushed::noop())
        .await
        .unwrap();
    // No wait for the flush: `append` returning is enough.
    assert_eq!(reader.try_get_log_entries(1..=10).await.unwrap().len(), 10);
}

#[tokio::test]
async fn a_checksummed_record_that_does_not_decode_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), big_segments());
        append_durably(&mut store, entries(1, 1..=3)).await;
    }
    // A well-framed record whose payload is no record this version knows (variant 200).
    let payload = [200u8, 1, 2, 3];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload).to_le_bytes();
    let segment = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&len);
    bytes.extend_from_slice(&crc);
    bytes.extend_from_slice(&payload);
    std::fs::write(&segment, &bytes).unwrap();

    assert!(matches!(
        LogStore::<TestConfig>::open(dir.path(), big_segments()),
        Err(LogError::Decode { .. })
    ));
}

#[tokio::test]
async fn a_segment_from_another_log_refuses_to_open() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    {
        let mut store = open(ours.path(), big_segments());
        append_durably(&mut store, entries(1, 1..=5)).await;
        let mut other = open(theirs.path(), big_segments());
        append_durably(&mut other, entries(2, 1..=5)).await;
    }
    // Their first segment, named as if it were our second one.
    let foreign = segment_files(theirs.path()).remove(0);
    std::fs::copy(
        foreign,
        ours.path().join("0000000000000002-0000000000000006.log"),
    )
    .unwrap();
    assert!(matches!(
        LogStore::<TestConfig>::open(ours.path(), big_segments()),
        Err(LogError::BrokenChain { .. })
    ));
}
