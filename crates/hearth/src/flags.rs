//! Flags in the binary: the configuration's `[[flags]]` applied at start and on every reload,
//! and `hearth flags ...`, a running server's flags over its HTTP API.

use std::io::Write;

use anyhow::Context;
use hearth_config::{Config, Sources};
use serde_json::{Value, json};

use crate::api_client::{Api, percent_encode, runtime};
use crate::cli::FlagsCommand;

/// Makes the configuration's flags what `[[flags]]` says (all or nothing).
pub async fn apply_config(flags: &hearth_flags::Flags, config: &Config) -> anyhow::Result<()> {
    let mut configured = Vec::with_capacity(config.flags.len());
    for flag in &config.flags {
        let tenant = flag
            .tenant
            .clone()
            .unwrap_or_else(|| hearth_server::gate::INSTANCE_SCOPE.to_string());
        let definition = serde_json::to_value(&flag.definition)
            .with_context(|| format!("flag {} cannot be read", flag.key))?;
        let spec: hearth_flags::FlagSpec = serde_json::from_value(definition)
            .with_context(|| format!("flag {} cannot be read", flag.key))?;
        configured.push((tenant, flag.key.clone(), spec));
    }
    flags
        .apply_config(configured, crate::serve::now_ms())
        .await?;
    Ok(())
}

fn path(key: &str) -> String {
    format!("/v1/flags/{}", percent_encode(key))
}

pub fn run(sources: &Sources, command: &FlagsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        match command {
            FlagsCommand::List { server, json } => {
                let api = Api::new(sources, server)?;
                let list = api.call(reqwest::Method::GET, "/v1/flags", None).await?;
                let flags = list["data"].as_array().cloned().unwrap_or_default();
                if *json {
                    writeln!(out, "{}", Value::Array(flags))?;
                    return Ok(());
                }
                writeln!(
                    out,
                    "{:<32} {:<8} {:<8} {:>5} {:<7} DEFAULT",
                    "KEY", "TYPE", "STATE", "RULES", "SOURCE"
                )?;
                for flag in flags {
                    let state = if flag["enabled"] == json!(false) {
                        "off"
                    } else if flag.get("split").is_some() {
                        "rollout"
                    } else {
                        "on"
                    };
                    writeln!(
                        out,
                        "{:<32} {:<8} {:<8} {:>5} {:<7} {}",
                        flag["key"].as_str().unwrap_or(""),
                        flag["type"].as_str().unwrap_or(""),
                        state,
                        flag["rules"].as_array().map_or(0, Vec::len),
                        flag["source"].as_str().unwrap_or(""),
                        flag["default_variant"].as_str().unwrap_or(""),
                    )?;
                }
                Ok(())
            }
            FlagsCommand::Show { server, key } => {
                let api = Api::new(sources, server)?;
                let flag = api.call(reqwest::Method::GET, &path(key), None).await?;
                writeln!(out, "{}", serde_json::to_string_pretty(&flag)?)?;
                Ok(())
            }
            FlagsCommand::Set { server, file } => {
                let api = Api::new(sources, server)?;
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let body: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                let key = body["key"]
                    .as_str()
                    .with_context(|| format!("{} names no flag (`key`)", file.display()))?;
                let flag = api
                    .call(reqwest::Method::PUT, &path(key), Some(&body))
                    .await?;
                writeln!(out, "set flag {}", flag["key"].as_str().unwrap_or(key))?;
                Ok(())
            }
            FlagsCommand::Enable { server, key } | FlagsCommand::Disable { server, key } => {
                let enabled = matches!(command, FlagsCommand::Enable { .. });
                let api = Api::new(sources, server)?;
                let body = json!({"enabled": enabled});
                api.call(reqwest::Method::PATCH, &path(key), Some(&body))
                    .await?;
                let state = if enabled { "on" } else { "off" };
                writeln!(out, "flag {key} is {state}")?;
                Ok(())
            }
            FlagsCommand::Remove { server, key } => {
                let api = Api::new(sources, server)?;
                api.call(reqwest::Method::DELETE, &path(key), None).await?;
                writeln!(out, "removed flag {key}")?;
                Ok(())
            }
            FlagsCommand::Eval {
                server,
                key,
                context,
            } => {
                let api = Api::new(sources, server)?;
                let context: Value = match context {
                    Some(text) => serde_json::from_str(text).context("--context is not JSON")?,
                    None => json!({}),
                };
                let path = format!("/ofrep/v1/evaluate/flags/{}", percent_encode(key));
                let body = json!({"context": context});
                let evaluation = api.call(reqwest::Method::POST, &path, Some(&body)).await?;
                writeln!(out, "{evaluation}")?;
                Ok(())
            }
        }
    })
}
