//! Jobs: work that runs on a schedule (cron, 5 or 6 fields, in a time zone), on events (a
//! topic pattern, through a durable consumer) or after other jobs succeed (`after`, a graph
//! checked for cycles when defined), doing a plugin's tool, a webhook or built-in work, with
//! retries, a timeout per attempt, an overlap policy and a catch-up policy for times missed
//! while the server was down. Every run and attempt is kept in the store (so history survives
//! restarts) and each run's end is published as a system event (`hearth.job.succeeded`,
//! `.failed`, `.skipped`, `.interrupted`) in the job's tenant.
//!
//! Jobs belong to a tenant (the instance's own scope for configuration's and instance-wide
//! work); names are unique per tenant and `after` names jobs of the same tenant. The service
//! knows nothing of HTTP: the server's routes and the CLI call it.

mod actions;
mod error;
mod runner;
pub mod spec;
mod triggers;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use hearth_events::Events;
use hearth_store::{JobAttemptRow, JobRow, JobRunRow, Store};
use serde_json::Value;
use tokio::sync::{Mutex, Notify, broadcast};

pub use actions::{Builtin, BuiltinFuture, Builtins};
pub use error::JobError;
pub use spec::{Action, CatchUp, JobSpec, Overlap, Schedule};

/// Runs that may wait behind a running one (overlap `queue`); later ones are skipped.
pub const MAX_QUEUED: usize = 100;
/// Most missed times one catch-up (`all`) replays: the newest ones.
pub const MAX_CATCH_UP: usize = 100;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct JobsOptions {
    /// Most jobs one tenant may define.
    pub max_per_tenant: usize,
    /// Runs kept per job (about: trims run now and then); older ones and their attempts go.
    pub history_per_job: u32,
    /// Whether webhook actions may reach loopback and private addresses.
    pub allow_internal_targets: bool,
}

impl Default for JobsOptions {
    fn default() -> Self {
        JobsOptions {
            max_per_tenant: 100,
            history_per_job: 1000,
            allow_internal_targets: false,
        }
    }
}

/// Where a job was defined: configuration's are replaced at each start and cannot be changed
/// over the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Api => "api",
        }
    }

    fn parse(text: &str) -> Source {
        if text == "config" {
            Source::Config
        } else {
            Source::Api
        }
    }
}

/// Why a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunReason {
    Schedule,
    CatchUp,
    Event,
    After,
    Manual,
}

impl RunReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RunReason::Schedule => "schedule",
            RunReason::CatchUp => "catch_up",
            RunReason::Event => "event",
            RunReason::After => "after",
            RunReason::Manual => "manual",
        }
    }
}

/// A run's (or an attempt's) state; the last four are final.
pub mod status {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const SKIPPED: &str = "skipped";
    pub const INTERRUPTED: &str = "interrupted";
    /// Attempts only: the attempt ran past the job's `timeout_ms`.
    pub const TIMED_OUT: &str = "timed_out";

    pub fn is_final(status: &str) -> bool {
        !matches!(status, QUEUED | RUNNING)
    }
}

/// A job as the service holds it.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub tenant_id: String,
    pub spec: JobSpec,
    pub source: Source,
    /// When the schedule fires next (Unix ms).
    pub next_run_ms: Option<i64>,
    pub running: bool,
    pub queued: usize,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One attempt of a run.
#[derive(Debug, Clone)]
pub struct AttemptInfo {
    pub attempt: u32,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// One run of a job.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub id: String,
    pub job: String,
    pub reason: String,
    pub due_at_ms: i64,
    pub status: String,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Filled by [`Jobs::run`]; empty in lists.
    pub attempt_list: Vec<AttemptInfo>,
}

fn parse_json(text: &Option<String>) -> Option<Value> {
    text.as_deref()
        .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())))
}

impl From<JobRunRow> for RunInfo {
    fn from(row: JobRunRow) -> RunInfo {
        RunInfo {
            input: parse_json(&row.input),
            output: parse_json(&row.output),
            id: row.id,
            job: row.job,
            reason: row.reason,
            due_at_ms: row.due_at_ms,
            status: row.status,
            error: row.error,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            created_at_ms: row.created_at_ms,
            started_at_ms: row.started_at_ms,
            finished_at_ms: row.finished_at_ms,
            attempt_list: Vec::new(),
        }
    }
}

