//! Throughput of the embedding model, raw and through the batching service.
//!
//! Raw: `EmbeddingModel::embed` called directly with batches of 1, 8 and 32 texts.
//! Service: 32 concurrent callers, each embedding one text at a time in a loop through
//! `EmbeddingService`, which has to batch them itself. The ratio to raw batch 32 says how much
//! the batcher loses (target: at least 0.9).
//!
//! Two workloads: `short` (sentences of 7 to 20 words, like queries and chat messages) and
//! `mixed` (the same with one long paragraph in eight, like document chunks next to queries,
//! where padding every input to the longest would waste most of the work).
//!
//! ```text
//! cargo run --release -p hearth-embed --example embed_bench -- [MODEL_DIR] [--rounds N]
//!     [--seconds S] [--workload short|mixed] [--json]
//! ```
//!
//! MODEL_DIR defaults to `$HEARTH_MODEL_CACHE/all-minilm-l6-v2` or
//! `~/.cache/hearth/models/all-minilm-l6-v2` (see `scripts/fetch-sample-models`).
//! `--json` prints one JSON object instead of the tables: each workload's texts and rates, so
//! that `cargo xtask bench inference` can send the same texts to the server and compare.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hearth_embed::{EmbedError, EmbeddingModel, EmbeddingService, ServiceConfig};

/// Each measurement runs at least this long, after a short warm-up (`--seconds`).
const MEASURE_FOR: Duration = Duration::from_secs(2);
/// Modes are measured in turn this many times and the median is kept: the machine is shared,
/// and interleaving spreads other load evenly over the modes being compared (`--rounds`).
const ROUNDS: usize = 3;
const CONCURRENT_CALLERS: usize = 32;
const RAW_BATCH_SIZES: [usize; 3] = [1, 8, 32];

