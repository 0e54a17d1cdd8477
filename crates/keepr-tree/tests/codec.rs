//! The Raft-log encoding of commands: exact round trips, a pinned layout, and errors (never
//! panics) on corrupt input.
use bytes::Bytes;
use keepr_tree::{Command, CommandDecodeError, MultiOp, TxnOp, COMMAND_FORMAT};
use keepr_wire::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, Id, SetAclRequest,
    SetDataRequest,
};
use proptest::prelude::*;

fn s() -> impl Strategy<Value = String> {
    prop::string::string_regex("[/a-z0-9é]{0,12}").unwrap()
}
fn buf() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from))
}
fn acls() -> impl Strategy<Value = Vec<Acl>> {
    prop::collection::vec(
        (any::<i32>(), s(), s()).prop_map(|(perms, scheme, id)| Acl {
            perms,
            id: Id { scheme, id },
        }),
        0..3,
    )
}
fn create() -> impl Strategy<Value = CreateRequest> {
    (s(), buf(), acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}
fn ttl() -> impl Strategy<Value = CreateTtlRequest> {
    (create(), any::<i64>()).prop_map(|(r, ttl)| CreateTtlRequest {
        path: r.path,
        data: r.data,
        acl: r.acl,
        flags: r.flags,
        ttl,
    })
}
fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(MultiOp::Create),
        create().prop_map(MultiOp::Create2),
        create().prop_map(MultiOp::CreateContainer),
        ttl().prop_map(MultiOp::CreateTtl),
        (s(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (s(), buf(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        (s(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
    ]
}
fn op() -> impl Strategy<Value = TxnOp> {
    prop_oneof![
        create().prop_map(TxnOp::Create),
        create().prop_map(TxnOp::Create2),
        create().prop_map(TxnOp::CreateContainer),
        ttl().prop_map(TxnOp::CreateTtl),
        (s(), any::<i32>())
            .prop_map(|(path, version)| TxnOp::Delete(DeleteRequest { path, version })),
        (s(), buf(), any::<i32>()).prop_map(|(path, data, version)| TxnOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        (s(), acls(), any::<i32>()).prop_map(|(path, acl, version)| TxnOp::SetAcl(SetAclRequest {
            path,
            acl,
            version
        })),
        (s(), any::<i32>())
            .prop_map(|(path, version)| TxnOp::Check(CheckVersionRequest { path, version })),
        prop::collection::vec(multi_op(), 0..4).prop_map(TxnOp::Multi),
        any::<i32>().prop_map(|timeout| TxnOp::CreateSession {
            timeout,
            passwd: [7; 16]
        }),
        Just(TxnOp::CloseSession),
        any::<u64>().prop_map(|previous| TxnOp::SetSessionOwner { previous }),
        s().prop_map(|path| TxnOp::DeleteContainer { path }),
    ]
}
fn command() -> impl Strategy<Value = Command> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
        prop::collection::vec((s(), s()).prop_map(|(scheme, id)| Id { scheme, id }), 0..3),
        op(),
    )
        .prop_map(|(zxid, time, session, owner, auth, op)| Command {
            zxid,
            time,
            session,
            owner,
            auth,
            op,
        })
}

proptest! {
    #[test]
    fn every_command_round_trips_exactly(c in command()) {
        let bytes = c.to_bytes();
        prop_assert_eq!(Command::decode(bytes.clone()), Ok(c.clone()));
        // And the encoding is a function of the command.
        prop_assert_eq!(Command::decode(bytes).unwrap().to_bytes(), c.to_bytes());
    }

    #[test]
    fn every_strict_prefix_of_an_encoding_is_an_error(c in command()) {
        let bytes = c.to_bytes();
        for len in 0..bytes.len() {
            prop_assert!(Command::decode(bytes.slice(..len)).is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(mut b in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Command::decode(Bytes::from(b.clone()));
        if !b.is_empty() {
            b[0] = COMMAND_FORMAT;
        }
        let _ = Command::decode(Bytes::from(b));
    }
}

#[test]
fn command_layout_is_pinned() {
    // The Raft log keeps these bytes forever: changing them needs a new format version.
    let c = Command {
        zxid: 0x0102,
        time: 3,
        session: -1,
        owner: 0x0a0b,
        auth: vec![Id {
            scheme: "ip".into(),
            id: "1.2.3.4".into(),
        }],
        op: TxnOp::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"xy")),
            version: -1,
        }),
    };
    let expected: Vec<u8> = [
        &[3u8][..],
        &0x0102i64.to_be_bytes(),
        &3i64.to_be_bytes(),
        &(-1i64).to_be_bytes(),
        &0x0a0bi64.to_be_bytes(),
        &1i32.to_be_bytes(),
        &2i32.to_be_bytes(),
        b"ip",
        &7i32.to_be_bytes(),
        b"1.2.3.4",
        &5i32.to_be_bytes(),
        &2i32.to_be_bytes(),
        b"/a",
        &2i32.to_be_bytes(),
        b"xy",
        &(-1i32).to_be_bytes(),
    ]
    .concat();
    assert_eq!(c.to_bytes().to_vec(), expected);

    // Format 3: a session moves only from the owner its resuming member saw.
    let moved = Command {
        zxid: 1,
        time: 2,
        session: 3,
        owner: 4,
        auth: vec![],
        op: TxnOp::SetSessionOwner { previous: 0x0c0d },
    };
    let expected: Vec<u8> = [
        &[3u8][..],
        &1i64.to_be_bytes(),
        &2i64.to_be_bytes(),
        &3i64.to_be_bytes(),
        &4i64.to_be_bytes(),
        &0i32.to_be_bytes(),
        &keepr_tree::SET_SESSION_OWNER.to_be_bytes(),
        &0x0c0di64.to_be_bytes(),
    ]
    .concat();
    assert_eq!(moved.to_bytes().to_vec(), expected);
}

#[test]
fn multi_is_framed_with_multi_headers_like_the_wire() {
    let c = Command {
        zxid: 1,
        time: 1,
        session: 1,
        owner: 0,
        auth: vec![],
        op: TxnOp::Multi(vec![MultiOp::Check(CheckVersionRequest {
            path: "/".into(),
            version: 0,
        })]),
    };
    let b = c.to_bytes();
    let body = &b[1 + 8 * 4 + 4 + 4..];
    let expected: Vec<u8> = [
        &13i32.to_be_bytes()[..],
        &[0],
        &(-1i32).to_be_bytes(),
        &1i32.to_be_bytes(),
        b"/",
        &0i32.to_be_bytes(),
        &(-1i32).to_be_bytes(),
        &[1],
        &(-1i32).to_be_bytes(),
    ]
    .concat();
    assert_eq!(body, &expected[..]);
}

#[test]
fn unknown_format_opcode_and_trailing_bytes_are_errors() {
    let good = Command {
        zxid: 1,
        time: 1,
        session: 1,
        owner: 0,
        auth: vec![],
        op: TxnOp::CloseSession,
    }
    .to_bytes();
    let mut b = good.to_vec();
    b[0] = 1;
    assert_eq!(
        Command::decode(Bytes::from(b)),
        Err(CommandDecodeError::UnsupportedFormat(1))
    );
    assert_eq!(
        Command::decode(Bytes::new()),
        Err(CommandDecodeError::Empty)
    );
    let mut b = good.to_vec();
    let n = b.len();
    b[n - 4..].copy_from_slice(&4i32.to_be_bytes()); // getData is no write
    assert_eq!(
        Command::decode(Bytes::from(b)),
        Err(CommandDecodeError::UnknownOp(4))
    );
    let mut b = good.to_vec();
    b.push(0);
    assert!(matches!(
        Command::decode(Bytes::from(b)),
        Err(CommandDecodeError::Wire(_))
    ));
}

#[test]
fn read_ops_inside_multi_are_rejected() {
    let mut b = Command {
        zxid: 1,
        time: 1,
        session: 1,
        owner: 0,
        auth: vec![],
        op: TxnOp::Multi(vec![]),
    }
    .to_bytes()
    .to_vec();
    let n = b.len();
    // Replace the done header with a getData header.
    b.truncate(n - 9);
    b.extend(4i32.to_be_bytes());
    b.push(0);
    b.extend((-1i32).to_be_bytes());
    assert!(matches!(
        Command::decode(Bytes::from(b)),
        Err(CommandDecodeError::Wire(keepr_wire::DecodeError::Invalid {
            value: 4,
            ..
        }))
    ));
}

#[test]
fn huge_vector_counts_fail_without_allocating() {
    let mut b = vec![COMMAND_FORMAT];
    b.extend([0u8; 24]);
    b.extend(i32::MAX.to_be_bytes());
    assert!(matches!(
        Command::decode(Bytes::from(b)),
        Err(CommandDecodeError::Wire(_))
    ));
}
