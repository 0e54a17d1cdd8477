//! State shared by the store, its readers and the writer thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;

use openraft::RaftTypeConfig;

use crate::memlog::MemLog;
use crate::metrics::LogMetrics;

pub(crate) struct Shared<C: RaftTypeConfig> {
    mem: Mutex<MemLog<C>>,
    pub metrics: Arc<LogMetrics>,
    pub dir: PathBuf,
}

impl<C: RaftTypeConfig> Shared<C> {
    pub fn new(mem: MemLog<C>, metrics: Arc<LogMetrics>, dir: PathBuf) -> Self {
        Shared {
            mem: Mutex::new(mem),
            metrics,
            dir,
        }
    }

    /// Locks the in-memory log. A panic while it was held cannot leave it half-updated in a
    /// way later calls would misread (every method keeps it consistent before it can panic),
    /// so a poisoned lock is taken over rather than propagated.
    pub fn mem(&self) -> MutexGuard<'_, MemLog<C>> {
        self.mem.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
