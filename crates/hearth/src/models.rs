//! `hearth pull` and `hearth models ...`: the model registry from the command line. Parsing
//! and printing only; the registry and pull live in `hearth-models`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use hearth_config::Sources;
use hearth_models::{
    Manifest, ModelKind, ModelReference, ModelVersion, PullOptions, PullProgress, PullSource,
    Registry, Storage,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ModelsCommand, PullArgs};

fn open_registry(sources: &Sources) -> anyhow::Result<Registry> {
    let loaded = crate::config::load(sources)?;
    Ok(Registry::open(&loaded.config.data_dir)?)
}

pub fn pull(sources: &Sources, args: &PullArgs) -> anyhow::Result<()> {
    // Everything the user typed is checked before the data directory is touched.
    let source = PullSource::parse(&args.source)?;
    let name = args
        .name
        .as_deref()
        .map(ModelReference::parse)
        .transpose()?;
    let registry = open_registry(sources)?;
    let options = PullOptions {
        sha256: args.sha256.clone(),
        copy: args.copy,
        huggingface_endpoint: huggingface_endpoint(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut view = ProgressView::new(std::io::stderr().is_terminal());
    let result = runtime.block_on(hearth_models::pull(
        &registry,
        &source,
        name.as_ref(),
        &options,
        |event| view.show(event),
    ));
    view.finish();
    let manifest = result?;
    let version = &manifest.current;
    println!(
        "pulled {} ({}, {}, sha256 {})",
        manifest.reference,
        human_size(version.size_bytes),
        match version.storage {
            Storage::Owned => "stored in the data directory",
            Storage::InPlace => "registered in place",
        },
        version.sha256
    );
    if manifest.is_base_model() {
        println!("note: {}", hearth_models::BASE_MODEL_NOTE);
    }
    Ok(())
}

/// Where `hf:` references resolve: `$HF_ENDPOINT` (the Hugging Face tools' variable, for
/// mirrors) or huggingface.co. `hearth pull` and the server's `/api/pull` both use it.
pub fn huggingface_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.is_empty())
        .unwrap_or_else(|| hearth_models::HUGGING_FACE_ENDPOINT.to_string())
}

/// Pull progress on stderr: a progress bar on a terminal, one line per status change
/// otherwise (logs and CI output stay readable).
struct ProgressView {
    terminal: bool,
    bar: Option<ProgressBar>,
    last_status: String,
}

impl ProgressView {
    fn new(terminal: bool) -> ProgressView {
        ProgressView {
            terminal,
            bar: None,
            last_status: String::new(),
        }
    }

    fn show(&mut self, event: &PullProgress) {
        let status_changed = event.status != self.last_status;
        if status_changed {
            self.finish();
            self.last_status = event.status.clone();
        }
        match (self.terminal, event.total, event.completed) {
            (true, Some(total), Some(completed)) => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(total);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_message(event.status.clone());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                bar.set_length(total);
                bar.set_position(completed);
            }
            _ if status_changed => eprintln!("{}", event.status),
            _ => {}
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

pub fn run(sources: &Sources, command: &ModelsCommand) -> anyhow::Result<()> {
    // Names are validated before the data directory is opened (and created).
    let parse = |text: &str| ModelReference::parse(text);
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::List { json } => {
            let registry = open_registry(sources)?;
            let manifests = registry.list()?;
            if *json {
                let list: Vec<serde_json::Value> = manifests.iter().map(manifest_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else if manifests.is_empty() {
                writeln!(out, "no models yet; `hearth pull URL|hf:...|PATH` adds one")?;
            } else {
                write_table(&mut out, &manifests)?;
            }
        }
        ModelsCommand::Show { name, json } => {
            let reference = parse(name)?;
            let manifest = open_registry(sources)?.show(&reference)?;
            if *json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&manifest_json(&manifest))?
                )?;
            } else {
                write_details(&mut out, &manifest)?;
            }
        }
        ModelsCommand::Rm { name } => {
            let reference = parse(name)?;
            let removed = open_registry(sources)?.remove(&reference)?;
            writeln!(out, "removed {}", removed.manifest.reference)?;
            for blob in removed.deleted_blobs {
                writeln!(out, "deleted {}", blob.display())?;
            }
        }
        ModelsCommand::Cp {
            source,
            destination,
        } => {
            let (source, destination) = (parse(source)?, parse(destination)?);
            let manifest = open_registry(sources)?.copy(&source, &destination)?;
            writeln!(out, "copied {source} to {}", manifest.reference)?;
        }
        ModelsCommand::Rollback { name } => {
            let reference = parse(name)?;
            let registry = open_registry(sources)?;
            let removed = registry.rollback(&reference)?;
            let now = registry.show(&reference)?;
            writeln!(
                out,
                "rolled back {reference}: now {} from {} (dropped {})",
                short_id(&now.current.sha256),
                format_time(now.current.created_at_ms),
                short_id(&removed.manifest.current.sha256)
            )?;
            for blob in removed.deleted_blobs {
                writeln!(out, "deleted {}", blob.display())?;
            }
        }
    }
    Ok(())
}

