//! Reads and local watch operations, answered from this member's tree.
//!
//! Each read holds the tree's read lock while it reads, registers the watch it asks for and
//! encodes its reply straight into the connection's output buffer (data is copied once,
//! from the tree into the frame). Registering under the same lock the apply path takes for
//! writing means no change can slip between the read and its watch.

use keepr_tree::{ReadOp, WatchKind, WatchedRead};
use keepr_wire::codes::xid;
use keepr_wire::frame::write_frame;
use keepr_wire::jute::{write_buffer, Jute};
use keepr_wire::multi::MultiResponse;
use keepr_wire::request::{Request, RequestBody};
use keepr_wire::{
    ClientInfo, ErrorCode, ErrorResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetEphemeralsResponse, ReplyHeader, StatResponse, SyncResponse, WatcherEvent, WhoAmIResponse,
};

use super::connection::Connection;
use super::reply;

/// Executes a read-side request and appends its reply (and, for setWatches, the events it
/// fires) to the connection's output.
pub(super) fn execute(conn: &mut Connection, req: &Request) {
    // The identities are taken for the duration of the read (the reply is written through
    // `conn`) and put back: cheaper than cloning them on every read.
    let auth = conn.take_auth();
    execute_as(conn, req, &auth);
    conn.restore_auth(auth);
}

