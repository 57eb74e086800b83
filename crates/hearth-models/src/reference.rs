//! Model references: `name[:tag]`, the way users name models on the command line and in API
//! requests (`gemma3`, `acme/gemma3:v2`).

use std::fmt;
use std::str::FromStr;

use crate::ModelsError;

/// The tag a reference gets when it names none.
pub const DEFAULT_TAG: &str = "latest";

/// Longest name or tag accepted; keeps manifest file names well under file-system limits.
const MAX_PART_LENGTH: usize = 128;

/// A validated `name:tag`. The name is lowercase letters, digits, `-`, `_` and `.`, with at
/// most one `namespace/` prefix; the tag is letters, digits, `-`, `_` and `.`. Both start with a
/// letter or digit, so no part can be `.`, `..` or a hidden file name on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelReference {
    name: String,
    tag: String,
}

impl ModelReference {
    /// Parses `name` or `name:tag`; the tag defaults to `latest`.
    pub fn parse(text: &str) -> Result<ModelReference, ModelsError> {
        let invalid = |reason: String| ModelsError::InvalidReference {
            reference: text.to_string(),
            reason,
        };
        let (name, tag) = match text.split_once(':') {
            Some((name, tag)) => (name, tag),
            None => (text, DEFAULT_TAG),
        };
        if name.is_empty() {
            return Err(invalid("the name is empty".to_string()));
        }
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() > 2 {
            return Err(invalid(
                "only one '/' is allowed (namespace/name)".to_string(),
            ));
        }
        for (index, part) in parts.iter().enumerate() {
            let what = if parts.len() == 2 && index == 0 {
                "namespace"
            } else {
                "name"
            };
            check_part(part, what, |character| {
                character.is_ascii_lowercase()
                    || character.is_ascii_digit()
                    || matches!(character, '-' | '_' | '.')
            })
            .map_err(|reason| {
                invalid(format!(
                    "{reason}; a {what} uses lowercase letters, digits, '-', '_' and '.'"
                ))
            })?;
        }
        check_part(tag, "tag", |character| {
            character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.')
        })
        .map_err(|reason| {
            invalid(format!(
                "{reason}; a tag uses letters, digits, '-', '_' and '.'"
            ))
        })?;
        Ok(ModelReference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The name, with its namespace when it has one (`acme/gemma3`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Turns an arbitrary file or directory name into a valid model name with the default tag:
    /// lowercased, any other character replaced by `-`. `None` when nothing usable is left.
    pub fn from_file_stem(stem: &str) -> Option<ModelReference> {
        let cleaned: String = stem
            .to_lowercase()
            .chars()
            .map(|character| {
                if character.is_ascii_lowercase()
                    || character.is_ascii_digit()
                    || matches!(character, '-' | '_' | '.')
                {
                    character
                } else {
                    '-'
                }
            })
            .collect();
        let trimmed = cleaned.trim_start_matches(['-', '_', '.']);
        let truncated: String = trimmed.chars().take(MAX_PART_LENGTH).collect();
        ModelReference::parse(&truncated).ok()
    }
}

/// Checks one part (namespace, name or tag): not empty, not too long, starts with a letter or
/// digit, and every character allowed. The error names the first bad character.
fn check_part(part: &str, what: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if part.len() > MAX_PART_LENGTH {
        return Err(format!(
            "the {what} is {} characters long, at most {MAX_PART_LENGTH} are allowed",
            part.len()
        ));
    }
    if let Some(bad) = part.chars().find(|character| !allowed(*character)) {
        return Err(format!("{bad:?} is not allowed in the {what} {part:?}"));
    }
    if !part.starts_with(|character: char| character.is_ascii_alphanumeric()) {
        return Err(format!(
            "the {what} {part:?} must start with a letter or digit"
        ));
    }
    Ok(())
}

impl fmt::Display for ModelReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.name, self.tag)
    }
}

impl FromStr for ModelReference {
    type Err = ModelsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ModelReference::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_references_parse_with_the_default_tag() {
        let cases = [
            ("gemma3", "gemma3", "latest"),
            ("gemma3:270m", "gemma3", "270m"),
            (
                "acme/gemma-3_it.q4:V2.1-rc_1",
                "acme/gemma-3_it.q4",
                "V2.1-rc_1",
            ),
            ("x:1", "x", "1"),
        ];
        for (text, name, tag) in cases {
            let reference = ModelReference::parse(text).expect(text);
            assert_eq!((reference.name(), reference.tag()), (name, tag), "{text}");
        }
        assert_eq!(
            ModelReference::parse("gemma3").unwrap().to_string(),
            "gemma3:latest"
        );
    }

    #[test]
    fn invalid_references_name_the_bad_part() {
        let cases = [
            ("", "the name is empty"),
            (":v1", "the name is empty"),
            ("gemma:", "the tag is empty"),
            ("Gemma", "'G' is not allowed in the name \"Gemma\""),
            ("a/b/c", "only one '/'"),
            ("/gemma", "the namespace is empty"),
            ("Acme/gemma", "'A' is not allowed in the namespace \"Acme\""),
            ("gemma:v1:v2", "':' is not allowed in the tag \"v1:v2\""),
            ("gemma:v 1", "' ' is not allowed in the tag"),
            ("-gemma", "must start with a letter or digit"),
            ("..", "must start with a letter or digit"),
            ("gemma:.hidden", "must start with a letter or digit"),
        ];
        for (text, expected) in cases {
            let error = ModelReference::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
        }
        let long = "a".repeat(129);
        let error = ModelReference::parse(&long).unwrap_err().to_string();
        assert!(error.contains("at most 128"), "{error}");
    }

    #[test]
    fn file_stems_become_lowercase_names() {
        let cases = [
            ("gemma-3-270m-q4_k_m", Some("gemma-3-270m-q4_k_m:latest")),
            ("Gemma-3-270M-Q4_K_M", Some("gemma-3-270m-q4_k_m:latest")),
            ("all-MiniLM-L6-v2", Some("all-minilm-l6-v2:latest")),
            ("my model (final)", Some("my-model--final-:latest")),
            ("_hidden", Some("hidden:latest")),
            ("---", None),
            ("", None),
        ];
        for (stem, expected) in cases {
            let derived = ModelReference::from_file_stem(stem).map(|r| r.to_string());
            assert_eq!(derived.as_deref(), expected, "{stem}");
        }
    }
}
