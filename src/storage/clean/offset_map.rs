//! The cleaner's key → latest offset map, in a fixed budget of memory
//! (`log_cleaner_dedupe_buffer_size`), as Kafka's: each key is kept as a
//! 128-bit hash (two SipHash values) next to its offset, in an
//! open-addressing table allocated once. A pass stops mapping when the
//! table is 90% full, so cleaning is bounded by the budget, never by the
//! data. Two keys with the same 128-bit hash would be taken for one key;
//! like Kafka, we accept that chance (about 2^-128 per pair).

use std::hash::{DefaultHasher, Hash, Hasher};

/// Bytes per slot: two u64 hash halves and the offset.
pub(crate) const SLOT_BYTES: usize = 24;
/// Largest share of the slots a pass fills.
const LOAD_FACTOR: f64 = 0.9;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    hash: [u64; 2],
    offset: i64,
}

/// Key hash → latest offset, at most `budget_bytes` of slots.
#[derive(Debug)]
pub struct OffsetMap {
    slots: Vec<Slot>,
    used: usize,
    limit: usize,
}

impl OffsetMap {
    /// A map using at most `budget_bytes` (at least one slot).
    pub fn new(budget_bytes: usize) -> OffsetMap {
        let capacity = (budget_bytes / SLOT_BYTES).max(2);
        OffsetMap {
            slots: vec![Slot::default(); capacity],
            used: 0,
            limit: ((capacity as f64 * LOAD_FACTOR) as usize).max(1),
        }
    }

    /// Keys in the map.
    pub fn len(&self) -> usize {
        self.used
    }
    /// True when no key is mapped.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }
    /// New keys that still fit.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }
    /// True when no new key fits.
    pub fn is_full(&self) -> bool {
        self.used >= self.limit
    }
    /// Empties the map, keeping its memory.
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.used = 0;
    }

    fn hash(key: &[u8]) -> [u64; 2] {
        let half = |seed: u8| {
            let mut h = DefaultHasher::new();
            seed.hash(&mut h);
            key.hash(&mut h);
            h.finish()
        };
        let mut hash = [half(0), half(1)];
        if hash == [0, 0] {
            hash[1] = 1; // [0, 0] marks an empty slot
        }
        hash
    }

    /// The slot holding `hash`, or the empty one where it would go.
    fn find(&self, hash: [u64; 2]) -> usize {
        let n = self.slots.len();
        let mut i = (hash[0] % n as u64) as usize;
        loop {
            let slot = self.slots[i];
            if slot.hash == hash || slot.hash == [0, 0] {
                return i;
            }
            i = (i + 1) % n;
        }
    }

    /// Maps `key` to `offset` (later offsets replace earlier ones). False,
    /// and nothing changed, when the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = Self::hash(key);
        let i = self.find(hash);
        if self.slots[i].hash == [0, 0] {
            if self.is_full() {
                return false;
            }
            self.used += 1;
        }
        self.slots[i] = Slot { hash, offset };
        true
    }

    /// The offset mapped for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let hash = Self::hash(key);
        let slot = self.slots[self.find(hash)];
        (slot.hash == hash).then_some(slot.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_refuses_new_keys_when_full() {
        let mut map = OffsetMap::new(SLOT_BYTES * 10);
        for i in 0..9 {
            assert!(map.put(format!("k{i}").as_bytes(), i));
        }
        assert!(map.is_full());
        assert!(!map.put(b"new", 100));
        assert_eq!(map.get(b"new"), None);
        assert!(map.put(b"k3", 50), "an existing key is always updated");
        assert_eq!(map.get(b"k3"), Some(50));
        assert_eq!(map.get(b"k8"), Some(8));
        assert_eq!(map.len(), 9);
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.get(b"k3"), None);
    }

    #[test]
    fn memory_is_the_budget() {
        let map = OffsetMap::new(16 << 20);
        assert_eq!(std::mem::size_of::<Slot>(), SLOT_BYTES);
        assert!(map.slots.len() * SLOT_BYTES <= 16 << 20);
    }
}
