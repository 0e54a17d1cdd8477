//! Differential test against the real thing: `tests/zookeeper/scenario.txt` is run against
//! the installed Apache ZooKeeper (a standalone server this test starts on a free loopback
//! port and stops by PID, driven by kazoo) and against keepr-tree, and every step's result
//! must agree: paths, sequence numbers, error codes, multi results, ACLs and every Stat
//! field (zxids compared by their order, since the two number them differently).
//!
//! The keepr-tree side always runs, and its output must also match the committed
//! `scenario.expected` (recorded from ZooKeeper 3.8 with `KEEPR_WRITE_EXPECTED=1`), so the
//! comparison holds even where ZooKeeper is not installed; the live side is skipped, saying
//! why, only when ZooKeeper, Java or kazoo is missing.

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use bytes::Bytes;
use keepr_tree::acl::{creator_all_acl, open_acl_unsafe, read_acl_unsafe};
use keepr_tree::digest::digest_id;
use keepr_tree::{Command, MultiOp, OpResult, Tree, TreeConfig, Triggers, TxnOp};
use keepr_wire::codes::perms;
use keepr_wire::{
    Acl, CheckVersionRequest, CreateRequest, DeleteRequest, ErrorCode, Id, SetAclRequest,
    SetDataRequest, Stat,
};
use wait_timeout::ChildExt;

const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const PYTHON: &str = "/usr/bin/python3";
const LIMIT: Duration = Duration::from_secs(180);

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zookeeper")
}

// --- the keepr-tree side -------------------------------------------------------------------

struct Client {
    session: i64,
    auth: Vec<Id>,
}

struct Runner {
    tree: Tree,
    triggers: Triggers,
    zxid: i64,
    clients: [Client; 2],
}

fn acl_named(name: &str) -> Vec<Acl> {
    match name {
        "open" => open_acl_unsafe(),
        "read" => read_acl_unsafe(),
        "creator" => creator_all_acl(),
        "bob" => vec![
            Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "digest".into(),
                    id: digest_id("bob:pw"),
                },
            },
            Acl {
                perms: perms::READ,
                id: keepr_tree::acl::anyone(),
            },
        ],
        "bobonly" => vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "digest".into(),
                id: digest_id("bob:pw"),
            },
        }],
        "lo" | "lan" | "lo6" => vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "ip".into(),
                id: match name {
                    "lo" => "127.0.0.0/8",
                    "lan" => "10.0.0.0/8",
                    _ => "::1/128",
                }
                .into(),
            },
        }],
        _ => vec![],
    }
}

fn data(arg: &str) -> Option<Bytes> {
    // kazoo sends empty data as null.
    (arg != "-").then(|| Bytes::copy_from_slice(arg.as_bytes()))
}

fn err(e: ErrorCode) -> String {
    format!("err:{}", e.code())
}

impl Runner {
    fn new() -> Runner {
        let client = |session| Client {
            session,
            auth: vec![Id {
                scheme: "ip".into(),
                id: "127.0.0.1".into(),
            }],
        };
        let mut r = Runner {
            tree: Tree::new(TreeConfig::default()),
            triggers: Triggers::new(),
            zxid: 0,
            clients: [client(0x100), client(0x200)],
        };
        for c in 0..2 {
            r.write(
                c,
                TxnOp::CreateSession {
                    timeout: 30_000,
                    passwd: [7; 16],
                },
            )
            .unwrap();
        }
        r
    }

    fn write(&mut self, c: usize, op: TxnOp) -> Result<OpResult, ErrorCode> {
        self.zxid += 1;
        let cmd = Command {
            zxid: self.zxid,
            time: self.zxid,
            session: self.clients[c].session,
            owner: 0,
            auth: self.clients[c].auth.clone(),
            op,
        };
        self.tree.apply(&cmd, &mut self.triggers)
    }

    fn stat(&self, s: &Stat) -> String {
        let owner = match s.ephemeral_owner {
            0x100 => "c1".to_string(),
            0x200 => "c2".to_string(),
            o => o.to_string(),
        };
        format!(
            "v={} cv={} av={} dl={} nc={} eo={owner} cz=Z{} mz=Z{} pz=Z{}",
            s.version,
            s.cversion,
            s.aversion,
            s.data_length,
            s.num_children,
            s.czxid,
            s.mzxid,
            s.pzxid
        )
    }

