//! Posting lists (the sorted ids of the chunks that hold an n-gram) and the
//! id sets queries combine them into (`FileSet`, which holds chunk ids as
//! well as file ids: a segment's live files and live chunks are both one).
//!
//! A list is stored as delta-coded LEB128 varints, as Elias-Fano, or as a
//! bitmap over the segment's chunks, whichever is smallest (varints on a
//! tie, then Elias-Fano): rare grams stay tiny, grams that occur in most
//! chunks cost one bit per chunk, and the many lists between (a few percent
//! of the chunks) cost about `2 + log2(chunks / n)` bits per id. Each kind
//! decodes in one sequential pass. Decoding never trusts the bytes: a
//! damaged list yields fewer ids, never a panic or an id past the segment.
//!
//! Elias-Fano (`KIND_EF`): a byte `l`, the id count as a varint, the low
//! `l` bits of every id packed little-endian (padded to a byte), then the
//! high parts in unary: id `i` sets bit `(id >> l) + i`.

pub const KIND_VARINT: u8 = 0;
pub const KIND_BITMAP: u8 = 1;
pub const KIND_EF: u8 = 2;

/// Appends the encoding of `ids` (strictly increasing, all `< nfiles`, the
/// size of the id space: chunks for a posting list) to `out` and returns
/// which kind was written.
pub fn encode(ids: &[u32], nfiles: u32, out: &mut Vec<u8>) -> u8 {
    let start = out.len();
    let bitmap_len = bitmap_bytes(nfiles);
    let (ef_low, ef_len) = ef_best(ids.len(), nfiles);
    let cap = bitmap_len.min(ef_len);
    let mut prev: Option<u32> = None;
    for &id in ids {
        let delta = match prev {
            None => id,
            Some(p) => id - p,
        };
        prev = Some(id);
        write_varint(out, delta);
        if out.len() - start > cap {
            out.truncate(start);
            if ef_len < bitmap_len {
                encode_ef(ids, nfiles, ef_low, out);
                return KIND_EF;
            }
            out.resize(start + bitmap_len, 0);
            for &id in ids {
                out[start + (id as usize >> 3)] |= 1 << (id & 7);
            }
            return KIND_BITMAP;
        }
    }
    KIND_VARINT
}

/// The Elias-Fano bytes of `n` ids below `universe` with `low` low bits.
fn ef_bytes(n: usize, universe: u32, low: u32) -> usize {
    1 + varint_len(n as u32) + (n * low as usize).div_ceil(8) + (n + (universe >> low) as usize + 1).div_ceil(8)
}

/// The low-bit count that makes the Elias-Fano form of `n` ids below
/// `universe` smallest (the textbook `log2(universe / n)` or a neighbour),
/// and that size.
fn ef_best(n: usize, universe: u32) -> (u32, usize) {
    let guess = if n == 0 || universe as usize <= n { 0 } else { (universe as usize / n).ilog2() };
    let mut best = (0, usize::MAX);
    for low in guess.saturating_sub(1)..=(guess + 1).min(31) {
        let len = ef_bytes(n, universe, low);
        if len < best.1 {
            best = (low, len);
        }
    }
    best
}

fn encode_ef(ids: &[u32], universe: u32, low: u32, out: &mut Vec<u8>) {
    out.push(low as u8);
    write_varint(out, ids.len() as u32);
    let (mut acc, mut nbits) = (0u64, 0u32);
    let mask = (1u64 << low) - 1;
    for &id in ids {
        acc |= (u64::from(id) & mask) << nbits;
        nbits += low;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
    let high_at = out.len();
    out.resize(high_at + (ids.len() + (universe >> low) as usize + 1).div_ceil(8), 0);
    for (i, &id) in ids.iter().enumerate() {
        let bit = (id >> low) as usize + i;
        out[high_at + bit / 8] |= 1 << (bit % 8);
    }
}

fn varint_len(v: u32) -> usize {
    (32 - (v | 1).leading_zeros()).div_ceil(7) as usize
}

pub fn bitmap_bytes(nfiles: u32) -> usize {
    (nfiles as usize).div_ceil(8)
}

fn write_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `bytes[*i]` (None when cut short or too long).
fn read_varint(bytes: &[u8], i: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let &b = bytes.get(*i)?;
        *i += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 35 {
            return None;
        }
    }
}

