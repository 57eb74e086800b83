//! The vector half of `cargo xtask bench memory`: Hearth's HNSW index against faiss-cpu and
//! hnswlib on real embeddings, one thread each, in one run.
//!
//! The data is `../shared/data/gcide-definitions-100k.txt.gz` (see its README): every line
//! embedded by the local MiniLM through the server's `/v1/embeddings` (cached outside the
//! clone, in `~/.cache/hearth/bench/gcide-minilm.*.fvecs`: it takes minutes), the last 1,000
//! lines the queries and the first 99,000 the base. Hearth's index runs in
//! `crates/hearth-memory/examples/ann_bench.rs` (release build), the peers in `ann_peers.py`
//! beside it, installed from PyPI as their users get them (faiss-cpu and hnswlib wheels), all
//! with M 16, ef_construction 200, one thread, recall@10 against exact search; and Chroma in
//! process with its defaults (ef_construction 100, ef 100, its own build threads), one query
//! per call. The filtered runs keep ids divisible by 100 (1%) and by 10 (10%): Chroma's as a
//! `where` on a `bucket` metadata field.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::json;

use crate::http::Connection;

const EMBEDDING_MODEL: &str = "all-minilm:l6-v2";
const QUERIES: usize = 1000;
/// Texts per `/v1/embeddings` request.
const EMBED_BATCH: usize = 256;
/// The peers' packages, pinned so that every run compares against the same code.
const PEER_PACKAGES: [&str; 3] = ["numpy==2.4.6", "faiss-cpu==1.15.1", "hnswlib==0.8.0"];
/// Chroma in its own environment (it pins its own hnswlib fork and numpy range).
const CHROMA_PACKAGES: [&str; 2] = ["chromadb==1.5.9", "numpy==2.4.6"];

fn cache_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/bench")
}