impl From<JobAttemptRow> for AttemptInfo {
    fn from(row: JobAttemptRow) -> AttemptInfo {
        AttemptInfo {
            attempt: u32::try_from(row.attempt).unwrap_or(0),
            output: parse_json(&row.output),
            status: row.status,
            error: row.error,
            started_at_ms: row.started_at_ms,
            finished_at_ms: row.finished_at_ms,
        }
    }
}

/// A run that ended (or was skipped), for metrics.
#[derive(Debug, Clone)]
pub struct RunEnded {
    pub tenant_id: String,
    pub job: String,
    pub status: &'static str,
    pub reason: RunReason,
    pub attempts: u32,
    pub duration: Duration,
    /// How late the run started after it was due (scheduled runs).
    pub lag: Option<Duration>,
}

/// Told of every run's end; the server counts them.
pub type JobObserver = Arc<dyn Fn(&RunEnded) + Send + Sync>;

type Key = (String, String);

struct JobState {
    spec: Arc<JobSpec>,
    schedule: Option<Schedule>,
    source: Source,
    next_fire: Option<i64>,
    running: bool,
    queue: VecDeque<JobRunRow>,
    /// Parents that succeeded since this job last ran, with their outputs.
    parents_done: HashMap<String, Value>,
    /// Stops the trigger's worker.
    trigger_stop: Option<Arc<AtomicBool>>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

pub(crate) struct Inner {
    store: Store,
    events: Option<Arc<Events>>,
    doers: actions::Doers,
    options: JobsOptions,
    observer: Option<JobObserver>,
    jobs: Mutex<HashMap<Key, JobState>>,
    wake: Arc<Notify>,
    /// Run ids as they end, for callers waiting on one.
    ended: broadcast::Sender<String>,
    /// Run ends so far, for trimming history now and then.
    runs_ended: std::sync::atomic::AtomicU64,
}

/// The jobs service.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

impl Jobs {
    /// Loads the defined jobs, settles runs a stop left unfinished (running ones become
    /// `interrupted`; queued ones wait again), catches up missed times as each job asks, and
    /// starts the scheduler and the triggers.
    pub async fn open(
        options: JobsOptions,
        store: Store,
        events: Option<Arc<Events>>,
        plugins: Option<hearth_plugins::Plugins>,
        builtins: Builtins,
        observer: Option<JobObserver>,
    ) -> Result<Jobs, JobError> {
        let http = hearth_egress::client(
            options.allow_internal_targets,
            Duration::from_millis(spec::MAX_TIMEOUT_MS),
            actions::EGRESS,
        )
        .map_err(|error| JobError::Runtime(format!("making the HTTP client: {error}")))?;
        let (ended, _) = broadcast::channel(256);
        let inner = Arc::new(Inner {
            store,
            events,
            doers: actions::Doers {
                plugins,
                builtins,
                http,
                allow_internal_targets: options.allow_internal_targets,
            },
            options,
            observer,
            jobs: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            ended,
            runs_ended: std::sync::atomic::AtomicU64::new(0),
        });
        let jobs = Jobs { inner };
        jobs.load().await?;
        runner::spawn_scheduler(&jobs.inner);
        Ok(jobs)
    }

    async fn load(&self) -> Result<(), JobError> {
        let inner = &self.inner;
        let now = hearth_time::now_ms();
        let rows = inner.store.jobs().await?;
        let mut loaded = Vec::new();
        {
            let mut jobs = inner.jobs.lock().await;
            for row in rows {
                let spec: JobSpec = match serde_json::from_str(&row.definition) {
                    Ok(spec) => spec,
                    Err(error) => {
                        tracing::warn!(job = %row.name, tenant = %row.tenant_id, %error, "a stored job could not be read; it does not run");
                        continue;
                    }
                };
                let schedule = match spec.check() {
                    Ok(schedule) => schedule,
                    Err(error) => {
                        tracing::warn!(job = %row.name, tenant = %row.tenant_id, %error, "a stored job is no longer valid; it does not run");
                        continue;
                    }
                };
                let next_fire = schedule
                    .as_ref()
                    .filter(|_| spec.enabled)
                    .and_then(|schedule| schedule.next_after(now));
                loaded.push((row.clone(), spec.clone(), schedule.clone()));
                jobs.insert(
                    (row.tenant_id.clone(), row.name.clone()),
                    JobState {
                        spec: Arc::new(spec),
                        schedule,
                        source: Source::parse(&row.source),
                        next_fire,
                        running: false,
                        queue: VecDeque::new(),
                        parents_done: HashMap::new(),
                        trigger_stop: None,
                        created_at_ms: row.created_at_ms,
                        updated_at_ms: row.updated_at_ms,
                    },
                );
            }
        }
        // Runs a stop cut short, then those that were waiting.
        for mut run in inner
            .store
            .job_runs_in(&[status::RUNNING, status::QUEUED])
            .await?
        {
            if run.status == status::RUNNING {
                runner::interrupt(inner, &mut run, now).await?;
            } else {
                let mut jobs = inner.jobs.lock().await;
                if let Some(job) = jobs.get_mut(&(run.tenant_id.clone(), run.job.clone())) {
                    job.queue.push_back(run);
                }
            }
        }
        for (row, spec, schedule) in &loaded {
            let key = (row.tenant_id.clone(), row.name.clone());
            self.restore_parents(&key, spec, row).await?;
            if let (Some(schedule), Some(last_fire)) = (schedule, row.last_fire_ms)
                && spec.enabled
            {
                runner::catch_up(inner, &key, spec, schedule, last_fire, now).await?;
            }
            if spec.trigger.is_some() {
                triggers::sync(inner, &key, spec).await?;
            }
        }
        // Queued runs of jobs with nothing running start now.
        let keys: Vec<Key> = inner.jobs.lock().await.keys().cloned().collect();
        for key in keys {
            runner::start_next(inner, &key).await;
        }
        Ok(())
    }