    fn result(&self, r: Result<OpResult, ErrorCode>) -> String {
        match r {
            Err(e) => err(e),
            Ok(OpResult::Create { path }) => format!("path:{path}"),
            Ok(OpResult::Create2 { path, stat }) => {
                format!("path:{path} stat:{}", self.stat(&stat))
            }
            Ok(OpResult::SetData { stat } | OpResult::SetAcl { stat }) => {
                format!("stat:{}", self.stat(&stat))
            }
            Ok(OpResult::Delete | OpResult::Check | OpResult::Session) => "ok".into(),
            Ok(OpResult::Multi(results)) => {
                let parts: Vec<String> = results.into_iter().map(|r| self.result(r)).collect();
                format!("multi:[{}]", parts.join(";"))
            }
        }
    }

    fn create(
        &mut self,
        c: usize,
        path: &str,
        d: &str,
        acl: Vec<Acl>,
        flags: i32,
        two: bool,
    ) -> String {
        let req = CreateRequest {
            path: path.into(),
            data: data(d),
            acl,
            flags,
        };
        let r = self.write(
            c,
            if two {
                TxnOp::Create2(req)
            } else {
                TxnOp::Create(req)
            },
        );
        self.result(r)
    }

    fn step(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (c, op, args) = match words.as_slice() {
            [c, op, args @ ..] => (if *c == "c1" { 0 } else { 1 }, *op, args),
            _ => panic!("bad scenario line {line:?}"),
        };
        let arg = |i: usize| args.get(i).copied().unwrap_or_default();
        let int = |i: usize| arg(i).parse::<i32>().expect("a number");
        let auth = self.clients[c].auth.clone();
        match op {
            "create" => self.create(c, arg(0), arg(1), open_acl_unsafe(), 0, false),
            "create2" => self.create(c, arg(0), arg(1), open_acl_unsafe(), 0, true),
            "create_seq" => self.create(c, arg(0), arg(1), open_acl_unsafe(), 2, false),
            "create_eph" => self.create(c, arg(0), arg(1), open_acl_unsafe(), 1, false),
            "create_eph_seq" => self.create(c, arg(0), arg(1), open_acl_unsafe(), 3, false),
            "createacl" => self.create(c, arg(0), arg(1), acl_named(arg(2)), 0, false),
            "stat" => match self.tree.exists(arg(0), &auth) {
                Ok(s) => format!("stat:{}", self.stat(&s)),
                Err(ErrorCode::NoNode) => "none".into(),
                Err(e) => err(e),
            },
            "get" => match self.tree.get_data(arg(0), &auth) {
                Ok(d) => {
                    let text = String::from_utf8_lossy(d.data.unwrap_or_default()).into_owned();
                    format!("data:{text} stat:{}", self.stat(&d.stat))
                }
                Err(e) => err(e),
            },
            "children" => match self.tree.get_children(arg(0), &auth) {
                Ok(k) => format!("children:{}", k.join(",")),
                Err(e) => err(e),
            },
            "set" => {
                let req = SetDataRequest {
                    path: arg(0).into(),
                    data: data(arg(1)),
                    version: int(2),
                };
                let r = self.write(c, TxnOp::SetData(req));
                self.result(r)
            }
            "delete" => {
                let req = DeleteRequest {
                    path: arg(0).into(),
                    version: int(1),
                };
                let r = self.write(c, TxnOp::Delete(req));
                self.result(r)
            }
            "acl" => match self.tree.get_acl(arg(0), &auth) {
                Ok((list, s)) => {
                    let entries: Vec<String> = list
                        .iter()
                        .map(|a| format!("{}:{}:{}", a.perms, a.id.scheme, a.id.id))
                        .collect();
                    format!("acl:{} stat:{}", entries.join("|"), self.stat(&s))
                }
                Err(e) => err(e),
            },
            "setacl" => {
                let req = SetAclRequest {
                    path: arg(0).into(),
                    acl: acl_named(arg(1)),
                    version: int(2),
                };
                let r = self.write(c, TxnOp::SetAcl(req));
                self.result(r)
            }
            "auth" => {
                self.clients[c].auth.push(Id {
                    scheme: "digest".into(),
                    id: digest_id(arg(0)),
                });
                "ok".into()
            }
            "close" => {
                let r = self.write(c, TxnOp::CloseSession);
                self.result(r)
            }
            "multi" => {
                let ops = args
                    .iter()
                    .map(|op| {
                        let p: Vec<&str> = op.split(':').collect();
                        let n = |i: usize| p[i].parse::<i32>().expect("a number");
                        match p[0] {
                            "check" => MultiOp::Check(CheckVersionRequest {
                                path: p[1].into(),
                                version: n(2),
                            }),
                            "create" => MultiOp::Create(CreateRequest {
                                path: p[1].into(),
                                data: None,
                                acl: open_acl_unsafe(),
                                flags: 0,
                            }),
                            "delete" => MultiOp::Delete(DeleteRequest {
                                path: p[1].into(),
                                version: n(2),
                            }),
                            _ => MultiOp::SetData(SetDataRequest {
                                path: p[1].into(),
                                data: data(p[2]),
                                version: n(3),
                            }),
                        }
                    })
                    .collect();
                let r = self.write(c, TxnOp::Multi(ops));
                self.result(r)
            }
            other => panic!("unknown op {other}"),
        }
    }
}

