//! `cargo xtask bench memory [--binary PATH] [--skip-peer]`: retrieval quality of the memory
//! API on the Cranfield collection (`../shared/data/cranfield/`, see its README), through the
//! real server over HTTP: nDCG@10 of keyword (BM25), vector (the local MiniLM) and hybrid
//! search over the 225 judged queries, against a reference BM25 (`rank-bm25` from PyPI, in a
//! virtualenv outside the clone) on the same tokenization: Unicode words, lower-cased,
//! Porter-stemmed as FTS5's `porter` tokenizer does (the original algorithm), k1 1.2, b 0.75.
//!
//! Then, unless `--skip-vectors`, the vector index's speed and recall against faiss and
//! hnswlib on real embeddings (`bench_vectors.rs`), the embeddings made by the same server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http::Connection;
use crate::process::{cpu_model_name, serve_hearth};

const EMBEDDING_MODEL: &str = "all-minilm:l6-v2";
/// The reference's packages, pinned so that every run compares against the same code.
const REFERENCE_PACKAGES: [&str; 2] = ["rank-bm25==0.2.2", "nltk==3.9.1"];

/// A Cranfield query: its position (the number `cranqrel` uses) and text.
struct Judged {
    text: String,
    /// Gain of each judged document: 5 - grade for grades 1 to 4.
    gains: HashMap<String, f64>,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cranfield");
    let binary = match crate::flag(args, "--binary") {
        Some(path) => PathBuf::from(path),
        None => crate::release_binary().map_err(|error| anyhow::anyhow!(error))?,
    };
    let skip_peer = args.iter().any(|arg| arg == "--skip-peer");
    let skip_vectors = args.iter().any(|arg| arg == "--skip-vectors");
    let models = crate::bench_inference::model_cache()?;
    let documents = read_documents(&data.join("cran.all.1400"))?;
    let queries = read_queries(&data.join("cran.qry"), &data.join("cranqrel"))?;
    eprintln!(
        "bench: Cranfield, {} documents, {} judged queries",
        documents.len(),
        queries.len()
    );

    let out_dir = crate::process::target_dir().join("bench-memory");
    std::fs::create_dir_all(&out_dir)?;
    let server = serve_hearth(
        &binary,
        &out_dir,
        &[(models.join("all-minilm-l6-v2"), EMBEDDING_MODEL)],
        &[("HEARTH_MODELS_PRELOAD", EMBEDDING_MODEL.to_string())],
    )?;
    let mut connection = Connection::open(&server.address)?;
    let created = connection.post_json("/v1/collections", &json!({"name": "cranfield"}))?;
    if created.status != 201 {
        bail!("creating the collection failed: {}", created.text());
    }
    let started = Instant::now();
    for batch in documents.chunks(100) {
        let documents: Vec<Value> = batch
            .iter()
            .map(|(id, text)| json!({"id": id, "text": text}))
            .collect();
        let answer = connection.post_json(
            "/v1/collections/cranfield/documents",
            &json!({ "documents": documents }),
        )?;
        if answer.status != 200 {
            bail!("upsert failed: {}", answer.text());
        }
    }
    let import_seconds = started.elapsed().as_secs_f64();

    let mut rows = Vec::new();
    for (mode, extra) in [
        ("keyword", json!({})),
        ("vector", json!({})),
        ("hybrid", json!({})),
    ] {
        let started = Instant::now();
        let mut total = 0.0;
        for query in &queries {
            // Hits are passages: a long document may be hit by several of its chunks, so
            // more are asked for and each document counts once, at its best rank.
            let mut body = json!({"query": query.text, "mode": mode, "top_k": 40, "include": []});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            let answer = connection.post_json("/v1/collections/cranfield/search", &body)?;
            if answer.status != 200 {
                bail!("{mode} search failed: {}", answer.text());
            }
            let mut ranked: Vec<String> = Vec::new();
            for hit in answer.json()?["data"].as_array().into_iter().flatten() {
                if let Some(id) = hit["id"].as_str()
                    && !ranked.iter().any(|seen| seen == id)
                {
                    ranked.push(id.to_string());
                }
            }
            total += ndcg_at_10(&ranked, &query.gains);
        }
        let per_query_ms = started.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
        rows.push((mode, total / queries.len() as f64, per_query_ms));
    }
    let vectors = if skip_vectors {
        None
    } else {
        Some(crate::bench_vectors::vectors(&mut connection)?)
    };
    drop(server);

    let reference = if skip_peer {
        None
    } else {
        Some(reference_bm25(&documents, &queries, &out_dir)?)
    };

    println!(
        "\n## Retrieval quality on Cranfield ({} documents, {} judged queries), nDCG@10\n",
        documents.len(),
        queries.len()
    );
    println!(
        "CPU: {}; import of every document, embedded by {EMBEDDING_MODEL}: {import_seconds:.1} s\n",
        cpu_model_name()
    );
    println!("| search | nDCG@10 | ms per query (HTTP, one client) |");
    println!("|---|---|---|");
    for (mode, ndcg, ms) in &rows {
        println!("| hearth {mode} | {ndcg:.4} | {ms:.2} |");
    }
    if let Some((reference, default_epsilon)) = reference {
        println!(
            "| rank-bm25, same tokenization and IDF floor (the reference) | {reference:.4} | |"
        );
        println!(
            "| rank-bm25, same tokenization, its default IDF floor | {default_epsilon:.4} | |"
        );
        let keyword = rows[0].1;
        println!(
            "\nkeyword vs reference BM25: {:+.4} (target: within 0.01)",
            keyword - reference
        );
    }
    let best_single = rows[0].1.max(rows[1].1);
    println!(
        "hybrid vs the better of keyword and vector: {:+.4} (target: at least 0)",
        rows[2].1 - best_single
    );
    if let Some(prefix) = vectors {
        crate::bench_vectors::compare(&prefix, skip_peer)?;
    }
    Ok(())
}

