//! A flag's definition: its type, variants, the variant it serves by default, targeting rules
//! (conditions on the evaluation context, each serving a variant or a percentage split) and an
//! optional default split, what a rollout buckets by, and the kill switch. Checked whole and
//! compiled once ([`crate::evaluate::CompiledFlag`]), so an evaluation does no parsing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FlagError;

/// Most variants, rules, conditions per rule and values per condition a flag may have.
pub const MAX_VARIANTS: usize = 100;
pub const MAX_RULES: usize = 100;
pub const MAX_CONDITIONS: usize = 20;
pub const MAX_VALUES: usize = 1000;

/// What a flag's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    #[default]
    Boolean,
    String,
    Number,
    /// Any JSON value (OpenFeature's object flags).
    Object,
}

impl FlagKind {
    pub fn name(self) -> &'static str {
        match self {
            FlagKind::Boolean => "boolean",
            FlagKind::String => "string",
            FlagKind::Number => "number",
            FlagKind::Object => "object",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            FlagKind::Boolean => value.is_boolean(),
            FlagKind::String => value.is_string(),
            FlagKind::Number => value.is_number(),
            FlagKind::Object => !value.is_null(),
        }
    }
}

/// A comparison of one context attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// The attribute equals one of the values.
    In,
    NotIn,
    /// A string attribute contains, starts or ends with one of the values.
    Contains,
    StartsWith,
    EndsWith,
    /// A number attribute compared with the one value.
    Gt,
    Gte,
    Lt,
    Lte,
    /// The attribute is present (any value), or absent; no values.
    Exists,
    NotExists,
}

impl Operator {
    fn takes_values(self) -> bool {
        !matches!(self, Operator::Exists | Operator::NotExists)
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte
        )
    }

    fn is_textual(self) -> bool {
        matches!(
            self,
            Operator::Contains | Operator::StartsWith | Operator::EndsWith
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A context attribute: `targetingKey`, one the application sends (`email`, `plan`), or
    /// one the server sets from the caller's key (`$tenant`, `$user`, `$key`).
    pub attribute: String,
    pub op: Operator,
    #[serde(default)]
    pub values: Vec<Value>,
}

/// One share of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub variant: String,
    /// Relative to the split's other weights (percentages read best).
    pub weight: u32,
}

/// A targeting rule: when every condition holds, serve `variant`, or divide the matching
/// units by `split`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// All must hold; none: every context matches.
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<Split>>,
}

/// A flag's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSpec {
    #[serde(rename = "type", default)]
    pub kind: FlagKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kill switch: a disabled flag serves its default variant (reason `DISABLED`).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Variant name → value. A boolean flag without any gets `on` (true) and `off` (false).
    #[serde(default)]
    pub variants: BTreeMap<String, Value>,
    /// What is served when no rule matches (and there is no default split); `off` for a
    /// boolean flag without variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_variant: Option<String>,
    /// Tried in order; the first that matches decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// A split for contexts no rule matched (a percentage rollout), instead of the default
    /// variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<Split>>,
    /// The attribute splits hash (default `targetingKey`): `$user` or `$tenant` keeps a whole
    /// user's or tenant's traffic on one variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Strings, numbers and booleans returned with every evaluation (OFREP's `metadata`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
}

fn enabled_by_default() -> bool {
    true
}

/// Checks a flag key: 1-128 of letters, digits, `-`, `_`, `.`, `/`, `:`.
pub fn check_key(key: &str) -> Result<(), FlagError> {
    let fine = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'));
    if fine {
        Ok(())
    } else {
        Err(FlagError::invalid(
            "key",
            format!(
                "`{key}` is not a flag key: use 1-128 letters, digits, `-`, `_`, `.`, `/` or `:`"
            ),
        ))
    }
}

