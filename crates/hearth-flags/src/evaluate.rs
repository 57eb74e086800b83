//! Evaluation: a compiled flag against an evaluation context. Everything a rule needs is
//! resolved when the flag is compiled (variant indexes, typed comparison values), so an
//! evaluation is a few attribute lookups and comparisons, with no allocation on its way.

use serde_json::Value;

use crate::bucket;
use crate::spec::{Condition, FlagSpec, Operator, Rule, Split};

/// The attribute the OpenFeature SDKs send a unit's identity in.
pub const TARGETING_KEY: &str = "targetingKey";

/// What a flag is evaluated for: attributes by name (`targetingKey`, what the application
/// sends, and `$tenant`, `$user`, `$key` the server sets). A small list, searched in order:
/// contexts hold a handful of attributes, and comparing short names beats hashing them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    attributes: Vec<(String, Value)>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// A context whose `targetingKey` is `key`.
    pub fn for_key(key: impl Into<String>) -> Context {
        let mut context = Context::new();
        context.set(TARGETING_KEY, Value::String(key.into()));
        context
    }

    /// Sets an attribute, replacing one of the same name.
    pub fn set(&mut self, name: impl Into<String>, value: Value) -> &mut Context {
        let name = name.into();
        match self.attributes.iter_mut().find(|(known, _)| *known == name) {
            Some((_, slot)) => *slot = value,
            None => self.attributes.push((name, value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value)
    }

    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.attributes
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }
}

/// Why an evaluation gave what it gave (OpenFeature's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The flag has no rules and no split: its default variant, always.
    Static,
    /// A rule's conditions held and it named a variant.
    TargetingMatch,
    /// A split (a rule's, or the flag's default one) placed the unit.
    Split,
    /// No rule matched: the default variant.
    Default,
    /// The flag is switched off: its default variant.
    Disabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
        }
    }
}

/// Why a flag could not be evaluated (OpenFeature's error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    FlagNotFound,
    /// A split was reached and the context lacks the attribute it buckets by.
    TargetingKeyMissing,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }
}

/// One evaluation's result, borrowed from the compiled flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<'flag> {
    pub value: &'flag Value,
    pub variant: &'flag str,
    pub reason: Reason,
}

#[derive(Debug)]
struct CompiledSplit {
    weights: Vec<u32>,
    variants: Vec<usize>,
}

#[derive(Debug)]
enum Outcome {
    Variant(usize),
    Split(CompiledSplit),
}

/// Values an `in` condition matches, by type; sorted, so that long lists are searched by
/// halves.
#[derive(Debug, Default)]
struct ValueSet {
    strings: Vec<String>,
    numbers: Vec<f64>,
    booleans: Vec<bool>,
}

impl ValueSet {
    fn of(values: &[Value]) -> ValueSet {
        let mut set = ValueSet::default();
        for value in values {
            match value {
                Value::String(text) => set.strings.push(text.clone()),
                Value::Number(number) => set.numbers.extend(number.as_f64()),
                Value::Bool(flag) => set.booleans.push(*flag),
                _ => {}
            }
        }
        set.strings.sort();
        set.strings.dedup();
        set.numbers.sort_by(f64::total_cmp);
        set
    }

