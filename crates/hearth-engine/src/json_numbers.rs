//! Bounded JSON numbers. A JSON grammar lets a number's digits run on forever, and a small model
//! at temperature 0 sometimes does exactly that (`"age": 1800000000000000000…` until the token
//! limit), so the output never closes and never parses. llama.cpp's JSON-schema grammar allows
//! at most 16 digits in a number's integral part, fraction and exponent; this module gives our
//! llguidance grammars the same bound.
//!
//! llguidance compiles numbers to unbounded regexes and has no option for their length, so the
//! bound is applied beside it: a [`NumberLexer`] follows the JSON text generated so far, and
//! while it is inside a number, tokens that would push a part past the limit are removed from
//! the grammar's mask. Only tokens the grammar already allows are removed, never added, so the
//! output still matches the grammar. Should the grammar itself need a longer number (a `const`
//! or a `minimum` of 17 digits), nothing it allows would be left, and the bound stands aside.

/// Where the generated text is, as far as numbers are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Between values, or inside `true`, `false`, `null`.
    Outside,
    InString,
    /// Just after a backslash inside a string.
    InStringEscape,
    /// Inside a number: in its integral part, fraction or exponent, with this many digits so far.
    InNumber {
        part: NumberPart,
        digits: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberPart {
    Integral,
    Fraction,
    Exponent,
}

/// Follows JSON text byte by byte, counting the digits of the number part it is in. It needs no
/// more than that: structure and validity are the grammar's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberLexer {
    position: Position,
}

impl Default for NumberLexer {
    fn default() -> Self {
        Self {
            position: Position::Outside,
        }
    }
}

impl NumberLexer {
    /// True while the text so far ends inside a number.
    pub(crate) fn in_number(&self) -> bool {
        matches!(self.position, Position::InNumber { .. })
    }

    /// Reads `bytes`; false (and the lexer left part-way) as soon as a number part would hold
    /// more than `max_digits` digits.
    pub(crate) fn advance(&mut self, bytes: &[u8], max_digits: usize) -> bool {
        for &byte in bytes {
            if !self.step(byte, max_digits) {
                return false;
            }
        }
        true
    }

    fn step(&mut self, byte: u8, max_digits: usize) -> bool {
        self.position = match (self.position, byte) {
            (Position::InString, b'\\') => Position::InStringEscape,
            (Position::InString, b'"') => Position::Outside,
            (Position::InString, _) => Position::InString,
            (Position::InStringEscape, _) => Position::InString,
            (Position::InNumber { part, digits }, b'0'..=b'9') => {
                if digits >= max_digits {
                    return false;
                }
                Position::InNumber {
                    part,
                    digits: digits + 1,
                }
            }
            (
                Position::InNumber {
                    part: NumberPart::Integral,
                    ..
                },
                b'.',
            ) => Position::InNumber {
                part: NumberPart::Fraction,
                digits: 0,
            },
            (
                Position::InNumber {
                    part: NumberPart::Integral | NumberPart::Fraction,
                    ..
                },
                b'e' | b'E',
            ) => Position::InNumber {
                part: NumberPart::Exponent,
                digits: 0,
            },
            // The exponent's sign comes before its digits.
            (
                Position::InNumber {
                    part: NumberPart::Exponent,
                    digits: 0,
                },
                b'+' | b'-',
            ) => self.position,
            // Anything else ends the number and is read as text between values.
            (Position::InNumber { .. } | Position::Outside, byte) => match byte {
                b'"' => Position::InString,
                b'-' => Position::InNumber {
                    part: NumberPart::Integral,
                    digits: 0,
                },
                b'0'..=b'9' => {
                    if max_digits == 0 {
                        return false;
                    }
                    Position::InNumber {
                        part: NumberPart::Integral,
                        digits: 1,
                    }
                }
                _ => Position::Outside,
            },
        };
        true
    }
}

/// The bound of one constrained sequence: the lexer over its output and the limit.
#[derive(Debug, Clone)]
pub(crate) struct NumberBound {
    lexer: NumberLexer,
    max_digits: usize,
}

impl NumberBound {
    pub(crate) fn new(max_digits: usize) -> Self {
        Self {
            lexer: NumberLexer::default(),
            max_digits,
        }
    }

    /// Whether a token of these bytes may come next. Only tokens that continue a number or start
    /// one can break the bound; every other token is allowed without reading it.
    pub(crate) fn allows(&self, token_bytes: &[u8]) -> bool {
        let may_touch_a_number = self.lexer.in_number()
            || (self.lexer.position == Position::Outside
                && token_bytes
                    .iter()
                    .any(|byte| byte.is_ascii_digit() || *byte == b'-'));
        if !may_touch_a_number {
            return true;
        }
        let mut lexer = self.lexer;
        lexer.advance(token_bytes, self.max_digits)
    }

    /// True when [`NumberBound::allows`] may refuse something at this point: inside a number,
    /// or between values (where a token could start one).
    pub(crate) fn may_refuse(&self) -> bool {
        !matches!(
            self.lexer.position,
            Position::InString | Position::InStringEscape
        )
    }

    /// Records the token that was chosen. A token the bound refused is chosen only when the
    /// bound stood aside, so the count is not limited here: it simply goes on.
    pub(crate) fn accept(&mut self, token_bytes: &[u8]) {
        self.lexer.advance(token_bytes, usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed_after(text: &str, next: &str, max_digits: usize) -> bool {
        let mut bound = NumberBound::new(max_digits);
        bound.accept(text.as_bytes());
        bound.allows(next.as_bytes())
    }

    #[test]
    fn each_part_of_a_number_holds_at_most_the_limit() {
        let cases = [
            // (text so far, next token, allowed with a limit of 3)
            (r#"{"age": 12"#, "3", true),
            (r#"{"age": 123"#, "4", false),
            (r#"{"age": 123"#, "}", true),
            (r#"{"age": 123"#, ", ", true),
            (r#"{"age": -123"#, "0", false),
            (r#"{"x": 1.234"#, "5", false),
            (r#"{"x": 123.456"#, "e", true),
            (r#"{"x": 1e+123"#, "4", false),
            (r#"{"x": 1E-12"#, "3", true),
            // One token carrying several digits counts them all.
            (r#"{"x": 1"#, "23", true),
            (r#"{"x": 1"#, "234", false),
            (r#"{"x": "#, "1234", false),
            // Digits after a number has ended start afresh.
            (r#"[123, 456, "#, "789", true),
        ];
        for (text, next, allowed) in cases {
            assert_eq!(
                allowed_after(text, next, 3),
                allowed,
                "{next:?} after {text:?}"
            );
        }
    }

    #[test]
    fn digits_inside_strings_are_not_numbers() {
        assert!(allowed_after(r#"{"phone": "1234"#, "5678", 3));
        assert!(allowed_after(r#"{"a\"1": "#, "12", 3));
        assert!(allowed_after(r#"{"a\\"#, "\"12345", 3));
        assert!(!allowed_after(r#"{"a\\": "#, "1234", 3));
    }

    #[test]
    fn strings_are_never_read_for_numbers() {
        let mut bound = NumberBound::new(3);
        bound.accept(br#"{"name": "Ann"#);
        assert!(!bound.may_refuse());
        bound.accept(br#"", "age": "#);
        assert!(bound.may_refuse());
    }

    #[test]
    fn sixteen_digits_like_llama_cpp() {
        let sixteen = "1".repeat(16);
        assert!(allowed_after(r#"{"age": "#, &sixteen, 16));
        assert!(!allowed_after(&format!(r#"{{"age": {sixteen}"#), "0", 16));
    }
}
