//! Topics and patterns, checked as NATS checks subjects.

/// The longest topic or pattern, in bytes (NATS's default max subject is larger, but topics
/// are names, and this keeps a sublist's memory per subscription bounded).
pub const MAX_TOPIC_BYTES: usize = 256;

/// Why a topic or pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic cannot be empty")]
    Empty,
    #[error("`{0}` is longer than {MAX_TOPIC_BYTES} bytes")]
    TooLong(String),
    #[error("`{0}` has an empty token: tokens are separated by single dots, none at either end")]
    EmptyToken(String),
    #[error("`{0}` has whitespace; tokens are printable characters without spaces")]
    Whitespace(String),
    #[error("`{0}` has a wildcard; publish to a topic without `*` or `>`")]
    WildcardInTopic(String),
    #[error("`{0}` misuses a wildcard: `*` and `>` are whole tokens, and `>` only the last one")]
    BadWildcard(String),
}

/// Checks what topics and patterns share: length, tokens, whitespace.
fn tokens(text: &str) -> Result<Vec<&str>, TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong(text.to_string()));
    }
    if text
        .chars()
        .any(|char| char.is_whitespace() || char.is_control())
    {
        return Err(TopicError::Whitespace(text.to_string()));
    }
    let tokens: Vec<&str> = text.split('.').collect();
    if tokens.iter().any(|token| token.is_empty()) {
        return Err(TopicError::EmptyToken(text.to_string()));
    }
    Ok(tokens)
}

/// A topic events are published to: `.`-separated tokens without wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(String);

impl Topic {
    pub fn parse(text: &str) -> Result<Topic, TopicError> {
        let tokens = tokens(text)?;
        if tokens.iter().any(|token| token.contains(['*', '>'])) {
            return Err(TopicError::WildcardInTopic(text.to_string()));
        }
        Ok(Topic(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A subscription's pattern: a topic whose tokens may be `*` (any one token) and whose last
/// token may be `>` (one or more tokens).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(String);

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, TopicError> {
        let tokens = tokens(text)?;
        let last = tokens.len() - 1;
        for (position, token) in tokens.iter().enumerate() {
            let wildcard = match *token {
                "*" => true,
                ">" => position == last,
                _ => false,
            };
            if !wildcard && token.contains(['*', '>']) {
                return Err(TopicError::BadWildcard(text.to_string()));
            }
        }
        Ok(Pattern(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// Whether the pattern has a wildcard (a plain pattern matches one topic only).
    pub fn has_wildcard(&self) -> bool {
        self.tokens().any(|token| token == "*" || token == ">")
    }

    /// Whether `topic` matches, by walking both: the rule itself, which [`crate::Sublist`]
    /// answers for many patterns at once.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut topic_tokens = topic.tokens();
        for token in self.tokens() {
            match token {
                ">" => return topic_tokens.next().is_some(),
                "*" => {
                    if topic_tokens.next().is_none() {
                        return false;
                    }
                }
                literal => {
                    if topic_tokens.next() != Some(literal) {
                        return false;
                    }
                }
            }
        }
        topic_tokens.next().is_none()
    }

    /// Whether every topic `other` matches, this pattern matches too: a key allowed
    /// `orders.>` may subscribe to `orders.*.paid`, not to `>`.
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut theirs = other.tokens();
        for token in self.tokens() {
            let Some(their) = theirs.next() else {
                return false;
            };
            match (token, their) {
                // `>` takes one or more tokens, and `other` has at least this one.
                (">", _) => return true,
                (_, ">") => return false,
                ("*", _) => {}
                (literal, their) => {
                    if literal != their {
                        return false;
                    }
                }
            }
        }
        theirs.next().is_none()
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pattern_covers_the_patterns_whose_topics_it_all_matches() {
        let covers = |wide: &str, narrow: &str| {
            super::Pattern::parse(wide)
                .unwrap()
                .covers(&super::Pattern::parse(narrow).unwrap())
        };
        for (wide, narrow) in [
            (">", ">"),
            (">", "a"),
            (">", "a.*.c"),
            ("a.>", "a.b"),
            ("a.>", "a.*.>"),
            ("a.>", "a.>"),
            ("a.*", "a.b"),
            ("a.*", "a.*"),
            ("a.*.c", "a.b.c"),
            ("a.b", "a.b"),
        ] {
            assert!(covers(wide, narrow), "{wide} covers {narrow}");
        }
        for (wide, narrow) in [
            ("a.>", "a"),
            ("a.>", ">"),
            ("a.*", "a.>"),
            ("a.*", "a.b.c"),
            ("a.b", "a.*"),
            ("a.b", "a.b.c"),
            ("a.b.c", "a.b"),
            ("*", "a.b"),
            ("a.*.c", "a.b.d"),
        ] {
            assert!(!covers(wide, narrow), "{wide} does not cover {narrow}");
        }
    }

    use super::*;

    #[test]
    fn topics_are_dot_separated_tokens_without_wildcards() {
        assert!(Topic::parse("agent.task.done").is_ok());
        assert!(Topic::parse("emotion").is_ok());
        assert!(Topic::parse("hearth.model.loaded-v2_x").is_ok());
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        for empty_token in [".a", "a.", "a..b", "."] {
            assert!(
                matches!(Topic::parse(empty_token), Err(TopicError::EmptyToken(_))),
                "{empty_token}"
            );
        }
        assert!(matches!(
            Topic::parse("a b"),
            Err(TopicError::Whitespace(_))
        ));
        assert!(matches!(
            Topic::parse("a\tb"),
            Err(TopicError::Whitespace(_))
        ));
        for wildcard in ["a.*", "a.>", "a*.b", "x>"] {
            assert!(
                matches!(Topic::parse(wildcard), Err(TopicError::WildcardInTopic(_))),
                "{wildcard}"
            );
        }
        assert!(matches!(
            Topic::parse(&"a".repeat(MAX_TOPIC_BYTES + 1)),
            Err(TopicError::TooLong(_))
        ));
    }

    #[test]
    fn patterns_take_whole_token_wildcards_and_a_final_full_wildcard() {
        for good in ["a.*.c", "*", ">", "a.>", "*.*.>", "a.b"] {
            assert!(Pattern::parse(good).is_ok(), "{good}");
        }
        for bad in ["a.>.c", ">.a", "a*.b", "a.b>", "a.**"] {
            assert!(
                matches!(Pattern::parse(bad), Err(TopicError::BadWildcard(_))),
                "{bad}"
            );
        }
        assert!(Pattern::parse("a.*").unwrap().has_wildcard());
        assert!(!Pattern::parse("a.b").unwrap().has_wildcard());
    }

    #[test]
    fn matching_follows_nats() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.b.c", "a.b", false),
            ("a.b", "a.b.c", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.b.d", false),
            ("a.*", "a", false),
            ("a.*", "a.b.c", false),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c.d", true),
            // `>` needs at least one token.
            ("a.>", "a", false),
            (">", "a", true),
            (">", "a.b", true),
            ("*", "a", true),
            ("*", "a.b", false),
            ("*.*.>", "a.b.c", true),
            ("*.*.>", "a.b", false),
            // Case matters.
            ("A.b", "a.b", false),
        ];
        for (pattern, topic, expected) in cases {
            let pattern = Pattern::parse(pattern).unwrap();
            let topic = Topic::parse(topic).unwrap();
            assert_eq!(pattern.matches(&topic), expected, "{pattern} on {topic}");
        }
    }
}