fn run_on_tree() -> Vec<String> {
    let scenario = fs::read_to_string(dir().join("scenario.txt")).expect("read scenario.txt");
    let mut runner = Runner::new();
    scenario
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!("{l} => {}", runner.step(l)))
        .collect()
}

/// Replaces every zxid (`=Z<number>`) by its rank among all zxids in `lines`.
fn normalize(lines: &[String]) -> Vec<String> {
    let zxids = |l: &str| -> Vec<i64> {
        l.split("=Z")
            .skip(1)
            .filter_map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let all: BTreeSet<i64> = lines.iter().flat_map(|l| zxids(l)).collect();
    let rank = |z: i64| all.iter().position(|&x| x == z).unwrap_or(usize::MAX);
    lines
        .iter()
        .map(|l| {
            let mut out = String::new();
            let mut pieces = l.split("=Z");
            out.push_str(pieces.next().unwrap_or_default());
            for rest in pieces {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let z: i64 = digits.parse().unwrap_or(-1);
                out.push_str(&format!("=Z{}", rank(z)));
                out.push_str(&rest[digits.len()..]);
            }
            out
        })
        .collect()
}

#[test]
fn keepr_tree_results_match_the_recorded_zookeeper_results() {
    let got = normalize(&run_on_tree());
    let expected =
        fs::read_to_string(dir().join("scenario.expected")).expect("read scenario.expected");
    let expected: Vec<&str> = expected.lines().collect();
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "step {} differs", i + 1);
    }
    assert_eq!(got.len(), expected.len());
}

// --- the live ZooKeeper side ---------------------------------------------------------------

/// A child process killed and reaped when dropped, so no server outlives the test.
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
    let quiet = |cmd: &mut Process| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(Process::new("java").arg("-version")) {
        return Some("no java on PATH".into());
    }
    if !quiet(Process::new(PYTHON).args(["-c", "import kazoo"])) {
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

#[test]
fn keepr_tree_agrees_with_live_zookeeper_on_the_scenario() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipping the live ZooKeeper comparison: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let data_dir = tmp.path().join("data");
    fs::create_dir_all(&data_dir).expect("create the data dir");
    let cfg = tmp.path().join("zoo.cfg");
    fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
            data_dir.display()
        ),
    )
    .expect("write zoo.cfg");
    let log = fs::File::create(tmp.path().join("zookeeper.log")).expect("server log");
    let _zookeeper = Reaped(
        Process::new("java")
            .args([
                "-cp",
                ZOOKEEPER_JAR,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(&cfg)
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start ZooKeeper"),
    );
    let out_path = tmp.path().join("out.txt");
    let out = fs::File::create(&out_path).expect("scenario output");
    let err_path = tmp.path().join("err.txt");
    let err_file = fs::File::create(&err_path).expect("scenario errors");
    let mut script = Reaped(
        Process::new(PYTHON)
            .arg(dir().join("run_scenario.py"))
            .arg(format!("127.0.0.1:{port}"))
            .arg(dir().join("scenario.txt"))
            .stdout(out)
            .stderr(err_file)
            .spawn()
            .expect("start run_scenario.py"),
    );
    let status = script
        .0
        .wait_timeout(LIMIT)
        .expect("wait for run_scenario.py");
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("run_scenario.py failed ({s}):\n{stderr}"),
        None => panic!("run_scenario.py did not finish within {LIMIT:?}:\n{stderr}"),
    }
    let live: Vec<String> = fs::read_to_string(&out_path)
        .expect("read output")
        .lines()
        .map(String::from)
        .collect();
    let live = normalize(&live);
    if std::env::var_os("KEEPR_WRITE_EXPECTED").is_some() {
        let mut text = live.join("\n");
        text.push('\n');
        fs::write(dir().join("scenario.expected"), text).expect("write scenario.expected");
    }
    let ours = normalize(&run_on_tree());
    for (i, (ours, live)) in ours.iter().zip(&live).enumerate() {
        assert_eq!(ours, live, "step {} differs from ZooKeeper", i + 1);
    }
    assert_eq!(
        ours.len(),
        live.len(),
        "ZooKeeper ran a different number of steps"
    );
}