    /// Which parents of a job succeeded since it last ran (or was defined), from history.
    async fn restore_parents(
        &self,
        key: &Key,
        spec: &JobSpec,
        row: &JobRow,
    ) -> Result<(), JobError> {
        if spec.after.is_empty() {
            return Ok(());
        }
        let store = &self.inner.store;
        let last_run = store.last_job_run(&key.0, &key.1, None).await?;
        let since = last_run
            .map(|run| run.created_at_ms)
            .unwrap_or(0)
            .max(row.updated_at_ms);
        let mut done = HashMap::new();
        for parent in &spec.after {
            if let Some(run) = store
                .last_job_run(&key.0, parent, Some(status::SUCCEEDED))
                .await?
                && run.finished_at_ms.unwrap_or(0) > since
            {
                done.insert(
                    parent.clone(),
                    parse_json(&run.output).unwrap_or(Value::Null),
                );
            }
        }
        if let Some(job) = self.inner.jobs.lock().await.get_mut(key) {
            job.parents_done = done;
        }
        Ok(())
    }

    /// Defines a job, or (with `replace`) replaces the tenant's job of that name. A job
    /// configuration defined cannot be replaced over the API.
    pub async fn define(
        &self,
        tenant_id: &str,
        spec: JobSpec,
        source: Source,
        replace: bool,
    ) -> Result<JobInfo, JobError> {
        if !replace
            && self
                .inner
                .jobs
                .lock()
                .await
                .contains_key(&(tenant_id.to_string(), spec.name.clone()))
        {
            return Err(JobError::Conflict(format!(
                "a job named {} is defined already; replace it with PUT /v1/jobs/{}",
                spec.name, spec.name
            )));
        }
        let mut infos = self.define_all(tenant_id, vec![spec], source).await?;
        Ok(infos.remove(0))
    }

