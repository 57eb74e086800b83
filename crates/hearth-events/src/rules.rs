//! Per-pattern topic settings (`PUT /v1/topics/{pattern}`): an optional JSON Schema that
//! published data must satisfy, retention, and whether events are kept. A topic takes the
//! settings of the most specific pattern that matches it.

use std::cmp::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::{Pattern, Sublist, Topic};

/// A JSON Schema for a topic's events, compiled once.
pub struct EventSchema {
    source: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for EventSchema {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventSchema")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Why a schema was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema is not a valid JSON Schema: {0}")]
pub struct SchemaError(pub String);

/// Why an event's data was refused: the failing place in the data (a JSON Pointer, `` for
/// the whole) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at `{path}`)")]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl EventSchema {
    pub fn compile(source: Value) -> Result<EventSchema, SchemaError> {
        let validator =
            jsonschema::validator_for(&source).map_err(|error| SchemaError(error.to_string()))?;
        Ok(EventSchema { source, validator })
    }

    /// The schema as it was given.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Checks `data`; the first violation names its place.
    pub fn check(&self, data: &Value) -> Result<(), Violation> {
        self.validator.validate(data).map_err(|error| Violation {
            path: error.instance_path().to_string(),
            message: error.to_string(),
        })
    }
}

/// How long and how much of a topic's events are kept; `None`: no bound of that kind (the
/// tenant's caps still hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
    pub max_events: Option<u64>,
}

/// The settings of a topic pattern.
#[derive(Debug)]
pub struct TopicSettings {
    pub schema: Option<EventSchema>,
    pub retention: Retention,
    /// Kept in the log (replay, durable consumers) or only delivered live.
    pub durable: bool,
}

/// How specific a pattern is, token by token: a literal beats `*`, which beats `>`; where one
/// pattern is a prefix of the other, the longer is more specific.
fn specificity(left: &Pattern, right: &Pattern) -> Ordering {
    let rank = |token: &str| match token {
        ">" => 0,
        "*" => 1,
        _ => 2,
    };
    let mut left_tokens = left.tokens();
    let mut right_tokens = right.tokens();
    loop {
        match (left_tokens.next(), right_tokens.next()) {
            (Some(left), Some(right)) => match rank(left).cmp(&rank(right)) {
                Ordering::Equal => continue,
                other => return other,
            },
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (None, None) => return Ordering::Equal,
        }
    }
}

/// Settings by pattern; a topic gets those of its most specific matching pattern.
#[derive(Debug, Default)]
pub struct TopicRules {
    patterns: Vec<(Pattern, TopicSettings)>,
    index: Sublist<usize>,
}

impl TopicRules {
    pub fn new() -> TopicRules {
        TopicRules::default()
    }

    /// Sets (or replaces) the settings of `pattern`.
    pub fn set(&mut self, pattern: Pattern, settings: TopicSettings) {
        match self
            .patterns
            .iter()
            .position(|(known, _)| *known == pattern)
        {
            Some(position) => self.patterns[position].1 = settings,
            None => {
                self.index.insert(&pattern, self.patterns.len());
                self.patterns.push((pattern, settings));
            }
        }
    }

    /// Removes the settings of exactly `pattern`; false when it had none.
    pub fn remove(&mut self, pattern: &Pattern) -> bool {
        let Some(position) = self.patterns.iter().position(|(known, _)| known == pattern) else {
            return false;
        };
        self.patterns.remove(position);
        // Positions after it moved: index again (settings are few and change rarely).
        self.index = Sublist::new();
        for (position, (pattern, _)) in self.patterns.iter().enumerate() {
            self.index.insert(pattern, position);
        }
        true
    }

    /// Every pattern and its settings.
    pub fn iter(&self) -> impl Iterator<Item = (&Pattern, &TopicSettings)> {
        self.patterns
            .iter()
            .map(|(pattern, settings)| (pattern, settings))
    }

    /// The settings of exactly `pattern`.
    pub fn get(&self, pattern: &Pattern) -> Option<&TopicSettings> {
        self.patterns
            .iter()
            .find(|(known, _)| known == pattern)
            .map(|(_, settings)| settings)
    }

    /// The pattern and settings that apply to `topic`, if any pattern matches it.
    pub fn for_topic(&self, topic: &Topic) -> Option<(&Pattern, &TopicSettings)> {
        self.index
            .matches(topic)
            .into_iter()
            .map(|position| &self.patterns[position])
            .max_by(|(left, _), (right, _)| specificity(left, right))
            .map(|(pattern, settings)| (pattern, settings))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn settings(max_events: u64) -> TopicSettings {
        TopicSettings {
            schema: None,
            retention: Retention {
                max_events: Some(max_events),
                ..Retention::default()
            },
            durable: true,
        }
    }

    #[test]
    fn a_schema_refuses_data_naming_the_failing_place() {
        let schema = EventSchema::compile(json!({
            "type": "object",
            "required": ["level"],
            "properties": {"level": {"type": "number", "minimum": 0, "maximum": 1}}
        }))
        .unwrap();
        assert!(schema.check(&json!({"level": 0.5})).is_ok());
        let violation = schema.check(&json!({"level": 2})).unwrap_err();
        assert_eq!(violation.path, "/level");
        assert!(violation.message.contains('2'), "{violation}");
        assert_eq!(schema.check(&json!({})).unwrap_err().path, "");
        assert!(EventSchema::compile(json!({"type": "no-such-type"})).is_err());
    }

    #[test]
    fn the_most_specific_matching_pattern_wins() {
        let mut rules = TopicRules::new();
        rules.set(pattern(">"), settings(1));
        rules.set(pattern("agent.>"), settings(2));
        rules.set(pattern("agent.*"), settings(3));
        rules.set(pattern("agent.task"), settings(4));
        rules.set(pattern("agent.*.done"), settings(5));
        fn applies(rules: &TopicRules, topic: &str) -> Option<u64> {
            rules
                .for_topic(&Topic::parse(topic).unwrap())
                .and_then(|(_, settings)| settings.retention.max_events)
        }
        assert_eq!(applies(&rules, "agent.task"), Some(4));
        assert_eq!(applies(&rules, "agent.job"), Some(3));
        assert_eq!(applies(&rules, "agent.job.done"), Some(5));
        assert_eq!(applies(&rules, "agent.job.started"), Some(2));
        assert_eq!(applies(&rules, "emotion.joy"), Some(1));

        rules.set(pattern("agent.task"), settings(40));
        assert_eq!(applies(&rules, "agent.task"), Some(40));
        assert!(rules.remove(&pattern("agent.*")));
        assert!(!rules.remove(&pattern("agent.*")));
        assert_eq!(applies(&rules, "agent.job"), Some(2));
        assert_eq!(applies(&rules, "agent.task"), Some(40));
        assert!(rules.get(&pattern("agent.>")).is_some());
    }
}
