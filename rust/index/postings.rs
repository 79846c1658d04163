//! Posting lists (the sorted ids of the chunks that hold an n-gram) and the
//! id sets queries combine them into (`FileSet`, which holds chunk ids as
//! well as file ids: a segment's live files and live chunks are both one).
//!
//! A list is stored as delta-coded LEB128 varints or as a bitmap over the
//! segment's chunks, whichever is smaller: rare grams stay tiny and grams
//! that occur in most chunks cost one bit per chunk. Decoding never trusts the bytes:
//! a damaged list yields fewer ids, never a panic or an id past the segment.

pub const KIND_VARINT: u8 = 0;
pub const KIND_BITMAP: u8 = 1;

/// Appends the encoding of `ids` (strictly increasing, all `< nfiles`, the
/// size of the id space: chunks for a posting list) to `out` and returns
/// which kind was written.
pub fn encode(ids: &[u32], nfiles: u32, out: &mut Vec<u8>) -> u8 {
    let start = out.len();
    let bitmap_len = bitmap_bytes(nfiles);
    let mut prev: Option<u32> = None;
    for &id in ids {
        let delta = match prev {
            None => id,
            Some(p) => id - p,
        };
        prev = Some(id);
        write_varint(out, delta);
        if out.len() - start > bitmap_len {
            out.truncate(start);
            out.resize(start + bitmap_len, 0);
            for &id in ids {
                out[start + (id as usize >> 3)] |= 1 << (id & 7);
            }
            return KIND_BITMAP;
        }
    }
    KIND_VARINT
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

/// Adds the ids of one stored list to `set`.
pub fn decode_into(kind: u8, bytes: &[u8], set: &mut FileSet) {
    let n = set.len;
    match kind {
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
