//! `hearth prompts ...`: a running server's prompt templates over its HTTP API.

use std::io::Write;

use anyhow::Context;
use hearth_config::Sources;
use serde_json::{Map, Value, json};

use crate::api_client::{Api, percent_encode, runtime};
use crate::cli::PromptsCommand;

fn path(name: &str) -> String {
    format!("/v1/prompts/{}", percent_encode(name))
}

/// `--var NAME=VALUE` and `--variables JSON`, merged (a `--var` wins).
fn variables(vars: &[String], json_text: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    let mut variables = match json_text {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text).context("--variables is not JSON")? {
            Value::Object(map) => map,
            _ => anyhow::bail!("--variables must be a JSON object"),
        },
    };
    for var in vars {
        let (name, value) = var
            .split_once('=')
            .with_context(|| format!("--var {var}: write NAME=VALUE"))?;
        variables.insert(name.to_string(), Value::String(value.to_string()));
    }
    Ok(variables)
}

pub fn run(sources: &Sources, command: &PromptsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        match command {
            PromptsCommand::List { server, json } => {
                let api = Api::new(sources, server)?;
                let list = api.call(reqwest::Method::GET, "/v1/prompts", None).await?;
                let prompts = list["data"].as_array().cloned().unwrap_or_default();
                if *json {
                    writeln!(out, "{}", Value::Array(prompts))?;
                    return Ok(());
                }
                writeln!(
                    out,
                    "{:<32} {:>7} {:<25} LABELS",
                    "NAME", "LATEST", "UPDATED"
                )?;
                for prompt in prompts {
                    let labels: Vec<String> = prompt["labels"]
                        .as_object()
                        .map(|labels| {
                            labels
                                .iter()
                                .map(|(label, version)| format!("{label}={version}"))
                                .collect()
                        })
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{:<32} {:>7} {:<25} {}",
                        prompt["id"].as_str().unwrap_or(""),
                        prompt["latest_version"],
                        prompt["updated_at"].as_str().unwrap_or(""),
                        labels.join(" "),
                    )?;
                }
                Ok(())
            }
            PromptsCommand::Show { server, name, at } => {
                let api = Api::new(sources, server)?;
                let version = at.as_deref().unwrap_or(hearth_prompts::LATEST);
                let path = format!("{}/versions/{}", path(name), percent_encode(version));
                let found = api.call(reqwest::Method::GET, &path, None).await?;
                writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
                Ok(())
            }
            PromptsCommand::Push {
                server,
                file,
                labels,
                note,
            } => {
                let api = Api::new(sources, server)?;
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let mut body: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                if !labels.is_empty() {
                    let mut all: Vec<Value> =
                        body["labels"].as_array().cloned().unwrap_or_default();
                    all.extend(labels.iter().map(|label| json!(label)));
                    body["labels"] = Value::Array(all);
                }
                if let Some(note) = note {
                    body["note"] = json!(note);
                }
                let pushed = api
                    .call(reqwest::Method::POST, "/v1/prompts", Some(&body))
                    .await?;
                let id = pushed["id"].as_str().unwrap_or("");
                if pushed["created"] == json!(true) {
                    writeln!(out, "pushed {id} version {}", pushed["version"])?;
                } else {
                    writeln!(out, "{id} version {} is unchanged", pushed["version"])?;
                }
                Ok(())
            }
            PromptsCommand::Label {
                server,
                name,
                label,
                number,
            } => {
                let api = Api::new(sources, server)?;
                let path = format!("{}/labels/{}", path(name), percent_encode(label));
                let body = json!({"version": number});
                api.call(reqwest::Method::PUT, &path, Some(&body)).await?;
                writeln!(out, "{name}: {label} -> version {number}")?;
                Ok(())
            }
            PromptsCommand::Unlabel {
                server,
                name,
                label,
            } => {
                let api = Api::new(sources, server)?;
                let path = format!("{}/labels/{}", path(name), percent_encode(label));
                api.call(reqwest::Method::DELETE, &path, None).await?;
                writeln!(out, "{name}: removed label {label}")?;
                Ok(())
            }
            PromptsCommand::Render {
                server,
                name,
                at,
                vars,
                variables: json_text,
            } => {
                let api = Api::new(sources, server)?;
                let mut body = json!({"variables": variables(vars, json_text.as_deref())?});
                if let Some(at) = at {
                    match at.parse::<u32>() {
                        Ok(number) => body["version"] = json!(number),
                        Err(_) => body["label"] = json!(at),
                    }
                }
                let path = format!("{}/render", path(name));
                let rendered = api.call(reqwest::Method::POST, &path, Some(&body)).await?;
                for message in rendered["messages"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "[{}]\n{}\n",
                        message["role"].as_str().unwrap_or(""),
                        message["content"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
            PromptsCommand::Remove { server, name } => {
                let api = Api::new(sources, server)?;
                api.call(reqwest::Method::DELETE, &path(name), None).await?;
                writeln!(out, "removed prompt {name}")?;
                Ok(())
            }
        }
    })
}
