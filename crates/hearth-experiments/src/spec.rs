//! An experiment's definition: what traffic it splits (requests naming a model alias, or
//! using a prompt template), its variants (each a model, a prompt version and sampling
//! parameters, with a weight; the first is the control), what a unit is (a user, a key, or an
//! id the application sends), a holdout, the feedback metrics it reads and its significance
//! level. Checked whole when defined; every error names its field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ExperimentError;

/// Most variants an experiment has.
pub const MAX_VARIANTS: usize = 20;
/// Most feedback metrics an experiment reads.
pub const MAX_METRICS: usize = 50;

/// The traffic an experiment splits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// Requests whose `model` is this name (a route alias, a local model).
    Model(String),
    /// Requests that use this prompt template (`prompt.id`).
    Prompt(String),
}

/// Whose traffic stays together: a unit sees one variant everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// The key's user, or the request's `user` field.
    #[default]
    User,
    /// The API key.
    Key,
    /// The id the application sends in the `X-Hearth-Unit` header.
    Header,
}

/// What a feedback metric's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Thumbs up, converted: the share of units with a true.
    Boolean,
    /// Ratings, amounts: the mean per unit.
    Numeric,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackMetric {
    pub name: String,
    pub kind: MetricKind,
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    /// Relative to the others (percentages read best); 0 takes no new units.
    pub weight: u32,
    /// The model this arm's requests go to (default: as the request asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt version this arm renders (prompt targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<u32>,
    /// Sampling parameters this arm sets (`temperature`, `max_tokens`, ...), over the
    /// request's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Value>,
}

/// An experiment's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub target: Target,
    /// The first is the control.
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub unit: Unit,
    /// The share of units (0-50 %) kept out of the experiment: they get the target unchanged
    /// and are not counted.
    #[serde(default)]
    pub holdout_percent: f64,
    /// Feedback metrics (`POST /v1/feedback`) the results read, beside the automatic ones.
    #[serde(default)]
    pub metrics: Vec<FeedbackMetric>,
    /// The significance level (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// For a prompt target: the label a stop with a winner moves to the winner's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_label: Option<String>,
}

fn default_alpha() -> f64 {
    0.05
}

/// Names of experiments, variants and metrics: 1-64 letters, digits, `-`, `_`, `.`.
pub fn check_name(field: &str, name: &str) -> Result<(), ExperimentError> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(ExperimentError::invalid(
            field,
            format!("`{name}` is not a name: use 1-64 letters, digits, `-`, `_` or `.`"),
        ))
    }
}

impl ExperimentSpec {
    pub fn check(&self) -> Result<(), ExperimentError> {
        match &self.target {
            Target::Model(name) | Target::Prompt(name) if name.is_empty() => {
                return Err(ExperimentError::invalid(
                    "target",
                    "name the model or the prompt whose traffic the experiment splits",
                ));
            }
            _ => {}
        }
        if self.variants.len() < 2 || self.variants.len() > MAX_VARIANTS {
            return Err(ExperimentError::invalid(
                "variants",
                format!("give 2 to {MAX_VARIANTS} variants; the first is the control"),
            ));
        }
        if self.variants.iter().all(|variant| variant.weight == 0) {
            return Err(ExperimentError::invalid(
                "variants",
                "give at least one variant a weight above 0",
            ));
        }
        for (index, variant) in self.variants.iter().enumerate() {
            let field = format!("variants[{index}]");
            check_name(&format!("{field}.name"), &variant.name)?;
            if self.variants[..index]
                .iter()
                .any(|earlier| earlier.name == variant.name)
            {
                return Err(ExperimentError::invalid(
                    format!("{field}.name"),
                    format!("two variants are named {}", variant.name),
                ));
            }
            if variant.prompt_version.is_some() && !matches!(self.target, Target::Prompt(_)) {
                return Err(ExperimentError::invalid(
                    format!("{field}.prompt_version"),
                    "only an experiment on a prompt target sets prompt versions",
                ));
            }
            if let Some(model) = &variant.model
                && model.is_empty()
            {
                return Err(ExperimentError::invalid(
                    format!("{field}.model"),
                    "name a model, or leave it out",
                ));
            }
        }
        if !(0.0..=50.0).contains(&self.holdout_percent) {
            return Err(ExperimentError::invalid(
                "holdout_percent",
                "a holdout is 0 to 50 percent of units",
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 0.2) {
            return Err(ExperimentError::invalid(
                "alpha",
                "a significance level above 0 and at most 0.2",
            ));
        }
        if self.metrics.len() > MAX_METRICS {
            return Err(ExperimentError::invalid(
                "metrics",
                format!("{MAX_METRICS} feedback metrics at most"),
            ));
        }
        for (index, metric) in self.metrics.iter().enumerate() {
            check_name(&format!("metrics[{index}].name"), &metric.name)?;
            if crate::AUTOMATIC_METRICS.contains(&metric.name.as_str()) {
                return Err(ExperimentError::invalid(
                    format!("metrics[{index}].name"),
                    format!(
                        "`{}` is measured automatically; name feedback otherwise",
                        metric.name
                    ),
                ));
            }
        }
        if self.promote_label.is_some() && !matches!(self.target, Target::Prompt(_)) {
            return Err(ExperimentError::invalid(
                "promote_label",
                "only an experiment on a prompt target promotes a label",
            ));
        }
        Ok(())
    }

    /// The weights, in variant order.
    pub fn weights(&self) -> Vec<u32> {
        self.variants.iter().map(|variant| variant.weight).collect()
    }
}