    fn contains(&self, value: &Value) -> bool {
        match value {
            Value::String(text) => {
                if self.strings.len() <= 8 {
                    self.strings.iter().any(|known| known == text)
                } else {
                    self.strings
                        .binary_search_by(|known| known.as_str().cmp(text))
                        .is_ok()
                }
            }
            Value::Number(number) => number
                .as_f64()
                .is_some_and(|number| self.numbers.contains(&number)),
            Value::Bool(flag) => self.booleans.contains(flag),
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Test {
    In(ValueSet),
    NotIn(ValueSet),
    Contains(Vec<String>),
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Compare(Operator, f64),
    Exists,
    NotExists,
}

#[derive(Debug)]
struct CompiledCondition {
    attribute: String,
    test: Test,
}

impl CompiledCondition {
    fn of(condition: &Condition) -> CompiledCondition {
        let strings = || {
            condition
                .values
                .iter()
                .filter_map(|value| value.as_str().map(str::to_string))
                .collect()
        };
        let number = || {
            condition
                .values
                .first()
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        };
        let test = match condition.op {
            Operator::In => Test::In(ValueSet::of(&condition.values)),
            Operator::NotIn => Test::NotIn(ValueSet::of(&condition.values)),
            Operator::Contains => Test::Contains(strings()),
            Operator::StartsWith => Test::StartsWith(strings()),
            Operator::EndsWith => Test::EndsWith(strings()),
            op @ (Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte) => {
                Test::Compare(op, number())
            }
            Operator::Exists => Test::Exists,
            Operator::NotExists => Test::NotExists,
        };
        CompiledCondition {
            attribute: condition.attribute.clone(),
            test,
        }
    }

    /// Whether the condition holds. A condition on an absent attribute does not hold (not
    /// even `not_in`), except `not_exists`.
    fn holds(&self, context: &Context) -> bool {
        let Some(value) = context
            .get(&self.attribute)
            .filter(|value| !value.is_null())
        else {
            return matches!(self.test, Test::NotExists);
        };
        let text = || value.as_str();
        match &self.test {
            Test::In(set) => set.contains(value),
            Test::NotIn(set) => !set.contains(value),
            Test::Contains(needles) => text()
                .is_some_and(|text| needles.iter().any(|needle| text.contains(needle.as_str()))),
            Test::StartsWith(prefixes) => text().is_some_and(|text| {
                prefixes
                    .iter()
                    .any(|prefix| text.starts_with(prefix.as_str()))
            }),
            Test::EndsWith(suffixes) => text().is_some_and(|text| {
                suffixes
                    .iter()
                    .any(|suffix| text.ends_with(suffix.as_str()))
            }),
            Test::Compare(op, threshold) => value.as_f64().is_some_and(|number| match op {
                Operator::Gt => number > *threshold,
                Operator::Gte => number >= *threshold,
                Operator::Lt => number < *threshold,
                _ => number <= *threshold,
            }),
            Test::Exists => true,
            Test::NotExists => false,
        }
    }
}

#[derive(Debug)]
struct CompiledRule {
    conditions: Vec<CompiledCondition>,
    outcome: Outcome,
}

/// A flag ready to evaluate, with the definition it was compiled from.
#[derive(Debug)]
pub struct CompiledFlag {
    pub key: String,
    pub spec: FlagSpec,
    names: Vec<String>,
    values: Vec<Value>,
    default: usize,
    rules: Vec<CompiledRule>,
    split: Option<CompiledSplit>,
    bucket_by: String,
}

impl CompiledFlag {
    /// Compiles a settled definition (see [`FlagSpec::settle`]).
    pub fn compile(key: &str, spec: FlagSpec) -> CompiledFlag {
        let names: Vec<String> = spec.variants.keys().cloned().collect();
        let values: Vec<Value> = spec.variants.values().cloned().collect();
        let index = |variant: &str| {
            names
                .iter()
                .position(|name| name == variant)
                .expect("a settled flag names only its own variants")
        };
        let split_of = |split: &[Split]| CompiledSplit {
            weights: split.iter().map(|share| share.weight).collect(),
            variants: split.iter().map(|share| index(&share.variant)).collect(),
        };
        let rule_of = |rule: &Rule| CompiledRule {
            conditions: rule.when.iter().map(CompiledCondition::of).collect(),
            outcome: match (&rule.variant, &rule.split) {
                (Some(variant), _) => Outcome::Variant(index(variant)),
                (None, split) => Outcome::Split(split_of(split.as_deref().unwrap_or(&[]))),
            },
        };
        CompiledFlag {
            key: key.to_string(),
            default: index(spec.default_variant.as_deref().unwrap_or_default()),
            rules: spec.rules.iter().map(rule_of).collect(),
            split: spec.split.as_deref().map(split_of),
            bucket_by: spec
                .bucket_by
                .clone()
                .unwrap_or_else(|| TARGETING_KEY.to_string()),
            names,
            values,
            spec,
        }
    }

    fn served(&self, variant: usize, reason: Reason) -> Evaluation<'_> {
        Evaluation {
            value: &self.values[variant],
            variant: &self.names[variant],
            reason,
        }
    }

    fn place(&self, split: &CompiledSplit, context: &Context) -> Result<usize, ErrorCode> {
        let unit = match context.get(&self.bucket_by) {
            Some(Value::String(text)) if !text.is_empty() => bucket::bucket(&self.key, text),
            Some(Value::Number(number)) => bucket::bucket(&self.key, &number.to_string()),
            _ => return Err(ErrorCode::TargetingKeyMissing),
        };
        let share = bucket::pick(&split.weights, unit).expect("a settled split has a weight");
        Ok(split.variants[share])
    }

    /// Evaluates the flag for `context`.
    pub fn evaluate(&self, context: &Context) -> Result<Evaluation<'_>, ErrorCode> {
        if !self.spec.enabled {
            return Ok(self.served(self.default, Reason::Disabled));
        }
        for rule in &self.rules {
            if rule
                .conditions
                .iter()
                .all(|condition| condition.holds(context))
            {
                return match &rule.outcome {
                    Outcome::Variant(variant) => Ok(self.served(*variant, Reason::TargetingMatch)),
                    Outcome::Split(split) => {
                        Ok(self.served(self.place(split, context)?, Reason::Split))
                    }
                };
            }
        }
        match &self.split {
            Some(split) => Ok(self.served(self.place(split, context)?, Reason::Split)),
            None if self.rules.is_empty() => Ok(self.served(self.default, Reason::Static)),
            None => Ok(self.served(self.default, Reason::Default)),
        }
    }

    /// The default variant's value (what a caller falls back to on an error).
    pub fn default_value(&self) -> &Value {
        &self.values[self.default]
    }
}