    /// Defines a set of jobs of one tenant together (configuration's, whose `after` may name
    /// each other in any order): all are checked before any is stored.
    pub async fn define_all(
        &self,
        tenant_id: &str,
        specs: Vec<JobSpec>,
        source: Source,
    ) -> Result<Vec<JobInfo>, JobError> {
        let inner = &self.inner;
        let mut schedules = Vec::new();
        for spec in &specs {
            schedules.push(spec.check()?);
            if let Action::Builtin { name } = &spec.action
                && inner.doers.builtins.get(name).is_none()
            {
                return Err(JobError::invalid(
                    "action.name",
                    format!(
                        "no built-in work named `{name}`; there is {}",
                        inner.doers.builtins.names().join(", ")
                    ),
                ));
            }
        }
        let now = hearth_time::now_ms();
        let mut jobs = inner.jobs.lock().await;
        let mut tenant: HashMap<String, &JobSpec> = jobs
            .iter()
            .filter(|((tenant, _), _)| tenant == tenant_id)
            .map(|((_, name), job)| (name.clone(), job.spec.as_ref()))
            .collect();
        let existing = tenant.len();
        let mut new = 0;
        for spec in &specs {
            match jobs.get(&(tenant_id.to_string(), spec.name.clone())) {
                Some(job) if job.source == Source::Config && source == Source::Api => {
                    return Err(JobError::Conflict(format!(
                        "job {} is defined in the server's configuration; change it there",
                        spec.name
                    )));
                }
                Some(_) => {}
                None => new += 1,
            }
            tenant.insert(spec.name.clone(), spec);
        }
        if new > 0 && existing + new > inner.options.max_per_tenant {
            return Err(JobError::TooMany(inner.options.max_per_tenant));
        }
        spec::check_graph(&tenant)?;
        drop(tenant);
        let mut infos = Vec::new();
        let mut changed_triggers = Vec::new();
        for (spec, schedule) in specs.into_iter().zip(schedules) {
            let key = (tenant_id.to_string(), spec.name.clone());
            // The same definition again (configuration's, at every start) changes nothing:
            // not its next fire, not what its parents have done, not when it was updated.
            if let Some(job) = jobs.get(&key)
                && *job.spec == spec
                && job.source == source
            {
                infos.push(info(&key, job));
                continue;
            }
            let definition = serde_json::to_string(&spec)
                .map_err(|error| JobError::Runtime(error.to_string()))?;
            let created_at_ms = jobs.get(&key).map_or(now, |job| job.created_at_ms);
            inner
                .store
                .put_job(&JobRow {
                    tenant_id: tenant_id.to_string(),
                    name: spec.name.clone(),
                    definition,
                    source: source.as_str().to_string(),
                    last_fire_ms: None,
                    created_at_ms,
                    updated_at_ms: now,
                })
                .await?;
            let next_fire = match (&schedule, spec.enabled) {
                (Some(schedule), true) => schedule.next_after(now),
                _ => None,
            };
            let spec = Arc::new(spec);
            let job = jobs.entry(key.clone()).or_insert_with(|| JobState {
                spec: spec.clone(),
                schedule: None,
                source,
                next_fire: None,
                running: false,
                queue: VecDeque::new(),
                parents_done: HashMap::new(),
                trigger_stop: None,
                created_at_ms,
                updated_at_ms: now,
            });
            let trigger_changed = job.spec.trigger != spec.trigger
                || job.spec.enabled != spec.enabled
                || (spec.trigger.is_some() && job.trigger_stop.is_none());
            if job.spec.after != spec.after {
                job.parents_done.clear();
            }
            job.spec = spec.clone();
            job.schedule = schedule;
            job.source = source;
            job.next_fire = next_fire;
            job.updated_at_ms = now;
            if trigger_changed {
                if let Some(stop) = job.trigger_stop.take() {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                changed_triggers.push((key.clone(), spec.clone()));
            }
            infos.push(info(&key, job));
        }
        drop(jobs);
        for (key, spec) in changed_triggers {
            triggers::sync(inner, &key, &spec).await?;
        }
        inner.wake.notify_one();
        Ok(infos)
    }

    /// Makes configuration's jobs exactly `jobs` (tenant, definition): defines them and
    /// removes configuration's jobs no longer listed. The API's jobs are left as they are.
    pub async fn apply_config(&self, jobs: Vec<(String, JobSpec)>) -> Result<(), JobError> {
        let mut by_tenant: HashMap<String, Vec<JobSpec>> = HashMap::new();
        for (tenant, spec) in jobs {
            by_tenant.entry(tenant).or_default().push(spec);
        }
        let listed: HashSet<Key> = by_tenant
            .iter()
            .flat_map(|(tenant, specs)| {
                specs.iter().map(|spec| (tenant.clone(), spec.name.clone()))
            })
            .collect();
        let stale: Vec<Key> = self
            .inner
            .jobs
            .lock()
            .await
            .iter()
            .filter(|(key, job)| job.source == Source::Config && !listed.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        for (tenant, specs) in by_tenant {
            self.define_all(&tenant, specs, Source::Config).await?;
        }
        for (tenant, name) in stale {
            self.remove(&tenant, &name, Source::Config).await?;
        }
        Ok(())
    }

    /// Removes a job with its history. Refused while another job runs after it, and over
    /// the API for configuration's jobs.
    pub async fn remove(
        &self,
        tenant_id: &str,
        name: &str,
        source: Source,
    ) -> Result<(), JobError> {
        let inner = &self.inner;
        let key = (tenant_id.to_string(), name.to_string());
        let mut jobs = inner.jobs.lock().await;
        let job = jobs
            .get(&key)
            .ok_or_else(|| JobError::NotFound(name.to_string()))?;
        if job.source == Source::Config && source == Source::Api {
            return Err(JobError::Conflict(format!(
                "job {name} is defined in the server's configuration; remove it there"
            )));
        }
        if let Some(((_, child), _)) = jobs.iter().find(|((tenant, _), job)| {
            tenant == tenant_id && job.spec.after.iter().any(|parent| parent == name)
        }) {
            return Err(JobError::Conflict(format!(
                "job {child} runs after {name}; change or remove {child} first"
            )));
        }
        let job = jobs.remove(&key).expect("looked up above");
        drop(jobs);
        if let Some(stop) = job.trigger_stop {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if job.spec.trigger.is_some() {
            triggers::drop_consumer(inner, &key).await;
        }
        inner.store.delete_job(tenant_id, name).await?;
        inner.wake.notify_one();
        Ok(())
    }

    /// The tenant's jobs, by name.
    pub async fn list(&self, tenant_id: &str) -> Vec<JobInfo> {
        let jobs = self.inner.jobs.lock().await;
        let mut list: Vec<JobInfo> = jobs
            .iter()
            .filter(|((tenant, _), _)| tenant == tenant_id)
            .map(|(key, job)| info(key, job))
            .collect();
        list.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        list
    }

    /// One of the tenant's jobs.
    pub async fn get(&self, tenant_id: &str, name: &str) -> Result<JobInfo, JobError> {
        let key = (tenant_id.to_string(), name.to_string());
        let jobs = self.inner.jobs.lock().await;
        jobs.get(&key)
            .map(|job| info(&key, job))
            .ok_or_else(|| JobError::NotFound(name.to_string()))
    }

    /// Starts a run now (as the overlap policy allows), with `input` for its action; answers
    /// the run as recorded (running, queued or skipped).
    pub async fn run_now(
        &self,
        tenant_id: &str,
        name: &str,
        input: Option<Value>,
    ) -> Result<RunInfo, JobError> {
        let key = (tenant_id.to_string(), name.to_string());
        let now = hearth_time::now_ms();
        let start = runner::Start::now(RunReason::Manual, now);
        let run = runner::start_run(&self.inner, &key, start, input).await?;
        Ok(run.into())
    }

    /// Waits up to `timeout` for a run to end; answers it as it stands then.
    pub async fn wait(
        &self,
        tenant_id: &str,
        run_id: &str,
        timeout: Duration,
    ) -> Result<RunInfo, JobError> {
        let mut ended = self.inner.ended.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.run(tenant_id, run_id).await?;
            if status::is_final(&run.status) {
                return Ok(run);
            }
            loop {
                match tokio::time::timeout_at(deadline, ended.recv()).await {
                    Err(_) => return self.run(tenant_id, run_id).await,
                    Ok(Ok(id)) if id == run_id => break,
                    Ok(Ok(_)) => continue,
                    // Missed some: look again.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        return self.run(tenant_id, run_id).await;
                    }
                }
            }
        }
    }

    /// A job's runs, newest first (`before_ms` pages back by creation time).
    pub async fn runs(
        &self,
        tenant_id: &str,
        name: &str,
        limit: u32,
        before_ms: Option<i64>,
    ) -> Result<Vec<RunInfo>, JobError> {
        self.get(tenant_id, name).await?;
        let rows = self
            .inner
            .store
            .job_runs(tenant_id, name, limit, before_ms)
            .await?;
        Ok(rows.into_iter().map(RunInfo::from).collect())
    }

    /// One run with its attempts.
    pub async fn run(&self, tenant_id: &str, run_id: &str) -> Result<RunInfo, JobError> {
        let row = self
            .inner
            .store
            .job_run(tenant_id, run_id)
            .await?
            .ok_or_else(|| JobError::RunNotFound(run_id.to_string()))?;
        let mut run = RunInfo::from(row);
        run.attempt_list = self
            .inner
            .store
            .job_attempts(run_id)
            .await?
            .into_iter()
            .map(AttemptInfo::from)
            .collect();
        Ok(run)
    }

    /// The built-in work jobs may name.
    pub fn builtin_names(&self) -> Vec<String> {
        self.inner.doers.builtins.names()
    }
}

fn info(key: &Key, job: &JobState) -> JobInfo {
    JobInfo {
        tenant_id: key.0.clone(),
        spec: JobSpec::clone(&job.spec),
        source: job.source,
        next_run_ms: job.next_fire,
        running: job.running,
        queued: job.queue.len(),
        created_at_ms: job.created_at_ms,
        updated_at_ms: job.updated_at_ms,
    }
}
