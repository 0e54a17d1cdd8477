//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`.
//!
//! Seeds come from two places: the frames captured from a real ZooKeeper and its clients
//! (`crates/keepr-wire/tests/golden/*.frames`), and values built here with keepr's own
//! encoders (snapshots of real trees, log commands of every kind, client sessions that use
//! every request). Each input is named by its SHA-1, as libFuzzer names what it adds, so
//! running this again adds nothing twice. Usage, from the repository root:
//!
//!     cargo run --manifest-path fuzz/seed/Cargo.toml

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{Command, MultiOp, Tree, TreeConfig, Triggers, TxnOp};
use keepr_wire::codes::{add_watch_mode, create_flags, perms, watcher_type, xid};
use keepr_wire::frame::encode_frame;
use keepr_wire::jute::Jute;
use keepr_wire::multi::{MultiReadOp, MultiReadRequest, MultiRequest};
use keepr_wire::request::{Request, RequestBody};
use keepr_wire::{
    Acl, AddWatchRequest, AuthPacket, CheckVersionRequest, ConnectRequest, CreateTtlRequest,
    DeleteRequest, GetEphemeralsRequest, Id, PathRequest, PathWatchRequest, ReconfigRequest,
    SetAclRequest, SetDataRequest, SetWatches, SetWatches2, WatchesRequest,
};
use sha1::{Digest, Sha1};

#[path = "../../common/base_tree.rs"]
mod base_tree;

use base_tree::{base_commands, base_tree, command, create, SESSIONS, USER};

/// Writes inputs into the corpus directories and counts what was new.
struct Corpus {
    root: PathBuf,
    added: BTreeMap<&'static str, usize>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, data: &[u8]) -> io::Result<()> {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir)?;
        let name: String = Sha1::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = dir.join(name);
        if !path.exists() {
            fs::write(path, data)?;
            *self.added.entry(target).or_default() += 1;
        }
        Ok(())
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

/// Every golden frame as an input of the decoder target it belongs to, and every captured
/// connection as a byte stream (`frame`) and as a client session (`connection`).
fn golden(corpus: &mut Corpus, dir: &Path) -> io::Result<()> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "frames"))
        .collect();
    files.sort();
    for file in files {
        let mut streams: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
        for line in fs::read_to_string(&file)?.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [conn, direction, context, payload] = fields[..] else {
                return Err(io::Error::other(format!(
                    "{}: bad line {line:?}",
                    file.display()
                )));
            };
            let payload = hex(payload)
                .ok_or_else(|| io::Error::other(format!("{}: bad hex", file.display())))?;
            let mut framed = BytesMut::new();
            encode_frame(&mut framed, &payload);
            streams
                .entry((conn.to_string(), direction.to_string()))
                .or_default()
                .extend_from_slice(&framed);
            let to_server = direction == "c>s";
            if context == "connect" {
                corpus.add("connect", &[&[u8::from(!to_server)], &payload[..]].concat())?;
            } else if to_server {
                corpus.add("request", &payload)?;
            } else {
                let opcode: i32 = context
                    .split(':')
                    .next()
                    .and_then(|o| o.parse().ok())
                    .ok_or_else(|| io::Error::other(format!("bad context {context:?}")))?;
                corpus.add(
                    "response",
                    &[&opcode.to_be_bytes()[..], &payload[..]].concat(),
                )?;
            }
        }
        for ((_, direction), stream) in streams {
            // Default maximum frame size (255), and reads of 7 bytes.
            corpus.add("frame", &[&[0xff, 7][..], &stream[..]].concat())?;
            if direction == "c>s" {
                connection(corpus, &stream)?;
            }
        }
    }
    Ok(())
}

/// A client stream as `connection` inputs: sent in one write, and 7 bytes at a time.
fn connection(corpus: &mut Corpus, stream: &[u8]) -> io::Result<()> {
    for step in [0u8, 7] {
        corpus.add("connection", &[&[step][..], stream].concat())?;
    }
    Ok(())
}

