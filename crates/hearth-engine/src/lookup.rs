//! Prompt-lookup drafting for speculative decoding: when the last few tokens of a sequence
//! already occurred earlier in it (in the prompt, or in what was generated so far), the tokens
//! that followed them then are a cheap guess at what comes next. RAG answers, extraction and
//! editing quote their context, so such guesses are often right; the scheduler decodes them in
//! the same pass as the sequence's next token and keeps those the sampler agrees with.

/// The longest n-gram looked up; longer matches are tried first, as they guess better.
const MAX_NGRAM: usize = 4;
/// The shortest: a single token recurs too often to predict what follows it.
const MIN_NGRAM: usize = 2;

/// Up to `max_tokens` tokens that followed the most recent earlier occurrence of the longest
/// suffix of `history` (between `MIN_NGRAM` and `MAX_NGRAM` tokens) found earlier in it, written
/// to `draft` (cleared first). Leaves `draft` empty when no suffix recurs.
///
/// A linear scan per n-gram size: a sequence holds at most a context window of tokens, and the
/// scan costs microseconds against the milliseconds of a decode pass.
pub(crate) fn draft_from_history<T: Copy + PartialEq>(
    history: &[T],
    max_tokens: usize,
    draft: &mut Vec<T>,
) {
    draft.clear();
    if max_tokens == 0 {
        return;
    }
    for ngram in (MIN_NGRAM..=MAX_NGRAM).rev() {
        if history.len() <= ngram {
            continue;
        }
        let suffix_start = history.len() - ngram;
        let suffix = &history[suffix_start..];
        // The most recent occurrence first: text being quoted is usually the latest match.
        let found = (0..suffix_start)
            .rev()
            .find(|&start| &history[start..start + ngram] == suffix);
        if let Some(start) = found {
            let follows = start + ngram;
            let end = (follows + max_tokens).min(history.len());
            draft.extend_from_slice(&history[follows..end]);
            return;
        }
    }
}

/// Per-sequence draft length that follows how well drafting works for that sequence: every
/// fully accepted draft lets the next one grow, a rejected first token halves it. A sequence
/// whose text does not repeat its context soon drafts one token at a time, which costs little;
/// one that quotes drafts long runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DraftLength {
    current: usize,
    max: usize,
}

impl DraftLength {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            current: max.min(4),
            max,
        }
    }

    pub(crate) fn get(self) -> usize {
        self.current
    }

    /// Records how many of `drafted` tokens the sampler accepted.
    pub(crate) fn record(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        if accepted == drafted {
            self.current = (self.current * 2).min(self.max);
        } else if accepted == 0 {
            self.current = (self.current / 2).max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(history: &[i32], max: usize) -> Vec<i32> {
        let mut out = Vec::new();
        draft_from_history(history, max, &mut out);
        out
    }

    #[test]
    fn the_tokens_after_an_earlier_occurrence_of_the_suffix_are_drafted() {
        // "... 7 8 9 10 11 ... 7 8" -> "9 10 11"
        let history = [1, 7, 8, 9, 10, 11, 2, 3, 7, 8];
        assert_eq!(draft(&history, 3), vec![9, 10, 11]);
        assert_eq!(draft(&history, 2), vec![9, 10]);
    }

    #[test]
    fn the_longest_recurring_suffix_decides() {
        // "5 7 8" occurs once, followed by 42; "7 8" alone last occurred followed by 99.
        let history = [5, 7, 8, 42, 0, 7, 8, 99, 0, 5, 7, 8];
        assert_eq!(draft(&history, 1), vec![42]);
    }

    #[test]
    fn the_most_recent_occurrence_wins_among_equals() {
        let history = [7, 8, 1, 0, 7, 8, 2, 0, 7, 8];
        assert_eq!(draft(&history, 1), vec![2]);
    }

    #[test]
    fn a_draft_stops_at_the_end_of_the_history() {
        let history = [3, 4, 5, 3, 4];
        assert_eq!(draft(&history, 8), vec![5, 3, 4]);
    }

    #[test]
    fn nothing_is_drafted_without_a_recurring_suffix_of_two_tokens() {
        assert!(draft(&[1, 2, 3, 4, 5, 3], 4).is_empty());
        assert!(draft(&[1, 2], 4).is_empty());
        assert!(draft(&[], 4).is_empty());
        assert!(draft(&[1, 2, 1, 2], 0).is_empty());
    }

    #[test]
    fn the_draft_length_grows_with_success_and_shrinks_with_failure() {
        let mut length = DraftLength::new(16);
        assert_eq!(length.get(), 4);
        length.record(4, 4);
        assert_eq!(length.get(), 8);
        length.record(8, 8);
        length.record(16, 16);
        assert_eq!(length.get(), 16);
        length.record(16, 3);
        assert_eq!(length.get(), 16, "a partly accepted draft keeps the length");
        length.record(16, 0);
        length.record(8, 0);
        length.record(4, 0);
        length.record(2, 0);
        length.record(1, 0);
        assert_eq!(length.get(), 1, "never below one token");
        length.record(0, 0);
        assert_eq!(length.get(), 1);
    }
}
