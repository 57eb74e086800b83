//! A faster path to exactly the tokens llama.cpp's SentencePiece (SPM) tokenizer gives.
//!
//! llama.cpp splits special-token text out of a prompt by searching the prompt once for every
//! special token: Gemma 3 has 6,414 of them, so a five-word prompt costs ~85 µs with warm caches
//! and ~370 µs right after a decode step has flushed them, most of a request's overhead. Here one
//! Aho-Corasick pass finds the special tokens that occur at all, llama.cpp's splitting is replayed
//! for just those, and the text between them goes through the same byte-pair merging llama.cpp
//! does (highest score first, ties to the leftmost pair, unknown characters as byte tokens).
//!
//! It is an optimisation, never a second opinion: [`SpmTokenizer::new`] declines models it cannot
//! reproduce (another tokenizer family, special tokens that strip whitespace) and the model
//! checks a set of awkward texts against llama.cpp at load, falling back to llama.cpp on any
//! difference. A prompt whose special tokens of equal length overlap each other (where
//! llama.cpp's order is not specified) is also left to llama.cpp.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use aho_corasick::AhoCorasick;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;
use llama_cpp_2::vocab::VocabType;

use crate::TokenId;

/// SentencePiece's visible space, which the vocabulary uses in place of ' '.
const ESCAPED_SPACE: &str = "\u{2581}";

/// Every token's text, found by text in one open-addressing table (a few MiB for a 262k-token
/// vocabulary, where a map of owned strings would take several times that).
struct VocabIndex {
    texts: Vec<u8>,
    /// Token `i`'s text is `texts[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    scores: Vec<f32>,
    /// Token ids by hash, `EMPTY` where free; the length is a power of two.
    slots: Vec<u32>,
}

const EMPTY: u32 = u32::MAX;

