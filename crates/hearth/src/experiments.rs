//! `hearth experiments ...`: a running server's experiments over its HTTP API.

use std::io::Write;

use anyhow::Context;
use hearth_config::Sources;
use serde_json::{Value, json};

use crate::api_client::{Api, percent_encode, runtime};
use crate::cli::ExperimentsCommand;

fn path(name: &str) -> String {
    format!("/v1/experiments/{}", percent_encode(name))
}

fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(number) if number.abs() >= 100.0 => format!("{number:.1}"),
        Some(number) => format!("{number:.4}"),
        None => "-".to_string(),
    }
}

/// The results as a table: a line per metric and variant.
fn print_results(out: &mut impl Write, results: &Value) -> anyhow::Result<()> {
    for row in results["exposures"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "{}: {} units, {} requests",
            row["variant"].as_str().unwrap_or(""),
            row["units"],
            row["requests"]
        )?;
    }
    if results["sample_ratio_mismatch"] == json!(true) {
        writeln!(
            out,
            "SAMPLE RATIO MISMATCH (p = {}): the split or the recording is broken; do not trust \
             the comparisons",
            number(&results["sample_ratio_p_value"])
        )?;
    }
    writeln!(
        out,
        "\n{:<24} {:<12} {:>6} {:>12} {:>12} {:>27} {:>9} {:>4}",
        "METRIC", "VARIANT", "UNITS", "MEAN", "DIFFERENCE", "INTERVAL", "P", "SEQ"
    )?;
    for metric in results["metrics"].as_array().into_iter().flatten() {
        for row in metric["variants"].as_array().into_iter().flatten() {
            let versus = &row["versus_control"];
            let interval = if versus.is_object() {
                format!(
                    "[{}, {}]",
                    number(&versus["interval"][0]),
                    number(&versus["interval"][1])
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:<24} {:<12} {:>6} {:>12} {:>12} {:>27} {:>9} {:>4}",
                metric["name"].as_str().unwrap_or(""),
                row["variant"].as_str().unwrap_or(""),
                row["units"],
                number(&row["mean"]),
                if versus.is_object() {
                    number(&versus["difference"])
                } else {
                    String::new()
                },
                interval,
                if versus.is_object() {
                    number(&versus["p_value"])
                } else {
                    String::new()
                },
                match versus["sequentially_significant"].as_bool() {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "",
                },
            )?;
        }
    }
    Ok(())
}

pub fn run(sources: &Sources, command: &ExperimentsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        match command {
            ExperimentsCommand::List { server } => {
                let api = Api::new(sources, server)?;
                let list = api
                    .call(reqwest::Method::GET, "/v1/experiments", None)
                    .await?;
                writeln!(
                    out,
                    "{:<24} {:<9} {:<28} VARIANTS",
                    "NAME", "STATUS", "TARGET"
                )?;
                for experiment in list["data"].as_array().into_iter().flatten() {
                    let target = experiment["target"]
                        .as_object()
                        .and_then(|target| target.iter().next())
                        .map(|(kind, name)| format!("{kind} {}", name.as_str().unwrap_or("")))
                        .unwrap_or_default();
                    let variants: Vec<String> = experiment["variants"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|variant| {
                            format!(
                                "{}={}",
                                variant["name"].as_str().unwrap_or(""),
                                variant["weight"]
                            )
                        })
                        .collect();
                    writeln!(
                        out,
                        "{:<24} {:<9} {:<28} {}",
                        experiment["name"].as_str().unwrap_or(""),
                        experiment["status"].as_str().unwrap_or(""),
                        target,
                        variants.join(" ")
                    )?;
                }
                Ok(())
            }
            ExperimentsCommand::Show { server, name } => {
                let api = Api::new(sources, server)?;
                let found = api.call(reqwest::Method::GET, &path(name), None).await?;
                writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
                Ok(())
            }
            ExperimentsCommand::Define { server, file } => {
                let api = Api::new(sources, server)?;
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let body: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                let name = body["name"]
                    .as_str()
                    .with_context(|| format!("{} names no experiment (`name`)", file.display()))?;
                api.call(reqwest::Method::PUT, &path(name), Some(&body))
                    .await?;
                writeln!(
                    out,
                    "defined experiment {name} (a draft: start it to split traffic)"
                )?;
                Ok(())
            }
            ExperimentsCommand::Start { server, name }
            | ExperimentsCommand::Pause { server, name } => {
                let verb = if matches!(command, ExperimentsCommand::Start { .. }) {
                    "start"
                } else {
                    "pause"
                };
                let api = Api::new(sources, server)?;
                let found = api
                    .call(
                        reqwest::Method::POST,
                        &format!("{}/{verb}", path(name)),
                        None,
                    )
                    .await?;
                writeln!(
                    out,
                    "experiment {name} is {}",
                    found["status"].as_str().unwrap_or("")
                )?;
                Ok(())
            }
            ExperimentsCommand::Ramp {
                server,
                name,
                weights,
            } => {
                let api = Api::new(sources, server)?;
                let mut parsed = serde_json::Map::new();
                for weight in weights {
                    let (variant, value) = weight
                        .split_once('=')
                        .with_context(|| format!("{weight}: write VARIANT=WEIGHT"))?;
                    let value: u32 = value
                        .parse()
                        .with_context(|| format!("{weight}: a weight is a whole number"))?;
                    parsed.insert(variant.to_string(), json!(value));
                }
                let body = json!({"weights": parsed});
                api.call(reqwest::Method::PATCH, &path(name), Some(&body))
                    .await?;
                writeln!(out, "experiment {name} ramped")?;
                Ok(())
            }
            ExperimentsCommand::Stop {
                server,
                name,
                winner,
            } => {
                let api = Api::new(sources, server)?;
                let body = json!({"winner": winner});
                api.call(
                    reqwest::Method::POST,
                    &format!("{}/stop", path(name)),
                    Some(&body),
                )
                .await?;
                match winner {
                    Some(winner) => writeln!(out, "experiment {name} stopped; {winner} serves")?,
                    None => writeln!(out, "experiment {name} stopped")?,
                }
                Ok(())
            }
            ExperimentsCommand::Results { server, name, json } => {
                let api = Api::new(sources, server)?;
                let results = api
                    .call(
                        reqwest::Method::GET,
                        &format!("{}/results", path(name)),
                        None,
                    )
                    .await?;
                if *json {
                    writeln!(out, "{results}")?;
                } else {
                    print_results(&mut out, &results)?;
                }
                Ok(())
            }
            ExperimentsCommand::Remove { server, name } => {
                let api = Api::new(sources, server)?;
                api.call(reqwest::Method::DELETE, &path(name), None).await?;
                writeln!(out, "removed experiment {name}")?;
                Ok(())
            }
        }
    })
}