/// The prefix of the cached vectors (`PREFIX.base.fvecs`, `PREFIX.query.fvecs`), embedding
/// them through the server at `connection` when they are not cached yet.
pub fn vectors(connection: &mut Connection) -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir)?;
    let prefix = dir.join("gcide-minilm");
    let base = with_suffix(&prefix, ".base.fvecs");
    let query = with_suffix(&prefix, ".query.fvecs");
    if base.is_file() && query.is_file() {
        return Ok(prefix);
    }
    let text = gcide_definitions()?;
    let lines: Vec<&str> = text.lines().collect();
    eprintln!(
        "bench: embedding {} definitions with {EMBEDDING_MODEL} (cached in {} afterwards)",
        lines.len(),
        dir.display()
    );
    let started = std::time::Instant::now();
    let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(lines.len());
    for batch in lines.chunks(EMBED_BATCH) {
        let answer = connection.post_json(
            "/v1/embeddings",
            &json!({"model": EMBEDDING_MODEL, "input": batch}),
        )?;
        if answer.status != 200 {
            bail!("embedding failed: {}", answer.text());
        }
        let body = answer.json()?;
        for item in body["data"].as_array().into_iter().flatten() {
            let vector: Vec<f32> = item["embedding"]
                .as_array()
                .context("an embedding that is not a list")?
                .iter()
                .map(|value| value.as_f64().unwrap_or(0.0) as f32)
                .collect();
            vectors.push(vector);
        }
        if vectors.len() % 10_240 < EMBED_BATCH {
            eprintln!(
                "bench: {} embedded, {:.0} s",
                vectors.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if vectors.len() != lines.len() {
        bail!("{} vectors for {} lines", vectors.len(), lines.len());
    }
    let split = vectors.len() - QUERIES;
    write_fvecs(&query, &vectors[split..])?;
    write_fvecs(&base, &vectors[..split])?;
    Ok(prefix)
}

/// The 100,000 gcide definitions (`../shared/data`), one per line.
pub fn gcide_definitions() -> anyhow::Result<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/gcide-definitions-100k.txt.gz");
    let output = Command::new("gzip")
        .arg("-dc")
        .arg(&data)
        .output()
        .with_context(|| format!("cannot run gzip on {}", data.display()))?;
    if !output.status.success() {
        bail!("gzip -dc {} failed", data.display());
    }
    String::from_utf8(output.stdout).context("the definitions are not UTF-8")
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `.fvecs`: each vector as its dimension (i32) then its values (f32), little-endian. Written
/// to a temporary name and renamed, so an interrupted run leaves no half file in the cache.
fn write_fvecs(path: &Path, vectors: &[Vec<f32>]) -> anyhow::Result<()> {
    let partial = with_suffix(path, ".partial");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    for vector in vectors {
        file.write_all(&(vector.len() as i32).to_le_bytes())?;
        for value in vector {
            file.write_all(&value.to_le_bytes())?;
        }
    }
    file.flush()?;
    drop(file);
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// One engine's numbers, as the bench prints them.
#[derive(Default)]
struct Engine {
    build_seconds: Option<f64>,
    memory_mb: Option<f64>,
    /// (ef, recall@10, QPS) unfiltered.
    searches: Vec<(u32, f64, f64)>,
    /// (share, ef, recall@10, QPS).
    filtered: Vec<(String, u32, f64, f64)>,
}

/// The number after `key` in `line` (up to the next space or comma).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|char| char.is_ascii_digit() || *char == '.')
        .collect();
    token.parse().ok()
}

/// The QPS of a result line: the number after the comma that follows its recall.
fn qps_of(line: &str) -> Option<f64> {
    let after_recall = &line[line.find("recall@10")?..];
    number_after(after_recall, ", ")
}

/// The first whole number in `text`.
fn first_number(text: &str) -> Option<f64> {
    let start = text.find(|char: char| char.is_ascii_digit())?;
    let token: String = text[start..]
        .chars()
        .take_while(|char| char.is_ascii_digit() || *char == '.')
        .collect();
    token.parse().ok()
}

fn parse_hearth(output: &str) -> Engine {
    let mut engine = Engine::default();
    for line in output.lines() {
        if line.starts_with("build 1 thread:") {
            engine.build_seconds = number_after(line, "build 1 thread:");
        } else if line.starts_with("memory:") {
            engine.memory_mb = number_after(line, "RSS growth");
        } else if let Some(rest) = line.strip_prefix("single-built ef") {
            if let (Some(ef), Some(recall), Some(qps)) = (
                first_number(rest),
                number_after(line, "recall@10"),
                qps_of(line),
            ) {
                engine.searches.push((ef as u32, recall, qps));
            }
        } else if let Some(rest) = line.strip_prefix("filter ")
            && line.contains("(set, auto) ef")
            && let (Some(ef), Some(recall), Some(qps)) = (
                number_after(line, ") ef"),
                number_after(line, "recall@10"),
                qps_of(line),
            )
        {
            let share = rest.split_whitespace().next().unwrap_or("").to_string();
            engine.filtered.push((share, ef as u32, recall, qps));
        }
    }
    engine
}

fn parse_peer(output: &str, name: &str) -> Engine {
    let mut engine = Engine::default();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("build 1 thread") {
            engine.build_seconds = number_after(rest, "build 1 thread");
            engine.memory_mb = number_after(rest, "RSS +");
        } else if let Some(after) = rest.strip_prefix("ef ") {
            if let (Some(ef), Some(recall), Some(qps)) = (
                first_number(after),
                number_after(rest, "recall@10"),
                qps_of(rest),
            ) {
                engine.searches.push((ef as u32, recall, qps));
            }
        } else if let Some(after) = rest.strip_prefix("filter ")
            && let (Some(ef), Some(recall), Some(qps)) = (
                number_after(after, " ef"),
                number_after(rest, "recall@10"),
                qps_of(rest),
            )
        {
            let share = after.split_whitespace().next().unwrap_or("").to_string();
            engine.filtered.push((share, ef as u32, recall, qps));
        }
    }
    engine
}

fn run_captured(command: &mut Command, what: &str) -> anyhow::Result<String> {
    eprintln!("bench: {what}");
    let output = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs Hearth's index and the peers on the cached vectors and prints the comparison.
pub fn compare(prefix: &Path, skip_peer: bool) -> anyhow::Result<()> {
    let ann_bench = crate::process::release_example("hearth-memory", "ann_bench")?;
    let hearth = run_captured(
        Command::new(&ann_bench)
            .arg("--fvecs")
            .arg(with_suffix(prefix, ".base.fvecs"))
            .arg("--query-fvecs")
            .arg(with_suffix(prefix, ".query.fvecs"))
            .args([
                "--threads",
                "1",
                "--efs",
                "16,32,64,128,256",
                "--filter-efs",
                "64",
            ]),
        "Hearth's index (ann_bench)",
    )?;
    let hearth = parse_hearth(&hearth);

    let mut peers = Vec::new();
    if !skip_peer {
        let venv = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/bench-ann-venv");
        let python = crate::peer::ensure_venv(&venv, &PEER_PACKAGES, "wheels: a minute")?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/hearth-memory/examples/ann_peers.py");
        let chroma_venv = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/bench-chroma-venv");
        let chroma_python =
            crate::peer::ensure_venv(&chroma_venv, &CHROMA_PACKAGES, "wheels: a few minutes")?;
        for (name, python, flags) in [
            ("faiss", &python, vec!["--filters"]),
            ("hnswlib", &python, vec![]),
            ("chroma", &chroma_python, vec![]),
        ] {
            // A cached index would skip the build; each run times its own.
            let _ = std::fs::remove_file(with_suffix(prefix, &format!(".{name}")));
            let output = run_captured(
                Command::new(python)
                    .arg(&script)
                    .arg(prefix)
                    .arg(name)
                    .args(flags),
                &format!("{name} (ann_peers.py)"),
            )?;
            peers.push((name, parse_peer(&output, name)));
        }
    }

    println!("\n## Vector search on gcide (99,000 MiniLM vectors, 1,000 queries), one thread\n");
    println!(
        "CPU: {}; M 16, ef_construction 200, recall@10 against exact search\n",
        crate::process::cpu_model_name()
    );
    println!("| engine | ef | recall@10 | QPS | build (s) | memory (MB) |");
    println!("|---|---|---|---|---|---|");
    let mut engines = vec![("hearth", &hearth)];
    engines.extend(peers.iter().map(|(name, engine)| (*name, engine)));
    for (name, engine) in &engines {
        for (position, (ef, recall, qps)) in engine.searches.iter().enumerate() {
            let (build, memory) = if position == 0 {
                (
                    engine
                        .build_seconds
                        .map_or(String::new(), |s| format!("{s:.1}")),
                    engine
                        .memory_mb
                        .map_or(String::new(), |mb| format!("{mb:.0}")),
                )
            } else {
                (String::new(), String::new())
            };
            println!("| {name} | {ef} | {recall:.4} | {qps:.0} | {build} | {memory} |");
        }
        for (share, ef, recall, qps) in &engine.filtered {
            println!("| {name}, filter {share} | {ef} | {recall:.4} | {qps:.0} | | |");
        }
    }
    for (name, peer) in &peers {
        let ratios: Vec<String> = hearth
            .searches
            .iter()
            .filter_map(|(ef, _, qps)| {
                let (_, _, theirs) = peer.searches.iter().find(|(their_ef, ..)| their_ef == ef)?;
                Some(format!("ef {ef} {:.2}x", qps / theirs))
            })
            .collect();
        if !ratios.is_empty() {
            println!(
                "\nhearth QPS / {name} QPS at equal ef: {}",
                ratios.join(", ")
            );
        }
        // Efforts differ between engines (Chroma's is its default): compare each of the
        // peer's results with Hearth's fastest at least as accurate.
        let matched: Vec<String> = peer
            .searches
            .iter()
            .filter_map(|(_, recall, theirs)| {
                let ours = hearth
                    .searches
                    .iter()
                    .filter(|(_, our_recall, _)| our_recall >= recall)
                    .map(|(_, _, qps)| *qps)
                    .reduce(f64::max)?;
                Some(format!("recall {recall:.3}: {:.2}x", ours / theirs))
            })
            .collect();
        println!(
            "hearth QPS / {name} QPS at equal or better recall: {}",
            matched.join(", ")
        );
        for (share, ef, recall, theirs) in &peer.filtered {
            let share_value = first_number(share);
            if let Some((_, _, our_recall, ours)) = hearth
                .filtered
                .iter()
                .find(|(our_share, ..)| first_number(our_share) == share_value)
            {
                println!(
                    "filter {share}: hearth recall {our_recall:.4} at {ours:.0} QPS, {name} (ef {ef}) \
                     {recall:.4} at {theirs:.0} QPS: {:.2}x",
                    ours / theirs
                );
            }
        }
        if let (Some(ours), Some(theirs)) = (hearth.build_seconds, peer.build_seconds) {
            println!(
                "{name} build time / hearth build time: {:.2}x",
                theirs / ours
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_outputs_parse_into_the_same_table() {
        let hearth = parse_hearth(
            "build 1 thread: 70.52 s\n\
             memory: index arrays 170.1 MB, RSS growth 181.2 MB (raw vectors 152.1 MB)\n\
             single-built ef  64: recall@10 0.9671, 5012 QPS on 1 thread (5100 per CPU-second)\n\
             filter 1.0% (set, auto) ef 64: recall@10 1.0000, 21000 QPS (21100 per CPU-second)\n\
             filter 1.0% (set, graph) ef 64: recall@10 0.9, 100 QPS (100 per CPU-second)\n",
        );
        assert_eq!(hearth.build_seconds, Some(70.52));
        assert_eq!(hearth.memory_mb, Some(181.2));
        assert_eq!(hearth.searches, [(64, 0.9671, 5012.0)]);
        assert_eq!(hearth.filtered, [("1.0%".to_string(), 64, 1.0, 21000.0)]);
        let faiss = parse_peer(
            "faiss build 1 thread 77.10 s, RSS +162.0 MB\n\
             faiss ef 64: recall@10 0.9670, 4672 QPS\n\
             faiss filter 1% ef 64: recall@10 0.9900, 800 QPS\n",
            "faiss",
        );
        assert_eq!(
            (faiss.build_seconds, faiss.memory_mb),
            (Some(77.1), Some(162.0))
        );
        assert_eq!(faiss.searches, [(64, 0.967, 4672.0)]);
        assert_eq!(faiss.filtered, [("1%".to_string(), 64, 0.99, 800.0)]);
        let chroma = parse_peer(
            "chroma ef 100: recall@10 0.9740, 837 QPS\n\
             chroma filter 1% ef 100: recall@10 0.9500, 22 QPS\n",
            "chroma",
        );
        assert_eq!(chroma.searches, [(100, 0.974, 837.0)]);
        assert_eq!(chroma.filtered, [("1%".to_string(), 100, 0.95, 22.0)]);
    }
}