struct Options {
    model_dir: Option<PathBuf>,
    rounds: usize,
    measure_for: Duration,
    workload: Option<String>,
    json: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        model_dir: None,
        rounds: ROUNDS,
        measure_for: MEASURE_FOR,
        workload: None,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--rounds" => {
                options.rounds = args
                    .next()
                    .and_then(|text| text.parse().ok())
                    .filter(|&rounds| rounds > 0)
                    .ok_or("--rounds needs a positive number")?;
            }
            "--seconds" => {
                let seconds: f64 = args
                    .next()
                    .and_then(|text| text.parse().ok())
                    .filter(|&seconds: &f64| seconds > 0.0)
                    .ok_or("--seconds needs a positive number")?;
                options.measure_for = Duration::from_secs_f64(seconds);
            }
            "--workload" => {
                let name = args.next().ok_or("--workload needs short or mixed")?;
                if name != "short" && name != "mixed" {
                    return Err(format!("unknown workload {name}; use short or mixed"));
                }
                options.workload = Some(name);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            dir => options.model_dir = Some(PathBuf::from(dir)),
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let dir = match &options.model_dir {
        Some(dir) => dir.clone(),
        None => model_dir()?,
    };
    // In JSON mode stdout carries the JSON object alone.
    let say = |line: String| {
        if options.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!("model: {}", dir.display()));
    let raw_model = EmbeddingModel::load(&dir)?;
    let service = EmbeddingService::start(EmbeddingModel::load(&dir)?, ServiceConfig::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rounds = options.rounds;
    let measure_for = options.measure_for;

    let mut report = Vec::new();
    for (workload, texts) in [("short", short_sentences()), ("mixed", mixed_texts())] {
        if options
            .workload
            .as_deref()
            .is_some_and(|wanted| wanted != workload)
        {
            continue;
        }
        let tokens = raw_model.embed(&as_strs(&texts))?.total_tokens();
        say(format!(
            "\nworkload {workload}: {} texts, {:.1} tokens per text on average, {rounds} rounds \
             of {:.1}s per mode, median",
            texts.len(),
            tokens as f64 / texts.len() as f64,
            measure_for.as_secs_f64()
        ));
        let mut raw_rates = vec![Vec::new(); RAW_BATCH_SIZES.len()];
        let mut service_rates = Vec::new();
        let stats_before = service.stats();
        for _ in 0..rounds {
            for (rates, batch_size) in raw_rates.iter_mut().zip(RAW_BATCH_SIZES) {
                rates.push(raw_throughput(&raw_model, &texts, batch_size, measure_for)?);
            }
            service_rates.push(runtime.block_on(service_throughput(
                &service,
                &texts,
                measure_for,
            ))?);
        }
        let stats = service.stats();
        let batches = stats.batches - stats_before.batches;
        let mean_batch = (stats.inputs - stats_before.inputs) as f64 / batches.max(1) as f64;

        if options.json {
            let raw: serde_json::Map<String, serde_json::Value> = raw_rates
                .iter_mut()
                .zip(RAW_BATCH_SIZES)
                .map(|(rates, batch_size)| (batch_size.to_string(), median(rates).into()))
                .collect();
            report.push(serde_json::json!({
                "name": workload,
                "texts": texts,
                "tokens_per_text": tokens as f64 / texts.len() as f64,
                "raw_texts_per_second_by_batch": raw,
                "service_callers": CONCURRENT_CALLERS,
                "service_texts_per_second": median(&mut service_rates),
                "service_mean_batch": mean_batch,
            }));
            continue;
        }

        let raw_batch_32 = median(&mut raw_rates[2]);
        println!(
            "{:<28} {:>10} {:>10} {:>11}",
            "mode", "texts/s", "vs raw 32", "mean batch"
        );
        for (rates, batch_size) in raw_rates.iter_mut().zip(RAW_BATCH_SIZES) {
            let rate = median(rates);
            println!(
                "{:<28} {rate:>10.1} {:>9.2}x {batch_size:>11}",
                format!("raw, batch {batch_size}"),
                rate / raw_batch_32
            );
        }
        let rate = median(&mut service_rates);
        println!(
            "{:<28} {rate:>10.1} {:>9.2}x {mean_batch:>11.1}",
            format!("service, {CONCURRENT_CALLERS} callers x 1"),
            rate / raw_batch_32
        );
    }
    if options.json {
        let report = serde_json::json!({
            "model": dir.display().to_string(),
            "rounds": rounds,
            "seconds_per_mode": measure_for.as_secs_f64(),
            "workloads": report,
        });
        println!("{report}");
    }
    Ok(())
}

/// Texts per second of direct `embed` calls with `batch_size` texts each.
fn raw_throughput(
    model: &EmbeddingModel,
    texts: &[String],
    batch_size: usize,
    measure_for: Duration,
) -> Result<f64, EmbedError> {
    let batches: Vec<Vec<&str>> = texts.chunks(batch_size).map(as_strs).collect();
    for batch in batches.iter().take(2) {
        model.embed(batch)?;
    }
    let started = Instant::now();
    let mut embedded = 0;
    for batch in batches.iter().cycle() {
        embedded += model.embed(batch)?.items.len();
        if started.elapsed() >= measure_for {
            break;
        }
    }
    Ok(embedded as f64 / started.elapsed().as_secs_f64())
}

/// Texts per second when `CONCURRENT_CALLERS` tasks each embed one text at a time.
async fn service_throughput(
    service: &EmbeddingService,
    texts: &[String],
    measure_for: Duration,
) -> Result<f64, EmbedError> {
    // Warm-up, so the measured part starts with the worker busy.
    service.embed(texts[..8].to_vec()).await?;
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CONCURRENT_CALLERS {
        let service = service.clone();
        let texts = texts.to_vec();
        callers.spawn(async move {
            let mut embedded = 0usize;
            let mut next = caller;
            while started.elapsed() < measure_for {
                service.embed(vec![texts[next].clone()]).await?;
                embedded += 1;
                next = (next + CONCURRENT_CALLERS) % texts.len();
            }
            Ok::<usize, EmbedError>(embedded)
        });
    }
    let mut embedded = 0;
    while let Some(joined) = callers.join_next().await {
        embedded += joined.map_err(|_| EmbedError::WorkerStopped)??;
    }
    Ok(embedded as f64 / started.elapsed().as_secs_f64())
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

fn as_strs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

/// 256 sentences of 7 to 20 words.
fn short_sentences() -> Vec<String> {
    let subjects = [
        "The old lighthouse keeper",
        "A curious student",
        "Our new database server",
        "The quarterly report",
        "My neighbour's dog",
        "The city council",
        "A tired developer",
        "The weather forecast",
    ];
    let actions = [
        "quietly watched",
        "carefully explained",
        "unexpectedly crashed during",
        "was delayed by",
        "barked loudly at",
        "voted against",
        "spent the whole night debugging",
        "warned everyone about",
    ];
    let objects = [
        "the storm.",
        "the difference between embeddings and tokens to the class.",
        "the nightly backup job, so we restored yesterday's snapshot from the archive.",
        "rising costs.",
        "the mail carrier who brings packages every single morning.",
        "the new parking rules downtown.",
        "a race condition in the batching scheduler.",
        "heavy rain and strong winds along the coast this weekend.",
    ];
    let mut sentences = Vec::new();
    for (index, subject) in subjects.iter().enumerate() {
        for (offset, action) in actions.iter().enumerate() {
            for shift in 0..4 {
                let object = objects[(index + offset + shift * 3) % objects.len()];
                sentences.push(format!("{subject} {action} {object}"));
            }
        }
    }
    sentences
}

/// The short sentences with every eighth replaced by a paragraph of about 150 words.
fn mixed_texts() -> Vec<String> {
    let mut texts = short_sentences();
    for (index, text) in texts
        .iter_mut()
        .enumerate()
        .filter(|(index, _)| index % 8 == 3)
    {
        let paragraph: Vec<String> = (0..10)
            .map(|part| short_sentences()[(index * 7 + part * 13) % 256].clone())
            .collect();
        *text = paragraph.join(" ");
    }
    texts
}

fn model_dir() -> Result<PathBuf, String> {
    let cache = match std::env::var_os("HEARTH_MODEL_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?)
            .join(".cache/hearth/models"),
    };
    Ok(cache.join("all-minilm-l6-v2"))
}
