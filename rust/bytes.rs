//! Little-endian integers at byte offsets: how the segment and symbol file
//! formats store their numbers. A leaf. Callers check the bounds first (a
//! short slice here is a bug, not damage: both readers validate lengths
//! before they read).

/// The `u32` stored little-endian at `b[at..at + 4]`.
#[inline]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The `u64` stored little-endian at `b[at..at + 8]`.
#[inline]
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u32_at(&b, 1), 0x0504_0302);
        assert_eq!(u64_at(&b, 1), 0x0908_0706_0504_0302);
    }
}
