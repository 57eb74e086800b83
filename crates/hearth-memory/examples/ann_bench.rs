//! Build and search benchmark for the HNSW index, to compare with faiss and hnswlib.
//!
//! Loads base vectors from an `.fvecs` file (`--fvecs PATH`) or a raw little-endian f32 file
//! (`--raw PATH --dim D`) when given and present, else generates seeded data (`--n`, `--dim`,
//! `--data clustered|uniform`). The last `--queries` rows are the queries. Builds the index on
//! one thread and on `--threads` threads, then prints recall@10 and one-thread QPS for ef in
//! 16..256, filtered search at 1% and 10%, and memory.
//!
//! Other options: `--dump PATH` writes the base and query vectors as `PATH.base.fvecs` and
//! `PATH.query.fvecs` for the Python peers; `--query-fvecs PATH` reads the queries from their
//! own file; `--snapshot PATH` loads the index from PATH when it exists, else builds it and
//! saves it there; `--int8` quantizes; `--latent N` sets the generated clusters' intrinsic
//! dimension; `--efs 16,64` picks the ef values and `--filter-efs` those of the filtered runs
//! (default 64); `--filter-moduli 100,10` sets the filters (ids divisible by each modulus:
//! 1% and 10%); `--no-filters` skips the filtered runs. Each QPS figure is the best of
//! `ANN_BENCH_REPEATS` (default 3) passes, and is also given per CPU-second of the searching
//! thread, which other work on a shared machine disturbs less.
//!
//! `cargo run --release -p hearth-memory --example ann_bench -- --n 100000 --dim 384`
//!
//! `ann_peers.py` beside this file runs hnswlib and faiss-cpu on the vectors `--dump` wrote.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Instant;

