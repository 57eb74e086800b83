//! `hearth graphs ...` and `hearth memories ...`: a running server's knowledge graphs and its
//! users' conversation memory, over its HTTP API (the server embeds node text and keeps the
//! rules). Parsing, paging and printing only.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, bail};
use hearth_config::Sources;
use serde_json::{Value, json};

use crate::api_client::{Api, percent_encode, runtime};
use crate::cli::{GraphsCommand, MemoriesCommand};

/// Items per request: the server takes at most 1000 nodes or relations at once.
const BATCH: usize = 500;
const PAGE: usize = 1000;

pub fn run(sources: &Sources, command: &GraphsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        match command {
            GraphsCommand::List { server, json } => {
                let api = Api::new(sources, server)?;
                let mut graphs = Vec::new();
                api.each_item(&format!("/v1/graphs?limit={PAGE}"), |graph| {
                    graphs.push(graph);
                    Ok(())
                })
                .await?;
                let mut out = std::io::stdout().lock();
                if *json {
                    writeln!(out, "{}", Value::Array(graphs))?;
                    return Ok(());
                }
                writeln!(out, "{:<32} COLLECTION", "NAME")?;
                for graph in graphs {
                    writeln!(
                        out,
                        "{:<32} {}",
                        graph["name"].as_str().unwrap_or(""),
                        graph["collection"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
            GraphsCommand::Create {
                server,
                name,
                dimensions,
                model,
            } => {
                let api = Api::new(sources, server)?;
                let mut body = json!({"name": name});
                if let Some(dimensions) = dimensions {
                    body["dimensions"] = json!(dimensions);
                }
                if let Some(model) = model {
                    body["embedding_model"] = json!(model);
                }
                api.call(reqwest::Method::POST, "/v1/graphs", Some(&body))
                    .await?;
                println!("made graph {name}");
                Ok(())
            }
            GraphsCommand::Delete { server, name } => {
                let api = Api::new(sources, server)?;
                api.call(
                    reqwest::Method::DELETE,
                    &format!("/v1/graphs/{}", percent_encode(name)),
                    None,
                )
                .await?;
                println!("deleted graph {name}");
                Ok(())
            }
            GraphsCommand::Import { server, name, file } => {
                let api = Api::new(sources, server)?;
                import(&api, name, file).await
            }
            GraphsCommand::Neighbors {
                server,
                name,
                node,
                direction,
                types,
            } => {
                let api = Api::new(sources, server)?;
                let types = types
                    .as_deref()
                    .map(|types| format!("&types={}", percent_encode(types)))
                    .unwrap_or_default();
                let path = format!(
                    "/v1/graphs/{}/nodes/{}/neighbors?limit={PAGE}&direction={}{types}",
                    percent_encode(name),
                    percent_encode(node),
                    percent_encode(direction)
                );
                let mut out = std::io::stdout().lock();
                api.each_item(&path, |neighbor| {
                    let relation = &neighbor["relation"];
                    writeln!(
                        out,
                        "{} -{}-> {}\t{}",
                        relation["source"].as_str().unwrap_or(""),
                        relation["type"].as_str().unwrap_or(""),
                        relation["target"].as_str().unwrap_or(""),
                        neighbor["node"]["title"].as_str().unwrap_or("")
                    )?;
                    Ok(())
                })
                .await
            }
        }
    })
}

/// Reads the file's nodes and relations, then upserts the nodes and then the relations, a
/// batch at a time.
async fn import(api: &Api, name: &str, file: &Path) -> anyhow::Result<()> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let (mut nodes, mut relations) = (Vec::new(), Vec::new());
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not JSON", index + 1))?;
        match (value.get("node"), value.get("relation")) {
            (Some(node), None) => nodes.push(node.clone()),
            (None, Some(relation)) => relations.push(relation.clone()),
            _ => bail!(
                "line {} is neither {{\"node\": ...}} nor {{\"relation\": ...}}",
                index + 1
            ),
        }
    }
    let graph = percent_encode(name);
    for (kind, items) in [("nodes", &nodes), ("relations", &relations)] {
        for batch in items.chunks(BATCH) {
            api.call(
                reqwest::Method::POST,
                &format!("/v1/graphs/{graph}/{kind}"),
                Some(&json!({ kind: batch })),
            )
            .await
            .with_context(|| format!("importing {kind}"))?;
        }
    }
    println!(
        "imported {} nodes and {} relations into graph {name}",
        nodes.len(),
        relations.len()
    );
    Ok(())
}

pub fn run_memories(sources: &Sources, command: &MemoriesCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        match command {
            MemoriesCommand::Export { server, user } => {
                let api = Api::new(sources, server)?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                api.each_item(
                    &format!("/v1/memories/{}?limit={PAGE}", percent_encode(user)),
                    |turn| {
                        writeln!(out, "{turn}")?;
                        Ok(())
                    },
                )
                .await?;
                out.flush()?;
                Ok(())
            }
            MemoriesCommand::Forget { server, user } => {
                let api = Api::new(sources, server)?;
                let deleted = api
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/v1/memories/{}", percent_encode(user)),
                        None,
                    )
                    .await?;
                println!("deleted {} remembered turns of {user}", deleted["deleted"]);
                Ok(())
            }
        }
    })
}