fn connect_frame(read_only: Option<bool>, session_id: i64) -> BytesMut {
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id,
        passwd: Some(Bytes::from_static(&[0; 16])),
        read_only,
    };
    let mut payload = BytesMut::new();
    req.write(&mut payload);
    let mut out = BytesMut::new();
    encode_frame(&mut out, &payload);
    out
}

fn session(read_only: Option<bool>, requests: Vec<(i32, RequestBody)>) -> Vec<u8> {
    let mut out = connect_frame(read_only, 0);
    for (x, body) in requests {
        Request::new(x, body).write_frame(&mut out);
    }
    out.to_vec()
}

fn path_watch(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
}

fn auth(scheme: &str, credential: &str) -> RequestBody {
    RequestBody::Auth(AuthPacket {
        auth_type: 0,
        scheme: scheme.into(),
        auth: Some(Bytes::copy_from_slice(credential.as_bytes())),
    })
}

/// One of every request a client can send, in an order where most succeed.
fn tour() -> Vec<(i32, RequestBody)> {
    let open = open_acl_unsafe;
    let body = vec![
        RequestBody::Create(create("/a", create_flags::PERSISTENT, open())),
        RequestBody::Create2(create("/a/b", create_flags::PERSISTENT, open())),
        RequestBody::Create(create("/a/s-", create_flags::EPHEMERAL_SEQUENTIAL, open())),
        RequestBody::CreateContainer(create("/c", create_flags::CONTAINER, open())),
        RequestBody::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: open(),
            flags: create_flags::PERSISTENT_WITH_TTL,
            ttl: 1000,
        }),
        RequestBody::Create(create("/e", create_flags::EPHEMERAL, open())),
        RequestBody::GetData(path_watch("/a", true)),
        RequestBody::Exists(path_watch("/missing", true)),
        RequestBody::GetChildren(path_watch("/", true)),
        RequestBody::GetChildren2(path_watch("/a", true)),
        RequestBody::AddWatch(AddWatchRequest {
            path: "/a".into(),
            mode: add_watch_mode::PERSISTENT_RECURSIVE,
        }),
        RequestBody::AddWatch(AddWatchRequest {
            path: "/c".into(),
            mode: add_watch_mode::PERSISTENT,
        }),
        RequestBody::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"new")),
            version: 0,
        }),
        RequestBody::GetAcl(PathRequest { path: "/a".into() }),
        RequestBody::SetAcl(SetAclRequest {
            path: "/a/b".into(),
            acl: vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "ip".into(),
                    id: "127.0.0.1".into(),
                },
            }],
            version: -1,
        }),
        RequestBody::Sync(PathRequest { path: "/".into() }),
        RequestBody::Multi(MultiRequest {
            ops: vec![
                keepr_wire::MultiOp::Create(create("/m", 0, open())),
                keepr_wire::MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: None,
                    version: 0,
                }),
                keepr_wire::MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 1,
                }),
                keepr_wire::MultiOp::Delete(DeleteRequest {
                    path: "/m".into(),
                    version: -1,
                }),
            ],
        }),
        RequestBody::Multi(MultiRequest {
            ops: vec![
                keepr_wire::MultiOp::Create(create("/n", 0, open())),
                keepr_wire::MultiOp::Check(CheckVersionRequest {
                    path: "/n".into(),
                    version: 9,
                }),
            ],
        }),
        RequestBody::MultiRead(MultiReadRequest {
            ops: vec![
                MultiReadOp::GetData(path_watch("/a", false)),
                MultiReadOp::GetChildren(path_watch("/missing", false)),
            ],
        }),
        RequestBody::CheckWatches(WatchesRequest {
            path: "/a".into(),
            watcher_type: watcher_type::DATA,
        }),
        RequestBody::RemoveWatches(WatchesRequest {
            path: "/".into(),
            watcher_type: watcher_type::ANY,
        }),
        RequestBody::GetEphemerals(GetEphemeralsRequest {
            prefix_path: "/".into(),
        }),
        RequestBody::GetAllChildrenNumber(PathRequest { path: "/".into() }),
        RequestBody::WhoAmI,
        RequestBody::Reconfig(ReconfigRequest {
            joining_servers: None,
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        }),
        RequestBody::Delete(DeleteRequest {
            path: "/a/b".into(),
            version: -1,
        }),
    ];
    let mut requests: Vec<(i32, RequestBody)> = (1..).zip(body).collect();
    requests.push((xid::PING, RequestBody::Ping));
    requests.push((xid::AUTH, auth("digest", USER)));
    requests.push((xid::AUTH, auth("digest", "super:fuzz")));
    let lists = |p: &str| vec![p.to_string()];
    requests.push((
        xid::SET_WATCHES,
        RequestBody::SetWatches(SetWatches {
            relative_zxid: 1,
            data_watches: lists("/a"),
            exist_watches: lists("/gone"),
            child_watches: lists("/"),
        }),
    ));
    requests.push((
        xid::SET_WATCHES,
        RequestBody::SetWatches2(SetWatches2 {
            relative_zxid: 1,
            data_watches: lists("/a"),
            exist_watches: lists("/gone"),
            child_watches: lists("/"),
            persistent_watches: lists("/c"),
            persistent_recursive_watches: lists("/a"),
        }),
    ));
    requests.push((100, RequestBody::CloseSession));
    requests
}

