//! OpenAI's metadata filter language, as used by vector store search `filters`.
//!
//! A filter is either a comparison `{"key", "type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin",
//! "value"}` or a compound `{"type": "and"|"or", "filters": [...]}`, nested to any depth.
//! [`Filter::parse`] turns a JSON value into a typed [`Filter`], naming the path of the bad part
//! in its error; [`Filter::matches`] evaluates it against a document's metadata object.
//!
//! Evaluation rules: a missing key never matches (also for `ne` and `nin`); numbers compare
//! numerically, strings lexically (by bytes), booleans only for equality; a value of another
//! type than the filter's does not match.

use serde_json::{Map, Value};

use crate::MemoryError;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Compare the metadata value under `key` with `value`.
    Compare {
        key: String,
        op: CompareOp,
        value: FilterValue,
    },
    /// Every inner filter matches (an empty list matches everything).
    And(Vec<Filter>),
    /// At least one inner filter matches (an empty list matches nothing).
    Or(Vec<Filter>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

/// The right-hand side of a comparison: one scalar, or a list for `in` and `nin`.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Scalar(Scalar),
    List(Vec<Scalar>),
}

/// A scalar a filter can compare against.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    String(String),
    Number(f64),
    Bool(bool),
}

impl Scalar {
    fn from_json(value: &Value) -> Option<Scalar> {
        match value {
            Value::String(text) => Some(Scalar::String(text.clone())),
            Value::Number(number) => number.as_f64().map(Scalar::Number),
            Value::Bool(flag) => Some(Scalar::Bool(*flag)),
            _ => None,
        }
    }

    /// Orders two scalars of the same type; `None` for a type mismatch, and for booleans,
    /// which only support equality through [`Scalar::equals`].
    fn order(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (other, self) {
            (Value::Number(left), Scalar::Number(right)) => left.as_f64()?.partial_cmp(right),
            (Value::String(left), Scalar::String(right)) => Some(left.as_str().cmp(right)),
            _ => None,
        }
    }

    /// `Some(equal)` when `other` has this scalar's type, `None` for a type mismatch.
    fn equals(&self, other: &Value) -> Option<bool> {
        match (other, self) {
            (Value::Bool(left), Scalar::Bool(right)) => Some(left == right),
            (Value::Number(_), Scalar::Number(_)) | (Value::String(_), Scalar::String(_)) => {
                self.order(other).map(|ordering| ordering.is_eq())
            }
            _ => None,
        }
    }
}

impl Filter {
    /// Parses a filter from its JSON form.
    pub fn parse(value: &Value) -> Result<Filter, MemoryError> {
        parse_at(value, "")
    }

    /// Whether a document with this metadata matches. Metadata that is not a JSON object has
    /// no keys, so only compounds that need no key (`and: []`) match it.
    pub fn matches(&self, metadata: &Value) -> bool {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        match metadata {
            Value::Object(object) => self.matches_object(object),
            _ => self.matches_object(&EMPTY),
        }
    }

    /// Whether a document with this metadata object matches.
    pub fn matches_object(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Filter::And(filters) => filters.iter().all(|filter| filter.matches_object(metadata)),
            Filter::Or(filters) => filters.iter().any(|filter| filter.matches_object(metadata)),
            Filter::Compare { key, op, value } => {
                let Some(actual) = metadata.get(key) else {
                    return false;
                };
                compare(actual, *op, value)
            }
        }
    }
}