use hearth_memory::{Allowed, Hnsw, HnswParams, IdSet, Metric, Plan, SearchOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options: HashMap<String, String> = HashMap::new();
    let mut args = args.into_iter().peekable();
    while let Some(flag) = args.next() {
        let name = flag.trim_start_matches("--").to_owned();
        let value = args
            .next_if(|next| !next.starts_with("--"))
            .unwrap_or_default();
        options.insert(name, value);
    }
    let get = |name: &str, default: &str| {
        options
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let n_queries: usize = get("queries", "1000").parse().expect("--queries");
    let metric = Metric::from_name(&get("metric", "cosine")).expect("--metric cosine|dot|l2");
    let m: usize = get("m", "16").parse().expect("--m");
    let ef_construction: usize = get("ef-construction", "200")
        .parse()
        .expect("--ef-construction");
    let threads: usize = get(
        "threads",
        &std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string(),
    )
    .parse()
    .expect("--threads");
    let int8 = options.contains_key("int8");

    let (mut rows, dim) = load(&get("fvecs", ""), &get("raw", ""), &get("dim", "384"))
        .unwrap_or_else(|| {
            let n: usize = get("n", "100000").parse().expect("--n");
            let dim: usize = get("dim", "384").parse().expect("--dim");
            eprintln!(
                "generating {} {n} x {dim} vectors",
                get("data", "clustered")
            );
            (
                generate(
                    n + n_queries,
                    dim,
                    &get("data", "clustered"),
                    get("latent", "16").parse().expect("--latent"),
                ),
                dim,
            )
        });
    let queries = match load(&get("query-fvecs", ""), "", "0") {
        Some((queries, query_dim)) if query_dim == dim => queries,
        _ => rows.split_off(rows.len() - n_queries * dim),
    };
    let n_queries = queries.len() / dim;
    let n = rows.len() / dim;
    if let Some(path) = options.get("dump") {
        write_fvecs(&format!("{path}.base.fvecs"), &rows, dim);
        write_fvecs(&format!("{path}.query.fvecs"), &queries, dim);
    }
    let keys: Vec<u64> = (0..n as u64).collect();
    let params = HnswParams {
        m,
        ef_construction,
        ..HnswParams::new(dim, metric)
    };
    println!("cpu: {}", cpu_name());
    println!("kernels: {}", hearth_memory::Kernels::detected().name);
    println!(
        "data: {n} x {dim}, {n_queries} queries, metric {}, m {m}, ef_construction {ef_construction}, int8 {int8}",
        metric.name()
    );

    let snapshot = options.get("snapshot").map(std::path::PathBuf::from);
    let index = match snapshot.as_deref().filter(|path| path.exists()) {
        Some(path) => {
            let started = Instant::now();
            let (index, _) = Hnsw::load(path).expect("load snapshot");
            println!(
                "loaded snapshot in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            index
        }
        None => {
            let rss_before = rss_bytes();
            let started = Instant::now();
            let index = Hnsw::build(params.clone(), &keys, &rows, 1, int8).expect("build");
            let single = started.elapsed().as_secs_f64();
            let rss_after = rss_bytes();
            println!("build 1 thread: {single:.2} s");
            println!(
                "memory: index arrays {:.1} MB, RSS growth {:.1} MB (raw vectors {:.1} MB)",
                index.memory_bytes() as f64 / 1e6,
                rss_after.saturating_sub(rss_before) as f64 / 1e6,
                (n * dim * 4) as f64 / 1e6
            );
            if threads > 1 {
                let started = Instant::now();
                let parallel = Hnsw::build(params, &keys, &rows, threads, int8).expect("build");
                println!(
                    "build {threads} threads: {:.2} s",
                    started.elapsed().as_secs_f64()
                );
                report(&parallel, &queries, dim, &[64], "parallel-built");
            }
            if let Some(path) = &snapshot {
                let started = Instant::now();
                index.save(path, 0).expect("save snapshot");
                println!("saved snapshot in {:.2} s", started.elapsed().as_secs_f64());
            }
            index
        }
    };
    let efs: Vec<usize> = get("efs", "16,32,64,128,256")
        .split(',')
        .map(|ef| ef.parse().expect("--efs 16,32,64"))
        .collect();
    report(&index, &queries, dim, &efs, "single-built");
    if options.contains_key("no-filters") {
        return;
    }

    let filter_efs: Vec<usize> = get("filter-efs", "64")
        .split(',')
        .map(|ef| ef.parse().expect("--filter-efs 16,64"))
        .collect();
    let moduli: Vec<u32> = get("filter-moduli", "100,10")
        .split(',')
        .map(|modulus| modulus.parse().expect("--filter-moduli 100,10"))
        .collect();
    for modulus in moduli {
        let share = format!("{:.1}%", 100.0 / f64::from(modulus));
        let set: IdSet = (0..n as u32)
            .filter(|id| id.is_multiple_of(modulus))
            .collect();
        let predicate = |id: u32| id.is_multiple_of(modulus);
        for (name, allowed, plan) in [
            ("set, auto", Allowed::Set(&set), Plan::Auto),
            ("set, graph", Allowed::Set(&set), Plan::Graph),
            (
                "predicate, auto",
                Allowed::Predicate(&predicate),
                Plan::Auto,
            ),
        ] {
            let truth: Vec<Vec<u64>> = queries
                .chunks_exact(dim)
                .map(|query| {
                    index
                        .exact_search(query, 10, allowed)
                        .unwrap()
                        .iter()
                        .map(|hit| hit.key)
                        .collect()
                })
                .collect();
            for &ef in &filter_efs {
                let options = SearchOptions {
                    allowed,
                    plan,
                    ef,
                    ..SearchOptions::new(10)
                };
                let (recall, qps, cpu_qps) = measure(&index, &queries, dim, &options, &truth);
                println!(
                    "filter {share} ({name}) ef {ef}: recall@10 {recall:.4}, {qps:.0} QPS ({cpu_qps:.0} per CPU-second)"
                );
            }
        }
    }
}

fn report(index: &Hnsw, queries: &[f32], dim: usize, efs: &[usize], name: &str) {
    let truth: Vec<Vec<u64>> = queries
        .chunks_exact(dim)
        .map(|query| {
            index
                .exact_search(query, 10, Allowed::All)
                .unwrap()
                .iter()
                .map(|hit| hit.key)
                .collect()
        })
        .collect();
    for &ef in efs {
        let options = SearchOptions {
            ef,
            ..SearchOptions::new(10)
        };
        let (recall, qps, cpu_qps) = measure(index, queries, dim, &options, &truth);
        println!(
            "{name} ef {ef:>3}: recall@10 {recall:.4}, {qps:.0} QPS on 1 thread ({cpu_qps:.0} per CPU-second)"
        );
    }
}

fn measure(
    index: &Hnsw,
    queries: &[f32],
    dim: usize,
    options: &SearchOptions<'_>,
    truth: &[Vec<u64>],
) -> (f64, f64, f64) {
    // One warm-up pass, then the timed pass.
    for query in queries.chunks_exact(dim).take(100) {
        index.search(query, options).unwrap();
    }
    // The best of several passes: on a shared machine, other work only ever slows a pass.
    let repeats: usize = std::env::var("ANN_BENCH_REPEATS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3);
    let mut results: Vec<Vec<u64>> = Vec::new();
    let (mut seconds, mut cpu_seconds) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let cpu_started = thread_cpu_ns();
        results = queries
            .chunks_exact(dim)
            .map(|query| {
                index
                    .search(query, options)
                    .unwrap()
                    .iter()
                    .map(|hit| hit.key)
                    .collect()
            })
            .collect();
        seconds = seconds.min(started.elapsed().as_secs_f64());
        cpu_seconds = cpu_seconds.min(thread_cpu_ns().saturating_sub(cpu_started) as f64 / 1e9);
    }
    let found: usize = results
        .iter()
        .zip(truth)
        .map(|(got, want)| want.iter().filter(|key| got.contains(key)).count())
        .sum();
    let wanted: usize = truth.iter().map(Vec::len).sum();
    (
        found as f64 / wanted.max(1) as f64,
        results.len() as f64 / seconds,
        results.len() as f64 / cpu_seconds.max(1e-9),
    )
}

/// Nanoseconds this thread has run on a CPU (from the scheduler's statistics), so QPS can be
/// read on a machine that other work shares.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn load(fvecs: &str, raw: &str, dim: &str) -> Option<(Vec<f32>, usize)> {
    if !fvecs.is_empty() && std::path::Path::new(fvecs).exists() {
        let mut bytes = Vec::new();
        std::fs::File::open(fvecs)
            .ok()?
            .read_to_end(&mut bytes)
            .ok()?;
        let dim = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let mut rows = Vec::with_capacity(bytes.len() / 4);
        for record in bytes.chunks_exact(4 + dim * 4) {
            rows.extend(
                record[4..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        eprintln!("loaded {} x {dim} from {fvecs}", rows.len() / dim);
        return Some((rows, dim));
    }
    if !raw.is_empty() && std::path::Path::new(raw).exists() {
        let dim: usize = dim.parse().ok()?;
        let bytes = std::fs::read(raw).ok()?;
        let rows: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        eprintln!("loaded {} x {dim} from {raw}", rows.len() / dim);
        return Some((rows, dim));
    }
    None
}

fn write_fvecs(path: &str, rows: &[f32], dim: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create dump"));
    for row in rows.chunks_exact(dim) {
        out.write_all(&(dim as u32).to_le_bytes()).unwrap();
        for value in row {
            out.write_all(&value.to_le_bytes()).unwrap();
        }
    }
}

/// Seeded data: uniform in [-1, 1], or around 100 cluster centres in a `latent`-dimensional
/// subspace (default 16: a low intrinsic dimension, as real embeddings have) plus small noise.
fn generate(n: usize, dim: usize, kind: &str, latent: usize) -> Vec<f32> {
    let mut state = 42u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = state;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((x ^ (x >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    if kind == "uniform" {
        return (0..n * dim).map(|_| uniform()).collect();
    }
    let latent = latent.clamp(1, dim);
    let projection: Vec<f32> = (0..latent * dim).map(|_| uniform()).collect();
    let centres: Vec<f32> = (0..100 * latent).map(|_| uniform()).collect();
    let mut rows = Vec::with_capacity(n * dim);
    let mut point = vec![0.0f32; latent];
    for _ in 0..n {
        let cluster = ((uniform() + 1.0) * 50.0) as usize % 100;
        for (j, value) in point.iter_mut().enumerate() {
            *value = centres[cluster * latent + j] + 0.3 * (uniform() + uniform() + uniform());
        }
        for d in 0..dim {
            let mut value = 0.02 * uniform();
            for (j, p) in point.iter().enumerate() {
                value += p * projection[j * dim + d];
            }
            rows.push(value);
        }
    }
    rows
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}
