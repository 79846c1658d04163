//! The compiled-pattern cache `grep` goes through: a byte-bounded LRU of
//! compiled patterns keyed by the pattern and its options, with the time
//! spent compiling the ones that missed.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use super::{GrepOptions, Pattern};
use crate::cache::{CacheStats, LruCache};
use crate::error::Result;

type Key = (String, bool, bool, bool);

pub struct PatternCache {
    patterns: LruCache<Key, Arc<Pattern>>,
    compile_ns: AtomicU64,
    compiles: AtomicU64,
}

impl PatternCache {
    pub fn new(capacity_bytes: u64) -> Self {
        PatternCache {
            patterns: LruCache::new(capacity_bytes),
            compile_ns: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
        }
    }

    /// A compiled pattern, through the cache; compile time is counted.
    pub fn get(&self, pattern: &str, options: GrepOptions) -> Result<Arc<Pattern>> {
        let key = (pattern.to_string(), options.regex, options.ignore_case, options.word);
        if let Some(p) = self.patterns.get(&key) {
            return Ok(p);
        }
        let t = Instant::now();
        let p = Arc::new(Pattern::compile(pattern, options)?);
        self.compile_ns.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
        self.compiles.fetch_add(1, Relaxed);
        // The HIR and plan dominate; their size is not exposed, so weigh by
        // the source with a generous constant.
        self.patterns.insert(key, p.clone(), 4096 + 16 * pattern.len() as u64);
        Ok(p)
    }

    pub fn stats(&self) -> CacheStats {
        self.patterns.stats()
    }

    /// Total compile time (ms) and number of compiles.
    pub fn compile_time(&self) -> (f64, u64) {
        (self.compile_ns.load(Relaxed) as f64 / 1e6, self.compiles.load(Relaxed))
    }

    pub fn clear(&self) {
        self.patterns.clear();
    }
}
