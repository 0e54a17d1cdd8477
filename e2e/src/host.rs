//! Running things on the host: one-shot commands (with their output in the error when they
//! fail), daemons started inside the cluster's network namespace with a pid file, and
//! stopping exactly those daemons by pid.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::layout::{Paths, NETNS};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} did not happen within {secs} s{detail}")]
    Timeout {
        what: String,
        secs: u64,
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, HostError>;

pub fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostError {
    let what = what.into();
    move |source| HostError::Io { what, source }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; its stdout on success, an error with its stderr otherwise.
pub fn run(cmd: &mut Command) -> Result<String> {
    let name = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HostError::Spawn {
            cmd: name.clone(),
            source,
        })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        // Long build logs: the end is what explains the failure.
        if stderr.len() > 4000 {
            stderr = format!("...{}", &stderr[stderr.len() - 4000..]);
        }
        return Err(HostError::Failed {
            cmd: name,
            status: out.status.to_string(),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `run` for a program and arguments.
pub fn sh<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new(program).args(args))
}

/// Like [`sh`], but a failure is only logged: for clean-up steps that may find nothing to do.
pub fn sh_quiet<I, S>(program: &str, args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    match sh(program, args) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "ignored");
            false
        }
    }
}

/// `ip -n NETNS ...`: a command of `ip` inside the cluster's namespace.
pub fn ip_ns(args: &[&str]) -> Result<String> {
    let mut all = vec!["-n", NETNS];
    all.extend_from_slice(args);
    sh("ip", all)
}

/// A command that runs in the cluster's network namespace (and nothing else of the host
/// changes: unlike `ip netns exec`, no private mount of /sys hides the cgroup hierarchy).
pub fn in_netns(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{NETNS}"))
        .arg("--")
        .arg(program);
    cmd
}

/// The pid recorded for `process`, if any.
pub fn recorded_pid(paths: &Paths, process: &str) -> Option<i32> {
    fs::read_to_string(paths.pid_file(process))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesised command name, is the state.
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Whether the daemon recorded as `process` runs.
pub fn running(paths: &Paths, process: &str) -> bool {
    recorded_pid(paths, process).is_some_and(alive)
}

/// Starts a daemon in the cluster's namespace, in a session of its own (so it outlives the
/// command that started it), at lower priority, with its output in `logs/NAME.log` and its
/// pid in `pids/NAME.pid`. A daemon already running under that name is left alone.
pub fn start_daemon(paths: &Paths, name: &str, program: &Path, args: &[String]) -> Result<i32> {
    if let Some(pid) = recorded_pid(paths, name).filter(|p| alive(*p)) {
        return Ok(pid);
    }
    fs::create_dir_all(paths.logs()).map_err(io_err("creating the log directory"))?;
    fs::create_dir_all(paths.pids()).map_err(io_err("creating the pid directory"))?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(paths.log(name))
        .map_err(io_err(format!("opening the log of {name}")))?;
    let err = log
        .try_clone()
        .map_err(io_err(format!("opening the log of {name}")))?;
    let mut cmd = in_netns(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| HostError::Spawn {
        cmd: format!("{name} ({})", program.display()),
        source,
    })?;
    let pid = child.id() as i32;
    // The child is reaped by init once this process exits; nothing waits for it here.
    std::mem::forget(child);
    fs::write(paths.pid_file(name), pid.to_string())
        .map_err(io_err(format!("writing the pid file of {name}")))?;
    tracing::info!(name, pid, "started");
    Ok(pid)
}

/// SIGTERM to the daemon recorded as `name`, SIGKILL if it has not exited after `grace`;
/// removes its pid file. Only that pid is signalled.
pub fn stop_daemon(paths: &Paths, name: &str, grace: Duration) {
    if let Some(pid) = recorded_pid(paths, name) {
        stop_pid(pid, grace);
        tracing::info!(name, pid, "stopped");
    }
    let _ = fs::remove_file(paths.pid_file(name));
}

/// SIGTERM, wait up to `grace`, SIGKILL.
pub fn stop_pid(pid: i32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    // SAFETY: plain kill(2) on a pid this cluster started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every daemon with a pid file, by name.
pub fn recorded_daemons(paths: &Paths) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    if let Ok(dir) = fs::read_dir(paths.pids()) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = name.strip_suffix(".pid") {
                if let Some(pid) = recorded_pid(paths, name) {
                    out.push((name.to_string(), pid));
                }
            }
        }
    }
    out.sort();
    out
}

/// Polls `check` every `every` until it returns `Some`, for at most `limit`.
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(HostError::Timeout {
                what: what.to_string(),
                secs: limit.as_secs(),
                detail: String::new(),
            });
        }
        std::thread::sleep(every);
    }
}

/// Processes whose command line contains `needle`, by pid (from /proc; for finding the
/// shims of this cluster's containerds, which run in sessions of their own).
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(proc_dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in proc_dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(needle) && pid != std::process::id() as i32 {
                out.push(pid);
            }
        }
    }
    out
}

/// Writes `contents` to `path` through a temporary file and a rename.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    fs::write(&tmp, contents).map_err(io_err(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_err(format!("renaming to {}", path.display())))
}

/// The program's absolute path on PATH, if present.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
