//! What a job is: when it runs (a cron schedule in a time zone, a topic trigger, or after
//! other jobs), what it does (a plugin's tool, a webhook, built-in work) and how (retries with
//! backoff, a timeout per attempt, what happens when runs overlap or were missed). Definitions
//! are checked whole here, before anything is stored; the graph of `after` is checked for
//! unknown parents and cycles by [`check_graph`].

use std::collections::{HashMap, HashSet};

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JobError;

/// Longest job name: its trigger's consumer (`_job_<name>`) stays within the events' limit.
pub const MAX_NAME_BYTES: usize = 48;
pub const MAX_RETRIES: u32 = 10;
/// The longest an attempt may be given, and the longest wait between attempts.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
pub const MAX_PARENTS: usize = 16;

/// One job's definition, as configuration and the API give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A cron pattern: 5 fields (minute precision) or 6 (seconds first), or `@daily` and the
    /// other nicknames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The IANA time zone the schedule is read in (`Europe/Paris`); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A topic pattern: each event of the job's tenant on it starts a run with the event as
    /// its input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Jobs of the same tenant that must each succeed (since this job last ran) before it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    pub action: Action,
    /// Attempts after the first one fails.
    #[serde(default)]
    pub retries: u32,
    /// The wait before the first retry; each later one waits twice the one before.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Each attempt's limit.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub overlap: Overlap,
    #[serde(default)]
    pub catch_up: CatchUp,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn default_backoff_ms() -> u64 {
    1000
}

fn default_timeout_ms() -> u64 {
    60_000
}

fn enabled() -> bool {
    true
}

/// What a run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Calls a plugin's tool in the job's tenant; its output is the run's output.
    Plugin {
        plugin: String,
        tool: String,
        #[serde(default = "empty_object")]
        arguments: Value,
    },
    /// POSTs the run (job, run id, attempt, reason, input) as JSON; any 2xx succeeds. With a
    /// secret (`whsec_...`), signed the Standard Webhooks way.
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// Work Hearth does itself (`events.retention`, ...): the instance's own jobs only.
    Builtin { name: String },
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Plugin { .. } => "plugin",
            Action::Webhook { .. } => "webhook",
            Action::Builtin { .. } => "builtin",
        }
    }
}

/// What happens when a run is due while the previous one still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The new run is recorded as skipped.
    #[default]
    Skip,
    /// The new run waits its turn (at most [`crate::MAX_QUEUED`] wait; beyond, skipped).
    Queue,
}

/// What a scheduled job does about times it missed while the server was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed times are let go.
    #[default]
    Skip,
    /// One run for all the missed times.
    Once,
    /// One run per missed time, queued (at most [`crate::MAX_CATCH_UP`]).
    All,
}

/// A parsed schedule: the cron pattern and the zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: jiff::tz::TimeZone,
}

impl Schedule {
    pub fn parse(pattern: &str, timezone: Option<&str>) -> Result<Schedule, JobError> {
        let pattern = pattern.trim();
        let fields = pattern.split_whitespace().count();
        if !(pattern.starts_with('@') || fields == 5 || fields == 6) {
            return Err(JobError::invalid(
                "schedule",
                format!(
                    "`{pattern}` has {fields} fields; a schedule has 5 (minute hour day month \
                     weekday) or 6 (second first), or is a nickname such as @daily"
                ),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|error| {
                JobError::invalid(
                    "schedule",
                    format!("`{pattern}` is not a cron pattern: {error}"),
                )
            })?;
        let zone = match timezone {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| {
                JobError::invalid(
                    "timezone",
                    format!("`{name}` is not an IANA time zone (such as Europe/Paris or UTC)"),
                )
            })?,
        };
        let schedule = Schedule { cron, zone };
        // A pattern that never matches (February 30th) is refused now, not found out later.
        if schedule.next_after(hearth_time::now_ms()).is_none() {
            return Err(JobError::invalid(
                "schedule",
                format!("`{pattern}` never matches a real time"),
            ));
        }
        Ok(schedule)
    }

    /// The first time the schedule matches strictly after `after_ms` (Unix ms).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = jiff::Timestamp::from_millisecond(after_ms)
            .ok()?
            .to_zoned(self.zone.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp().as_millisecond())
    }
}

fn check_name(name: &str, field: &str) -> Result<(), JobError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
        })
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(JobError::invalid(
            field,
            format!(
                "`{name}` is not a job name: 1 to {MAX_NAME_BYTES} lowercase letters, digits, \
                 `-` or `_`, starting with a letter or digit"
            ),
        ))
    }
}

