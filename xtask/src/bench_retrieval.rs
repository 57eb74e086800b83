//! `cargo xtask bench retrieval [--binary PATH] [--questions N]`: what retrieval in chat
//! costs before the first token. A collection of the 99,000 gcide definitions (their MiniLM
//! vectors from the vector bench's cache, `bench_vectors::vectors`, and their text for the
//! keyword side) on the release server with the sample chat and embedding models; questions
//! about the last 1,000 headwords ("What does X mean?").
//!
//! Each question is asked twice, streamed, one token: with `memory` (hybrid search, top 5),
//! and as the final prompt that request placed (rebuilt from its `retrieval.placed` and the
//! documents' text in the server's own layout, and checked to read exactly as many prompt
//! tokens) without it. The overhead is the difference of their times to the first token:
//! the query's embedding, the hybrid search and the prompt's assembly. The two halves of a
//! pair are separated by a block of other questions, so the second never finds the first's
//! prompt in the KV cache (the report counts any cached prompt tokens). Target: ≤ 15 ms p50.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http::{Connection, SseData};
use crate::process::{cpu_model_name, serve_hearth, target_dir};

const CHAT_MODEL: &str = "gemma3:270m";
const CHAT_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const EMBEDDING_MODEL: &str = "all-minilm:l6-v2";
const BASE: usize = 99_000;
/// Questions per block: each block is asked with memory, then as plain prompts.
const BLOCK: usize = 20;
const TOP_K: usize = 5;

/// One streamed answer: time to its first text, and what its last chunks said.
struct Asked {
    ttft_ms: f64,
    prompt_tokens: u64,
    cached_tokens: u64,
    retrieval: Option<Value>,
}

fn ask(connection: &mut Connection, body: &Value) -> anyhow::Result<Asked> {
    let mut sse = SseData::default();
    let mut first_text = None;
    let mut retrieval = None;
    let mut usage = Value::Null;
    let sent = Instant::now();
    let status = connection.stream(
        "POST",
        "/v1/chat/completions",
        Some(body.to_string().as_bytes()),
        |piece, at| {
            sse.push(piece, at, |data, at| {
                let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                    return;
                };
                let text = chunk["choices"][0]["delta"]["content"].as_str();
                if first_text.is_none() && text.is_some_and(|text| !text.is_empty()) {
                    first_text = Some(at);
                }
                if !chunk["retrieval"].is_null() {
                    retrieval = Some(chunk["retrieval"].clone());
                }
                if !chunk["usage"].is_null() {
                    usage = chunk["usage"].clone();
                }
            });
        },
    )?;
    if status != 200 {
        bail!("chat answered {status}");
    }
    let first = first_text.context("no text was streamed")?;
    Ok(Asked {
        ttft_ms: (first - sent).as_secs_f64() * 1e3,
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        cached_tokens: usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        retrieval,
    })
}

fn read_fvecs(path: &Path) -> anyhow::Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut vectors = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let dimensions = i32::from_le_bytes(bytes[at..at + 4].try_into()?) as usize;
        at += 4;
        let vector = bytes[at..at + dimensions * 4]
            .chunks_exact(4)
            .map(|value| f32::from_le_bytes([value[0], value[1], value[2], value[3]]))
            .collect();
        at += dimensions * 4;
        vectors.push(vector);
    }
    Ok(vectors)
}

