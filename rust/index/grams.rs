//! Trigram keys: three bytes packed into 24 bits.
//!
//! Every gram is stored ASCII-case-folded, which serves case-insensitive
//! queries. A gram that holds an ASCII capital is also stored as it is: the
//! two key sets cannot collide (folded keys hold no capitals), and the exact
//! ones let a case-sensitive query such as `PM_RESUME` skip the many chunks
//! that only hold `pm_resume`.
//!
//! Grams that contain a newline are never stored: no match verified by lens
//! crosses a line end, so such grams could never narrow a query.

/// The fold applied to every byte of a gram, in the index and in queries.
#[inline]
pub fn fold(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

#[inline]
pub fn pack(a: u8, b: u8, c: u8) -> u32 {
    (u32::from(fold(a)) << 16) | (u32::from(fold(b)) << 8) | u32::from(fold(c))
}

/// Calls `f` with every storable gram of `bytes`, duplicates included.
#[inline]
pub fn for_each_gram(bytes: &[u8], mut f: impl FnMut(u32)) {
    if bytes.len() < 3 {
        return;
    }
    let mut g = (u32::from(fold(bytes[0])) << 8) | u32::from(fold(bytes[1]));
    // Distance back to the last newline seen, capped at 3: a gram is stored
    // only when its three bytes hold none.
    let mut since_nl: u32 = match (bytes[0], bytes[1]) {
        (_, b'\n') => 0,
        (b'\n', _) => 1,
        _ => 2,
    };
    for &b in &bytes[2..] {
        g = ((g << 8) | u32::from(fold(b))) & 0xff_ffff;
        if b == b'\n' {
            since_nl = 0;
        } else {
            since_nl = (since_nl + 1).min(3);
            if since_nl >= 3 {
                f(g);
            }
        }
    }
}

/// Calls `f` with every gram of `bytes` that holds an ASCII capital, as it
/// is (not folded), duplicates included.
#[inline]
pub fn for_each_case_gram(bytes: &[u8], mut f: impl FnMut(u32)) {
    for w in bytes.windows(3) {
        if w.iter().any(u8::is_ascii_uppercase) && !w.contains(&b'\n') {
            f((u32::from(w[0]) << 16) | (u32::from(w[1]) << 8) | u32::from(w[2]));
        }
    }
}

/// The distinct grams of `bytes` (folded ones, then exact-case ones), in
/// first-seen order. `seen` is a scratch
/// bitset of 2^24 bits, all clear on entry and on return.
pub fn distinct_grams(bytes: &[u8], seen: &mut [u64], out: &mut Vec<u32>) {
    out.clear();
    let mut add = |g: u32| {
        let (w, bit) = ((g >> 6) as usize, 1u64 << (g & 63));
        if seen[w] & bit == 0 {
            seen[w] |= bit;
            out.push(g);
        }
    };
    for_each_gram(bytes, &mut add);
    for_each_case_gram(bytes, &mut add);
    for &g in out.iter() {
        seen[(g >> 6) as usize] &= !(1u64 << (g & 63));
    }
}

pub fn scratch() -> Vec<u64> {
    vec![0u64; (1 << 24) / 64]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(s: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        for_each_gram(s, |g| v.push(g));
        v
    }

    #[test]
    fn grams_skip_newlines_and_fold_case() {
        assert_eq!(grams(b"AbC"), vec![pack(b'a', b'b', b'c')]);
        assert_eq!(grams(b"ab\ncd"), Vec::<u32>::new());
        assert_eq!(grams(b"ab\ncde"), vec![pack(b'c', b'd', b'e')]);
        assert_eq!(grams(b"\nabc"), vec![pack(b'a', b'b', b'c')]);
        assert_eq!(grams(b"a\nbcd"), vec![pack(b'b', b'c', b'd')]);
        assert_eq!(grams(b"ab"), Vec::<u32>::new());
    }

    #[test]
    fn distinct_grams_dedups_and_leaves_scratch_clear() {
        let mut seen = scratch();
        let mut out = Vec::new();
        distinct_grams(b"abcabcabc", &mut seen, &mut out);
        assert_eq!(out.len(), 3);
        assert!(seen.iter().all(|&w| w == 0));
        // Folded abc, bca, cab, plus the exact cAB, ABC (capitals kept).
        distinct_grams(b"abcABC", &mut seen, &mut out);
        assert_eq!(out.len(), 3 + 3);
        assert!(out.contains(&((u32::from(b'A') << 16) | (u32::from(b'B') << 8) | u32::from(b'C'))));
        assert!(seen.iter().all(|&w| w == 0));
    }
}
