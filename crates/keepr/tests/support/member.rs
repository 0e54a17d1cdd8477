//! One `keepr server` process owned by a test.
//!
//! The member keeps its ports and data directory across restarts, as a pod keeps its volume
//! and service addresses, so clients reconnect to the same address and recovery sees exactly
//! what the previous process left. Its stdout and stderr go to one log file in the temporary
//! directory; when a test panics, the log's tail is printed and the directory is kept for a
//! post-mortem. Dropping the member SIGKILLs a process still running, so none outlives its
//! test.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a start may take to report ready, and a SIGTERM to end the process.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two readiness probes or exit checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Lines of the log shown when a test fails.
const LOG_TAIL_LINES: usize = 200;
/// Separates the output of successive runs in the log file.
const START_MARKER: &str = "=== keepr-test: starting member ===";

/// Loopback ports of one member.
#[derive(Debug, Clone, Copy)]
struct Ports {
    zk: u16,
    grpc: u16,
    peer: u16,
    http: u16,
}

impl Ports {
    /// Four distinct ports the kernel reports free. They are released before the member binds
    /// them; on a machine running only tests, nothing else takes them in between.
    fn free() -> Ports {
        let listeners: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port"))
            .collect();
        let port = |i: usize| {
            listeners[i]
                .local_addr()
                .expect("local address of a bound listener")
                .port()
        };
        Ports {
            zk: port(0),
            grpc: port(1),
            peer: port(2),
            http: port(3),
        }
    }
}

/// How a member finds its ensemble.
#[derive(Debug, Clone)]
enum Membership {
    /// `--initial-members`: bootstrap (or resume) the listed ensemble.
    Bootstrap(String),
    /// `--join`: announce to these peers and wait to be added.
    Join(String),
}

pub struct Member {
    /// Holds `data/` and the log; `None` only while being dropped.
    dir: Option<tempfile::TempDir>,
    ports: Ports,
    id: u64,
    membership: Membership,
    extra_args: Vec<String>,
    child: Option<Child>,
    http: ureq::Agent,
}

impl Member {
    /// Starts a single-member ensemble with `extra_args` (e.g. `--snapshot-every 200`) added
    /// to the command line, and waits until it is ready.
    pub fn start(extra_args: &[&str]) -> Member {
        let ports = Ports::free();
        let members = format!("1=127.0.0.1:{}", ports.peer);
        let mut member = Member::new(1, ports, Membership::Bootstrap(members), extra_args);
        member.spawn_and_wait_ready();
        member
    }