fn synthetic_connections(corpus: &mut Corpus) -> io::Result<()> {
    connection(corpus, &session(Some(false), tour()))?;
    connection(corpus, &session(None, tour()))?;
    // A malformed body (getData whose path claims 9 bytes), then a ping.
    let mut malformed = connect_frame(None, 0);
    encode_frame(&mut malformed, &[0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 9, b'/']);
    Request::new(8, RequestBody::Ping).write_frame(&mut malformed);
    connection(corpus, &malformed)?;
    // An unknown opcode, then a ping that must go unanswered.
    let mut unknown = connect_frame(None, 0);
    encode_frame(&mut unknown, &[0, 0, 0, 2, 0, 0, 0x03, 0xe7]);
    Request::new(3, RequestBody::Ping).write_frame(&mut unknown);
    connection(corpus, &unknown)?;
    connection(
        corpus,
        &session(
            None,
            vec![(xid::AUTH, auth("nosuch", "x")), (1, RequestBody::Ping)],
        ),
    )?;
    // Resuming a session this member does not know.
    connection(corpus, &connect_frame(Some(false), 0x1234))?;
    for word in [
        "ruok", "srvr", "stat", "mntr", "conf", "envi", "isro", "cons", "wchs", "dump",
    ] {
        connection(corpus, word.as_bytes())?;
    }
    Ok(())
}

