//! Apply-path throughput on a tree of 1,000,000 znodes with 100-byte data: setData,
//! create+delete and getData. Run with `cargo bench -p keepr-tree --bench apply`.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use keepr_tree::{acl::open_acl_unsafe, Command, Tree, TreeConfig, Triggers, TxnOp};
use keepr_wire::{CreateRequest, DeleteRequest, SetDataRequest};

const PARENTS: usize = 1000;
const CHILDREN: usize = 1000;
const SESSION: i64 = 1;

fn path(i: usize) -> String {
    format!("/b{:03}/n{:03}", i / CHILDREN, i % CHILDREN)
}

fn cmd(zxid: i64, op: TxnOp) -> Command {
    Command {
        zxid,
        time: zxid,
        session: SESSION,
        auth: Vec::new(),
        op,
    }
}

fn create(zxid: i64, path: String, data: Bytes) -> Command {
    cmd(
        zxid,
        TxnOp::Create(CreateRequest {
            path,
            data: Some(data),
            acl: open_acl_unsafe(),
            flags: 0,
        }),
    )
}

/// A tree of PARENTS × CHILDREN znodes of 100 bytes, and the next zxid.
fn big_tree() -> (Tree, i64) {
    let mut tree = Tree::new(TreeConfig::default());
    let mut t = Triggers::new();
    let data = Bytes::from(vec![7u8; 100]);
    let mut zxid = 1;
    tree.apply(&cmd(zxid, TxnOp::CreateSession { timeout: 30_000 }), &mut t)
        .unwrap();
    for p in 0..PARENTS {
        zxid += 1;
        tree.apply(&create(zxid, format!("/b{p:03}"), data.clone()), &mut t)
            .unwrap();
    }
    for i in 0..PARENTS * CHILDREN - PARENTS {
        zxid += 1;
        tree.apply(&create(zxid, path(i), data.clone()), &mut t)
            .unwrap();
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
            (x % (PARENTS * CHILDREN - PARENTS) as u64) as usize
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let (mut tree, mut zxid) = big_tree();
    let mut triggers = Triggers::new();
    let data = Bytes::from(vec![9u8; 100]);
    let set_data: Vec<Command> = indexes(1 << 16)
        .into_iter()
        .map(|i| {
            cmd(
                zxid,
                TxnOp::SetData(SetDataRequest {
                    path: path(i),
                    data: Some(data.clone()),
                    version: -1,
                }),
            )
        })
        .collect();

    let mut g = c.benchmark_group("tree_1m_znodes");
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
            let p = format!("/b{:03}/tmp{i}", i % PARENTS);
            let del = cmd(
                zxid,
                TxnOp::Delete(DeleteRequest {
                    path: p.clone(),
                    version: -1,
                }),
            );
            (create(zxid, p, data.clone()), del)
        })
        .collect();
    zxid += 1;
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
    g.finish();
    black_box(zxid);
}

criterion_group! {
    name = apply;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(apply);