    /// Starts an ensemble of `n` members (ids 1..=n) bootstrapped together, and waits until
    /// every member is ready.
    pub fn ensemble(n: u64, extra_args: &[&str]) -> Vec<Member> {
        let ports: Vec<Ports> = (0..n).map(|_| Ports::free()).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{}", i + 1, p.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Member> = ports
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                Member::new(
                    i as u64 + 1,
                    p,
                    Membership::Bootstrap(initial.clone()),
                    extra_args,
                )
            })
            .collect();
        for m in members.iter_mut() {
            m.spawn();
        }
        for m in members.iter_mut() {
            blocking(|| m.wait_ready());
        }
        members
    }

    /// Starts member `id` with `--join` towards `peers` (peer addresses); it runs (its
    /// `/healthz` answers) but is not ready until it is added to the ensemble.
    pub fn joiner(id: u64, peers: &str, extra_args: &[&str]) -> Member {
        let mut member = Member::new(
            id,
            Ports::free(),
            Membership::Join(peers.to_string()),
            extra_args,
        );
        member.spawn();
        blocking(|| member.wait_healthy());
        member
    }

    fn new(id: u64, ports: Ports, membership: Membership, extra_args: &[&str]) -> Member {
        let dir = tempfile::Builder::new()
            .prefix("keepr-test-")
            .tempdir()
            .expect("creating a temporary directory");
        let http = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .http_status_as_error(false)
                .build(),
        );
        Member {
            dir: Some(dir),
            ports,
            id,
            membership,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            http,
        }
    }

    /// `127.0.0.1:PORT` of the Raft peer listener.
    pub fn peer_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.peer)
    }

    /// `http://127.0.0.1:PORT` of the admin (gRPC) listener.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.grpc)
    }

    /// Deletes the data directory of a stopped member, as a lost disk would.
    pub fn wipe(&mut self) {
        assert!(self.child.is_none(), "wipe: stop the member first");
        let _ = std::fs::remove_dir_all(self.data_dir());
    }

    /// Starts the member again without waiting for readiness (a member that must be
    /// re-added never becomes ready by itself).
    pub fn restart_unready(&mut self) {
        self.spawn();
        blocking(|| self.wait_healthy());
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the member's directory lives as long as the member")
            .path()
    }

    /// The member's data directory (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("member.log")
    }

    /// `127.0.0.1:PORT` of the ZooKeeper listener.
    pub fn zk_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.zk)
    }

    /// `127.0.0.1:PORT` of the HTTP listener (`/metrics`, `/healthz`, `/readyz`).
    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.http)
    }

    /// Everything the member's processes wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// What the current (or last) process wrote, without earlier runs.
    pub fn log_of_last_run(&self) -> String {
        let log = self.log();
        match log.rfind(START_MARKER) {
            Some(at) => log[at..].to_string(),
            None => log,
        }
    }

    /// The value of an unlabelled sample on the member's `/metrics` page, if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.ports.http);
        let page = blocking(|| {
            self.http
                .get(&url)
                .call()
                .ok()?
                .body_mut()
                .read_to_string()
                .ok()
        })?;
        page.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|value| value.trim().parse().ok())
    }

    fn command(&self) -> Command {
        let p = self.ports;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keepr"));
        cmd.arg("server")
            .args(["--id", &self.id.to_string()])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--zk", &format!("127.0.0.1:{}", p.zk)])
            .args(["--grpc", &format!("127.0.0.1:{}", p.grpc)])
            .args(["--peer", &format!("127.0.0.1:{}", p.peer)])
            .args(["--http", &format!("127.0.0.1:{}", p.http)])
            .args(&self.extra_args);
        match &self.membership {
            Membership::Bootstrap(members) => cmd.args(["--initial-members", members]),
            Membership::Join(peers) => cmd.args(["--join", peers]),
        };
        // The tests read the log, so its level is theirs to choose, not the caller's shell's;
        // likewise no KEEPR_* setting of the caller may change the command line.
        cmd.env("RUST_LOG", "info,openraft=warn");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEEPR_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    fn spawn_and_wait_ready(&mut self) {
        self.spawn();
        blocking(|| self.wait_ready());
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the member is already running");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening the member's log file");
        writeln!(log, "{START_MARKER}").expect("writing to the member's log file");
        let stderr = log.try_clone().expect("duplicating the log file handle");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawning keepr server");
        self.child = Some(child);
    }

    /// Polls `GET /healthz` until it answers 200 (the process serves), bounded.
    fn wait_healthy(&mut self) {
        self.wait_for_status("/healthz");
    }

    /// Polls `GET /readyz` until it answers 200; fails the test if the process exits first or
    /// the deadline passes.
    fn wait_ready(&mut self) {
        self.wait_for_status("/readyz");
    }

    /// Waits until the member is ready again (e.g. after being added to the ensemble).
    pub fn wait_until_ready(&mut self) {
        blocking(|| self.wait_ready());
    }

    fn wait_for_status(&mut self, path: &str) {
        let url = format!("http://127.0.0.1:{}{path}", self.ports.http);
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "keepr server exited ({status}) before it was ready\n{}",
                    self.log_tail()
                );
            }
            if let Ok(resp) = self.http.get(&url).call() {
                if resp.status() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "keepr server not ready within {PROCESS_DEADLINE:?}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("checking the member process"))
    }

    /// SIGKILL, as a crash or an OOM kill would end it, and reap the process.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("kill: the member is not running");
        signal(&child, Signal::SIGKILL);
        child.wait().expect("reaping the killed member");
    }

    /// SIGTERM, as Kubernetes stops a pod, and wait for the process to exit; returns its
    /// status. Fails the test if it does not exit within the deadline.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .expect("terminate: the member is not running");
        signal(&child, Signal::SIGTERM);
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let status = blocking(|| loop {
            if let Some(status) = child.try_wait().expect("checking the member process") {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(POLL_INTERVAL);
        });
        match status {
            Some(status) => status,
            None => {
                signal(&child, Signal::SIGKILL);
                let _ = child.wait();
                panic!(
                    "keepr server did not exit within {PROCESS_DEADLINE:?} of SIGTERM\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Waits for the process to exit by itself (no signal sent) and returns its status; fails
    /// the test if it still runs after the deadline.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let status = blocking(|| loop {
            if let Some(status) = self.exited() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(POLL_INTERVAL);
        });
        match status {
            Some(status) => {
                self.child = None;
                status
            }
            None => panic!(
                "keepr server still running {PROCESS_DEADLINE:?} later\n{}",
                self.log_tail()
            ),
        }
    }

    /// Starts the member again on the same data directory and ports, and waits until ready.
    pub fn restart(&mut self) {
        self.spawn_and_wait_ready();
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {} ---\n{}\n--- end of member log ---",
            lines.len() - from,
            self.log_path().display(),
            lines[from..].join("\n")
        )
    }
}

fn signal(child: &Child, sig: Signal) {
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    kill(Pid::from_raw(pid), sig).expect("signalling the member process");
}

/// Runs blocking `f` from sync code or from inside a multi-threaded tokio runtime (whose
/// other workers keep clients' background tasks going meanwhile).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
            if let Some(dir) = self.dir.take() {
                eprintln!("member directory kept at {}", dir.keep().display());
            }
        }
    }
}
