//! Doing a run's work: a plugin's tool (in the job's tenant), a webhook (through the egress
//! guard, signed when the job has a secret) or built-in work registered by the binary. Each
//! answers the run's output as JSON, or an error saying what went wrong.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::spec::Action;

/// Built-in work: what it did, as JSON, or why it failed.
pub type BuiltinFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;
/// A piece of built-in work, as the binary registers it (`events.retention`, ...).
pub type Builtin = Arc<dyn Fn() -> BuiltinFuture + Send + Sync>;

/// The built-in work jobs may name. `noop` is always there: a job that only marks time (its
/// run and system event are the point).
#[derive(Clone, Default)]
pub struct Builtins(HashMap<String, Builtin>);

impl Builtins {
    pub fn new() -> Builtins {
        let mut builtins = Builtins(HashMap::new());
        builtins.add("noop", || Box::pin(async { Ok(json!({})) }));
        builtins
    }

    pub fn add(
        &mut self,
        name: &str,
        work: impl Fn() -> BuiltinFuture + Send + Sync + 'static,
    ) -> &mut Builtins {
        self.0.insert(name.to_string(), Arc::new(work));
        self
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.keys().cloned().collect();
        names.sort();
        names
    }

    pub(crate) fn get(&self, name: &str) -> Option<Builtin> {
        self.0.get(name).cloned()
    }
}

/// Webhook requests, as the egress guard names them in its refusals.
pub(crate) const EGRESS: hearth_egress::Egress = hearth_egress::Egress {
    who: "job webhooks",
    setting: "jobs.allow_internal_targets",
};

/// Largest webhook answer kept as a run's output.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Who a run is, for the action.
pub(crate) struct RunContext<'a> {
    pub tenant_id: &'a str,
    pub job: &'a str,
    pub run_id: &'a str,
    pub attempt: u32,
    pub reason: &'a str,
    pub input: Option<&'a Value>,
    pub timeout: Duration,
}

/// What actions need from the rest of Hearth.
pub(crate) struct Doers {
    pub plugins: Option<hearth_plugins::Plugins>,
    pub builtins: Builtins,
    pub http: reqwest::Client,
    pub allow_internal_targets: bool,
}

impl Doers {
    pub(crate) async fn run(
        &self,
        action: &Action,
        context: &RunContext<'_>,
    ) -> Result<Value, String> {
        match action {
            Action::Plugin {
                plugin,
                tool,
                arguments,
            } => {
                let plugins = self
                    .plugins
                    .as_ref()
                    .ok_or("plugins are not configured on this server")?;
                let output = plugins
                    .call_tool(plugin, tool, &arguments.to_string(), context.tenant_id)
                    .await
                    .map_err(|error| error.to_string())?;
                Ok(serde_json::from_str(&output.output).unwrap_or(Value::String(output.output)))
            }
            Action::Webhook { url, secret } => self.webhook(url, secret.as_deref(), context).await,
            Action::Builtin { name } => {
                let work = self
                    .builtins
                    .get(name)
                    .ok_or_else(|| format!("no built-in work named {name}"))?;
                work().await
            }
        }
    }

    async fn webhook(
        &self,
        url: &str,
        secret: Option<&str>,
        context: &RunContext<'_>,
    ) -> Result<Value, String> {
        let url = hearth_egress::check_url(url, self.allow_internal_targets, EGRESS)?;
        let body = json!({
            "type": "hearth.job.run",
            "timestamp": hearth_time::rfc3339_from_unix_millis(hearth_time::now_ms()),
            "data": {
                "job": context.job,
                "run_id": context.run_id,
                "attempt": context.attempt,
                "reason": context.reason,
                "input": context.input,
            },
        })
        .to_string();
        // The same message id on every attempt of a run, so a receiver can tell a retry.
        let message_id = format!("msg_{}", context.run_id);
        let timestamp = hearth_time::now_ms() / 1000;
        let mut request = self
            .http
            .post(url)
            .timeout(context.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", &message_id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = secret {
            let signature = hearth_webhooks::sign::signature_header(
                &[secret],
                &message_id,
                timestamp,
                body.as_bytes(),
            );
            request = request.header("webhook-signature", signature);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| format!("the webhook could not be reached: {error}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| format!("reading the webhook's answer: {error}"))?;
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER_BYTES)]).to_string();
        if !status.is_success() {
            return Err(format!("the webhook answered {status}: {text}"));
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(json!({"status": status.as_u16(), "body": body}))
    }
}
