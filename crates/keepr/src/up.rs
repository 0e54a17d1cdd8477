//! `keepr up`: a local ensemble of separate `keepr server` processes on 127.0.0.1, for
//! development. Member i listens for clients on `zk-port + i - 1`; Ctrl-C stops them all.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Number of members (odd numbers tolerate the most failures per member).
    #[arg(long, default_value_t = 3)]
    pub members: u64,
    /// Client port of member 1; member i uses this + i - 1.
    #[arg(long, default_value_t = 2181)]
    pub zk_port: u16,
    /// gRPC port of member 1; member i uses this + 2(i - 1), and the next port for Raft.
    #[arg(long, default_value_t = 7070)]
    pub grpc_port: u16,
    /// HTTP (metrics, health) port of member 1; member i uses this + i - 1.
    #[arg(long, default_value_t = 9090)]
    pub http_port: u16,
    /// Where member i keeps its data (DIR/member-i). Reusing it resumes the ensemble.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

struct Member {
    id: u64,
    zk: String,
    http: String,
    child: Child,
}

impl Drop for Member {
    fn drop(&mut self) {
        // SIGTERM first, for a clean shutdown; the process is ours, stopped by PID.
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) with a PID we spawned and still own (not yet waited for).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port(base: u16, offset: u64) -> anyhow::Result<u16> {
    u16::try_from(base as u64 + offset).context("port out of range")
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    if args.members == 0 || args.members > 254 {
        bail!("--members must be between 1 and 254");
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("keepr-up"));
    let exe = std::env::current_exe().context("locating the keepr binary")?;
    let peers: Vec<(u64, String)> = (1..=args.members)
        .map(|i| {
            Ok((
                i,
                format!("127.0.0.1:{}", port(args.grpc_port, 2 * (i - 1) + 1)?),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let initial = peers
        .iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    // A fresh ensemble gets its own cluster token, so it never adopts members of an older
    // one that used the same ports; a resumed one keeps the id in its data directories.
    let token = format!("up-{:016x}", rand_u64());
    let mut members = Vec::new();
    for (i, peer) in &peers {
        let dir = data_dir.join(format!("member-{i}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let zk = format!("127.0.0.1:{}", port(args.zk_port, i - 1)?);
        let grpc = format!("127.0.0.1:{}", port(args.grpc_port, 2 * (i - 1))?);
        let http = format!("127.0.0.1:{}", port(args.http_port, i - 1)?);
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(&exe)
            .args(["server", "--id", &i.to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "--zk", &zk, "--grpc", &grpc, "--peer", peer, "--http", &http,
            ])
            .args(["--initial-members", &initial, "--cluster-token", &token])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting member {i}"))?;
        members.push(Member {
            id: *i,
            zk,
            http,
            child,
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        wait_ready(&mut members).await?;
        let connect = members
            .iter()
            .map(|m| m.zk.clone())
            .collect::<Vec<_>>()
            .join(",");
        println!("keepr ensemble of {} members is ready", members.len());
        for m in &members {
            println!(
                "  member {}: zk {}  http http://{}/metrics",
                m.id, m.zk, m.http
            );
        }
        println!("  data: {}", data_dir.display());
        println!("connection string: {connect}");
        println!("Ctrl-C stops the ensemble.");
        crate::server::wait_for_signal().await
    })?;
    println!("stopping");
    drop(members);
    Ok(())
}

async fn wait_ready(members: &mut [Member]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for m in members.iter_mut() {
        loop {
            if let Some(status) = m.child.try_wait()? {
                bail!("member {} exited with {status}; see its server.log", m.id);
            }
            if http_ok(&m.http, "/readyz").await {
                break;
            }
            if Instant::now() > deadline {
                bail!("member {} not ready after 60 s; see its server.log", m.id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// A minimal HTTP GET that reports whether the answer was 200.
async fn http_ok(addr: &str, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut buf)).await;
    buf.starts_with(b"HTTP/1.1 200")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
