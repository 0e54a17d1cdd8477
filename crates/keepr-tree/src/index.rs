//! The path → slot index.
//!
//! Why not a general hash map: a Swiss table keeps its control bytes and its entries in two
//! places, so a lookup in a large tree pays two cache misses before it even reaches the
//! node, and every apply and read starts with a lookup. This table is one array of 8-byte
//! entries, each holding the upper 32 bits of the path's hash and the node's slot, probed
//! linearly: a lookup costs one miss for the entry, whose hash bits nearly always rule out
//! a wrong node, then one for the node. Since an entry carries its own hash bits, growing
//! and deleting (by backward shift, no tombstones) never need the paths again.
//!
//! The hash is seeded per process, so probe order differs between members; nothing
//! iterates the table, so that never reaches a result or a snapshot.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

const EMPTY: u64 = u64::MAX;
/// Grow past 3/4 full: linear probing stays short below that.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;

#[derive(Debug, Clone)]
pub(crate) struct PathIndex {
    entries: Vec<u64>,
    len: usize,
    hasher: DefaultHashBuilder,
}

fn entry(h: u32, slot: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(slot)
}

impl Default for PathIndex {
    fn default() -> Self {
        PathIndex {
            entries: vec![EMPTY; 16],
            len: 0,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl PathIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, path: &str) -> u32 {
        (self.hasher.hash_one(path) >> 32) as u32
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The slot stored for `path`: among entries with the path's hash bits, the first
    /// for which `is_path(slot)` holds.
    pub fn find(&self, path: &str, mut is_path: impl FnMut(u32) -> bool) -> Option<u32> {
        let h = self.hash(path);
        let mask = self.mask();
        let mut i = h as usize & mask;
        loop {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if (e >> 32) as u32 == h && is_path(e as u32) {
                return Some(e as u32);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `path` → `slot`; the caller makes sure `path` is not present. Slot `u32::MAX`
    /// is reserved.
    pub fn insert(&mut self, path: &str, slot: u32) {
        if (self.len + 1) * MAX_LOAD_DEN > self.entries.len() * MAX_LOAD_NUM {
            self.grow();
        }
        let h = self.hash(path);
        self.place(entry(h, slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = (e >> 32) as usize & mask;
        while let Some(slot) = self.entries.get_mut(i) {
            if *slot == EMPTY {
                *slot = e;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bigger = vec![EMPTY; self.entries.len() * 2];
        let old = std::mem::replace(&mut self.entries, bigger);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Removes the entry `path` → `slot`; false if there was none.
    pub fn remove(&mut self, path: &str, slot: u32) -> bool {
        let target = entry(self.hash(path), slot);
        let mask = self.mask();
        let mut i = (target >> 32) as usize & mask;
        loop {
            match self.entries.get(i) {
                Some(&e) if e == target => break,
                Some(&e) if e != EMPTY => i = (i + 1) & mask,
                _ => return false,
            }
        }
        // Backward-shift deletion: pull later entries of the run back over the hole when
        // their home position allows it, so no probe sequence is ever cut short.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = match self.entries.get(j) {
                Some(&e) if e != EMPTY => e,
                _ => break,
            };
            let home = (e >> 32) as usize & mask;
            // Move e into the hole if its home is not cyclically within (hole, j].
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                if let Some(h) = self.entries.get_mut(hole) {
                    *h = e;
                }
                hole = j;
            }
        }
        if let Some(h) = self.entries.get_mut(hole) {
            *h = EMPTY;
        }
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn finds_inserted_paths_and_forgets_removed_ones() {
        let mut ix = PathIndex::default();
        let paths: Vec<String> = (0..1000).map(|i| format!("/n{i}")).collect();
        for (i, p) in paths.iter().enumerate() {
            ix.insert(p, i as u32);
        }
        assert_eq!(ix.len(), 1000);
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(ix.find(p, |s| paths[s as usize] == *p), Some(i as u32));
        }
        for (i, p) in paths.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            assert!(ix.remove(p, i as u32));
            assert!(!ix.remove(p, i as u32));
        }
        for (i, p) in paths.iter().enumerate() {
            let found = ix.find(p, |s| paths[s as usize] == *p);
            assert_eq!(found, (i % 3 != 0).then_some(i as u32), "{p}");
        }
    }

    #[test]
    fn table_stays_under_three_quarters_full() {
        let mut ix = PathIndex::default();
        for i in 0..10_000u32 {
            ix.insert(&format!("/{i}"), i);
            assert!(ix.len() * 4 <= ix.entries.len() * 3);
        }
    }

    proptest! {
        #[test]
        fn index_behaves_like_a_map(ops in prop::collection::vec((0u8..40, any::<bool>()), 0..400)) {
            let mut ix = PathIndex::default();
            let mut model: HashMap<String, u32> = HashMap::new();
            let mut next = 0u32;
            for (k, insert) in ops {
                let p = format!("/k{k}");
                if insert && !model.contains_key(&p) {
                    ix.insert(&p, next);
                    model.insert(p.clone(), next);
                    next += 1;
                } else if !insert {
                    let expected = model.remove(&p);
                    prop_assert_eq!(ix.remove(&p, expected.unwrap_or(u32::MAX - 1)), expected.is_some());
                }
                let names: HashMap<u32, String> = model.iter().map(|(p, &s)| (s, p.clone())).collect();
                for k in 0..40u8 {
                    let p = format!("/k{k}");
                    let got = ix.find(&p, |s| names.get(&s) == Some(&p));
                    prop_assert_eq!(got, model.get(&p).copied());
                }
                prop_assert_eq!(ix.len(), model.len());
            }
        }
    }
}