fn manifest_json(manifest: &Manifest) -> serde_json::Value {
    let mut value = serde_json::to_value(&manifest.current).unwrap_or_default();
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("model".to_string(), manifest.reference.to_string().into());
        if manifest.is_base_model() {
            map.insert("note".to_string(), hearth_models::BASE_MODEL_NOTE.into());
        }
        map.insert(
            "previous".to_string(),
            serde_json::to_value(&manifest.previous).unwrap_or_default(),
        );
    }
    value
}

fn write_table(out: &mut impl Write, manifests: &[Manifest]) -> std::io::Result<()> {
    let header = [
        "NAME",
        "KIND",
        "FAMILY",
        "QUANTIZATION",
        "SIZE",
        "ID",
        "STORAGE",
        "VERSIONS",
    ];
    let rows: Vec<[String; 8]> = manifests
        .iter()
        .map(|manifest| {
            let version = &manifest.current;
            [
                manifest.reference.to_string(),
                format!("{:?}", version.kind).to_lowercase(),
                version.family.clone().unwrap_or_else(|| "-".to_string()),
                version
                    .quantization
                    .clone()
                    .unwrap_or_else(|| "-".to_string()),
                human_size(version.size_bytes),
                short_id(&version.sha256).to_string(),
                storage_name(version).to_string(),
                (manifest.previous.len() + 1).to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

fn write_details(out: &mut impl Write, manifest: &Manifest) -> std::io::Result<()> {
    let version = &manifest.current;
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
    let parameters = match (&version.size_label, version.parameter_count) {
        (Some(label), Some(count)) => format!("{label} ({count})"),
        (None, Some(count)) => count.to_string(),
        (Some(label), None) => label.clone(),
        (None, None) => "-".to_string(),
    };
    let template = match (&version.chat_template, version.kind) {
        (Some(template), _) => format!("{} characters", template.chars().count()),
        (None, ModelKind::Embedding) => "none".to_string(),
        (None, ModelKind::Chat) if manifest.is_base_model() => {
            format!("none: {}", hearth_models::BASE_MODEL_NOTE)
        }
        (None, ModelKind::Chat) => "none (the family's built-in format is used)".to_string(),
    };
    let lines = [
        ("name", manifest.reference.to_string()),
        ("kind", format!("{:?}", version.kind).to_lowercase()),
        ("format", format!("{:?}", version.format).to_lowercase()),
        ("family", optional(version.family.clone())),
        ("quantization", optional(version.quantization.clone())),
        ("parameters", parameters),
        (
            "context length",
            optional(version.context_length.map(|n| n.to_string())),
        ),
        (
            "embedding length",
            optional(version.embedding_length.map(|n| n.to_string())),
        ),
        ("chat template", template),
        ("size", human_size(version.size_bytes)),
        ("sha256", version.sha256.clone()),
        ("path", version.path.display().to_string()),
        ("storage", storage_name(version).to_string()),
        ("source", version.source.clone()),
        ("created", format_time(version.created_at_ms)),
    ];
    for (label, value) in lines {
        writeln!(out, "{label:<17}{value}")?;
    }
    if manifest.previous.is_empty() {
        writeln!(out, "{:<17}none", "previous")?;
    }
    for (index, previous) in manifest.previous.iter().enumerate() {
        let label = if index == 0 { "previous" } else { "" };
        writeln!(
            out,
            "{label:<17}{}  {}  {}",
            short_id(&previous.sha256),
            format_time(previous.created_at_ms),
            previous.source
        )?;
    }
    Ok(())
}

fn storage_name(version: &ModelVersion) -> &'static str {
    match version.storage {
        Storage::Owned => "owned",
        Storage::InPlace => "in place",
    }
}

/// The first twelve hex digits of a sha256, as Ollama shows model ids.
fn short_id(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

/// Decimal units, as download sizes are usually given.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `YYYY-MM-DD HH:MM UTC` from Unix milliseconds.
fn format_time(unix_ms: u64) -> String {
    let time = hearth_time::Utc::from_unix_millis(i64::try_from(unix_ms).unwrap_or(i64::MAX));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        time.year, time.month, time.day, time.hour, time.minute
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_print_for_people() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(253_113_024), "253.1 MB");
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_709_251_200_000), "2024-03-01 00:00 UTC");
        assert_eq!(
            format_time(951_782_400_000 + 61_000),
            "2000-02-29 00:01 UTC"
        );
    }
}