impl FlagSpec {
    /// Fills the defaults a definition may leave out and checks it whole; every error names
    /// its field.
    pub fn settle(mut self) -> Result<FlagSpec, FlagError> {
        if self.variants.is_empty() && self.kind == FlagKind::Boolean {
            self.variants = BTreeMap::from([
                ("off".to_string(), Value::Bool(false)),
                ("on".to_string(), Value::Bool(true)),
            ]);
            self.default_variant
                .get_or_insert_with(|| "off".to_string());
        }
        if self.variants.is_empty() {
            return Err(FlagError::invalid(
                "variants",
                "give the flag's variants: {\"name\": value, ...}",
            ));
        }
        if self.variants.len() > MAX_VARIANTS {
            return Err(FlagError::invalid(
                "variants",
                format!(
                    "{} variants; the most is {MAX_VARIANTS}",
                    self.variants.len()
                ),
            ));
        }
        for (name, value) in &self.variants {
            if name.is_empty() || name.len() > 64 {
                return Err(FlagError::invalid(
                    "variants",
                    "variant names are 1-64 characters",
                ));
            }
            if !self.kind.admits(value) {
                return Err(FlagError::invalid(
                    format!("variants.{name}"),
                    format!(
                        "a {} flag's variants are {}s",
                        self.kind.name(),
                        self.kind.name()
                    ),
                ));
            }
        }
        let Some(default_variant) = &self.default_variant else {
            return Err(FlagError::invalid(
                "default_variant",
                "name the variant served when no rule matches",
            ));
        };
        self.check_variant("default_variant", default_variant)?;
        if self.rules.len() > MAX_RULES {
            return Err(FlagError::invalid(
                "rules",
                format!("{} rules; the most is {MAX_RULES}", self.rules.len()),
            ));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let field = format!("rules[{index}]");
            match (&rule.variant, &rule.split) {
                (Some(variant), None) => {
                    self.check_variant(&format!("{field}.variant"), variant)?
                }
                (None, Some(split)) => self.check_split(&format!("{field}.split"), split)?,
                _ => {
                    return Err(FlagError::invalid(
                        field,
                        "give a rule a `variant` or a `split`, one of them",
                    ));
                }
            }
            if rule.when.len() > MAX_CONDITIONS {
                return Err(FlagError::invalid(
                    format!("{field}.when"),
                    format!("the most conditions a rule has is {MAX_CONDITIONS}"),
                ));
            }
            for (at, condition) in rule.when.iter().enumerate() {
                check_condition(&format!("{field}.when[{at}]"), condition)?;
            }
        }
        if let Some(split) = &self.split {
            self.check_split("split", split)?;
        }
        if let Some(attribute) = &self.bucket_by
            && attribute.is_empty()
        {
            return Err(FlagError::invalid(
                "bucket_by",
                "name an attribute, or leave it out for targetingKey",
            ));
        }
        for (name, value) in &self.metadata {
            if !(value.is_string() || value.is_number() || value.is_boolean()) {
                return Err(FlagError::invalid(
                    format!("metadata.{name}"),
                    "metadata values are strings, numbers or booleans",
                ));
            }
        }
        Ok(self)
    }

    fn check_variant(&self, field: &str, variant: &str) -> Result<(), FlagError> {
        if self.variants.contains_key(variant) {
            return Ok(());
        }
        let known = self.variants.keys().cloned().collect::<Vec<_>>().join(", ");
        Err(FlagError::invalid(
            field,
            format!("no variant `{variant}`; the flag's are: {known}"),
        ))
    }

    fn check_split(&self, field: &str, split: &[Split]) -> Result<(), FlagError> {
        if split.is_empty() || split.iter().all(|share| share.weight == 0) {
            return Err(FlagError::invalid(
                field,
                "give at least one share a weight above 0",
            ));
        }
        for (index, share) in split.iter().enumerate() {
            self.check_variant(&format!("{field}[{index}].variant"), &share.variant)?;
        }
        Ok(())
    }
}

fn check_condition(field: &str, condition: &Condition) -> Result<(), FlagError> {
    if condition.attribute.is_empty() {
        return Err(FlagError::invalid(
            format!("{field}.attribute"),
            "name the context attribute",
        ));
    }
    let values = &condition.values;
    if !condition.op.takes_values() {
        if !values.is_empty() {
            return Err(FlagError::invalid(
                format!("{field}.values"),
                "exists and not_exists take no values",
            ));
        }
        return Ok(());
    }
    if values.is_empty() || values.len() > MAX_VALUES {
        return Err(FlagError::invalid(
            format!("{field}.values"),
            format!("give 1 to {MAX_VALUES} values"),
        ));
    }
    if condition.op.is_numeric() && (values.len() != 1 || !values[0].is_number()) {
        return Err(FlagError::invalid(
            format!("{field}.values"),
            "a comparison takes one number",
        ));
    }
    if condition.op.is_textual() && !values.iter().all(Value::is_string) {
        return Err(FlagError::invalid(
            format!("{field}.values"),
            "contains, starts_with and ends_with take strings",
        ));
    }
    Ok(())
}