/// Log commands of every kind, as the base tree's sessions would propose them.
fn commands() -> Vec<Command> {
    let [s, s2] = SESSIONS;
    let open = open_acl_unsafe;
    let ops = vec![
        TxnOp::Create(create("/new", create_flags::PERSISTENT, open())),
        TxnOp::Create(create(
            "/a/b/s-",
            create_flags::PERSISTENT_SEQUENTIAL,
            open(),
        )),
        TxnOp::Create(create("/e/child", create_flags::PERSISTENT, open())),
        TxnOp::Create2(create("/a/eph", create_flags::EPHEMERAL_SEQUENTIAL, open())),
        TxnOp::Create(create(
            "/auth",
            create_flags::PERSISTENT,
            vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "auth".into(),
                    id: String::new(),
                },
            }],
        )),
        TxnOp::CreateContainer(create("/c2", create_flags::CONTAINER, open())),
        TxnOp::CreateTtl(CreateTtlRequest {
            path: "/t2".into(),
            data: Some(Bytes::from_static(b"ttl")),
            acl: open(),
            flags: create_flags::PERSISTENT_SEQUENTIAL_WITH_TTL,
            ttl: 5000,
        }),
        TxnOp::Delete(DeleteRequest {
            path: "/a/b".into(),
            version: 0,
        }),
        TxnOp::Delete(DeleteRequest {
            path: "/c/child".into(),
            version: -1,
        }),
        TxnOp::SetData(SetDataRequest {
            path: "/a".into(),
            data: None,
            version: -1,
        }),
        TxnOp::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: open(),
            version: 0,
        }),
        TxnOp::Check(CheckVersionRequest {
            path: "/a".into(),
            version: 0,
        }),
        TxnOp::Multi(vec![
            MultiOp::Create(create("/m", create_flags::PERSISTENT, open())),
            MultiOp::Create2(create("/m/x", create_flags::EPHEMERAL, open())),
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: Some(Bytes::from_static(b"m")),
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/m".into(),
                version: 1,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/e".into(),
                version: -1,
            }),
        ]),
        TxnOp::Multi(vec![
            MultiOp::CreateContainer(create("/mc", create_flags::CONTAINER, open())),
            MultiOp::CreateTtl(CreateTtlRequest {
                path: "/mt".into(),
                data: None,
                acl: open(),
                flags: create_flags::PERSISTENT_WITH_TTL,
                ttl: 1,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/missing".into(),
                version: -1,
            }),
        ]),
        TxnOp::CreateSession {
            timeout: 4000,
            passwd: [9; 16],
        },
        TxnOp::CloseSession,
        TxnOp::DeleteContainer { path: "/c".into() },
        TxnOp::DeleteContainer { path: "/t".into() },
    ];
    let next = base_commands().len() as i64 + 1;
    let mut cmds: Vec<Command> = ops.into_iter().map(|op| command(next, s, op)).collect();
    // The same with identities: the restricted node's user, and the super user.
    let user = Id {
        scheme: "digest".into(),
        id: keepr_tree::digest::digest_id(USER),
    };
    let mut read_secret = command(
        next,
        s2,
        TxnOp::SetData(SetDataRequest {
            path: "/secret".into(),
            data: None,
            version: -1,
        }),
    );
    read_secret.auth = vec![user];
    cmds.push(read_secret);
    let mut as_super = command(
        next,
        s2,
        TxnOp::Delete(DeleteRequest {
            path: "/secret".into(),
            version: -1,
        }),
    );
    as_super.auth = vec![Id {
        scheme: "super".into(),
        id: String::new(),
    }];
    cmds.push(as_super);
    cmds.push(command(
        next,
        0x3000,
        TxnOp::CreateSession {
            timeout: 4000,
            passwd: [3; 16],
        },
    ));
    cmds
}

fn snapshot(tree: &Tree) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    tree.encode_snapshot(&mut out)?;
    Ok(out)
}

/// Snapshots of real trees: empty, the base tree, and the base tree after each command.
/// Each is written whole (mode 0) and without its checksum (mode 1: the target appends it).
fn snapshots(corpus: &mut Corpus, cmds: &[Command]) -> io::Result<()> {
    let mut trees = vec![Tree::new(TreeConfig::default()), base_tree()];
    for cmd in cmds {
        let mut tree = base_tree();
        if tree.apply(cmd, &mut Triggers::new()).is_ok() {
            trees.push(tree);
        }
    }
    for tree in &trees {
        let bytes = snapshot(tree)?;
        corpus.add("snapshot", &[&[0u8][..], &bytes[..]].concat())?;
        let body = bytes
            .get(..bytes.len().saturating_sub(4))
            .unwrap_or_default();
        corpus.add("snapshot", &[&[1u8][..], body].concat())?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let seed_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = seed_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| io::Error::other("fuzz/seed has no repository root above it"))?;
    let mut corpus = Corpus {
        root: root.join("fuzz/corpus"),
        added: BTreeMap::new(),
    };
    golden(&mut corpus, &root.join("crates/keepr-wire/tests/golden"))?;
    synthetic_connections(&mut corpus)?;
    let cmds = commands();
    for cmd in &cmds {
        corpus.add("command", &cmd.to_bytes())?;
    }
    for cmd in base_commands() {
        corpus.add("command", &cmd.to_bytes())?;
    }
    snapshots(&mut corpus, &cmds)?;
    for (target, n) in &corpus.added {
        println!(
            "{target}: {n} new inputs in {}",
            corpus.root.join(target).display()
        );
    }
    Ok(())
}
