//! Memory per znode, for comparison with ZooKeeper's ~447 bytes of live heap per 100-byte
//! znode: builds the same tree as `bench/load_znodes.py` (1,000,000 znodes of 100 bytes
//! under /bench, 1000 per parent) and prints the live heap bytes per znode (counted by this
//! binary's allocator) and the resident-set growth per znode (which adds the allocator's own
//! overhead). Ignored by default because it takes a few seconds and ~300 MB:
//!
//!     cargo test --release -p keepr-tree --test bytes_per_znode -- --ignored --nocapture

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use bytes::Bytes;
use keepr_tree::acl::open_acl_unsafe;
use keepr_tree::{Command, Tree, TreeConfig, Triggers, TxnOp};
use keepr_wire::CreateRequest;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
#[ignore = "measurement: run explicitly with --ignored --nocapture"]
fn bytes_per_znode_for_a_million_100_byte_znodes() {
    const N: usize = 1_000_000;
    let (live0, rss0) = (LIVE.load(Relaxed), rss_bytes());
    let mut tree = Tree::new(TreeConfig::default());
    let mut t = Triggers::new();
    let data = Bytes::from(vec![b'x'; 100]);
    let mut zxid = 1;
    let mut apply = |tree: &mut Tree, op| {
        zxid += 1;
        let r = tree.apply(
            &Command {
                zxid,
                time: zxid,
                session: 1,
                owner: 0,
                auth: vec![],
                op,
            },
            &mut t,
        );
        assert!(r.is_ok(), "{r:?}");
    };
    apply(
        &mut tree,
        TxnOp::CreateSession {
            timeout: 30_000,
            passwd: [7; 16],
        },
    );
    let create = |path: String, data: Option<Bytes>| {
        TxnOp::Create(CreateRequest {
            path,
            data,
            acl: open_acl_unsafe(),
            flags: 0,
        })
    };
    apply(&mut tree, create("/bench".into(), None));
    for p in 0..N / 1000 {
        apply(&mut tree, create(format!("/bench/p{p:04}"), None));
        for i in 0..1000 {
            apply(
                &mut tree,
                create(format!("/bench/p{p:04}/n{i:04}"), Some(data.clone())),
            );
        }
    }
    drop(data);
    let live = (LIVE.load(Relaxed) - live0) as f64;
    let rss = rss_bytes().saturating_sub(rss0) as f64;
    let nodes = tree.node_count() as f64;
    println!("znodes: {}", tree.node_count());
    println!("live heap bytes per znode: {:.1}", live / nodes);
    println!("resident bytes per znode:  {:.1}", rss / nodes);
    assert!(live / nodes < 447.0, "must use less memory than ZooKeeper");
    std::hint::black_box(&tree);
}
