//! Tunables of the log store.

/// How the store lays out and caches the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment is closed and a new one started when the next record would take it past this
    /// many bytes (a single larger record still gets a segment of its own). Purge deletes whole
    /// segments, so this is also the granularity of reclaiming disk space.
    pub segment_size: u64,
    /// Bytes of recent entries kept in memory so reads (replication, apply) do not touch disk.
    /// Entries not yet on disk are always kept, whatever this says.
    pub cache_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_size: 64 * 1024 * 1024,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}
