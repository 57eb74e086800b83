//! Experiments: a split of a model alias's or a prompt template's traffic between variants
//! (a model, a prompt version, sampling parameters), sticky per unit (a user, a key, or an id
//! the application sends) by the same hashing as flag rollouts, with a holdout; every
//! assigned request's latency, time to first token, tokens, cost, errors and cache hits
//! recorded, feedback from applications joined to the request's variant, and results with
//! honest statistics (`stats.rs`): per unit first, Welch's t-test and the two-proportion
//! test against the control, always-valid intervals, the minimum detectable effect and a
//! sample-ratio check.
//!
//! Definitions and states live in the store and in memory (one snapshot, replaced whole on a
//! change), so assigning a request reads no store; exposures are written in batches by a
//! background writer. Knows nothing of HTTP.

mod error;
pub mod spec;
pub mod stats;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hearth_store::{ExperimentRow, ExposureKey, ExposureRow, FeedbackRow, Store, VariantSums};
use tokio::sync::mpsc;

pub use error::ExperimentError;
pub use spec::{ExperimentSpec, FeedbackMetric, MetricKind, Target, Unit, Variant};
pub use stats::{Comparison, Summary};

/// What every exposed request measures, by name (`error` and `cache_hit` are booleans): the
/// exposure rows' measured columns.
pub const AUTOMATIC_METRICS: [&str; 7] = hearth_store::EXPOSURE_METRICS;

const BOOLEAN_AUTOMATIC: [&str; 2] = ["error", "cache_hit"];

/// The p-value under which the assignment counts are reported as a sample-ratio mismatch.
pub const SAMPLE_RATIO_ALARM: f64 = 0.001;

/// Where an experiment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Defined; assigns nothing yet.
    Draft,
    Running,
    /// Assigns nothing; its data stays.
    Paused,
    /// Over: with a winner, the winner serves the whole target from now.
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "running" => Status::Running,
            "paused" => Status::Paused,
            "stopped" => Status::Stopped,
            _ => Status::Draft,
        }
    }
}

/// An experiment as it stands.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    pub spec: ExperimentSpec,
    pub status: Status,
    pub winner: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub stopped_at_ms: Option<i64>,
}

impl Experiment {
    fn row(&self, tenant: &str) -> ExperimentRow {
        ExperimentRow {
            tenant_id: tenant.to_string(),
            name: self.name.clone(),
            definition: serde_json::to_string(&self.spec).expect("a definition serializes"),
            status: self.status.as_str().to_string(),
            winner: self.winner.clone(),
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            started_at_ms: self.started_at_ms,
            stopped_at_ms: self.stopped_at_ms,
        }
    }

    /// The variant a stop declared the winner.
    pub fn winning_variant(&self) -> Option<&Variant> {
        let winner = self.winner.as_deref()?;
        self.spec
            .variants
            .iter()
            .find(|variant| variant.name == winner)
    }
}

/// The identities a request offers as its unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Units<'a> {
    /// The key's user, or else the request's `user` field.
    pub user: Option<&'a str>,
    pub key: Option<&'a str>,
    /// The `X-Hearth-Unit` header.
    pub header: Option<&'a str>,
}

/// What an assigned request gets.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub experiment: String,
    pub variant: Variant,
    pub unit: String,
    /// False for a stopped experiment's winner, which serves everyone and records nothing.
    pub recorded: bool,
}

/// What an assigned request measured, for its exposure row.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub request_id: String,
    pub response_id: Option<String>,
    pub at_ms: i64,
    pub latency_ms: i64,
    pub time_to_first_token_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micro_usd: i64,
    pub error: bool,
    pub cache_hit: bool,
}

/// One metric's results: each variant's summary, and each non-control variant against the
/// control.
#[derive(Debug, Clone)]
pub struct MetricResult {
    pub name: String,
    pub kind: MetricKind,
    pub variants: Vec<(String, Summary, Option<Comparison>)>,
}

/// An experiment's results.
#[derive(Debug, Clone)]
pub struct Results {
    pub experiment: Experiment,
    /// Per variant, in definition order: units and requests exposed.
    pub exposures: Vec<(String, u64, u64)>,
    /// The assignment counts' chi-square p-value against the weights (None: too few).
    pub sample_ratio_p_value: Option<f64>,
    pub metrics: Vec<MetricResult>,
}

