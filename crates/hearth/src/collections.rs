//! `hearth collections ...`: a running server's collections, over its HTTP API, so that text
//! is embedded by the server's model and the server's loaded indexes see every write. Parsing,
//! paging and printing only; the rules live in `hearth-memory` behind the server.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, bail};
use hearth_config::Sources;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::api_client::Api;
use crate::cli::{CollectionCreateArgs, CollectionsCommand};

/// Documents per page when the CLI reads a collection.
const PAGE: usize = 1000;

impl Api {
    /// Every document of a collection, a page at a time, handed to `each`.
    async fn each_document(
        &self,
        name: &str,
        include_embedding: bool,
        each: impl FnMut(Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let include = if include_embedding {
            "&include=embedding"
        } else {
            ""
        };
        self.each_item(
            &format!("/v1/collections/{name}/documents?limit={PAGE}{include}"),
            each,
        )
        .await
    }
}

pub fn run(sources: &Sources, command: &CollectionsCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            CollectionsCommand::List { server, json } => {
                let api = Api::new(sources, server)?;
                list(&api, *json).await
            }
            CollectionsCommand::Create(args) => {
                let api = Api::new(sources, &args.server)?;
                create(&api, args).await
            }
            CollectionsCommand::Delete { server, name } => {
                let api = Api::new(sources, server)?;
                api.call(
                    reqwest::Method::DELETE,
                    &format!("/v1/collections/{name}"),
                    None,
                )
                .await?;
                println!("deleted collection {name}");
                Ok(())
            }
            CollectionsCommand::Import {
                server,
                name,
                file,
                batch_size,
            } => {
                let api = Api::new(sources, server)?;
                import(&api, name, file, *batch_size).await
            }
            CollectionsCommand::Export { server, name } => {
                let api = Api::new(sources, server)?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                api.each_document(name, true, |document| {
                    let line = json!({
                        "id": document["id"], "text": document["text"],
                        "metadata": document["metadata"], "embedding": document["embedding"],
                    });
                    writeln!(out, "{line}")?;
                    Ok(())
                })
                .await?;
                out.flush()?;
                Ok(())
            }
        }
    })
}

async fn list(api: &Api, as_json: bool) -> anyhow::Result<()> {
    let mut collections = Vec::new();
    api.each_item(&format!("/v1/collections?limit={PAGE}"), |collection| {
        collections.push(collection);
        Ok(())
    })
    .await?;
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", Value::Array(collections))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:>6} {:<7} {:<6} MODEL",
        "NAME", "DIMS", "METRIC", "QUANT"
    )?;
    for collection in collections {
        writeln!(
            out,
            "{:<32} {:>6} {:<7} {:<6} {}",
            collection["name"].as_str().unwrap_or(""),
            collection["dimensions"],
            collection["metric"].as_str().unwrap_or(""),
            collection["quantization"].as_str().unwrap_or(""),
            collection["embedding_model"].as_str().unwrap_or("-"),
        )?;
    }
    Ok(())
}

async fn create(api: &Api, args: &CollectionCreateArgs) -> anyhow::Result<()> {
    let mut body = json!({"name": args.name, "metric": args.metric});
    if let Some(dimensions) = args.dimensions {
        body["dimensions"] = json!(dimensions);
    }
    if let Some(model) = &args.model {
        body["embedding_model"] = json!(model);
    }
    if args.int8 {
        body["quantization"] = json!("int8");
    }
    let created = api
        .call(reqwest::Method::POST, "/v1/collections", Some(&body))
        .await?;
    println!(
        "made collection {} ({} dimensions, {}{})",
        created["name"].as_str().unwrap_or(&args.name),
        created["dimensions"],
        created["metric"].as_str().unwrap_or(""),
        created["embedding_model"]
            .as_str()
            .map(|model| format!(", text embedded by {model}"))
            .unwrap_or_default()
    );
    Ok(())
}

/// A document of the file, and the line it came from.
struct Line {
    number: usize,
    document: Value,
}

/// Imports a JSON Lines file, one document per line (`id`, `text`, `metadata`, `embedding`).
/// Documents already stored (by id) are skipped, so an interrupted import is run again to
/// finish it; lines without an id get `FILE-STEM:LINE` as theirs for that reason.
async fn import(api: &Api, name: &str, file: &Path, batch_size: usize) -> anyhow::Result<()> {
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let stem = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "line".to_string());
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut lines = Vec::new();
    for (index, text) in reader.lines().enumerate() {
        let number = index + 1;
        let text =
            text.with_context(|| format!("cannot read line {number} of {}", file.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let mut document: Value =
            serde_json::from_str(&text).with_context(|| format!("line {number} is not JSON"))?;
        let Some(object) = document.as_object_mut() else {
            bail!("line {number} is not a JSON object");
        };
        if !object.contains_key("id") {
            object.insert("id".to_string(), json!(format!("{stem}:{number}")));
        }
        lines.push(Line { number, document });
    }

    let mut stored = HashSet::new();
    api.each_document(name, false, |document| {
        if let Some(id) = document["id"].as_str() {
            stored.insert(id.to_string());
        }
        Ok(())
    })
    .await?;
    let total = lines.len();
    let pending: Vec<Line> = lines
        .into_iter()
        .filter(|line| {
            !line.document["id"]
                .as_str()
                .is_some_and(|id| stored.contains(id))
        })
        .collect();
    let skipped = total - pending.len();

    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} documents {per_sec} {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_position(skipped as u64);
    let mut tokens = 0_u64;
    for batch in pending.chunks(batch_size) {
        let documents: Vec<&Value> = batch.iter().map(|line| &line.document).collect();
        let answer = api
            .call(
                reqwest::Method::POST,
                &format!("/v1/collections/{name}/documents"),
                Some(&json!({ "documents": documents })),
            )
            .await
            .map_err(|error| {
                progress.abandon();
                // `documents[3].text` names the batch's fourth line.
                let message = error.to_string();
                let line = message
                    .split("documents[")
                    .nth(1)
                    .and_then(|rest| rest.split(']').next())
                    .and_then(|index| index.parse::<usize>().ok())
                    .and_then(|index| batch.get(index))
                    .map(|line| format!("line {}: ", line.number))
                    .unwrap_or_default();
                anyhow::anyhow!(
                    "{line}{message}; the documents before it are stored, and running the \
                     import again goes on from there"
                )
            })?;
        tokens += answer["usage"]["total_tokens"].as_u64().unwrap_or(0);
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    println!(
        "imported {} documents into {name} ({skipped} already there, {tokens} embedding tokens)",
        pending.len()
    );
    Ok(())
}