/// `.I` records of a Cranfield file, as (id, fields by letter).
fn records(text: &str) -> Vec<(String, HashMap<char, String>)> {
    let mut records = Vec::new();
    let mut field = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix(".I ") {
            records.push((id.trim().to_string(), HashMap::new()));
            field = None;
        } else if let Some(letter) = line.strip_prefix('.').and_then(|rest| {
            let mut chars = rest.chars();
            let letter = chars.next()?;
            chars.next().is_none().then_some(letter)
        }) {
            field = Some(letter);
        } else if let (Some(letter), Some((_, fields))) = (field, records.last_mut()) {
            let text: &mut String = fields.entry(letter).or_default();
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(line.trim());
        }
    }
    records
}

fn read_documents(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(records(&text)
        .into_iter()
        .map(|(id, mut fields)| (id, fields.remove(&'W').unwrap_or_default()))
        .filter(|(_, text)| !text.trim().is_empty())
        .collect())
}

/// The queries in `cran.qry` order (which `cranqrel` numbers 1, 2, ...), each with its
/// judgements; queries without a relevant document are left out.
fn read_queries(queries: &Path, judgements: &Path) -> anyhow::Result<Vec<Judged>> {
    let text = std::fs::read_to_string(queries)
        .with_context(|| format!("cannot read {}", queries.display()))?;
    let mut judged: Vec<Judged> = records(&text)
        .into_iter()
        .map(|(_, mut fields)| Judged {
            text: fields.remove(&'W').unwrap_or_default(),
            gains: HashMap::new(),
        })
        .collect();
    let qrels = std::fs::read_to_string(judgements)
        .with_context(|| format!("cannot read {}", judgements.display()))?;
    for line in qrels.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [query, document, grade] = parts[..] else {
            continue;
        };
        let (Ok(query), Ok(grade)) = (query.parse::<usize>(), grade.parse::<i64>()) else {
            continue;
        };
        if (1..=4).contains(&grade)
            && let Some(judged) = judged.get_mut(query.wrapping_sub(1))
        {
            judged
                .gains
                .insert(document.to_string(), (5 - grade) as f64);
        }
    }
    judged.retain(|query| !query.gains.is_empty());
    Ok(judged)
}

/// nDCG@10 with linear gains and log2 discounts.
fn ndcg_at_10(ranked: &[String], gains: &HashMap<String, f64>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(index, id)| gains.get(id).copied().unwrap_or(0.0) / (index as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = gains.values().copied().collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(index, gain)| gain / (index as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// The reference BM25's mean nDCG@10, computed by `rank-bm25` in a virtualenv: with FTS5's
/// IDF floor, and with rank-bm25's default one.
fn reference_bm25(
    documents: &[(String, String)],
    queries: &[Judged],
    out_dir: &Path,
) -> anyhow::Result<(f64, f64)> {
    let venv = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/hearth/bench-memory-venv");
    let python = crate::peer::ensure_venv(&venv, &REFERENCE_PACKAGES, "pure Python: seconds")?;
    let input = out_dir.join("cranfield.json");
    let queries: Vec<Value> = queries
        .iter()
        .map(|query| json!({"text": query.text, "gains": query.gains}))
        .collect();
    std::fs::write(
        &input,
        json!({"documents": documents, "queries": queries}).to_string(),
    )?;
    let script = out_dir.join("reference_bm25.py");
    std::fs::write(&script, REFERENCE_SCRIPT)?;
    let output = Command::new(&python).arg(&script).arg(&input).output()?;
    if !output.status.success() {
        bail!(
            "the reference failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let answer: Value =
        serde_json::from_slice(&output.stdout).context("the reference printed no JSON")?;
    Ok((
        answer["ndcg"]
            .as_f64()
            .context("the reference printed no ndcg")?,
        answer["ndcg_default_epsilon"].as_f64().unwrap_or(f64::NAN),
    ))
}

/// The reference: FTS5's tokenization (Unicode letters and digits, lower-cased, the original
/// Porter algorithm) and BM25 with FTS5's k1 and b, scored like the Rust side.
const REFERENCE_SCRIPT: &str = r#"
import json, math, re, sys
from nltk.stem.porter import PorterStemmer
from rank_bm25 import BM25Okapi

stemmer = PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM)
words = re.compile(r"[^\W_]+")

def tokens(text):
    return [stemmer.stem(word) for word in words.findall(text.lower())]

data = json.load(open(sys.argv[1]))
ids = [document[0] for document in data["documents"]]
corpus = [tokens(document[1]) for document in data["documents"]]

def ndcg(ranked, gains):
    dcg = sum(gains.get(id, 0.0) / math.log2(i + 2) for i, id in enumerate(ranked[:10]))
    ideal = sorted(gains.values(), reverse=True)[:10]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0

def mean_ndcg(bm25):
    total = 0.0
    for query in data["queries"]:
        scores = bm25.get_scores(tokens(query["text"]))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])
        ranked = [ids[i] for i in order if scores[i] > 0][:10]
        total += ndcg(ranked, query["gains"])
    return total / len(data["queries"])

# FTS5 floors a negative IDF (a word in more than half the documents) at 1e-6; rank-bm25's
# default lifts it to a quarter of the mean IDF instead.
print(json.dumps({
    "ndcg": mean_ndcg(BM25Okapi(corpus, k1=1.2, b=0.75, epsilon=0.0)),
    "ndcg_default_epsilon": mean_ndcg(BM25Okapi(corpus, k1=1.2, b=0.75)),
}))
"#;
