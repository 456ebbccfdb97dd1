//! A small non-cryptographic hasher and a hash index over arena-stored items: the decode hot
//! path hashes millions of short keys per second and must not allocate per map entry.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x517c_c1b7_2722_0a95;

/// Multiply-rotate hashing (the rustc "Fx" scheme), with a final mix so that the
/// top bits (used by the std table for control bytes) are well distributed.
#[derive(Default, Clone, Copy)]
pub(super) struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

pub(super) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Hash of a byte string with [`FastHasher`].
#[inline]
pub(super) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FastHasher::default();
    h.write(bytes);
    h.write_usize(bytes.len());
    h.finish()
}

/// Maps a precomputed hash to items stored elsewhere (an arena indexed by `u32`), chaining
/// items whose hashes collide. The caller supplies equality against its own storage.
#[derive(Default, Debug)]
pub(super) struct HashIndex {
    heads: FastMap<u64, u32>,
    /// `next[i]`: the next item with the same hash as item `i`, or `u32::MAX`.
    next: Vec<u32>,
}

impl HashIndex {
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut at = *self.heads.get(&hash)?;
        loop {
            if eq(at) {
                return Some(at);
            }
            at = *self.next.get(at as usize)?;
            if at == u32::MAX {
                return None;
            }
        }
    }

    /// Registers item `index`, which must be the number of items inserted so far.
    pub(super) fn insert(&mut self, hash: u64, index: u32) {
        let prev = self.heads.insert(hash, index).unwrap_or(u32::MAX);
        self.next.push(prev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_chains_collisions() {
        let items = ["a", "b", "c"];
        let mut idx = HashIndex::default();
        for (i, _) in items.iter().enumerate() {
            idx.insert(7, i as u32); // same hash for all
        }
        for (i, it) in items.iter().enumerate() {
            assert_eq!(idx.find(7, |j| items[j as usize] == *it), Some(i as u32));
        }
        assert_eq!(idx.find(7, |_| false), None);
        assert_eq!(idx.find(8, |_| true), None);
        assert_ne!(hash_bytes(b"ab"), hash_bytes(b"ab\0"));
    }
}
