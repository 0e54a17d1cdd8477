//! Which container and TTL nodes are due for removal (ZooKeeper's `ContainerManager`).
//!
//! Deciding is a pure function of the tree and a time the caller supplies; removing is a
//! [`crate::TxnOp::DeleteContainer`] command per node, proposed like any write, so every
//! member removes the same nodes at the same point of the log.

use crate::node::Kind;
use crate::tree::Tree;

impl Tree {
    /// The nodes to reap at wall-clock time `now` (ms), sorted by path:
    /// - containers with no children that once had one (stored cversion > 0; a container
    ///   that never had a child is kept, like ZooKeeper with `maxNeverUsedIntervalMs` 0);
    /// - TTL nodes with no children, not modified for longer than their TTL
    ///   (`now - mtime > ttl`).
    pub fn reapable(&self, now: i64) -> Vec<String> {
        self.reapable_since(now, i64::MIN)
    }

    /// [`Tree::reapable`] for a leader whose quorum has held only since `since` (ms): a TTL
    /// counts from the later of the node's last change and `since`, because nobody could
    /// have changed the node while there was no quorum (`now - max(mtime, since) > ttl`).
    pub fn reapable_since(&self, now: i64, since: i64) -> Vec<String> {
        let mut paths: Vec<String> = self
            .containers
            .iter()
            .chain(self.ttls.iter())
            .filter_map(|&slot| self.node(slot))
            .filter(|n| n.num_children() == 0)
            .filter(|n| match n.kind {
                Kind::Container => n.cversion > 0,
                Kind::Ttl => n.owner != 0 && now.wrapping_sub(n.mtime.max(since)) > n.owner,
                _ => false,
            })
            .map(|n| n.path.to_string())
            .collect();
        paths.sort_unstable();
        paths
    }
}
