//! Jobs in the binary: starting the service with the built-in work Hearth offers and the
//! jobs the configuration defines, and `hearth jobs ...`, a running server's jobs over its
//! HTTP API.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use hearth_config::{Config, JobActionConfig, JobConfig, Sources};
use hearth_jobs::{Action, Builtins, CatchUp, JobSpec, Jobs, Overlap};
use serde_json::{Value, json};

use crate::api_client::{Api, percent_encode, runtime};
use crate::cli::JobsCommand;

/// The built-in work jobs may name, over the services the server runs.
fn builtins(events: Arc<hearth_events::Events>) -> Builtins {
    let mut builtins = Builtins::new();
    let retention = events.clone();
    builtins.add("events.retention", move || {
        let events = retention.clone();
        Box::pin(async move {
            let removed = events
                .enforce_retention()
                .await
                .map_err(|error| error.to_string())?;
            Ok(json!({ "events_removed": removed }))
        })
    });
    builtins.add("events.dead_letters", move || {
        let events = events.clone();
        Box::pin(async move {
            let moved = events
                .dead_letter_due()
                .await
                .map_err(|error| error.to_string())?;
            Ok(json!({ "dead_lettered": moved }))
        })
    });
    builtins
}

/// A configured job as the jobs service takes it; errors name the `[[jobs]]` entry.
fn spec_of(job: &JobConfig) -> anyhow::Result<JobSpec> {
    let at = |field: &str| format!("jobs `{}`: {field}", job.name);
    let defaults = JobSpec::defaults();
    let action = match &job.action {
        JobActionConfig::Plugin {
            plugin,
            tool,
            arguments,
        } => Action::Plugin {
            plugin: plugin.clone(),
            tool: tool.clone(),
            arguments: match arguments {
                None => json!({}),
                Some(text) => serde_json::from_str(text)
                    .with_context(|| at("arguments is not JSON (write a JSON object as text)"))?,
            },
        },
        JobActionConfig::Webhook { url, secret_env } => Action::Webhook {
            url: url.clone(),
            secret: match secret_env {
                None => None,
                Some(name) => Some(std::env::var(name).with_context(|| {
                    at(&format!(
                        "webhook_secret_env names {name}, which is not set"
                    ))
                })?),
            },
        },
        JobActionConfig::Builtin(name) => Action::Builtin { name: name.clone() },
        JobActionConfig::Noop => defaults.action.clone(),
    };
    Ok(JobSpec {
        name: job.name.clone(),
        description: job.description.clone(),
        schedule: job.schedule.clone(),
        timezone: job.timezone.clone(),
        trigger: job.trigger.clone(),
        after: job.after.clone(),
        action,
        retries: job.retries.unwrap_or(defaults.retries),
        backoff_ms: job.backoff_ms.unwrap_or(defaults.backoff_ms),
        timeout_ms: job.timeout_ms.unwrap_or(defaults.timeout_ms),
        overlap: match job.overlap.as_deref() {
            Some("queue") => Overlap::Queue,
            _ => Overlap::Skip,
        },
        catch_up: match job.catch_up.as_deref() {
            Some("once") => CatchUp::Once,
            Some("all") => CatchUp::All,
            _ => CatchUp::Skip,
        },
        enabled: true,
    })
}

/// Starts the jobs service and makes the configuration's jobs what `[[jobs]]` says.
pub async fn start(
    config: &Config,
    store: hearth_store::Store,
    events: Arc<hearth_events::Events>,
    plugins: hearth_plugins::Plugins,
) -> anyhow::Result<Jobs> {
    let jobs = Jobs::open(
        hearth_jobs::JobsOptions {
            max_per_tenant: config.scheduler.max_jobs_per_tenant,
            allow_internal_targets: config.scheduler.allow_internal_targets,
            ..hearth_jobs::JobsOptions::default()
        },
        store,
        Some(events.clone()),
        Some(plugins),
        builtins(events),
        Some(hearth_server::system_events_job_observer()),
    )
    .await?;
    let mut configured = Vec::new();
    for job in &config.jobs {
        let tenant = job
            .tenant
            .clone()
            .unwrap_or_else(|| hearth_server::gate::INSTANCE_SCOPE.to_string());
        configured.push((tenant, spec_of(job)?));
    }
    jobs.apply_config(configured)
        .await
        .context("the [[jobs]] of the configuration")?;
    Ok(jobs)
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("")
}

