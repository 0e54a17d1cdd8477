//! The tree commands are applied to in the `command` target, and its seed commands.
//! Shared by the target and the seed corpus writer, so seeds name what the tree holds.

use bytes::Bytes;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{Command, Tree, TreeConfig, Triggers, TxnOp};
use keepr_wire::codes::create_flags;
use keepr_wire::{Acl, CreateRequest, CreateTtlRequest, Id};

/// The sessions of the base tree.
pub const SESSIONS: [i64; 2] = [0x1000, 0x2000];

/// `user:secret`, the only identity that may read `/secret`.
pub const USER: &str = "user:secret";

pub fn command(zxid: i64, session: i64, op: TxnOp) -> Command {
    Command {
        zxid,
        time: 1_000_000 + zxid,
        session,
        owner: 0,
        auth: Vec::new(),
        op,
    }
}

pub fn create(path: &str, flags: i32, acl: Vec<Acl>) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"data")),
        acl,
        flags,
    }
}

/// The commands that build the base tree: two sessions, and nodes of every kind (with
/// data, children, a sequence counter, ephemerals of both sessions, a container, a TTL
/// node, a restricted ACL).
pub fn base_commands() -> Vec<Command> {
    let [s, s2] = SESSIONS;
    let open = open_acl_unsafe;
    let restricted = vec![Acl {
        perms: 1,
        id: Id {
            scheme: "digest".into(),
            id: keepr_tree::digest::digest_id(USER),
        },
    }];
    let ops = [
        (
            s,
            TxnOp::CreateSession {
                timeout: 30_000,
                passwd: [1; 16],
            },
        ),
        (
            s2,
            TxnOp::CreateSession {
                timeout: 30_000,
                passwd: [2; 16],
            },
        ),
        (
            s,
            TxnOp::Create(create("/a", create_flags::PERSISTENT, open())),
        ),
        (
            s,
            TxnOp::Create(create("/a/b", create_flags::PERSISTENT, open())),
        ),
        (
            s,
            TxnOp::Create(create(
                "/a/seq-",
                create_flags::PERSISTENT_SEQUENTIAL,
                open(),
            )),
        ),
        (
            s,
            TxnOp::Create(create("/e", create_flags::EPHEMERAL, open())),
        ),
        (
            s2,
            TxnOp::Create(create("/a/e2", create_flags::EPHEMERAL, open())),
        ),
        (
            s,
            TxnOp::CreateContainer(create("/c", create_flags::CONTAINER, open())),
        ),
        (
            s,
            TxnOp::Create(create("/c/child", create_flags::PERSISTENT, open())),
        ),
        (
            s,
            TxnOp::CreateTtl(CreateTtlRequest {
                path: "/t".into(),
                data: None,
                acl: open(),
                flags: create_flags::PERSISTENT_WITH_TTL,
                ttl: 60_000,
            }),
        ),
        (
            s,
            TxnOp::Create(create("/secret", create_flags::PERSISTENT, restricted)),
        ),
    ];
    (1..)
        .zip(ops)
        .map(|(zxid, (session, op))| command(zxid, session, op))
        .collect()
}

/// The base tree; panics if a base command fails (a bug in this file).
pub fn base_tree() -> Tree {
    let mut tree = Tree::new(TreeConfig::default());
    let mut triggers = Triggers::new();
    for cmd in base_commands() {
        if let Err(e) = tree.apply(&cmd, &mut triggers) {
            panic!("building the base tree: {cmd:?}: {e:?}");
        }
    }
    tree
}