/// Adds the ids of an Elias-Fano list to `set` (stops at the first sign of damage).
fn decode_ef(bytes: &[u8], set: &mut FileSet) {
    let Some(&low) = bytes.first() else { return };
    let low = u32::from(low);
    let mut i = 1;
    let Some(count) = read_varint(bytes, &mut i) else { return };
    if low > 31 {
        return;
    }
    let Some(high) = (count as usize).checked_mul(low as usize).and_then(|b| bytes.get(i + b.div_ceil(8)..)) else {
        return;
    };
    // The low bits of id `k`: one 8-byte load (the high part follows the
    // low bits, so only a list's last few ids take the padded path).
    let lows = &bytes[i..];
    let mask = (1u64 << low) - 1;
    let low_bits = |k: usize| -> u64 {
        let bit = k * low as usize;
        let at = bit / 8;
        let word = match lows.get(at..at + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => {
                let mut buf = [0u8; 8];
                let tail = lows.get(at..).unwrap_or(&[]);
                buf[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(buf)
            }
        };
        (word >> (bit % 8)) & mask
    };
    let n = u64::from(set.len);
    let mut k = 0usize;
    for (wi, chunk) in high.chunks(8).enumerate() {
        let mut w = match chunk.try_into() {
            Ok(b) => u64::from_le_bytes(b),
            Err(_) => {
                let mut buf = [0u8; 8];
                buf[..chunk.len()].copy_from_slice(chunk);
                u64::from_le_bytes(buf)
            }
        };
        while w != 0 {
            if k as u64 == count {
                return;
            }
            let bit = (wi * 64) as u64 + u64::from(w.trailing_zeros());
            w &= w - 1;
            let id = ((bit - k as u64) << low) | low_bits(k);
            if id >= n {
                return;
            }
            set.insert(id as u32);
            k += 1;
        }
    }
}

/// Adds the ids of one stored list to `set`.
pub fn decode_into(kind: u8, bytes: &[u8], set: &mut FileSet) {
    let n = set.len;
    match kind {
        KIND_EF => decode_ef(bytes, set),
        KIND_BITMAP => {
            for (word, chunk) in set.words.iter_mut().zip(bytes.chunks(8)) {
                let mut buf = [0u8; 8];
                buf[..chunk.len()].copy_from_slice(chunk);
                *word |= u64::from_le_bytes(buf);
            }
            set.clear_tail();
        }
        _ => {
            let mut id: u64 = 0;
            let mut first = true;
            let mut i = 0;
            while i < bytes.len() {
                let mut v: u64 = 0;
                let mut shift = 0;
                loop {
                    let Some(&b) = bytes.get(i) else { return };
                    i += 1;
                    v |= u64::from(b & 0x7f) << shift;
                    if b & 0x80 == 0 {
                        break;
                    }
                    shift += 7;
                    if shift > 35 {
                        return;
                    }
                }
                id = if first { v } else { id + v };
                first = false;
                if id >= n as u64 {
                    return;
                }
                set.insert(id as u32);
            }
        }
    }
}

/// How many ids a list of `kind` holds, without decoding it (at most
/// `universe`): what an ids count says cheaply, for choosing what to decode.
/// Damaged bytes give a count that may be off, never a panic.
pub fn count(kind: u8, bytes: &[u8], universe: u32) -> u64 {
    let n = match kind {
        KIND_EF => {
            let mut i = 1;
            read_varint(bytes, &mut i).unwrap_or(0)
        }
        KIND_BITMAP => {
            // A word at a time: byte by byte, the popcount (no POPCNT in the
            // baseline x86-64 target) took two bytes a step, and the union
            // route's choice of terms counts hundreds of such lists.
            let mut words = bytes.chunks_exact(8);
            let whole: u64 = words
                .by_ref()
                .map(|w| u64::from(u64::from_le_bytes(w.try_into().expect("8 bytes")).count_ones()))
                .sum();
            whole + words.remainder().iter().map(|b| u64::from(b.count_ones())).sum::<u64>()
        }
        // A varint ends at each byte without the continuation bit.
        _ => bytes.iter().filter(|&&b| b & 0x80 == 0).count() as u64,
    };
    n.min(u64::from(universe))
}

/// A set of file ids within one segment, as a bitset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSet {
    words: Vec<u64>,
    len: u32,
}

