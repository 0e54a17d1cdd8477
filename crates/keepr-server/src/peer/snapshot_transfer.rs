//! Snapshot files over the peer port, in both directions: the leader pushes one to a member
//! that fell behind its log (`InstallSnapshot`), and a member whose own snapshot is damaged
//! pulls one from a peer at start-up (`FetchSnapshot`). Either way the file moves in chunks,
//! the first carrying a small header, and the receiver checks the whole file before anything
//! acts on it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use futures::{Stream, StreamExt};
use keepr_proto::peer::SnapshotChunk;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Status;

use crate::raft::snapshot_store::{self, SnapshotFile, SnapshotStore};
use crate::raft::types::SnapshotMeta;

/// Snapshot files travel in chunks of this size.
const CHUNK: usize = 1 << 20;

/// Streams `file` from its start, the first chunk carrying `header`. The file is read on a
/// blocking thread, paced to the network by the bounded channel; the task's result says
/// whether all of it was read (a receiver that gets less finds the file damaged anyway).
pub fn send(
    mut file: File,
    header: Vec<u8>,
) -> (mpsc::Receiver<SnapshotChunk>, JoinHandle<io::Result<()>>) {
    let (tx, rx) = mpsc::channel::<SnapshotChunk>(4);
    let reader = tokio::task::spawn_blocking(move || -> io::Result<()> {
        file.seek(SeekFrom::Start(0))?;
        let mut header = Some(header);
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < buf.len() {
                let n = file.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            let last = filled < CHUNK;
            let chunk = SnapshotChunk {
                header: header.take().unwrap_or_default(),
                data: buf,
            };
            if tx.blocking_send(chunk).is_err() || last {
                return Ok(());
            }
        }
    });
    (rx, reader)
}

/// A snapshot file received whole and verified, under a temporary name in the store.
pub struct Received {
    /// The first chunk's header, for the caller to decode.
    pub header: Vec<u8>,
    /// The meta inside the file.
    pub meta: SnapshotMeta,
    pub file: SnapshotFile,
}

impl Received {
    /// Deletes the temporary file (the caller refused it).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.file.path);
    }
}

/// Writes `chunks` to a temporary file in `store`, makes it durable and verifies it whole.
/// Nothing is left behind on failure.
pub async fn receive<S>(store: &SnapshotStore, mut chunks: S) -> Result<Received, Status>
where
    S: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let path = store.temp_path("recv");
    let cleanup = |path: &std::path::Path| {
        let _ = std::fs::remove_file(path);
    };
    let mut header: Option<Vec<u8>> = None;
    let written = async {
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Status::internal(format!("creating {}: {e}", path.display())))?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if header.is_none() {
                header = Some(chunk.header);
            }
            file.write_all(&chunk.data)
                .await
                .map_err(|e| Status::internal(format!("writing snapshot: {e}")))?;
        }
        file.sync_all()
            .await
            .map_err(|e| Status::internal(format!("syncing snapshot: {e}")))?;
        Ok::<_, Status>(())
    }
    .await;
    if let Err(e) = written {
        cleanup(&path);
        return Err(e);
    }
    let Some(header) = header else {
        cleanup(&path);
        return Err(Status::invalid_argument("empty snapshot stream"));
    };
    let verify_path = path.clone();
    let verified = tokio::task::spawn_blocking(move || snapshot_store::verify(&verify_path))
        .await
        .map_err(|e| Status::internal(e.to_string()));
    let meta = match verified {
        Ok(Ok(meta)) => meta,
        Ok(Err(e)) => {
            cleanup(&path);
            return Err(Status::invalid_argument(format!("damaged snapshot: {e}")));
        }
        Err(e) => {
            cleanup(&path);
            return Err(e);
        }
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            cleanup(&path);
            return Err(Status::internal(e.to_string()));
        }
    };
    Ok(Received {
        header,
        meta,
        file: SnapshotFile { path, file },
    })
}
