//! The JSON shapes of jobs under `/v1/jobs`: a definition (when, what, how), a job as it
//! stands (next run, running, queued), and runs with their attempts.

use hearth_jobs::{Action, AttemptInfo, CatchUp, JobInfo, JobSpec, Overlap, RunInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A job's definition. Give `schedule`, `trigger` or `after` (or none: it runs when asked).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobIn {
    /// 1 to 48 lowercase letters, digits, `-` or `_`; on `PUT`, the path's name when absent.
    pub name: Option<String>,
    pub description: Option<String>,
    /// A cron pattern: 5 fields (`0 3 * * *`), 6 with seconds first (`*/10 * * * * *`), or a
    /// nickname (`@daily`).
    pub schedule: Option<String>,
    /// The IANA time zone the schedule is read in; UTC when absent.
    pub timezone: Option<String>,
    /// A topic pattern: each event of the tenant on it starts a run with the event as input.
    pub trigger: Option<String>,
    /// Jobs that must each succeed (since this one last ran) before it runs.
    #[serde(default)]
    pub after: Vec<String>,
    pub action: ActionIo,
    /// Attempts after a failed first one (0 to 10; default 0).
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled for each later one (default 1000).
    pub backoff_ms: Option<u64>,
    /// Each attempt's limit (default 60000, at most an hour).
    pub timeout_ms: Option<u64>,
    /// When a run is due while one runs: `skip` (default) or `queue`.
    pub overlap: Option<OverlapIo>,
    /// Scheduled times missed while the server was down: `skip` (default), `once` or `all`.
    pub catch_up: Option<CatchUpIo>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// What a run does.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionIo {
    /// A plugin's tool, called in the job's tenant.
    Plugin {
        plugin: String,
        tool: String,
        #[schema(value_type = Object)]
        #[serde(default)]
        arguments: Option<Value>,
    },
    /// A POST of the run (job, run id, attempt, reason, input); 2xx succeeds. Signed the
    /// Standard Webhooks way with `secret` (`whsec_...`), which is never shown again.
    Webhook {
        url: String,
        #[serde(default, skip_serializing)]
        secret: Option<String>,
    },
    /// Work Hearth does itself (`noop`, `events.retention`, ...); the instance's own jobs
    /// only.
    Builtin { name: String },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverlapIo {
    Skip,
    Queue,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpIo {
    Skip,
    Once,
    All,
}

impl JobIn {
    /// The definition, with defaults filled in; `name` is the path's on `PUT`.
    pub fn into_spec(self, name: String) -> JobSpec {
        let defaults = JobSpec::defaults();
        JobSpec {
            name,
            description: self.description,
            schedule: self.schedule,
            timezone: self.timezone,
            trigger: self.trigger,
            after: self.after,
            action: match self.action {
                ActionIo::Plugin {
                    plugin,
                    tool,
                    arguments,
                } => Action::Plugin {
                    plugin,
                    tool,
                    arguments: arguments.unwrap_or_else(|| Value::Object(Default::default())),
                },
                ActionIo::Webhook { url, secret } => Action::Webhook { url, secret },
                ActionIo::Builtin { name } => Action::Builtin { name },
            },
            retries: self.retries.unwrap_or(defaults.retries),
            backoff_ms: self.backoff_ms.unwrap_or(defaults.backoff_ms),
            timeout_ms: self.timeout_ms.unwrap_or(defaults.timeout_ms),
            overlap: match self.overlap {
                None => defaults.overlap,
                Some(OverlapIo::Skip) => Overlap::Skip,
                Some(OverlapIo::Queue) => Overlap::Queue,
            },
            catch_up: match self.catch_up {
                None => defaults.catch_up,
                Some(CatchUpIo::Skip) => CatchUp::Skip,
                Some(CatchUpIo::Once) => CatchUp::Once,
                Some(CatchUpIo::All) => CatchUp::All,
            },
            enabled: self.enabled.unwrap_or(defaults.enabled),
        }
    }
}

/// A job as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    /// Always `job`.
    pub object: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    pub after: Vec<String>,
    pub action: ActionIo,
    /// Whether the webhook action signs its requests (its secret is not shown).
    pub signed: bool,
    pub retries: u32,
    pub backoff_ms: u64,
    pub timeout_ms: u64,
    pub overlap: OverlapIo,
    pub catch_up: CatchUpIo,
    pub enabled: bool,
    /// `config` (the server's configuration; change it there) or `api`.
    pub source: &'static str,
    /// When the schedule fires next (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
    pub running: bool,
    /// Runs waiting behind the running one.
    pub queued: usize,
    pub created_at: String,
    pub updated_at: String,
}

impl From<JobInfo> for JobOut {
    fn from(job: JobInfo) -> JobOut {
        let spec = job.spec;
        let signed = matches!(
            &spec.action,
            Action::Webhook {
                secret: Some(_),
                ..
            }
        );
        JobOut {
            object: "job",
            name: spec.name,
            description: spec.description,
            schedule: spec.schedule,
            timezone: spec.timezone,
            trigger: spec.trigger,
            after: spec.after,
            action: match spec.action {
                Action::Plugin {
                    plugin,
                    tool,
                    arguments,
                } => ActionIo::Plugin {
                    plugin,
                    tool,
                    arguments: Some(arguments),
                },
                Action::Webhook { url, .. } => ActionIo::Webhook { url, secret: None },
                Action::Builtin { name } => ActionIo::Builtin { name },
            },
            signed,
            retries: spec.retries,
            backoff_ms: spec.backoff_ms,
            timeout_ms: spec.timeout_ms,
            overlap: match spec.overlap {
                Overlap::Skip => OverlapIo::Skip,
                Overlap::Queue => OverlapIo::Queue,
            },
            catch_up: match spec.catch_up {
                CatchUp::Skip => CatchUpIo::Skip,
                CatchUp::Once => CatchUpIo::Once,
                CatchUp::All => CatchUpIo::All,
            },
            enabled: spec.enabled,
            source: job.source.as_str(),
            next_run_at: job.next_run_ms.map(hearth_time::rfc3339_from_unix_millis),
            running: job.running,
            queued: job.queued,
            created_at: hearth_time::rfc3339_from_unix_millis(job.created_at_ms),
            updated_at: hearth_time::rfc3339_from_unix_millis(job.updated_at_ms),
        }
    }
}

/// A run asked for now.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIn {
    /// Given to the action (a webhook's body carries it).
    #[schema(value_type = Object)]
    pub input: Option<Value>,
    /// Wait up to this many seconds (at most 300) for the run to end before answering.
    pub wait_s: Option<u32>,
}