fn compare(actual: &Value, op: CompareOp, expected: &FilterValue) -> bool {
    use std::cmp::Ordering;
    match (op, expected) {
        (CompareOp::Eq, FilterValue::Scalar(scalar)) => scalar.equals(actual) == Some(true),
        (CompareOp::Ne, FilterValue::Scalar(scalar)) => scalar.equals(actual) == Some(false),
        (CompareOp::Gt, FilterValue::Scalar(scalar)) => {
            scalar.order(actual) == Some(Ordering::Greater)
        }
        (CompareOp::Gte, FilterValue::Scalar(scalar)) => {
            matches!(
                scalar.order(actual),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        (CompareOp::Lt, FilterValue::Scalar(scalar)) => {
            scalar.order(actual) == Some(Ordering::Less)
        }
        (CompareOp::Lte, FilterValue::Scalar(scalar)) => {
            matches!(scalar.order(actual), Some(Ordering::Less | Ordering::Equal))
        }
        (CompareOp::In, FilterValue::List(list)) => list
            .iter()
            .any(|scalar| scalar.equals(actual) == Some(true)),
        (CompareOp::Nin, FilterValue::List(list)) => {
            // Not in the list, and comparable with it: a value of another type than every
            // element is a type mismatch, which never matches.
            if Scalar::from_json(actual).is_none() {
                return false;
            }
            let mut comparable = list.is_empty();
            for scalar in list {
                match scalar.equals(actual) {
                    Some(true) => return false,
                    Some(false) => comparable = true,
                    None => {}
                }
            }
            comparable
        }
        // The parser pairs lists with in/nin and scalars with the rest.
        _ => false,
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn invalid(path: String, reason: impl Into<String>) -> MemoryError {
    MemoryError::InvalidFilter {
        path: if path.is_empty() {
            "filter".to_owned()
        } else {
            path
        },
        reason: reason.into(),
    }
}

fn parse_at(value: &Value, path: &str) -> Result<Filter, MemoryError> {
    let Value::Object(object) = value else {
        return Err(invalid(path.to_owned(), "expected an object"));
    };
    let type_path = join(path, "type");
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(invalid(type_path, "expected a string")),
        None => return Err(invalid(type_path, "missing")),
    };
    match kind {
        "and" | "or" => {
            if let Some(field) = object
                .keys()
                .find(|field| !matches!(field.as_str(), "type" | "filters"))
            {
                return Err(invalid(
                    join(path, field),
                    "unknown field in a compound filter",
                ));
            }
            let filters_path = join(path, "filters");
            let Some(inner) = object.get("filters") else {
                return Err(invalid(filters_path, "missing"));
            };
            let Value::Array(inner) = inner else {
                return Err(invalid(filters_path, "expected an array of filters"));
            };
            let filters = inner
                .iter()
                .enumerate()
                .map(|(index, filter)| parse_at(filter, &format!("{filters_path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if kind == "and" {
                Filter::And(filters)
            } else {
                Filter::Or(filters)
            })
        }
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" | "in" | "nin" => {
            if let Some(field) = object
                .keys()
                .find(|field| !matches!(field.as_str(), "type" | "key" | "value"))
            {
                return Err(invalid(
                    join(path, field),
                    "unknown field in a comparison filter",
                ));
            }
            let key_path = join(path, "key");
            let key = match object.get("key") {
                Some(Value::String(key)) => key.clone(),
                Some(_) => return Err(invalid(key_path, "expected a string")),
                None => return Err(invalid(key_path, "missing")),
            };
            let op = match kind {
                "eq" => CompareOp::Eq,
                "ne" => CompareOp::Ne,
                "gt" => CompareOp::Gt,
                "gte" => CompareOp::Gte,
                "lt" => CompareOp::Lt,
                "lte" => CompareOp::Lte,
                "in" => CompareOp::In,
                _ => CompareOp::Nin,
            };
            let value_path = join(path, "value");
            let Some(raw) = object.get("value") else {
                return Err(invalid(value_path, "missing"));
            };
            let value = match op {
                CompareOp::In | CompareOp::Nin => {
                    let Value::Array(items) = raw else {
                        return Err(invalid(value_path, format!("`{kind}` needs an array")));
                    };
                    let list = items
                        .iter()
                        .enumerate()
                        .map(|(index, item)| {
                            Scalar::from_json(item).ok_or_else(|| {
                                invalid(
                                    format!("{value_path}[{index}]"),
                                    "expected a string, number or boolean",
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    FilterValue::List(list)
                }
                _ => {
                    let scalar = Scalar::from_json(raw).ok_or_else(|| {
                        invalid(value_path.clone(), "expected a string, number or boolean")
                    })?;
                    let ordered = matches!(
                        op,
                        CompareOp::Gt | CompareOp::Gte | CompareOp::Lt | CompareOp::Lte
                    );
                    if ordered && matches!(scalar, Scalar::Bool(_)) {
                        return Err(invalid(
                            value_path,
                            format!("`{kind}` cannot order booleans"),
                        ));
                    }
                    FilterValue::Scalar(scalar)
                }
            };
            Ok(Filter::Compare { key, op, value })
        }
        other => Err(invalid(
            type_path,
            format!(
                "unknown type `{other}`; expected eq, ne, gt, gte, lt, lte, in, nin, and or or"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn evaluation_follows_the_rules() {
        let metadata = json!({
            "genre": "poetry", "year": 1999, "score": 2.5, "draft": false, "tags": ["a"],
        });
        // (filter, expected match)
        let cases = [
            (
                json!({"key": "genre", "type": "eq", "value": "poetry"}),
                true,
            ),
            (
                json!({"key": "genre", "type": "eq", "value": "prose"}),
                false,
            ),
            (
                json!({"key": "genre", "type": "ne", "value": "prose"}),
                true,
            ),
            (
                json!({"key": "missing", "type": "ne", "value": "prose"}),
                false,
            ),
            (
                json!({"key": "missing", "type": "nin", "value": ["prose"]}),
                false,
            ),
            (json!({"key": "year", "type": "eq", "value": 1999.0}), true),
            (json!({"key": "year", "type": "gt", "value": 1998}), true),
            (json!({"key": "year", "type": "gt", "value": 1999}), false),
            (json!({"key": "year", "type": "gte", "value": 1999}), true),
            (json!({"key": "year", "type": "lt", "value": 2000.5}), true),
            (json!({"key": "year", "type": "lte", "value": 1998}), false),
            (json!({"key": "score", "type": "lt", "value": 10}), true),
            (
                json!({"key": "genre", "type": "gt", "value": "poems"}),
                true,
            ),
            (
                json!({"key": "genre", "type": "lt", "value": "poems"}),
                false,
            ),
            (json!({"key": "draft", "type": "eq", "value": false}), true),
            (json!({"key": "draft", "type": "ne", "value": true}), true),
            // Type mismatches never match, not even `ne`.
            (json!({"key": "year", "type": "eq", "value": "1999"}), false),
            (json!({"key": "year", "type": "ne", "value": "1999"}), false),
            (json!({"key": "genre", "type": "gt", "value": 1}), false),
            (json!({"key": "tags", "type": "eq", "value": "a"}), false),
            (json!({"key": "draft", "type": "eq", "value": 0}), false),
            (
                json!({"key": "genre", "type": "in", "value": ["prose", "poetry"]}),
                true,
            ),
            (json!({"key": "genre", "type": "in", "value": []}), false),
            (
                json!({"key": "year", "type": "in", "value": [1, 1999]}),
                true,
            ),
            (
                json!({"key": "genre", "type": "nin", "value": ["prose"]}),
                true,
            ),
            (
                json!({"key": "genre", "type": "nin", "value": ["poetry"]}),
                false,
            ),
            (
                json!({"key": "genre", "type": "nin", "value": [1, 2]}),
                false,
            ),
            (json!({"key": "genre", "type": "nin", "value": []}), true),
            (json!({"type": "and", "filters": []}), true),
            (json!({"type": "or", "filters": []}), false),
            (
                json!({"type": "and", "filters": [
                    {"key": "genre", "type": "eq", "value": "poetry"},
                    {"type": "or", "filters": [
                        {"key": "year", "type": "lt", "value": 1900},
                        {"key": "draft", "type": "eq", "value": false},
                    ]},
                ]}),
                true,
            ),
            (
                json!({"type": "or", "filters": [
                    {"key": "missing", "type": "eq", "value": 1},
                    {"key": "year", "type": "gt", "value": 3000},
                ]}),
                false,
            ),
        ];
        for (index, (raw, expected)) in cases.iter().enumerate() {
            let filter = Filter::parse(raw).unwrap_or_else(|error| panic!("case {index}: {error}"));
            assert_eq!(filter.matches(&metadata), *expected, "case {index}: {raw}");
        }
    }

    #[test]
    fn errors_name_the_path_of_the_bad_part() {
        // (filter, expected path, a word the reason contains)
        let cases = [
            (json!("eq"), "filter", "object"),
            (json!({"key": "a", "value": 1}), "type", "missing"),
            (
                json!({"key": "a", "type": "like", "value": 1}),
                "type",
                "unknown type",
            ),
            (json!({"key": 1, "type": "eq", "value": 1}), "key", "string"),
            (json!({"type": "eq", "value": 1}), "key", "missing"),
            (json!({"key": "a", "type": "eq"}), "value", "missing"),
            (
                json!({"key": "a", "type": "eq", "value": null}),
                "value",
                "string",
            ),
            (
                json!({"key": "a", "type": "gt", "value": true}),
                "value",
                "booleans",
            ),
            (
                json!({"key": "a", "type": "in", "value": 1}),
                "value",
                "array",
            ),
            (
                json!({"key": "a", "type": "in", "value": [1, {}]}),
                "value[1]",
                "string",
            ),
            (
                json!({"key": "a", "type": "eq", "value": 1, "extra": 2}),
                "extra",
                "unknown field",
            ),
            (json!({"type": "and"}), "filters", "missing"),
            (json!({"type": "or", "filters": {}}), "filters", "array"),
            (
                json!({"type": "and", "filters": [
                    {"key": "a", "type": "eq", "value": 1},
                    {"key": "b", "type": "equals", "value": 1},
                ]}),
                "filters[1].type",
                "unknown type",
            ),
            (
                json!({"type": "or", "filters": [{"type": "and", "filters": [
                    {"key": "a", "type": "nin", "value": [[1]]},
                ]}]}),
                "filters[0].filters[0].value[0]",
                "string",
            ),
        ];
        for (raw, expected_path, reason_word) in cases {
            match Filter::parse(&raw) {
                Err(MemoryError::InvalidFilter { path, reason }) => {
                    assert_eq!(path, expected_path, "{raw}");
                    assert!(reason.contains(reason_word), "{raw}: {reason}");
                }
                other => panic!("{raw}: expected an invalid filter error, got {other:?}"),
            }
        }
    }

    #[test]
    fn metadata_that_is_not_an_object_has_no_keys() {
        let filter = Filter::parse(&json!({"key": "a", "type": "ne", "value": 1})).unwrap();
        assert!(!filter.matches(&json!(null)));
        assert!(!filter.matches(&json!([1])));
    }
}
