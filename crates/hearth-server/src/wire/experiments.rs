//! The JSON shapes of experiments under `/v1/experiments` (a definition as the experiments
//! crate keeps it, an experiment as it stands, its results with their statistics) and of
//! feedback (`POST /v1/feedback`).

use std::collections::HashMap;

use hearth_experiments::{Comparison, Experiment, ExperimentSpec, MetricKind, Results};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// An experiment's definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentIn {
    /// 1-64 letters, digits, `-`, `_`, `.`; on `PUT`, the path's name when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"model": "support-bot"}` (requests naming that model) or `{"prompt": "support"}`
    /// (requests using that prompt template).
    #[schema(value_type = Object)]
    pub target: Value,
    /// 2-20 arms, the first the control: `{"name", "weight", "model"?, "prompt_version"?,
    /// "parameters"?}`.
    #[schema(value_type = Vec<Object>, min_items = 2, max_items = 20)]
    pub variants: Vec<Value>,
    /// What keeps traffic together: `user` (default: the key's user, or the request's `user`),
    /// `key`, or `header` (`X-Hearth-Unit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Units (0-50 %) kept out and served the target unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_percent: Option<f64>,
    /// Feedback metrics the results read: `{"name", "kind": "boolean" | "numeric"}`.
    #[schema(value_type = Option<Vec<Object>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Value>>,
    /// The significance level (default 0.05).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// For a prompt target: the label a stop with a winner moves to the winner's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote_label: Option<String>,
}

impl ExperimentIn {
    /// The definition; a field the experiments crate cannot read is a 400 naming it.
    pub fn into_spec(self) -> Result<ExperimentSpec, ApiError> {
        super::into_domain(
            &self,
            "name",
            &["target", "variants", "unit", "metrics"],
            "the experiment",
        )
    }
}

/// An experiment as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentOut {
    /// `experiment`.
    pub object: &'static str,
    pub name: String,
    /// draft, running, paused or stopped.
    pub status: &'static str,
    pub winner: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub definition: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
}

impl From<Experiment> for ExperimentOut {
    fn from(experiment: Experiment) -> ExperimentOut {
        let definition = match serde_json::to_value(&experiment.spec) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let time = hearth_time::rfc3339_from_unix_millis;
        ExperimentOut {
            object: "experiment",
            name: experiment.name,
            status: experiment.status.as_str(),
            winner: experiment.winner,
            definition,
            created_at: time(experiment.created_at_ms),
            updated_at: time(experiment.updated_at_ms),
            started_at: experiment.started_at_ms.map(time),
            stopped_at: experiment.stopped_at_ms.map(time),
        }
    }
}

/// A ramp: new weights by variant name (the others keep theirs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightsIn {
    pub weights: HashMap<String, u32>,
}

/// How an experiment ends.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopIn {
    /// The variant that serves the whole target from now (and, for a prompt target with
    /// `promote_label`, the version that label moves to). Absent: the target goes back to
    /// what requests ask for.
    pub winner: Option<String>,
}

/// Feedback on a request an experiment served.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackIn {
    /// The request's `x-request-id` (every answer carries it).
    pub request_id: Option<String>,
    /// Or the answer's own id (`chatcmpl-...`, `resp_...`).
    pub response_id: Option<String>,
    /// A metric the experiment declares.
    pub metric: String,
    /// true/false for a boolean metric, a number for a numeric one.
    pub value: Value,
}

/// Where feedback went.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackOut {
    /// `feedback`.
    pub object: &'static str,
    pub experiment: String,
    pub variant: String,
    pub request_id: String,
}

/// One variant against the control.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparisonOut {
    /// The variant's mean minus the control's.
    pub difference: f64,
    /// The difference relative to the control's mean.
    pub relative: Option<f64>,
    /// The interval at 1 - alpha for one look, and its p-value (Welch's t-test for numeric
    /// metrics, the two-proportion z-test for boolean ones).
    pub interval: [f64; 2],
    pub p_value: f64,
    pub significant: bool,
    /// The always-valid interval (a normal-mixture confidence sequence): look as often as you
    /// like.
    pub sequential_interval: [f64; 2],
    pub sequentially_significant: bool,
    /// The smallest difference these units detect with 80 % power.
    pub minimum_detectable_effect: f64,
}

impl ComparisonOut {
    fn of(comparison: &Comparison, alpha: f64) -> ComparisonOut {
        ComparisonOut {
            difference: comparison.difference,
            relative: comparison.relative,
            interval: [comparison.interval.0, comparison.interval.1],
            p_value: comparison.p_value,
            significant: comparison.significant(alpha),
            sequential_interval: [
                comparison.sequential_interval.0,
                comparison.sequential_interval.1,
            ],
            sequentially_significant: comparison.sequentially_significant(),
            minimum_detectable_effect: comparison.minimum_detectable_effect,
        }
    }
}

/// One variant's value of one metric.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantMetricOut {
    pub variant: String,
    /// Units with a value (for boolean feedback: every exposed unit).
    pub units: u64,
    /// The mean of the units' values (a boolean's: the share of units with a true).
    pub mean: f64,
    /// Against the control; absent for the control itself and until each side has data.
    pub versus_control: Option<ComparisonOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricOut {
    pub name: String,
    /// boolean or numeric.
    pub kind: &'static str,
    pub variants: Vec<VariantMetricOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExposureOut {
    pub variant: String,
    pub units: u64,
    pub requests: u64,
}

/// An experiment's results so far, per unit (a unit's requests are averaged first).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsOut {
    /// `experiment.results`.
    pub object: &'static str,
    pub experiment: ExperimentOut,
    pub control: String,
    pub alpha: f64,
    pub exposures: Vec<ExposureOut>,
    /// The chi-square p-value of the units per variant against the weights.
    pub sample_ratio_p_value: Option<f64>,
    /// True when that p-value is under 0.001: the split or the recording is broken, and the
    /// comparisons cannot be trusted.
    pub sample_ratio_mismatch: bool,
    pub metrics: Vec<MetricOut>,
}

impl From<Results> for ResultsOut {
    fn from(results: Results) -> ResultsOut {
        let alpha = results.experiment.spec.alpha;
        let control = results.experiment.spec.variants[0].name.clone();
        let sample_ratio_mismatch = results.sample_ratio_mismatch();
        ResultsOut {
            object: "experiment.results",
            control,
            alpha,
            exposures: results
                .exposures
                .iter()
                .map(|(variant, units, requests)| ExposureOut {
                    variant: variant.clone(),
                    units: *units,
                    requests: *requests,
                })
                .collect(),
            sample_ratio_p_value: results.sample_ratio_p_value,
            sample_ratio_mismatch,
            metrics: results
                .metrics
                .iter()
                .map(|metric| MetricOut {
                    name: metric.name.clone(),
                    kind: match metric.kind {
                        MetricKind::Boolean => "boolean",
                        MetricKind::Numeric => "numeric",
                    },
                    variants: metric
                        .variants
                        .iter()
                        .map(|(variant, summary, comparison)| VariantMetricOut {
                            variant: variant.clone(),
                            units: summary.count,
                            mean: summary.mean(),
                            versus_control: comparison
                                .as_ref()
                                .map(|comparison| ComparisonOut::of(comparison, alpha)),
                        })
                        .collect(),
                })
                .collect(),
            experiment: results.experiment.into(),
        }
    }
}
