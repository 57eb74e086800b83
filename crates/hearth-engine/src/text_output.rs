//! Turning a stream of token bytes into the text a client sees: whole UTF-8 characters only,
//! stop sequences matched across token boundaries and never emitted, and text that could still
//! become a stop sequence held back until it is known not to.

/// What one token added to the visible output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Emitted {
    /// Text that is now safe to send.
    pub(crate) text: String,
    /// Set when a stop sequence was completed; the generation ends here.
    pub(crate) stopped: bool,
}

/// Per-sequence output state.
#[derive(Debug, Default)]
pub(crate) struct TextOutput {
    stop_sequences: Vec<String>,
    /// Bytes of a UTF-8 character split across tokens.
    partial_utf8: Vec<u8>,
    /// Decoded text not yet sent because it might be the start of a stop sequence.
    held_back: String,
}

impl TextOutput {
    pub(crate) fn new(stop_sequences: Vec<String>) -> Self {
        let stop_sequences = stop_sequences
            .into_iter()
            .filter(|stop| !stop.is_empty())
            .collect();
        Self {
            stop_sequences,
            partial_utf8: Vec::new(),
            held_back: String::new(),
        }
    }

    /// Adds one token's bytes and returns what can be sent now.
    pub(crate) fn push(&mut self, piece: &[u8]) -> Emitted {
        self.partial_utf8.extend_from_slice(piece);
        let decoded = take_complete_utf8(&mut self.partial_utf8);
        self.held_back.push_str(&decoded);

        if let Some(stop_start) = self.earliest_stop() {
            let text = self.held_back[..stop_start].to_owned();
            self.held_back.clear();
            self.partial_utf8.clear();
            return Emitted {
                text,
                stopped: true,
            };
        }
        let keep = self.longest_stop_prefix_suffix();
        let send_until = self.held_back.len() - keep;
        let text = self.held_back[..send_until].to_owned();
        self.held_back.drain(..send_until);
        Emitted {
            text,
            stopped: false,
        }
    }

    /// Releases everything still held back when the generation ends for another reason.
    pub(crate) fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.held_back);
        if !self.partial_utf8.is_empty() {
            text.push_str(&String::from_utf8_lossy(&self.partial_utf8));
            self.partial_utf8.clear();
        }
        text
    }

    fn earliest_stop(&self) -> Option<usize> {
        self.stop_sequences
            .iter()
            .filter_map(|stop| self.held_back.find(stop.as_str()))
            .min()
    }

    /// Length of the longest tail of the held-back text that is the beginning of a stop sequence.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let text = self.held_back.as_str();
        text.char_indices()
            .map(|(start, _)| start)
            .find(|&start| {
                let tail = &text[start..];
                self.stop_sequences
                    .iter()
                    .any(|stop| stop.starts_with(tail))
            })
            .map_or(0, |start| text.len() - start)
    }
}

/// Removes and returns the longest prefix of `bytes` that is complete UTF-8, leaving an
/// unfinished trailing character in place. Invalid bytes become U+FFFD.
fn take_complete_utf8(bytes: &mut Vec<u8>) -> String {
    let mut text = String::new();
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                text.push_str(valid);
                bytes.clear();
                return text;
            }
            Err(error) => {
                let valid_up_to = error.valid_up_to();
                // The prefix up to `valid_up_to` was just checked to be UTF-8, so nothing is replaced.
                text.push_str(&String::from_utf8_lossy(&bytes[..valid_up_to]));
                match error.error_len() {
                    // An unfinished character at the end: wait for the next token.
                    None => {
                        bytes.drain(..valid_up_to);
                        return text;
                    }
                    Some(invalid_len) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        bytes.drain(..valid_up_to + invalid_len);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut output = TextOutput::new(stops.iter().map(|stop| stop.to_string()).collect());
        let mut text = String::new();
        for piece in pieces {
            let emitted = output.push(piece.as_bytes());
            text.push_str(&emitted.text);
            if emitted.stopped {
                return (text, true);
            }
        }
        text.push_str(&output.finish());
        (text, false)
    }

    #[test]
    fn a_stop_sequence_split_across_tokens_is_found_and_not_emitted() {
        assert_eq!(
            run(&["END"], &["one two E", "N", "D three"]),
            ("one two ".to_owned(), true)
        );
    }

    #[test]
    fn text_that_only_looks_like_a_stop_prefix_is_released() {
        assert_eq!(run(&["END"], &["a E", "x"]), ("a Ex".to_owned(), false));
    }

    #[test]
    fn held_back_text_is_flushed_when_generation_ends() {
        assert_eq!(run(&["END"], &["a EN"]), ("a EN".to_owned(), false));
    }

    #[test]
    fn the_earliest_of_several_stop_sequences_wins() {
        assert_eq!(
            run(&["\n\n", "b"], &["a", "b\n\nc"]),
            ("a".to_owned(), true)
        );
    }

    #[test]
    fn a_character_split_across_tokens_is_emitted_whole() {
        let mut output = TextOutput::new(Vec::new());
        let euro = "€".as_bytes();
        assert_eq!(output.push(&euro[..1]).text, "");
        assert_eq!(output.push(&euro[1..]).text, "€");
    }

    #[test]
    fn held_back_text_is_never_emitted_before_the_rest_of_a_stop_arrives() {
        let mut output = TextOutput::new(vec!["</s>".to_owned()]);
        assert_eq!(output.push(b"hi <").text, "hi ");
        assert_eq!(output.push(b"/").text, "");
        let emitted = output.push(b"s>");
        assert_eq!(
            emitted,
            Emitted {
                text: String::new(),
                stopped: true
            }
        );
    }
}