fn definitions() -> anyhow::Result<Vec<String>> {
    Ok(crate::bench_vectors::gcide_definitions()?
        .lines()
        .map(str::to_string)
        .collect())
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let binary = match crate::flag(args, "--binary") {
        Some(path) => PathBuf::from(path),
        None => crate::release_binary().map_err(|error| anyhow::anyhow!(error))?,
    };
    let questions: usize = crate::flag(args, "--questions")
        .map_or(Ok(100), |text| text.parse())
        .context("--questions takes a number")?;
    let models = crate::bench_inference::model_cache()?;
    let out_dir = target_dir().join("bench-retrieval");
    std::fs::create_dir_all(&out_dir)?;
    let server = serve_hearth(
        &binary,
        &out_dir,
        &[
            (models.join(CHAT_FILE), CHAT_MODEL),
            (models.join("all-minilm-l6-v2"), EMBEDDING_MODEL),
        ],
        &[(
            "HEARTH_MODELS_PRELOAD",
            format!("{CHAT_MODEL},{EMBEDDING_MODEL}"),
        )],
    )?;
    let mut connection = Connection::open(&server.address)?;
    let prefix = crate::bench_vectors::vectors(&mut connection)?;
    let mut base_path = prefix.as_os_str().to_owned();
    base_path.push(".base.fvecs");
    let vectors = read_fvecs(Path::new(&base_path))?;
    let lines = definitions()?;
    if vectors.len() != BASE || lines.len() < BASE + questions {
        bail!(
            "{} vectors and {} lines; expected {BASE} and at least {}",
            vectors.len(),
            lines.len(),
            BASE + questions
        );
    }

    let created = connection.post_json("/v1/collections", &json!({"name": "gcide"}))?;
    if created.status != 201 {
        bail!("creating the collection failed: {}", created.text());
    }
    let started = Instant::now();
    for (batch, (texts, vectors)) in lines[..BASE]
        .chunks(1000)
        .zip(vectors.chunks(1000))
        .enumerate()
    {
        let documents: Vec<Value> = texts
            .iter()
            .zip(vectors)
            .enumerate()
            .map(|(index, (text, vector))| {
                json!({"id": format!("g{}", batch * 1000 + index), "text": text, "embedding": vector})
            })
            .collect();
        let answer = connection.post_json(
            "/v1/collections/gcide/documents",
            &json!({ "documents": documents }),
        )?;
        if answer.status != 200 {
            bail!("upsert failed: {}", answer.text());
        }
    }
    eprintln!(
        "bench: {BASE} documents stored in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let asked: Vec<String> = lines[BASE..BASE + questions]
        .iter()
        .map(|line| {
            let headword = line.split(':').next().unwrap_or(line).trim();
            format!("What does {headword} mean?")
        })
        .collect();
    let request = |content: &str, memory: bool| {
        let mut body = json!({"model": CHAT_MODEL, "messages": [{"role": "user", "content": content}],
            "max_tokens": 1, "temperature": 0, "stream": true,
            "stream_options": {"include_usage": true}});
        if memory {
            body["memory"] = json!({"collections": ["gcide"], "top_k": TOP_K});
        }
        body
    };
    // Warm both paths (the models' first requests, the index's first search).
    ask(&mut connection, &request("What does warm mean?", true))?;
    ask(&mut connection, &request("What does warm mean?", false))?;

    let (mut with_memory, mut without, mut search_ms, mut paired) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut mismatched, mut cached) = (0, 0);
    for block in asked.chunks(BLOCK) {
        let mut finals = Vec::with_capacity(block.len());
        for question in block {
            let answer = ask(&mut connection, &request(question, true))?;
            let retrieval = answer
                .retrieval
                .clone()
                .context("no retrieval on the last chunk")?;
            search_ms.push(retrieval["search_ms"].as_f64().unwrap_or(f64::NAN));
            // The final prompt, as the server placed it.
            let mut prompt = String::from("Sources:\n\n");
            for placed in retrieval["placed"].as_array().into_iter().flatten() {
                let id = placed["document_id"].as_str().unwrap_or_default();
                let document = connection.request(
                    "GET",
                    &format!("/v1/collections/gcide/documents/{id}"),
                    None,
                )?;
                let document = document.json()?;
                prompt.push_str(&format!(
                    "[{}] gcide/{id}\n{}\n\n",
                    placed["number"],
                    document["text"].as_str().unwrap_or_default().trim()
                ));
            }
            prompt.push_str(&format!("Question: {question}\nAnswer:"));
            with_memory.push(answer.ttft_ms);
            cached += u64::from(answer.cached_tokens * 2 > answer.prompt_tokens);
            finals.push((prompt, answer));
        }
        for (prompt, remembered) in finals {
            let plain = ask(&mut connection, &request(&prompt, false))?;
            if plain.prompt_tokens != remembered.prompt_tokens {
                if mismatched == 0 {
                    eprintln!(
                        "bench: the rebuilt prompt read {} tokens, the server's {}:\n{prompt}",
                        plain.prompt_tokens, remembered.prompt_tokens
                    );
                }
                mismatched += 1;
            }
            cached += u64::from(plain.cached_tokens * 2 > plain.prompt_tokens);
            without.push(plain.ttft_ms);
            paired.push(remembered.ttft_ms - plain.ttft_ms);
        }
    }
    drop(server);

    println!(
        "\nretrieval overhead: {questions} questions over {BASE} gcide definitions (hybrid, top {TOP_K}); CPU: {}",
        cpu_model_name()
    );
    println!("{:<34} {:>9} {:>9}", "", "p50 ms", "p90 ms");
    for (name, values) in [
        ("TTFT with memory", &with_memory),
        ("TTFT of the same prompt without", &without),
        ("paired difference", &paired),
        ("search (embed + hybrid), server", &search_ms),
    ] {
        println!(
            "{name:<34} {:>9.2} {:>9.2}",
            crate::percentile(values, 0.5),
            crate::percentile(values, 0.9)
        );
    }
    println!(
        "overhead p50 (difference of p50s): {:.2} ms; prompts that read a different number of \
         tokens: {mismatched}; answers that found their prompt cached: {cached}",
        crate::percentile(&with_memory, 0.5) - crate::percentile(&without, 0.5)
    );
    println!(
        "{}",
        json!({"bench": "retrieval", "questions": questions,
               "ttft_memory_p50_ms": crate::percentile(&with_memory, 0.5),
               "ttft_plain_p50_ms": crate::percentile(&without, 0.5),
               "paired_overhead_p50_ms": crate::percentile(&paired, 0.5),
               "search_p50_ms": crate::percentile(&search_ms, 0.5),
               "token_mismatches": mismatched, "cached": cached})
    );
    Ok(())
}
