//! Apply-path throughput on a tree of 1,000,000 znodes with 100-byte data (the shape of
//! `bench/load_znodes.py`: /bench/pPPPP/nNNNN), nodes picked at random: setData,
//! create+delete and getData, watch delivery with and without watches, snapshot encoding.
//! Run with `cargo bench -p keepr-tree --bench apply`.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{Command, Tree, TreeConfig, Triggers, TxnOp, WatchKind, WatchManager};
use keepr_wire::{CreateRequest, DeleteRequest, SetDataRequest};

const PARENTS: usize = 1000;
const CHILDREN: usize = 1000;
const SESSION: i64 = 1;

fn path(i: usize) -> String {
    format!("/bench/p{:04}/n{:04}", i / CHILDREN, i % CHILDREN)
}

fn cmd(zxid: i64, op: TxnOp) -> Command {
    Command {
        zxid,
        time: zxid,
        session: SESSION,
        owner: 0,
        auth: Vec::new(),
        op,
    }
}

fn create(zxid: i64, path: String, data: Option<Bytes>) -> Command {
    let acl = open_acl_unsafe();
    let flags = 0;
    cmd(
        zxid,
        TxnOp::Create(CreateRequest {
            path,
            data,
            acl,
            flags,
        }),
    )
}

/// A tree of PARENTS × CHILDREN znodes of 100 bytes, and the next zxid.
fn big_tree() -> (Tree, i64) {
    let mut tree = Tree::new(TreeConfig::default());
    let mut t = Triggers::new();
    let data = Bytes::from(vec![7u8; 100]);
    let mut zxid = 1;
    let session = cmd(
        zxid,
        TxnOp::CreateSession {
            timeout: 30_000,
            passwd: [7; 16],
        },
    );
    tree.apply(&session, &mut t).unwrap();
    zxid += 1;
    tree.apply(&create(zxid, "/bench".into(), None), &mut t)
        .unwrap();
    for p in 0..PARENTS {
        zxid += 1;
        let parent = create(zxid, format!("/bench/p{p:04}"), None);
        tree.apply(&parent, &mut t).unwrap();
        for c in 0..CHILDREN {
            zxid += 1;
            let child = create(zxid, path(p * CHILDREN + c), Some(data.clone()));
            tree.apply(&child, &mut t).unwrap();
        }
    }
    (tree, zxid + 1)
}

/// Deterministic pseudo-random node indexes (xorshift), so runs are comparable.
fn indexes(n: usize) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (PARENTS * CHILDREN) as u64) as usize
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let (mut tree, zxid) = big_tree();
    let mut triggers = Triggers::new();
    let data = Bytes::from(vec![9u8; 100]);
    let set_data: Vec<Command> = indexes(1 << 16)
        .into_iter()
        .map(|i| {
            let req = SetDataRequest {
                path: path(i),
                data: Some(data.clone()),
                version: -1,
            };
            cmd(zxid, TxnOp::SetData(req))
        })
        .collect();

    let checks: Vec<Command> = indexes(1 << 16)
        .into_iter()
        .map(|i| {
            cmd(
                zxid,
                TxnOp::Check(keepr_wire::CheckVersionRequest {
                    path: path(i),
                    version: -1,
                }),
            )
        })
        .collect();
    let mut g = c.benchmark_group("tree_1m_znodes");
    let mut k = 0usize;
    g.bench_function("check", |b| {
        b.iter(|| {
            let r = tree.apply(&checks[k & 0xffff], &mut triggers);
            k += 1;
            black_box(r)
        })
    });
    g.throughput(Throughput::Elements(1));
    let mut k = 0usize;
    g.bench_function("set_data", |b| {
        b.iter(|| {
            let r = tree.apply(&set_data[k & 0xffff], &mut triggers);
            k += 1;
            black_box(r)
        })
    });

    let creates: Vec<(Command, Command)> = (0..1 << 12)
        .map(|i| {
            let p = format!("/bench/p{:04}/tmp{i}", i % PARENTS);
            let del = DeleteRequest {
                path: p.clone(),
                version: -1,
            };
            (
                create(zxid, p, Some(data.clone())),
                cmd(zxid, TxnOp::Delete(del)),
            )
        })
        .collect();
    let mut k = 0usize;
    g.throughput(Throughput::Elements(2));
    g.bench_function("create_then_delete", |b| {
        b.iter(|| {
            let (c, d) = &creates[k & 0xfff];
            k += 1;
            black_box(tree.apply(c, &mut triggers)).ok();
            black_box(tree.apply(d, &mut triggers)).ok();
        })
    });

    let reads: Vec<String> = indexes(1 << 16).into_iter().map(path).collect();
    let mut k = 0usize;
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_data", |b| {
        b.iter(|| {
            let r = tree
                .get_data(&reads[k & 0xffff], &[])
                .map(|d| d.stat.version);
            k += 1;
            black_box(r)
        })
    });

    // Watch delivery for one setData's triggers: with no watch at all (the fast path) and
    // with 100,000 one-shot watches on other nodes (one hash probe per trigger).
    let mut wm = WatchManager::new();
    let mut events = Vec::new();
    tree.apply(&set_data[0], &mut triggers).ok();
    g.bench_function("watch_process_no_watches", |b| {
        b.iter(|| {
            wm.process(&triggers, &mut events);
            black_box(events.len())
        })
    });
    for i in 0..100_000 {
        wm.add_watch(i as u64, &path(PARENTS * CHILDREN - 1 - i), WatchKind::Data);
    }
    g.bench_function("watch_process_unwatched_path", |b| {
        b.iter(|| {
            wm.process(&triggers, &mut events);
            black_box(events.len())
        })
    });

    g.bench_function("snapshot_encode", |b| {
        b.iter_batched(
            Vec::new,
            |mut out: Vec<u8>| {
                tree.encode_snapshot(&mut out).ok();
                out.len()
            },
            BatchSize::PerIteration,
        )
    });
    let mut snapshot = Vec::new();
    tree.encode_snapshot(&mut snapshot).ok();
    g.bench_function("snapshot_decode", |b| {
        b.iter(|| {
            let t = Tree::decode_snapshot(&snapshot[..], TreeConfig::default());
            black_box(t.map(|t| t.node_count()).ok())
        })
    });
    g.finish();
}

criterion_group! {
    name = apply;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(apply);