/// One run as a line: id, status, reason, attempts, when, and its error.
fn run_line(run: &Value) -> String {
    let mut line = format!(
        "{:<34} {:<11} {:<9} {:>2} {}",
        text(run, "id"),
        text(run, "status"),
        text(run, "reason"),
        run["attempts"].as_u64().unwrap_or(0),
        text(run, "created_at"),
    );
    if let Some(ms) = run["duration_ms"].as_i64() {
        line.push_str(&format!(" {ms}ms"));
    }
    if let Some(error) = run["error"].as_str() {
        line.push_str(&format!("  {error}"));
    }
    line
}

pub fn run(sources: &Sources, command: &JobsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        match command {
            JobsCommand::List { server, json } => {
                let api = Api::new(sources, server)?;
                let list = api.call(reqwest::Method::GET, "/v1/jobs", None).await?;
                let jobs = list["data"].as_array().cloned().unwrap_or_default();
                if *json {
                    writeln!(out, "{}", Value::Array(jobs))?;
                    return Ok(());
                }
                writeln!(
                    out,
                    "{:<24} {:<22} {:<9} {:<8} NEXT RUN",
                    "NAME", "WHEN", "ACTION", "STATE"
                )?;
                for job in jobs {
                    let when = if let Some(schedule) = job["schedule"].as_str() {
                        schedule.to_string()
                    } else if let Some(trigger) = job["trigger"].as_str() {
                        format!("on {trigger}")
                    } else if let Some(after) = job["after"].as_array().filter(|a| !a.is_empty()) {
                        let names: Vec<&str> = after.iter().filter_map(Value::as_str).collect();
                        format!("after {}", names.join(","))
                    } else {
                        "when run".to_string()
                    };
                    let state = if job["running"] == json!(true) {
                        "running"
                    } else if job["enabled"] == json!(false) {
                        "disabled"
                    } else {
                        "idle"
                    };
                    writeln!(
                        out,
                        "{:<24} {:<22} {:<9} {:<8} {}",
                        text(&job, "name"),
                        when,
                        text(&job["action"], "type"),
                        state,
                        text(&job, "next_run_at"),
                    )?;
                }
                Ok(())
            }
            JobsCommand::Show { server, name } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/jobs/{}", percent_encode(name));
                let job = api.call(reqwest::Method::GET, &path, None).await?;
                writeln!(out, "{}", serde_json::to_string_pretty(&job)?)?;
                Ok(())
            }
            JobsCommand::Define { server, file } => {
                let api = Api::new(sources, server)?;
                let definition = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let body: Value = serde_json::from_str(&definition)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                let name = body["name"]
                    .as_str()
                    .with_context(|| format!("{} names no job (`name`)", file.display()))?;
                let path = format!("/v1/jobs/{}", percent_encode(name));
                let job = api.call(reqwest::Method::PUT, &path, Some(&body)).await?;
                writeln!(out, "defined job {}", text(&job, "name"))?;
                Ok(())
            }
            JobsCommand::Remove { server, name } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/jobs/{}", percent_encode(name));
                api.call(reqwest::Method::DELETE, &path, None).await?;
                writeln!(out, "removed job {name}")?;
                Ok(())
            }
            JobsCommand::Run {
                server,
                name,
                input,
                no_wait,
            } => {
                let api = Api::new(sources, server)?;
                let mut body = json!({});
                if let Some(input) = input {
                    body["input"] = serde_json::from_str(input).context("--input is not JSON")?;
                }
                if !no_wait {
                    body["wait_s"] = json!(300);
                }
                let path = format!("/v1/jobs/{}/run", percent_encode(name));
                let run = api.call(reqwest::Method::POST, &path, Some(&body)).await?;
                writeln!(out, "{}", run_line(&run))?;
                if let Some(output) = run.get("output") {
                    writeln!(out, "{output}")?;
                }
                if !no_wait && text(&run, "status") != "succeeded" {
                    anyhow::bail!("job {name} did not succeed ({})", text(&run, "status"));
                }
                Ok(())
            }
            JobsCommand::History {
                server,
                name,
                limit,
                json,
            } => {
                let api = Api::new(sources, server)?;
                let path = format!("/v1/jobs/{}/runs?limit={limit}", percent_encode(name));
                let list = api.call(reqwest::Method::GET, &path, None).await?;
                let runs = list["data"].as_array().cloned().unwrap_or_default();
                if *json {
                    writeln!(out, "{}", Value::Array(runs))?;
                    return Ok(());
                }
                writeln!(
                    out,
                    "{:<34} {:<11} {:<9} {:>2} STARTED",
                    "RUN", "STATUS", "REASON", "AT"
                )?;
                for run in runs {
                    writeln!(out, "{}", run_line(&run))?;
                }
                Ok(())
            }
        }
    })
}