/// One attempt of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub attempt: u32,
    /// `running`, `succeeded`, `failed`, `timed_out` or `interrupted`.
    pub status: String,
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl From<AttemptInfo> for AttemptOut {
    fn from(attempt: AttemptInfo) -> AttemptOut {
        AttemptOut {
            attempt: attempt.attempt,
            status: attempt.status,
            output: attempt.output,
            error: attempt.error,
            started_at: hearth_time::rfc3339_from_unix_millis(attempt.started_at_ms),
            finished_at: attempt
                .finished_at_ms
                .map(hearth_time::rfc3339_from_unix_millis),
        }
    }
}

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    /// Always `job.run`.
    pub object: &'static str,
    pub id: String,
    pub job: String,
    /// `schedule`, `catch_up`, `event`, `after` or `manual`.
    pub reason: String,
    /// `queued`, `running`, `succeeded`, `failed`, `skipped` or `interrupted`.
    pub status: String,
    /// Its scheduled time, or when it was asked for.
    pub due_at: String,
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How long it took (ms), once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Each attempt, on a single run's page; absent in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_list: Option<Vec<AttemptOut>>,
}

impl RunOut {
    pub fn from_run(run: RunInfo, with_attempts: bool) -> RunOut {
        let duration_ms = match (run.started_at_ms, run.finished_at_ms) {
            (Some(started), Some(finished)) => Some(finished - started),
            _ => None,
        };
        RunOut {
            object: "job.run",
            id: run.id,
            job: run.job,
            reason: run.reason,
            status: run.status,
            due_at: hearth_time::rfc3339_from_unix_millis(run.due_at_ms),
            input: run.input,
            output: run.output,
            error: run.error,
            attempts: run.attempts,
            created_at: hearth_time::rfc3339_from_unix_millis(run.created_at_ms),
            started_at: run.started_at_ms.map(hearth_time::rfc3339_from_unix_millis),
            finished_at: run
                .finished_at_ms
                .map(hearth_time::rfc3339_from_unix_millis),
            duration_ms,
            attempt_list: with_attempts
                .then(|| run.attempt_list.into_iter().map(AttemptOut::from).collect()),
        }
    }
}

/// Paging a job's runs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// At most this many (1 to 1000; default 50).
    pub limit: Option<u32>,
    /// Runs created before this run's time: the last `id` of the previous page.
    pub before: Option<String>,
}
