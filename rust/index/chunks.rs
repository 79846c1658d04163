//! Chunks: the unit the n-gram postings point at. A file is cut into runs of
//! whole lines of about `CHUNK_BYTES` each, so a gram lookup narrows a query
//! to a few kilobytes of text rather than to whole (sometimes huge) files,
//! and grams of one identifier must meet within one chunk to admit it.
//!
//! The cut is a pure function of the bytes, so the reference scanner can
//! reproduce every statistic the index keeps per chunk.

/// Target chunk size; a chunk ends at the first line end at or after it.
pub const CHUNK_BYTES: usize = 8 << 10;

/// The chunks of `content` as (start, len): whole lines, back to back,
/// covering every byte. An empty file has none.
pub fn chunk_bounds(content: &[u8]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(content.len() / CHUNK_BYTES + 1);
    let mut start = 0usize;
    while start < content.len() {
        let target = start + CHUNK_BYTES;
        let end = if target >= content.len() {
            content.len()
        } else {
            memchr::memchr(b'\n', &content[target - 1..]).map_or(content.len(), |i| target + i)
        };
        out.push((start as u32, (end - start) as u32));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_file_and_end_at_line_ends() {
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("line number {i}\n").as_bytes());
        }
        text.extend_from_slice(b"no newline at the end");
        let chunks = chunk_bounds(&text);
        assert!(chunks.len() > 5);
        let mut at = 0u32;
        for &(s, l) in &chunks {
            assert_eq!(s, at);
            at += l;
            let end = (s + l) as usize;
            assert!(end == text.len() || text[end - 1] == b'\n');
            assert!(l as usize >= CHUNK_BYTES || end == text.len());
        }
        assert_eq!(at as usize, text.len());
        assert!(chunk_bounds(b"").is_empty());
        assert_eq!(chunk_bounds(b"x"), vec![(0, 1)]);
        let long_line = vec![b'a'; 3 * CHUNK_BYTES];
        assert_eq!(chunk_bounds(&long_line), vec![(0, 3 * CHUNK_BYTES as u32)]);
    }
}