impl JobSpec {
    /// A definition with every default (and no name, doing nothing): where the API and the
    /// configuration take the values they leave out.
    pub fn defaults() -> JobSpec {
        JobSpec {
            name: String::new(),
            description: None,
            schedule: None,
            timezone: None,
            trigger: None,
            after: Vec::new(),
            action: Action::Builtin {
                name: "noop".to_string(),
            },
            retries: 0,
            backoff_ms: default_backoff_ms(),
            timeout_ms: default_timeout_ms(),
            overlap: Overlap::default(),
            catch_up: CatchUp::default(),
            enabled: true,
        }
    }

    /// Checks everything about the job that does not depend on other jobs; returns its
    /// schedule, parsed.
    pub fn check(&self) -> Result<Option<Schedule>, JobError> {
        check_name(&self.name, "name")?;
        if let Some(description) = &self.description
            && description.len() > 1000
        {
            return Err(JobError::invalid("description", "at most 1000 bytes"));
        }
        let schedule = match &self.schedule {
            Some(pattern) => Some(Schedule::parse(pattern, self.timezone.as_deref())?),
            None if self.timezone.is_some() => {
                return Err(JobError::invalid(
                    "timezone",
                    "a time zone reads a schedule; this job has none",
                ));
            }
            None => None,
        };
        if let Some(pattern) = &self.trigger {
            hearth_events::Pattern::parse(pattern).map_err(|error| {
                JobError::invalid(
                    "trigger",
                    format!("`{pattern}` is not a topic pattern: {error}"),
                )
            })?;
        }
        if !self.after.is_empty() {
            if self.schedule.is_some() || self.trigger.is_some() {
                return Err(JobError::invalid(
                    "after",
                    "a job with `after` runs when its parents succeed; give the schedule or \
                     trigger to the first job of the chain",
                ));
            }
            if self.after.len() > MAX_PARENTS {
                return Err(JobError::invalid(
                    "after",
                    format!("at most {MAX_PARENTS} parents"),
                ));
            }
            let mut seen = HashSet::new();
            for (index, parent) in self.after.iter().enumerate() {
                check_name(parent, &format!("after[{index}]"))?;
                if parent == &self.name {
                    return Err(JobError::invalid(
                        &format!("after[{index}]"),
                        "a job cannot run after itself",
                    ));
                }
                if !seen.insert(parent) {
                    return Err(JobError::invalid(
                        &format!("after[{index}]"),
                        format!("`{parent}` is named twice"),
                    ));
                }
            }
        }
        if self.catch_up != CatchUp::Skip && self.schedule.is_none() {
            return Err(JobError::invalid(
                "catch_up",
                "catch-up replays missed scheduled times; this job has no schedule",
            ));
        }
        if self.retries > MAX_RETRIES {
            return Err(JobError::invalid(
                "retries",
                format!("at most {MAX_RETRIES}"),
            ));
        }
        if self.backoff_ms > MAX_BACKOFF_MS {
            return Err(JobError::invalid(
                "backoff_ms",
                format!("at most {MAX_BACKOFF_MS} (an hour)"),
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(JobError::invalid(
                "timeout_ms",
                format!("from 1 to {MAX_TIMEOUT_MS} (an hour)"),
            ));
        }
        match &self.action {
            Action::Plugin {
                plugin,
                tool,
                arguments,
            } => {
                if plugin.is_empty() || tool.is_empty() {
                    return Err(JobError::invalid(
                        "action",
                        "a plugin action names its plugin and tool",
                    ));
                }
                if !arguments.is_object() {
                    return Err(JobError::invalid(
                        "action.arguments",
                        "the tool's arguments are a JSON object",
                    ));
                }
            }
            Action::Webhook { url, secret } => {
                let parsed = reqwest::Url::parse(url).map_err(|error| {
                    JobError::invalid("action.url", format!("`{url}` is not a URL: {error}"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(JobError::invalid(
                        "action.url",
                        "a webhook URL is http or https",
                    ));
                }
                if let Some(secret) = secret
                    && hearth_webhooks::sign::signature(secret, "check", 0, b"").is_none()
                {
                    return Err(JobError::invalid(
                        "action.secret",
                        "a signing secret is `whsec_` and base64 (as `hearth` webhooks make)",
                    ));
                }
            }
            Action::Builtin { name } => {
                if name.is_empty() {
                    return Err(JobError::invalid("action.name", "name the built-in work"));
                }
            }
        }
        Ok(schedule)
    }
}

/// Checks that every parent named in `after` is a job of the same set and that following
/// `after` never comes back to where it started. `jobs` is one tenant's whole set.
pub fn check_graph(jobs: &HashMap<String, &JobSpec>) -> Result<(), JobError> {
    for spec in jobs.values() {
        for (index, parent) in spec.after.iter().enumerate() {
            if !jobs.contains_key(parent) {
                return Err(JobError::invalid(
                    &format!("after[{index}]"),
                    format!(
                        "job `{}` runs after `{parent}`, which is not defined",
                        spec.name
                    ),
                ));
            }
        }
    }
    // Depth-first, with the path on a stack so a cycle can be named.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        jobs: &HashMap<String, &'a JobSpec>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Result<(), JobError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|step| *step == name).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].to_vec();
                cycle.push(name);
                return Err(JobError::invalid(
                    "after",
                    format!("the jobs would wait on each other: {}", cycle.join(" → ")),
                ));
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        if let Some(spec) = jobs.get(name) {
            for parent in &spec.after {
                visit(parent, jobs, marks, path)?;
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        Ok(())
    }
    let mut marks = HashMap::new();
    let mut names: Vec<&String> = jobs.keys().collect();
    names.sort();
    for name in names {
        visit(name, jobs, &mut marks, &mut Vec::new())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, after: &[&str]) -> JobSpec {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "after": after,
            "action": {"type": "builtin", "name": "noop"},
        }))
        .unwrap()
    }

    #[test]
    fn five_and_six_field_schedules_fire_at_their_times_in_their_zone() {
        // 2026-03-01T00:00:00Z.
        let start = 1_772_323_200_000;
        let every_minute = Schedule::parse("* * * * *", None).unwrap();
        assert_eq!(every_minute.next_after(start), Some(start + 60_000));
        let every_second = Schedule::parse("* * * * * *", None).unwrap();
        assert_eq!(every_second.next_after(start), Some(start + 1000));
        // 09:00 in Paris is 08:00 UTC in winter.
        let paris = Schedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap();
        assert_eq!(paris.next_after(start), Some(start + 8 * 3_600_000));
        assert!(Schedule::parse("@daily", None).is_ok());
    }

    #[test]
    fn bad_schedules_and_zones_name_their_field() {
        for (pattern, zone, field) in [
            ("* * * *", None, "schedule"),
            ("* * * * * * * *", None, "schedule"),
            ("61 * * * *", None, "schedule"),
            ("0 0 30 2 *", None, "schedule"),
            ("* * * * *", Some("Mars/Olympus"), "timezone"),
        ] {
            let error = Schedule::parse(pattern, zone).unwrap_err();
            assert_eq!(error.field(), Some(field), "{pattern} {zone:?}: {error}");
        }
    }

    #[test]
    fn a_job_with_parents_takes_no_schedule_and_names_no_parent_twice() {
        let mut child = job("child", &["parent"]);
        child.schedule = Some("* * * * *".into());
        assert_eq!(child.check().unwrap_err().field(), Some("after"));
        let twice = job("child", &["parent", "parent"]);
        assert_eq!(twice.check().unwrap_err().field(), Some("after[1]"));
        let itself = job("child", &["child"]);
        assert_eq!(itself.check().unwrap_err().field(), Some("after[0]"));
        assert!(job("Upper", &[]).check().is_err());
    }

    #[test]
    fn cycles_and_unknown_parents_are_refused() {
        let a = job("a", &["c"]);
        let b = job("b", &["a"]);
        let c = job("c", &["b"]);
        let jobs: HashMap<String, &JobSpec> =
            [("a".into(), &a), ("b".into(), &b), ("c".into(), &c)].into();
        let error = check_graph(&jobs).unwrap_err();
        assert!(error.to_string().contains("→"), "{error}");
        let root = job("a", &[]);
        let jobs: HashMap<String, &JobSpec> =
            [("a".into(), &root), ("b".into(), &b), ("c".into(), &c)].into();
        check_graph(&jobs).unwrap();
        let jobs: HashMap<String, &JobSpec> = [("b".into(), &b)].into();
        assert!(
            check_graph(&jobs)
                .unwrap_err()
                .to_string()
                .contains("not defined")
        );
    }
}
