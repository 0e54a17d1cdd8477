//! Captures fresh traffic between real clients and the installed Apache ZooKeeper and checks
//! that keepr-wire decodes every frame and re-encodes it to the identical bytes.
//!
//! The test starts its own standalone ZooKeeper on a free loopback port with a temporary
//! data directory, runs `golden/capture.py` (kazoo, zkCli and, with a JDK, a Java API
//! program) against it, and stops the server by PID. It skips, saying why, only when
//! ZooKeeper, Java or kazoo is not installed. With `KEEPR_WRITE_GOLDEN=1` it also replaces
//! the committed fixtures with what it captured.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keepr_wire::codes::op;
use wait_timeout::ChildExt;

const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const PYTHON: &str = "/usr/bin/python3";
/// Upper bound for the whole capture; the capture tool gives up on its own before this.
const CAPTURE_LIMIT: Duration = Duration::from_secs(300);

/// A child process killed and reaped when dropped, so that no server outlives the test.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn missing_prerequisite() -> Option<String> {
    if !Path::new(ZOOKEEPER_JAR).exists() {
        return Some(format!(
            "{ZOOKEEPER_JAR} not found (Debian package zookeeper)"
        ));
    }
    if Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        return Some("no java on PATH".into());
    }
    let kazoo = Command::new(PYTHON)
        .args(["-c", "import kazoo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if kazoo.map_or(true, |s| !s.success()) {
        return Some(format!(
            "{PYTHON} cannot import kazoo (Debian package python3-kazoo)"
        ));
    }
    None
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn start_zookeeper(dir: &Path, port: u16) -> Reaped {
    let data = dir.join("data");
    fs::create_dir_all(&data).expect("create the data dir");
    let cfg = dir.join("zoo.cfg");
    fs::write(
        &cfg,
        format!(
            "tickTime=2000\n\
             dataDir={}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=*\n",
            data.display()
        ),
    )
    .expect("write zoo.cfg");
    let log = fs::File::create(dir.join("zookeeper.log")).expect("create the server log");
    let child = Command::new("java")
        .arg("-Dzookeeper.extendedTypesEnabled=true")
        .args(["-cp", ZOOKEEPER_JAR])
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(&cfg)
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log)
        .spawn()
        .expect("start ZooKeeper");
    Reaped(child)
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn live_capture_from_real_zookeeper_decodes_and_reencodes_identically() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipping the live golden capture: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let mut zookeeper = start_zookeeper(tmp.path(), port);

    let out_dir = tmp.path().join("frames");
    let capture_log = tmp.path().join("capture.log");
    let log = fs::File::create(&capture_log).expect("create the capture log");
    let mut capture = Reaped(
        Command::new(PYTHON)
            .arg(golden_dir().join("capture.py"))
            .args(["--zookeeper", &format!("127.0.0.1:{port}")])
            .arg("--out-dir")
            .arg(&out_dir)
            .args(["--deadline", "240"])
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start capture.py"),
    );
    let status = capture
        .0
        .wait_timeout(CAPTURE_LIMIT)
        .expect("wait for capture.py");
    drop(capture);
    let _ = zookeeper.0.kill();
    let _ = zookeeper.0.wait();
    let output = fs::read_to_string(&capture_log).unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("capture.py failed ({s}):\n{output}"),
        None => panic!("capture.py did not finish in {CAPTURE_LIMIT:?}:\n{output}"),
    }
    eprint!("{output}");

    let mut request_ops = BTreeSet::new();
    let mut total = 0;
    let mut files = Vec::new();
    for name in ["kazoo", "zkcli", "java"] {
        let path = out_dir.join(format!("{name}.frames"));
        let Ok(text) = fs::read_to_string(&path) else {
            assert_eq!(name, "java", "capture.py wrote no {name}.frames");
            continue;
        };
        let decoded = common::check_all(&text)
            .unwrap_or_else(|e| panic!("{name}.frames from the live capture:\n{e}"));
        total += decoded.len();
        for (_, d) in &decoded {
            if let common::Decoded::Request(r) = d {
                request_ops.insert(r.header.op);
            }
        }
        files.push((name, text));
    }
    eprintln!("checked {total} live frames; request opcodes seen: {request_ops:?}");
    let expected = [
        op::CREATE,
        op::DELETE,
        op::EXISTS,
        op::GET_DATA,
        op::SET_DATA,
        op::GET_ACL,
        op::SET_ACL,
        op::GET_CHILDREN,
        op::SYNC,
        op::PING,
        op::GET_CHILDREN2,
        op::MULTI,
        op::CREATE2,
        op::RECONFIG,
        op::REMOVE_WATCHES,
        op::CREATE_CONTAINER,
        op::CREATE_TTL,
        op::AUTH,
        op::SET_WATCHES,
        op::GET_EPHEMERALS,
        op::GET_ALL_CHILDREN_NUMBER,
        op::SET_WATCHES2,
        op::ADD_WATCH,
        op::WHO_AM_I,
        op::CLOSE_SESSION,
    ];
    for code in expected {
        assert!(
            request_ops.contains(&code),
            "the capture never exercised {}",
            op::name(code).unwrap_or("?")
        );
    }

    if std::env::var_os("KEEPR_WRITE_GOLDEN").is_some() {
        for (name, text) in files {
            let dest = golden_dir().join(format!("{name}.frames"));
            fs::write(&dest, text).expect("write the fixture");
            eprintln!("wrote {}", dest.display());
        }
    }
}
