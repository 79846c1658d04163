//! A byte-bounded LRU cache, safe to share between threads.
//!
//! Each entry carries its own weight in bytes (the caller's estimate of what
//! it holds); inserting past the bound evicts least-recently-used entries
//! until it fits. Recency is a tick per access, kept in a `BTreeMap` beside
//! the `HashMap`, so get, insert and evict are all O(log n) under one mutex:
//! entries are small and lookups short, so a single lock is not contended at
//! the rates Stage-B and grep see (measured in `benches/stage_b.py`).
//! A leaf: Stage-B's lookups and the engine's compiled-pattern cache both use it.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;

/// Counters of a cache, since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub bytes: u64,
    pub entries: u64,
    pub capacity_bytes: u64,
}

impl CacheStats {
    pub fn hit_rate(&self) -> f64 {
        let n = self.hits + self.misses;
        if n == 0 {
            0.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

struct Inner<K, V> {
    map: HashMap<K, (V, u64, u64)>,
    order: BTreeMap<u64, K>,
    tick: u64,
    stats: CacheStats,
}

pub struct LruCache<K, V> {
    inner: Mutex<Inner<K, V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> LruCache<K, V> {
    pub fn new(capacity_bytes: u64) -> Self {
        LruCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                stats: CacheStats { capacity_bytes, ..Default::default() },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut g = self.lock();
        let g = &mut *g;
        g.tick += 1;
        let tick = g.tick;
        match g.map.get_mut(key) {
            Some((v, _, t)) => {
                g.order.remove(t);
                *t = tick;
                g.order.insert(tick, key.clone());
                g.stats.hits += 1;
                Some(v.clone())
            }
            None => {
                g.stats.misses += 1;
                None
            }
        }
    }

    /// Inserts `value` weighing `bytes`; an entry over the whole bound is not kept.
    pub fn insert(&self, key: K, value: V, bytes: u64) {
        let mut g = self.lock();
        let g = &mut *g;
        if bytes > g.stats.capacity_bytes {
            return;
        }
        if let Some((_, w, t)) = g.map.remove(&key) {
            g.order.remove(&t);
            g.stats.bytes -= w;
        }
        while g.stats.bytes + bytes > g.stats.capacity_bytes {
            let Some((_, old)) = g.order.pop_first() else {
                break;
            };
            if let Some((_, w, _)) = g.map.remove(&old) {
                g.stats.bytes -= w;
                g.stats.evictions += 1;
            }
        }
        g.tick += 1;
        let tick = g.tick;
        g.order.insert(tick, key.clone());
        g.map.insert(key, (value, bytes, tick));
        g.stats.bytes += bytes;
    }

    pub fn clear(&self) {
        let mut g = self.lock();
        g.map.clear();
        g.order.clear();
        g.stats.bytes = 0;
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats { entries: g.map.len() as u64, ..g.stats }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recent_by_bytes() {
        let c: LruCache<u32, u32> = LruCache::new(100);
        c.insert(1, 10, 40);
        c.insert(2, 20, 40);
        assert_eq!(c.get(&1), Some(10));
        c.insert(3, 30, 40);
        assert_eq!(c.get(&2), None, "2 was least recently used");
        assert_eq!(c.get(&1), Some(10));
        assert_eq!(c.get(&3), Some(30));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions, s.bytes, s.entries), (3, 1, 1, 80, 2));
        c.insert(4, 0, 1000);
        assert_eq!(c.get(&4), None);
    }

    #[test]
    fn threads_share_it() {
        let c = std::sync::Arc::new(LruCache::<u32, u32>::new(1 << 10));
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u32 {
                        if c.get(&(i % 50)).is_none() {
                            c.insert(i % 50, t, 8);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let s = c.stats();
        assert_eq!(s.hits + s.misses, 4000);
        assert!(s.bytes <= 1 << 10);
    }
}
