//! Counters and histograms of the writer thread, for the server to export.
//!
//! Plain atomics, updated by the writer once per batch, read at scrape time with
//! [`LogMetrics::snapshot`]. The crate stays free of any metrics library; the server maps the
//! snapshot onto its Prometheus registry (bucket bounds are inclusive upper bounds, and the
//! counts are per bucket, not cumulative, with a last bucket for everything above).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Upper bounds, in microseconds, of the fsync duration buckets.
const FSYNC_MICROS_BOUNDS: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Upper bounds of the entries-per-batch buckets.
const BATCH_ENTRIES_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/// A fixed-bucket histogram of `u64` observations.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
}

/// A histogram's values at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Inclusive upper bound of each bucket but the last, which is unbounded.
    pub bounds: Vec<u64>,
    /// Observations per bucket; one longer than `bounds`.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&b| b < value);
        if let Some(c) = self.counts.get(bucket) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// What the writer thread has done so far.
#[derive(Debug)]
pub struct LogMetrics {
    fsyncs: AtomicU64,
    fsync_micros: Histogram,
    dir_syncs: AtomicU64,
    bytes_written: AtomicU64,
    batches: AtomicU64,
    batch_entries: Histogram,
    segments_created: AtomicU64,
    segments_deleted: AtomicU64,
}

/// [`LogMetrics`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMetricsSnapshot {
    /// `fdatasync` calls on segment files.
    pub fsyncs: u64,
    /// Their durations, in microseconds.
    pub fsync_micros: HistogramSnapshot,
    /// `fsync` calls on the directory (segment created or deleted).
    pub dir_syncs: u64,
    /// Bytes written to segment files.
    pub bytes_written: u64,
    /// Batches the writer processed (each ends in at most one data fsync, two when it rolls).
    pub batches: u64,
    /// Log entries per batch.
    pub batch_entries: HistogramSnapshot,
    /// Segments created since open.
    pub segments_created: u64,
    /// Segments deleted by purge since open.
    pub segments_deleted: u64,
}

impl Default for LogMetrics {
    fn default() -> Self {
        LogMetrics {
            fsyncs: AtomicU64::new(0),
            fsync_micros: Histogram::new(FSYNC_MICROS_BOUNDS),
            dir_syncs: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batch_entries: Histogram::new(BATCH_ENTRIES_BOUNDS),
            segments_created: AtomicU64::new(0),
            segments_deleted: AtomicU64::new(0),
        }
    }
}

impl LogMetrics {
    pub(crate) fn record_fsync(&self, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_micros
            .observe(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    pub(crate) fn record_dir_sync(&self) {
        self.dir_syncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_write(&self, bytes: usize) {
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_batch(&self, entries: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_entries.observe(entries);
    }

    pub(crate) fn record_segment_created(&self) {
        self.segments_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_segment_deleted(&self) {
        self.segments_deleted.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> LogMetricsSnapshot {
        LogMetricsSnapshot {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            fsync_micros: self.fsync_micros.snapshot(),
            dir_syncs: self.dir_syncs.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batch_entries: self.batch_entries.snapshot(),
            segments_created: self.segments_created.load(Ordering::Relaxed),
            segments_deleted: self.segments_deleted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_bucket_of_their_inclusive_upper_bound() {
        let h = Histogram::new(&[1, 10]);
        for v in [0, 1, 2, 10, 11, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 2]);
        assert_eq!(s.sum, 1024);
        assert_eq!(s.count(), 6);
    }
}