impl Results {
    /// The assignment counts disagree with the weights: the comparisons cannot be trusted.
    pub fn sample_ratio_mismatch(&self) -> bool {
        self.sample_ratio_p_value
            .is_some_and(|p| p < SAMPLE_RATIO_ALARM)
    }
}

type Snapshot = HashMap<String, Vec<Arc<Experiment>>>;

/// Every tenant's experiments. Cheap to clone.
#[derive(Clone)]
pub struct Experiments {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    snapshot: RwLock<Arc<Snapshot>>,
    writes: tokio::sync::Mutex<()>,
    exposures: mpsc::Sender<Message>,
}

/// What the exposure writer is sent.
#[expect(
    clippy::large_enum_variant,
    reason = "exposures are nearly every message; boxing them would allocate once more per request"
)]
enum Message {
    Exposure(ExposureRow),
    /// Write what is queued, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl std::fmt::Debug for Experiments {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Experiments")
            .finish_non_exhaustive()
    }
}

/// Exposures waiting to be written; more are dropped (and counted) rather than held.
const EXPOSURE_QUEUE: usize = 16_384;
const EXPOSURE_BATCH: usize = 512;
const EXPOSURE_WAIT: Duration = Duration::from_millis(200);

impl Experiments {
    /// Loads every experiment and starts the exposure writer.
    pub async fn open(store: Store) -> Result<Experiments, ExperimentError> {
        let mut snapshot = Snapshot::new();
        for row in store.experiments().await? {
            let spec: ExperimentSpec = serde_json::from_str(&row.definition).map_err(|error| {
                ExperimentError::Conflict(format!(
                    "the stored experiment {}/{} cannot be read: {error}",
                    row.tenant_id, row.name
                ))
            })?;
            snapshot
                .entry(row.tenant_id)
                .or_default()
                .push(Arc::new(Experiment {
                    name: row.name,
                    spec,
                    status: Status::parse(&row.status),
                    winner: row.winner,
                    created_at_ms: row.created_at_ms,
                    updated_at_ms: row.updated_at_ms,
                    started_at_ms: row.started_at_ms,
                    stopped_at_ms: row.stopped_at_ms,
                }));
        }
        let (sender, receiver) = mpsc::channel(EXPOSURE_QUEUE);
        tokio::spawn(write_exposures(store.clone(), receiver));
        Ok(Experiments {
            inner: Arc::new(Inner {
                store,
                snapshot: RwLock::new(Arc::new(snapshot)),
                writes: tokio::sync::Mutex::new(()),
                exposures: sender,
            }),
        })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, tenant: &str, experiment: Option<Experiment>, name: &str) {
        let current = self.snapshot();
        let mut next = Snapshot::clone(&current);
        let list = next.entry(tenant.to_string()).or_default();
        list.retain(|known| known.name != name);
        if let Some(experiment) = experiment {
            list.push(Arc::new(experiment));
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        next.retain(|_, list| !list.is_empty());
        *self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }

    pub fn list(&self, tenant: &str) -> Vec<Experiment> {
        self.snapshot()
            .get(tenant)
            .map(|list| {
                list.iter()
                    .map(|experiment| Experiment::clone(experiment))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn get(&self, tenant: &str, name: &str) -> Result<Experiment, ExperimentError> {
        self.snapshot()
            .get(tenant)
            .and_then(|list| list.iter().find(|experiment| experiment.name == name))
            .map(|experiment| Experiment::clone(experiment))
            .ok_or_else(|| ExperimentError::NotFound(name.to_string()))
    }

    /// Defines an experiment (a draft), or replaces a draft's definition.
    pub async fn define(
        &self,
        tenant: &str,
        name: &str,
        spec: ExperimentSpec,
        at_ms: i64,
    ) -> Result<Experiment, ExperimentError> {
        spec::check_name("name", name)?;
        spec.check()?;
        let _write = self.inner.writes.lock().await;
        let existing = self.get(tenant, name).ok();
        if let Some(existing) = &existing
            && existing.status != Status::Draft
        {
            return Err(ExperimentError::Conflict(format!(
                "experiment {name} is {}: only a draft's definition changes (ramp its weights \
                 with PATCH, or define a new experiment)",
                existing.status.as_str()
            )));
        }
        let experiment = Experiment {
            name: name.to_string(),
            spec,
            status: Status::Draft,
            winner: None,
            created_at_ms: existing.as_ref().map_or(at_ms, |known| known.created_at_ms),
            updated_at_ms: at_ms,
            started_at_ms: None,
            stopped_at_ms: None,
        };
        self.save(tenant, experiment).await
    }

    async fn save(
        &self,
        tenant: &str,
        experiment: Experiment,
    ) -> Result<Experiment, ExperimentError> {
        self.inner
            .store
            .put_experiment(&experiment.row(tenant))
            .await?;
        self.replace(tenant, Some(experiment.clone()), &experiment.name.clone());
        Ok(experiment)
    }

    /// Starts a draft or resumes a paused experiment. Two running experiments may not split
    /// the same target.
    pub async fn start(
        &self,
        tenant: &str,
        name: &str,
        at_ms: i64,
    ) -> Result<Experiment, ExperimentError> {
        let _write = self.inner.writes.lock().await;
        let mut experiment = self.get(tenant, name)?;
        if !matches!(experiment.status, Status::Draft | Status::Paused) {
            return Err(ExperimentError::Conflict(format!(
                "experiment {name} is {}; a draft starts, a paused one resumes",
                experiment.status.as_str()
            )));
        }
        if let Some(other) = self.list(tenant).into_iter().find(|other| {
            other.name != name
                && other.spec.target == experiment.spec.target
                && (other.status == Status::Running
                    || (other.status == Status::Stopped && other.winner.is_some()))
        }) {
            return Err(ExperimentError::Conflict(format!(
                "experiment {} already decides this target ({}); stop it without a winner or \
                 remove it first",
                other.name,
                other.status.as_str()
            )));
        }
        experiment.status = Status::Running;
        experiment.started_at_ms.get_or_insert(at_ms);
        experiment.updated_at_ms = at_ms;
        self.save(tenant, experiment).await
    }

    pub async fn pause(
        &self,
        tenant: &str,
        name: &str,
        at_ms: i64,
    ) -> Result<Experiment, ExperimentError> {
        let _write = self.inner.writes.lock().await;
        let mut experiment = self.get(tenant, name)?;
        if experiment.status != Status::Running {
            return Err(ExperimentError::Conflict(format!(
                "experiment {name} is {}; only a running one pauses",
                experiment.status.as_str()
            )));
        }
        experiment.status = Status::Paused;
        experiment.updated_at_ms = at_ms;
        self.save(tenant, experiment).await
    }

    /// Ends an experiment; with a winner, the winner serves the whole target from now on.
    pub async fn stop(
        &self,
        tenant: &str,
        name: &str,
        winner: Option<&str>,
        at_ms: i64,
    ) -> Result<Experiment, ExperimentError> {
        let _write = self.inner.writes.lock().await;
        let mut experiment = self.get(tenant, name)?;
        if experiment.status == Status::Stopped {
            return Err(ExperimentError::Conflict(format!(
                "experiment {name} is stopped already"
            )));
        }
        if let Some(winner) = winner
            && !experiment
                .spec
                .variants
                .iter()
                .any(|variant| variant.name == winner)
        {
            return Err(ExperimentError::invalid(
                "winner",
                format!("experiment {name} has no variant {winner}"),
            ));
        }
        experiment.status = Status::Stopped;
        experiment.winner = winner.map(str::to_string);
        experiment.stopped_at_ms = Some(at_ms);
        experiment.updated_at_ms = at_ms;
        self.save(tenant, experiment).await
    }

    /// Changes the weights (a ramp): new units are placed by them; units already placed keep
    /// their variant where its share did not shrink.
    pub async fn set_weights(
        &self,
        tenant: &str,
        name: &str,
        weights: &HashMap<String, u32>,
        at_ms: i64,
    ) -> Result<Experiment, ExperimentError> {
        let _write = self.inner.writes.lock().await;
        let mut experiment = self.get(tenant, name)?;
        if experiment.status == Status::Stopped {
            return Err(ExperimentError::Conflict(format!(
                "experiment {name} is stopped"
            )));
        }
        for variant_name in weights.keys() {
            if !experiment
                .spec
                .variants
                .iter()
                .any(|variant| &variant.name == variant_name)
            {
                return Err(ExperimentError::invalid(
                    format!("weights.{variant_name}"),
                    format!("experiment {name} has no such variant"),
                ));
            }
        }
        for variant in &mut experiment.spec.variants {
            if let Some(weight) = weights.get(&variant.name) {
                variant.weight = *weight;
            }
        }
        experiment.spec.check()?;
        experiment.updated_at_ms = at_ms;
        self.save(tenant, experiment).await
    }

    pub async fn delete(&self, tenant: &str, name: &str) -> Result<(), ExperimentError> {
        let _write = self.inner.writes.lock().await;
        if !self.inner.store.delete_experiment(tenant, name).await? {
            return Err(ExperimentError::NotFound(name.to_string()));
        }
        self.replace(tenant, None, name);
        Ok(())
    }

    /// The variant a request of the tenant for `target` gets: a running experiment's (by the
    /// unit's bucket; none for a holdout or a request without its unit), or a stopped one's
    /// winner (for everyone). `None`: the request goes as it is.
    pub fn assign(&self, tenant: &str, target: &Target, units: Units<'_>) -> Option<Assignment> {
        let snapshot = self.snapshot();
        let experiment = snapshot.get(tenant)?.iter().find(|experiment| {
            &experiment.spec.target == target
                && (experiment.status == Status::Running
                    || (experiment.status == Status::Stopped && experiment.winner.is_some()))
        })?;
        if experiment.status == Status::Stopped {
            return experiment.winning_variant().map(|variant| Assignment {
                experiment: experiment.name.clone(),
                variant: variant.clone(),
                unit: String::new(),
                recorded: false,
            });
        }
        let unit = match experiment.spec.unit {
            Unit::User => units.user,
            Unit::Key => units.key,
            Unit::Header => units.header,
        }
        .filter(|unit| !unit.is_empty())?;
        let bucket = hearth_flags::bucket::bucket(&experiment.name, unit);
        // The holdout is the first buckets; the variants share the rest by weight.
        let holdout = (experiment.spec.holdout_percent * 100.0).round() as u32;
        if bucket < holdout {
            return None;
        }
        let rescaled = ((u64::from(bucket - holdout) * u64::from(hearth_flags::bucket::BUCKETS))
            / u64::from(hearth_flags::bucket::BUCKETS - holdout)) as u32;
        let index = hearth_flags::bucket::pick(&experiment.spec.weights(), rescaled)?;
        Some(Assignment {
            experiment: experiment.name.clone(),
            variant: experiment.spec.variants[index].clone(),
            unit: unit.to_string(),
            recorded: true,
        })
    }

    /// Queues an assigned request's exposure for the background writer. A full queue drops
    /// it (results are a sample; the request is never held up).
    pub fn record(&self, tenant: &str, assignment: &Assignment, measured: Measured) -> bool {
        if !assignment.recorded {
            return false;
        }
        let row = ExposureRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_string(),
            experiment: assignment.experiment.clone(),
            variant: assignment.variant.name.clone(),
            unit: assignment.unit.clone(),
            request_id: measured.request_id,
            response_id: measured.response_id,
            at_ms: measured.at_ms,
            latency_ms: measured.latency_ms,
            time_to_first_token_ms: measured.time_to_first_token_ms,
            prompt_tokens: measured.prompt_tokens,
            completion_tokens: measured.completion_tokens,
            cost_micro_usd: measured.cost_micro_usd,
            error: measured.error,
            cache_hit: measured.cache_hit,
        };
        self.inner
            .exposures
            .try_send(Message::Exposure(row))
            .is_ok()
    }

    /// Waits until every exposure queued before it has been written.
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self
            .inner
            .exposures
            .send(Message::Flush(done))
            .await
            .is_ok()
        {
            let _ = written.await;
        }
    }

    /// Records feedback on an exposed request (by its request id or response id): joined to
    /// the request's experiment, variant and unit.
    pub async fn feedback(
        &self,
        tenant: &str,
        id: &str,
        metric: &str,
        value: f64,
        at_ms: i64,
    ) -> Result<ExposureKey, ExperimentError> {
        if !value.is_finite() {
            return Err(ExperimentError::invalid(
                "value",
                "give a finite number or a boolean",
            ));
        }
        // Feedback may come right after the answer, before its exposure's batch is written.
        let mut key = self.inner.store.exposure(tenant, id).await?;
        if key.is_none() {
            self.flush().await;
            key = self.inner.store.exposure(tenant, id).await?;
        }
        let Some(key) = key else {
            return Err(ExperimentError::NotFound(format!(
                "request {id}: no experiment of this tenant served it"
            )));
        };
        let experiment = self.get(tenant, &key.experiment)?;
        let Some(declared) = experiment
            .spec
            .metrics
            .iter()
            .find(|known| known.name == metric)
        else {
            let known = experiment
                .spec
                .metrics
                .iter()
                .map(|known| known.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ExperimentError::invalid(
                "metric",
                format!(
                    "experiment {} reads no metric {metric}; it reads: {known}",
                    experiment.name
                ),
            ));
        };
        if declared.kind == MetricKind::Boolean && value != 0.0 && value != 1.0 {
            return Err(ExperimentError::invalid(
                "value",
                format!("{metric} is a boolean metric: send true or false"),
            ));
        }
        self.inner
            .store
            .insert_feedback(&FeedbackRow {
                id: uuid::Uuid::now_v7().to_string(),
                tenant_id: tenant.to_string(),
                key: key.clone(),
                metric: metric.to_string(),
                value,
                at_ms,
            })
            .await?;
        Ok(key)
    }

    /// The experiment's results so far.
    pub async fn results(&self, tenant: &str, name: &str) -> Result<Results, ExperimentError> {
        let experiment = self.get(tenant, name)?;
        let store = &self.inner.store;
        let counts = store.exposure_counts(tenant, name).await?;
        let variants = &experiment.spec.variants;
        let exposures: Vec<(String, u64, u64)> = variants
            .iter()
            .map(|variant| {
                let (units, requests) = counts
                    .iter()
                    .find(|(known, _, _)| *known == variant.name)
                    .map_or((0, 0), |(_, units, requests)| {
                        (*units as u64, *requests as u64)
                    });
                (variant.name.clone(), units, requests)
            })
            .collect();
        let unit_counts: Vec<u64> = exposures.iter().map(|(_, units, _)| *units).collect();
        let weights: Vec<f64> = variants
            .iter()
            .map(|variant| f64::from(variant.weight))
            .collect();
        let sample_ratio_p_value = stats::sample_ratio_p_value(&unit_counts, &weights);
        let alpha = experiment.spec.alpha;
        let mut metrics = Vec::new();
        let automatic = AUTOMATIC_METRICS.iter().map(|name| {
            let kind = if BOOLEAN_AUTOMATIC.contains(name) {
                MetricKind::Boolean
            } else {
                MetricKind::Numeric
            };
            (name.to_string(), kind, true)
        });
        let feedback = experiment
            .spec
            .metrics
            .iter()
            .map(|metric| (metric.name.clone(), metric.kind, false));
        for (metric, kind, automatic) in automatic.chain(feedback).collect::<Vec<_>>() {
            let sums = if automatic {
                store.exposure_metric(tenant, name, &metric).await?
            } else {
                store
                    .feedback_metric(tenant, name, &metric, kind == MetricKind::Boolean)
                    .await?
            };
            metrics.push(compare(variants, &metric, kind, &sums, alpha));
        }
        Ok(Results {
            experiment,
            exposures,
            sample_ratio_p_value,
            metrics,
        })
    }
}

/// One metric's summaries per variant, and each variant against the first (the control).
fn compare(
    variants: &[Variant],
    metric: &str,
    kind: MetricKind,
    sums: &[VariantSums],
    alpha: f64,
) -> MetricResult {
    let summary_of = |variant: &str| {
        sums.iter()
            .find(|sum| sum.variant == variant)
            .map_or_else(Summary::default, |sum| Summary {
                count: sum.units.max(0) as u64,
                sum: sum.sum,
                sum_of_squares: sum.sum_of_squares,
            })
    };
    let control = summary_of(&variants[0].name);
    let rows = variants
        .iter()
        .enumerate()
        .map(|(index, variant)| {
            let summary = summary_of(&variant.name);
            let comparison = (index > 0)
                .then(|| match kind {
                    MetricKind::Boolean => stats::two_proportions(&control, &summary, alpha),
                    MetricKind::Numeric => stats::welch(&control, &summary, alpha),
                })
                .flatten();
            (variant.name.clone(), summary, comparison)
        })
        .collect();
    MetricResult {
        name: metric.to_string(),
        kind,
        variants: rows,
    }
}

/// The background writer: batches of exposures, gathered for a moment after the first.
async fn write_exposures(store: Store, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(EXPOSURE_BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = receiver.recv().await {
        match first {
            Message::Exposure(row) => {
                batch.push(row);
                tokio::time::sleep(EXPOSURE_WAIT).await;
            }
            Message::Flush(done) => waiting.push(done),
        }
        while batch.len() < EXPOSURE_BATCH {
            match receiver.try_recv() {
                Ok(Message::Exposure(row)) => batch.push(row),
                Ok(Message::Flush(done)) => waiting.push(done),
                Err(_) => break,
            }
        }
        if let Err(error) = store.insert_exposures(&batch).await {
            tracing::error!(%error, lost = batch.len(), "experiment exposures could not be written");
        }
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}