fn hash(bytes: &[u8]) -> u64 {
    // FNV-1a: tokens are short, and the table only needs a good spread.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl VocabIndex {
    fn text(&self, token: u32) -> &[u8] {
        let index = token as usize;
        &self.texts[self.offsets[index] as usize..self.offsets[index + 1] as usize]
    }

    fn build(texts: Vec<u8>, offsets: Vec<u32>, scores: Vec<f32>) -> VocabIndex {
        let n_tokens = scores.len();
        let capacity = (n_tokens * 2).next_power_of_two().max(16);
        let mut index = VocabIndex {
            texts,
            offsets,
            scores,
            slots: vec![EMPTY; capacity],
        };
        for token in 0..n_tokens as u32 {
            // llama.cpp fills its map in id order, so a text that two tokens share finds the
            // later one; overwriting does the same.
            let slot = index.slot_of(index.text(token));
            index.slots[slot] = token;
        }
        index
    }

    /// The slot holding `text`, or the free slot where it would go.
    fn slot_of(&self, text: &[u8]) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = hash(text) as usize & mask;
        loop {
            let token = self.slots[slot];
            if token == EMPTY || self.text(token) == text {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    fn find(&self, text: &[u8]) -> Option<u32> {
        let token = self.slots[self.slot_of(text)];
        (token != EMPTY).then_some(token)
    }
}

/// A special token the partition step splits out: its id and text.
struct Special {
    token: u32,
    text: Box<[u8]>,
}

pub(crate) struct SpmTokenizer {
    vocab: VocabIndex,
    specials: Vec<Special>,
    /// Finds every special token's text; pattern `i` is `specials[i]`.
    special_finder: AhoCorasick,
    byte_tokens: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    /// llama.cpp's per-model choice of a space before text that starts the prompt or follows
    /// a special token. Its API does not expose it: the caller finds it by comparing against
    /// llama.cpp.
    pub(crate) add_space_prefix: bool,
}

/// A piece of the prompt after special tokens have been split out.
#[derive(Clone, Copy)]
enum Fragment {
    Text { start: usize, end: usize },
    Special(u32),
}

impl SpmTokenizer {
    /// Reads the vocabulary of `llama`; `None` when it is not an SPM vocabulary this module can
    /// reproduce. `add_space_prefix` starts off; see the field.
    pub(crate) fn new(llama: &LlamaModel) -> Option<SpmTokenizer> {
        let vocab = llama.vocab();
        if vocab.vocab_type() != VocabType::SPM {
            return None;
        }
        let n_tokens = u32::try_from(vocab.n_tokens()).ok()?;
        let mut texts = Vec::new();
        let mut offsets = Vec::with_capacity(n_tokens as usize + 1);
        let mut scores = Vec::with_capacity(n_tokens as usize);
        let mut specials = Vec::new();
        offsets.push(0);
        for token in 0..n_tokens {
            let id = LlamaToken(i32::try_from(token).ok()?);
            let text = vocab.text(id).map(|text| text.to_bytes()).unwrap_or(&[]);
            texts.extend_from_slice(text);
            offsets.push(u32::try_from(texts.len()).ok()?);
            scores.push(vocab.score(id));
            let attrs = vocab.attr(id);
            // The tokens llama.cpp splits out before merging (its special-token cache).
            if attrs.intersects(
                LlamaTokenAttr::Control | LlamaTokenAttr::UserDefined | LlamaTokenAttr::Unknown,
            ) {
                // Whitespace-stripping special tokens change the text around them: not
                // reproduced here.
                if attrs.intersects(LlamaTokenAttr::LStrip | LlamaTokenAttr::RStrip) {
                    return None;
                }
                if !text.is_empty() {
                    specials.push(Special {
                        token,
                        text: text.into(),
                    });
                }
            }
        }
        let index = VocabIndex::build(texts, offsets, scores);
        let byte_tokens = (0..=255_u8)
            .map(|byte| {
                index
                    .find(format!("<0x{byte:02X}>").as_bytes())
                    .or_else(|| index.find(&[byte]))
            })
            .collect::<Option<Vec<u32>>>()?;
        let special_finder = AhoCorasick::new(specials.iter().map(|special| &special.text)).ok()?;
        let token_id = |token: LlamaToken| u32::try_from(token.0).ok().filter(|&id| id < n_tokens);
        let bos = if vocab.should_add_bos() {
            Some(token_id(vocab.bos())?)
        } else {
            None
        };
        let eos = if vocab.should_add_eos() {
            Some(token_id(vocab.eos())?)
        } else {
            None
        };
        Some(SpmTokenizer {
            vocab: index,
            specials,
            special_finder,
            byte_tokens,
            bos,
            eos,
            add_space_prefix: false,
        })
    }

    /// The tokens llama.cpp gives for `text` with special-token parsing on, or `None` for a text
    /// whose result this module cannot guarantee.
    pub(crate) fn tokenize(&self, text: &str, add_special: bool) -> Option<Vec<TokenId>> {
        let fragments = self.partition(text.as_bytes())?;
        let mut output: Vec<u32> = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && let Some(bos) = self.bos {
            output.push(bos);
        }
        let mut previous_was_special = true;
        for fragment in fragments {
            match fragment {
                Fragment::Text { start, end } => {
                    let prefix = if self.add_space_prefix && previous_was_special {
                        ESCAPED_SPACE
                    } else {
                        ""
                    };
                    let escaped = prefix.to_owned() + &text[start..end].replace(' ', ESCAPED_SPACE);
                    self.merge(escaped.as_bytes(), &mut output)?;
                    previous_was_special = false;
                }
                Fragment::Special(token) => {
                    output.push(token);
                    previous_was_special = true;
                }
            }
        }
        if add_special && let Some(eos) = self.eos {
            output.push(eos);
        }
        output
            .into_iter()
            .map(|token| i32::try_from(token).ok())
            .collect()
    }

    /// Splits `text` at special tokens the way llama.cpp does: the longest special tokens
    /// first, each taking its occurrences left to right in what is still plain text.
    fn partition(&self, text: &[u8]) -> Option<Vec<Fragment>> {
        if text.is_empty() {
            return Some(Vec::new());
        }
        let mut found: Vec<(usize, usize)> = self
            .special_finder
            .find_overlapping_iter(text)
            .map(|found| (found.pattern().as_usize(), found.start()))
            .collect();
        if found.is_empty() {
            return Some(vec![Fragment::Text {
                start: 0,
                end: text.len(),
            }]);
        }
        // llama.cpp's order among special tokens of equal length is unspecified; it only
        // matters when two of them overlap in this text, which is left to llama.cpp. Sorted by
        // start within a length, two different ones overlap only if two neighbours do.
        let length_of = |pattern: usize| self.specials[pattern].text.len();
        found.sort_unstable_by_key(|&(pattern, start)| {
            (std::cmp::Reverse(length_of(pattern)), start)
        });
        let overlapping = found.windows(2).any(|pair| {
            let ((first, first_start), (second, second_start)) = (pair[0], pair[1]);
            let length = length_of(first);
            first != second && length_of(second) == length && second_start < first_start + length
        });
        if overlapping {
            return None;
        }
        let mut patterns: Vec<usize> = found.iter().map(|&(pattern, _)| pattern).collect();
        patterns.sort_unstable_by_key(|&pattern| (std::cmp::Reverse(length_of(pattern)), pattern));
        patterns.dedup();

        let mut fragments = vec![Fragment::Text {
            start: 0,
            end: text.len(),
        }];
        for pattern in patterns {
            let special = &self.specials[pattern];
            let needle = &special.text[..];
            let mut split = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text { mut start, end } = fragment else {
                    split.push(fragment);
                    continue;
                };
                while let Some(offset) = memchr::memmem::find(&text[start..end], needle) {
                    let match_start = start + offset;
                    if match_start > start {
                        split.push(Fragment::Text {
                            start,
                            end: match_start,
                        });
                    }
                    split.push(Fragment::Special(special.token));
                    start = match_start + needle.len();
                }
                if start < end {
                    split.push(Fragment::Text { start, end });
                }
            }
            fragments = split;
        }
        Some(fragments)
    }

    /// llama.cpp's SPM merge of one piece of plain text (spaces already escaped).
    fn merge(&self, text: &[u8], output: &mut Vec<u32>) -> Option<()> {
        if text.is_empty() {
            return Some(());
        }
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        let mut offset = 0;
        while offset < text.len() {
            let length = utf8_length(text[offset]).min(text.len() - offset);
            let index = symbols.len() as isize;
            symbols.push(Symbol {
                start: offset,
                length,
                prev: index - 1,
                next: if offset + length == text.len() {
                    -1
                } else {
                    index + 1
                },
            });
            offset += length;
        }

        let mut queue = BinaryHeap::new();
        let mut merges: HashMap<&[u8], (usize, usize)> = HashMap::new();
        for right in 1..symbols.len() {
            self.try_pair(
                text,
                &symbols,
                right as isize - 1,
                right as isize,
                &mut queue,
                &mut merges,
            );
        }
        while let Some(pair) = queue.pop() {
            let (left, right) = (pair.left, pair.right);
            if symbols[left].length == 0
                || symbols[right].length == 0
                || symbols[left].length + symbols[right].length != pair.size
            {
                continue;
            }
            symbols[left].length += symbols[right].length;
            symbols[right].length = 0;
            symbols[left].next = symbols[right].next;
            let after = symbols[right].next;
            if after >= 0 {
                symbols[after as usize].prev = left as isize;
            }
            let (prev, next) = (symbols[left].prev, symbols[left].next);
            self.try_pair(text, &symbols, prev, left as isize, &mut queue, &mut merges);
            self.try_pair(text, &symbols, left as isize, next, &mut queue, &mut merges);
        }

        let mut index = 0_isize;
        while index >= 0 {
            let symbol = symbols[index as usize];
            self.resegment(text, &symbols, &merges, symbol, output, 0)?;
            index = symbol.next;
        }
        Some(())
    }

    fn try_pair<'text>(
        &self,
        text: &'text [u8],
        symbols: &[Symbol],
        left: isize,
        right: isize,
        queue: &mut BinaryHeap<Pair>,
        merges: &mut HashMap<&'text [u8], (usize, usize)>,
    ) {
        if left < 0 || right < 0 {
            return;
        }
        let (left, right) = (left as usize, right as usize);
        let start = symbols[left].start;
        let size = symbols[left].length + symbols[right].length;
        let pair_text = &text[start..start + size];
        let Some(token) = self.vocab.find(pair_text) else {
            return;
        };
        queue.push(Pair {
            left,
            right,
            score: self.vocab.scores[token as usize],
            size,
        });
        merges.insert(pair_text, (left, right));
    }

    /// Emits a merged symbol: its token, or the pieces it was merged from, or its bytes.
    fn resegment(
        &self,
        text: &[u8],
        symbols: &[Symbol],
        merges: &HashMap<&[u8], (usize, usize)>,
        symbol: Symbol,
        output: &mut Vec<u32>,
        depth: usize,
    ) -> Option<()> {
        // llama.cpp recurses without a bound here; a text that needs this deep a recursion is
        // left to it rather than risking a loop.
        if depth > 64 {
            return None;
        }
        let piece = &text[symbol.start..symbol.start + symbol.length];
        if let Some(token) = self.vocab.find(piece) {
            output.push(token);
            return Some(());
        }
        match merges.get(piece) {
            None => {
                output.extend(piece.iter().map(|&byte| self.byte_tokens[byte as usize]));
                Some(())
            }
            Some(&(left, right)) => {
                self.resegment(text, symbols, merges, symbols[left], output, depth + 1)?;
                self.resegment(text, symbols, merges, symbols[right], output, depth + 1)
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    length: usize,
    prev: isize,
    next: isize,
}

/// A candidate merge of two neighbouring symbols into one token.
struct Pair {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl Ord for Pair {
    /// The highest score first; among equal scores, the leftmost pair (llama.cpp's order).
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}

/// Bytes of the UTF-8 sequence starting with `first` (1 for a stray continuation byte), as
/// llama.cpp counts them.
fn utf8_length(first: u8) -> usize {
    const LENGTHS: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LENGTHS[usize::from(first >> 4)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_pop_highest_score_then_leftmost() {
        let mut queue = BinaryHeap::new();
        for (left, score) in [(3, 1.0), (1, 2.0), (0, 1.0), (2, 2.0)] {
            queue.push(Pair {
                left,
                right: left + 1,
                score,
                size: 2,
            });
        }
        let order: Vec<usize> = std::iter::from_fn(|| queue.pop().map(|pair| pair.left)).collect();
        assert_eq!(order, [1, 2, 0, 3]);
    }

    #[test]
    fn a_text_shared_by_two_tokens_finds_the_later_one() {
        let texts = b"abab".to_vec();
        let index = VocabIndex::build(texts, vec![0, 2, 4], vec![0.0, 0.0]);
        assert_eq!(index.find(b"ab"), Some(1));
        assert_eq!(index.find(b"ba"), None);
    }
}
