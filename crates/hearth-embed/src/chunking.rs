//! Splitting long text into chunks of a model's tokens, so that nothing past the model's
//! input length is silently cut off: windows of at most `max_tokens` tokens, consecutive ones
//! sharing `overlap` tokens, as OpenAI's `static` chunking strategy defines them. The chunks
//! are byte ranges of the text that cover it whole (the first starts at 0, the last ends at the
//! end, and each starts no later than the previous one ends), so the text can be rebuilt from
//! them exactly.

use std::ops::Range;

/// Why a text cannot be split as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkingError {
    #[error("a chunk must hold at least one token")]
    EmptyChunks,
    #[error("the overlap ({overlap} tokens) must be smaller than a chunk ({max_tokens} tokens)")]
    OverlapTooLarge { overlap: usize, max_tokens: usize },
}

/// The chunks of a text of `text_len` bytes whose tokens span `offsets` (byte ranges, in
/// order, special tokens left out).
pub fn token_windows(
    offsets: &[(usize, usize)],
    text_len: usize,
    max_tokens: usize,
    overlap: usize,
) -> Result<Vec<Range<usize>>, ChunkingError> {
    if max_tokens == 0 {
        return Err(ChunkingError::EmptyChunks);
    }
    if overlap >= max_tokens {
        return Err(ChunkingError::OverlapTooLarge {
            overlap,
            max_tokens,
        });
    }
    if offsets.len() <= max_tokens {
        return Ok(std::iter::once(0..text_len).collect());
    }
    let step = max_tokens - overlap;
    let mut chunks: Vec<Range<usize>> = Vec::new();
    let mut first = 0;
    loop {
        let last = (first + max_tokens).min(offsets.len()) - 1;
        let start = match chunks.last() {
            None => 0,
            // No gap: the whitespace between two tokens belongs to the later chunk.
            Some(previous) => offsets[first].0.min(previous.end),
        };
        let is_last = last + 1 == offsets.len();
        let end = if is_last { text_len } else { offsets[last].1 };
        chunks.push(start..end.max(start));
        if is_last {
            return Ok(chunks);
        }
        first += step;
    }
}

/// Rebuilds a text from its chunks (what [`token_windows`] promises is possible).
pub fn rebuild(text_of: impl Fn(Range<usize>) -> String, chunks: &[Range<usize>]) -> String {
    let mut text = String::new();
    let mut covered = 0;
    for chunk in chunks {
        if chunk.end > covered {
            text.push_str(&text_of(chunk.start.max(covered)..chunk.end));
            covered = chunk.end;
        }
    }
    text
}

#[cfg(test)]
// One chunk of the whole text is what these tests expect, not a mistaken range of items.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    /// Offsets of whitespace-separated words, standing in for a tokenizer's.
    fn words(text: &str) -> Vec<(usize, usize)> {
        let mut offsets = Vec::new();
        let mut start = None;
        for (index, c) in text.char_indices().chain([(text.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(index),
                (true, Some(from)) => {
                    offsets.push((from, index));
                    start = None;
                }
                _ => {}
            }
        }
        offsets
    }

    #[test]
    fn windows_hold_at_most_max_tokens_share_the_overlap_and_cover_the_text() {
        let text = "  one two three four five six seven eight nine ten  ";
        let offsets = words(text);
        let chunks = token_windows(&offsets, text.len(), 4, 1).unwrap();
        let pieces: Vec<&str> = chunks
            .iter()
            .map(|chunk| text[chunk.clone()].trim())
            .collect();
        assert_eq!(
            pieces,
            [
                "one two three four",
                "four five six seven",
                "seven eight nine ten"
            ]
        );
        assert_eq!(rebuild(|range| text[range].to_string(), &chunks), text);

        let no_overlap = token_windows(&offsets, text.len(), 3, 0).unwrap();
        assert_eq!(no_overlap.len(), 4);
        assert_eq!(rebuild(|range| text[range].to_string(), &no_overlap), text);
        assert!(
            no_overlap
                .windows(2)
                .all(|pair| pair[0].end == pair[1].start)
        );
    }

    #[test]
    fn short_text_is_one_chunk_and_bad_settings_are_refused() {
        assert_eq!(token_windows(&words("a b"), 3, 4, 1).unwrap(), [0..3]);
        assert_eq!(token_windows(&[], 2, 4, 1).unwrap(), [0..2]);
        assert_eq!(token_windows(&[], 0, 0, 0), Err(ChunkingError::EmptyChunks));
        assert_eq!(
            token_windows(&[], 0, 4, 4),
            Err(ChunkingError::OverlapTooLarge {
                overlap: 4,
                max_tokens: 4
            })
        );
    }
}