fn execute_as(conn: &mut Connection, req: &Request, auth: &[keepr_wire::Id]) {
    let backend = conn.backend().clone();
    let shared = backend.shared().clone();
    let watcher = conn.watcher_id();
    let xid = req.header.xid;
    let st = shared.tree.read();
    let zxid = st.applied_index() as i64;
    let tree = &st.tree;
    let out_err = |conn: &mut Connection, code: ErrorCode| {
        let h = ReplyHeader {
            xid,
            zxid,
            err: code.code(),
        };
        write_frame(conn.out(), |w| h.write(w));
        conn.count_sent();
    };
    let ok = ReplyHeader { xid, zxid, err: 0 };

    match &req.body {
        RequestBody::Ping => {
            let h = ReplyHeader { xid, zxid, err: 0 };
            write_frame(conn.out(), |w| h.write(w));
            conn.count_sent();
        }
        RequestBody::Exists(r) => {
            let result = tree.exists(&r.path, auth);
            if r.watch {
                watch_after(
                    &shared,
                    watcher,
                    WatchedRead::Exists,
                    &r.path,
                    code_of(&result),
                );
            }
            match result {
                Ok(stat) => {
                    write_frame(conn.out(), |w| {
                        ok.write(w);
                        StatResponse { stat }.write(w);
                    });
                    conn.count_sent();
                }
                Err(code) => out_err(conn, code),
            }
        }
        RequestBody::GetData(r) => {
            let result = tree.get_data(&r.path, auth);
            if r.watch {
                watch_after(
                    &shared,
                    watcher,
                    WatchedRead::GetData,
                    &r.path,
                    code_of(&result),
                );
            }
            match result {
                Ok(d) => {
                    write_frame(conn.out(), |w| {
                        ok.write(w);
                        write_buffer(w, d.data);
                        d.stat.write(w);
                    });
                    conn.count_sent();
                }
                Err(code) => out_err(conn, code),
            }
        }
        RequestBody::GetChildren(r) => {
            let result = tree.get_children(&r.path, auth);
            if r.watch {
                watch_after(
                    &shared,
                    watcher,
                    WatchedRead::GetChildren,
                    &r.path,
                    code_of(&result),
                );
            }
            match result {
                Ok(children) => {
                    write_frame(conn.out(), |w| {
                        ok.write(w);
                        write_names(w, &children);
                    });
                    conn.count_sent();
                }
                Err(code) => out_err(conn, code),
            }
        }
        RequestBody::GetChildren2(r) => {
            let result = tree.get_children2(&r.path, auth);
            if r.watch {
                watch_after(
                    &shared,
                    watcher,
                    WatchedRead::GetChildren,
                    &r.path,
                    code_of(&result),
                );
            }
            match result {
                Ok((children, stat)) => {
                    write_frame(conn.out(), |w| {
                        ok.write(w);
                        write_names(w, &children);
                        stat.write(w);
                    });
                    conn.count_sent();
                }
                Err(code) => out_err(conn, code),
            }
        }
        RequestBody::GetAcl(r) => match tree.get_acl(&r.path, auth) {
            Ok((acl, stat)) => {
                write_frame(conn.out(), |w| {
                    ok.write(w);
                    GetAclResponse { acl, stat }.write(w);
                });
                conn.count_sent();
            }
            Err(code) => out_err(conn, code),
        },
        RequestBody::GetAllChildrenNumber(r) => match tree.get_all_children_number(&r.path, auth) {
            Ok(total_number) => {
                write_frame(conn.out(), |w| {
                    ok.write(w);
                    GetAllChildrenNumberResponse { total_number }.write(w);
                });
                conn.count_sent();
            }
            Err(code) => out_err(conn, code),
        },
        RequestBody::GetEphemerals(r) => {
            let ephemerals = tree.get_ephemerals(conn.session(), &r.prefix_path);
            write_frame(conn.out(), |w| {
                ok.write(w);
                GetEphemeralsResponse { ephemerals }.write(w);
            });
            conn.count_sent();
        }
        RequestBody::MultiRead(m) => {
            let ops: Vec<ReadOp> = m
                .ops
                .iter()
                .map(|o| match o {
                    keepr_wire::multi::MultiReadOp::GetData(r) => ReadOp::GetData(r.clone()),
                    keepr_wire::multi::MultiReadOp::GetChildren(r) => {
                        ReadOp::GetChildren(r.clone())
                    }
                })
                .collect();
            let results = tree.multi_read(&ops, auth);
            let body = MultiResponse {
                results: results.iter().map(reply::multi_read_result).collect(),
            };
            write_frame(conn.out(), |w| {
                ok.write(w);
                body.write(w);
            });
            conn.count_sent();
        }
        RequestBody::WhoAmI => {
            let client_info = auth
                .iter()
                .map(|id| ClientInfo {
                    auth_scheme: id.scheme.clone(),
                    user: match id.scheme.as_str() {
                        // digest ids are user:hash; whoAmI reports the user.
                        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                        _ => id.id.clone(),
                    },
                })
                .collect();
            write_frame(conn.out(), |w| {
                ok.write(w);
                WhoAmIResponse { client_info }.write(w);
            });
            conn.count_sent();
        }
        RequestBody::AddWatch(r) => match WatchKind::from_add_watch_mode(r.mode) {
            Some(kind) => {
                shared
                    .watches
                    .lock()
                    .manager
                    .add_watch(watcher, &r.path, kind);
                write_frame(conn.out(), |w| {
                    ok.write(w);
                    ErrorResponse { err: 0 }.write(w);
                });
                conn.count_sent();
            }
            None => out_err(conn, ErrorCode::BadArguments),
        },
        RequestBody::CheckWatches(r) => {
            let result =
                shared
                    .watches
                    .lock()
                    .manager
                    .check_watches(watcher, &r.path, r.watcher_type);
            match result {
                Ok(()) => {
                    write_frame(conn.out(), |w| ok.write(w));
                    conn.count_sent();
                }
                Err(code) => out_err(conn, code),
            }
        }
        RequestBody::RemoveWatches(r) => {
            let result =
                shared
                    .watches
                    .lock()
                    .manager
                    .remove_watches(watcher, &r.path, r.watcher_type);
            match result {
                Ok(()) => {
                    write_frame(conn.out(), |w| ok.write(w));
                    conn.count_sent();
                }
                Err(code) => out_err(conn, code),
            }
        }
        RequestBody::SetWatches(_) | RequestBody::SetWatches2(_) => {
            let mut events = Vec::new();
            {
                let mut w = shared.watches.lock();
                match &req.body {
                    RequestBody::SetWatches(s) => {
                        w.manager.set_watches(watcher, tree, s, &mut events)
                    }
                    RequestBody::SetWatches2(s) => {
                        w.manager.set_watches2(watcher, tree, s, &mut events)
                    }
                    _ => {}
                }
            }
            // Catch-up events carry no zxid (-1) and precede the reply.
            for e in &events {
                let h = ReplyHeader {
                    xid: xid::NOTIFICATION,
                    zxid: -1,
                    err: 0,
                };
                let body = WatcherEvent {
                    event_type: e.event.code(),
                    state: keepr_wire::codes::keeper_state::SYNC_CONNECTED,
                    path: e.path.to_string(),
                };
                write_frame(conn.out(), |w| {
                    h.write(w);
                    body.write(w);
                });
                conn.count_sent();
            }
            // The Java client numbers setWatches like any request; others use -8. Echo it.
            let h = ReplyHeader { xid, zxid, err: 0 };
            write_frame(conn.out(), |w| h.write(w));
            conn.count_sent();
        }
        RequestBody::Sync(r) => {
            write_frame(conn.out(), |w| {
                ok.write(w);
                SyncResponse {
                    path: r.path.clone(),
                }
                .write(w);
            });
            conn.count_sent();
        }
        _ => {
            // Writes never come here; anything else is answered as unknown.
            tracing::warn!(
                op = req.header.op,
                "request routed to the read path unexpectedly"
            );
            out_err(conn, ErrorCode::Unimplemented);
        }
    }
}

fn code_of<T>(r: &Result<T, ErrorCode>) -> ErrorCode {
    match r {
        Ok(_) => ErrorCode::Ok,
        Err(c) => *c,
    }
}

fn watch_after(
    shared: &crate::state::Shared,
    watcher: keepr_tree::WatcherId,
    read: WatchedRead,
    path: &str,
    code: ErrorCode,
) {
    if read.watch_for(code).is_some() {
        shared
            .watches
            .lock()
            .manager
            .watch_after_read(watcher, read, path, code);
    }
}

/// A vector of child names, written without building owned strings.
fn write_names(w: &mut bytes::BytesMut, names: &[&str]) {
    keepr_wire::jute::write_i32(w, names.len() as i32);
    for n in names {
        keepr_wire::jute::write_string(w, n);
    }
}