impl FileSet {
    pub fn empty(len: u32) -> Self {
        FileSet { words: vec![0; (len as usize).div_ceil(64)], len }
    }

    pub fn full(len: u32) -> Self {
        let mut s = FileSet { words: vec![u64::MAX; (len as usize).div_ceil(64)], len };
        s.clear_tail();
        s
    }

    fn clear_tail(&mut self) {
        let rem = self.len % 64;
        if rem != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    pub fn insert(&mut self, id: u32) {
        self.words[id as usize / 64] |= 1 << (id % 64);
    }

    pub fn contains(&self, id: u32) -> bool {
        id < self.len && self.words[id as usize / 64] & (1 << (id % 64)) != 0
    }

    pub fn and_with(&mut self, other: &FileSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= *b;
        }
    }

    pub fn or_with(&mut self, other: &FileSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= *b;
        }
    }

    pub fn and_not(&mut self, other: &FileSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !*b;
        }
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The bits, 64 ids a word (id `i` is bit `i % 64` of word `i / 64`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count read without decoding is the decoded list's length, for
    /// every kind a list is stored as (sparse, dense, in between; a
    /// bitmap's tail shorter than a word).
    #[test]
    fn count_is_the_decoded_length() {
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let mut kinds = std::collections::HashSet::new();
        for n in [1u32, 7, 63, 64, 65, 200, 1000, 4099, 30_001] {
            for per_mille in [0u64, 1, 10, 100, 400, 900, 1000] {
                let ids: Vec<u32> = (0..n).filter(|_| next(1000) < per_mille).collect();
                let mut buf = Vec::new();
                let kind = encode(&ids, n, &mut buf);
                kinds.insert(kind);
                let mut set = FileSet::empty(n);
                decode_into(kind, &buf, &mut set);
                assert_eq!(set.count(), ids.len());
                assert_eq!(count(kind, &buf, n), ids.len() as u64, "kind {kind}, n {n}, {per_mille}");
            }
        }
        assert!(kinds.contains(&KIND_BITMAP) && kinds.len() >= 2, "{kinds:?}");
    }

    fn roundtrip(ids: &[u32], n: u32) -> Vec<u32> {
        let mut buf = Vec::new();
        let kind = encode(ids, n, &mut buf);
        let mut set = FileSet::empty(n);
        decode_into(kind, &buf, &mut set);
        set.iter().collect()
    }

    #[test]
    fn sparse_lists_use_varints_and_roundtrip() {
        let ids = [0, 5, 300, 70_000, 99_999];
        let mut buf = Vec::new();
        assert_eq!(encode(&ids, 100_000, &mut buf), KIND_VARINT);
        assert_eq!(roundtrip(&ids, 100_000), ids);
    }

    #[test]
    fn dense_lists_use_bitmaps_and_roundtrip() {
        let ids: Vec<u32> = (0..1000).filter(|i| i % 3 != 0).collect();
        let mut buf = Vec::new();
        assert_eq!(encode(&ids, 1000, &mut buf), KIND_BITMAP);
        assert_eq!(buf.len(), 125);
        assert_eq!(roundtrip(&ids, 1000), ids);
    }

    #[test]
    fn middling_lists_use_elias_fano_and_roundtrip() {
        // One chunk in 20: varints cost a byte per id, Elias-Fano ~6.3 bits.
        let ids: Vec<u32> = (0..100_000).filter(|i| i % 20 == 7).collect();
        let mut buf = Vec::new();
        assert_eq!(encode(&ids, 100_000, &mut buf), KIND_EF);
        assert!(buf.len() < ids.len() * 7 / 8 && buf.len() < bitmap_bytes(100_000), "{} bytes", buf.len());
        assert_eq!(roundtrip(&ids, 100_000), ids);
    }

    /// The property: any strictly increasing list round-trips, whatever kind
    /// is chosen, and the kind chosen is the smallest of the three.
    #[test]
    fn every_list_roundtrips_in_the_smallest_kind() {
        use crate::test_rng::Rng;
        let mut rng = Rng::new(0x0e1a_5fa0);
        let mut kinds = [0usize; 3];
        for _ in 0..3000 {
            let n = 1 + rng.below(70_000) as u32;
            // Densities from a handful of ids to nearly all, some clustered.
            let keep = 1u64 << rng.below(11);
            let run = rng.below(3) == 0;
            let mut ids = Vec::new();
            let mut id = 0u32;
            while id < n {
                if rng.next() % 1024 < keep {
                    ids.push(id);
                }
                id += if run && rng.below(4) == 0 { 1 + rng.below(500) as u32 } else { 1 };
            }
            if ids.is_empty() {
                continue;
            }
            let mut buf = Vec::new();
            let kind = encode(&ids, n, &mut buf);
            kinds[kind as usize] += 1;
            assert_eq!(roundtrip(&ids, n), ids, "kind {kind}, {} ids below {n}", ids.len());
            let mut v = Vec::new();
            let varint = {
                let mut prev = 0;
                for (i, &id) in ids.iter().enumerate() {
                    write_varint(&mut v, if i == 0 { id } else { id - prev });
                    prev = id;
                }
                v.len()
            };
            let mut e = Vec::new();
            let (low, ef_len) = ef_best(ids.len(), n);
            encode_ef(&ids, n, low, &mut e);
            assert_eq!(e.len(), ef_len, "the size estimate is exact");
            assert_eq!(buf.len(), varint.min(ef_len).min(bitmap_bytes(n)), "kind {kind}");
        }
        assert!(kinds.iter().all(|&k| k > 100), "every kind is exercised: {kinds:?}");
    }

    #[test]
    fn damaged_elias_fano_never_yields_ids_past_the_segment() {
        use crate::test_rng::Rng;
        let ids: Vec<u32> = (0..5000).filter(|i| i % 13 == 0).collect();
        let mut good = Vec::new();
        assert_eq!(encode(&ids, 5000, &mut good), KIND_EF);
        let mut rng = Rng::new(99);
        for _ in 0..2000 {
            let mut b = good.clone();
            match rng.below(3) {
                0 => b.truncate(rng.below(b.len())),
                1 => {
                    let at = rng.below(b.len());
                    b[at] ^= 1 << rng.below(8);
                }
                _ => b[0] = rng.below(256) as u8,
            }
            let mut set = FileSet::empty(5000);
            decode_into(KIND_EF, &b, &mut set);
            assert!(set.iter().all(|id| id < 5000));
        }
    }

    #[test]
    fn damaged_bytes_never_yield_ids_past_the_segment() {
        let mut set = FileSet::empty(10);
        decode_into(KIND_VARINT, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x7f], &mut set);
        assert!(set.iter().all(|id| id < 10));
        let mut set = FileSet::empty(10);
        decode_into(KIND_BITMAP, &[0xff, 0xff, 0xff], &mut set);
        assert_eq!(set.count(), 10);
    }

    #[test]
    fn set_algebra() {
        let mut a = FileSet::full(70);
        assert_eq!(a.count(), 70);
        let mut b = FileSet::empty(70);
        b.insert(3);
        b.insert(69);
        a.and_with(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![3, 69]);
        a.and_not(&b);
        assert!(a.is_empty());
    }
}
