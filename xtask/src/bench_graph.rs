//! `cargo xtask bench graph [--binary PATH] [--skip-peer] [--nodes N] [--edges M]`: the
//! knowledge graph over HTTP against Kùzu, the embedded graph database (its Python wheel from
//! PyPI, in-process, as its users run it), on the same random graph: 100,000 nodes and
//! 1,000,000 typed relations by default (uniform random ends, four relation types).
//!
//! Measured, one query at a time: the out-neighbours of a random node (all types, up to 100),
//! and the simple paths of at most 3 relations between two nodes that a random walk of three
//! steps joined (so at least one path exists), up to 10 paths. Hearth's numbers include the
//! HTTP round trip (keep-alive, loopback); Kùzu's are calls into the library. Reported: p50 and
//! p99 per query kind and their ratios (Kùzu over Hearth: above 1, Hearth is faster), and the
//! load time of each. The targets: neighbours ≤ 1 ms p50, depth-3 paths ≤ 10 ms p50.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http::Connection;
use crate::process::{cpu_model_name, serve_hearth, target_dir};

/// Kùzu's last release (the project was archived after it), pinned.
const PEER_PACKAGES: [&str; 1] = ["kuzu==0.11.3"];
const TYPES: [&str; 4] = ["knows", "cites", "likes", "links"];
const NEIGHBOR_QUERIES: usize = 2000;
const PATH_QUERIES: usize = 500;

/// A small deterministic generator (xorshift64*), so every run loads the same graph.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

struct Fixture {
    nodes: usize,
    /// (source, type, target), each triple once, no self-loops.
    edges: Vec<(usize, usize, usize)>,
    neighbor_queries: Vec<usize>,
    path_queries: Vec<(usize, usize)>,
}

fn node_id(index: usize) -> String {
    format!("n{index}")
}

fn fixture(nodes: usize, edges: usize) -> Fixture {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let mut seen = std::collections::HashSet::with_capacity(edges);
    let mut list = Vec::with_capacity(edges);
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    while list.len() < edges {
        let (source, kind, target) = (
            random.below(nodes),
            random.below(TYPES.len()),
            random.below(nodes),
        );
        if source != target && seen.insert((source, kind, target)) {
            list.push((source, kind, target));
            out[source].push(target);
        }
    }
    let neighbor_queries = (0..NEIGHBOR_QUERIES).map(|_| random.below(nodes)).collect();
    let mut path_queries = Vec::with_capacity(PATH_QUERIES);
    while path_queries.len() < PATH_QUERIES {
        let start = random.below(nodes);
        let mut at = start;
        let mut walked = 0;
        while walked < 3 && !out[at].is_empty() {
            at = out[at][random.below(out[at].len())];
            walked += 1;
        }
        if walked == 3 && at != start {
            path_queries.push((start, at));
        }
    }
    Fixture {
        nodes,
        edges: list,
        neighbor_queries,
        path_queries,
    }
}

/// p50 and p99 of a list of milliseconds.
fn quantiles(times: Vec<f64>) -> (f64, f64) {
    (
        crate::percentile(&times, 0.5),
        crate::percentile(&times, 0.99),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let binary = match crate::flag(args, "--binary") {
        Some(path) => PathBuf::from(path),
        None => crate::release_binary().map_err(|error| anyhow::anyhow!(error))?,
    };
    let skip_peer = args.iter().any(|arg| arg == "--skip-peer");
    let count = |name: &str, default: usize| -> anyhow::Result<usize> {
        crate::flag(args, name).map_or(Ok(default), |text| {
            text.parse()
                .with_context(|| format!("{name} takes a number"))
        })
    };
    let fixture = fixture(count("--nodes", 100_000)?, count("--edges", 1_000_000)?);
    eprintln!(
        "bench: graph of {} nodes and {} relations",
        fixture.nodes,
        fixture.edges.len()
    );
    let out_dir = target_dir().join("bench-graph");
    std::fs::create_dir_all(&out_dir)?;

    let hearth = bench_hearth(&binary, &out_dir, &fixture)?;
    let peer = if skip_peer {
        None
    } else {
        Some(bench_kuzu(&out_dir, &fixture)?)
    };

    println!(
        "\ngraph: {} nodes, {} relations; CPU: {}",
        fixture.nodes,
        fixture.edges.len(),
        cpu_model_name()
    );
    println!(
        "{:<26} {:>12} {:>12} {:>14}",
        "", "hearth (http)", "kuzu (in-proc)", "kuzu / hearth"
    );
    let rows = [
        ("load, s", hearth.load_s, peer.as_ref().map(|p| p.load_s)),
        (
            "neighbours p50, ms",
            hearth.neighbors.0,
            peer.as_ref().map(|p| p.neighbors.0),
        ),
        (
            "neighbours p99, ms",
            hearth.neighbors.1,
            peer.as_ref().map(|p| p.neighbors.1),
        ),
        (
            "paths depth 3 p50, ms",
            hearth.paths.0,
            peer.as_ref().map(|p| p.paths.0),
        ),
        (
            "paths depth 3 p99, ms",
            hearth.paths.1,
            peer.as_ref().map(|p| p.paths.1),
        ),
    ];
    for (name, ours, theirs) in rows {
        match theirs {
            Some(theirs) => println!(
                "{name:<26} {ours:>12.3} {theirs:>12.3} {:>14.2}",
                theirs / ours
            ),
            None => println!("{name:<26} {ours:>12.3} {:>12} {:>14}", "-", "-"),
        }
    }
    println!(
        "paths found: hearth {} over {} queries{}",
        hearth.paths_found,
        fixture.path_queries.len(),
        peer.as_ref()
            .map(|p| format!(", kuzu {}", p.paths_found))
            .unwrap_or_default()
    );
    println!(
        "{}",
        json!({
            "bench": "graph", "nodes": fixture.nodes, "relations": fixture.edges.len(),
            "hearth": {"load_s": hearth.load_s, "neighbors_ms": [hearth.neighbors.0, hearth.neighbors.1],
                       "paths_ms": [hearth.paths.0, hearth.paths.1], "paths_found": hearth.paths_found},
            "kuzu": peer.as_ref().map(|p| json!({"load_s": p.load_s,
                       "neighbors_ms": [p.neighbors.0, p.neighbors.1],
                       "paths_ms": [p.paths.0, p.paths.1], "paths_found": p.paths_found})),
        })
    );
    Ok(())
}

struct Measured {
    load_s: f64,
    neighbors: (f64, f64),
    paths: (f64, f64),
    paths_found: u64,
}

fn bench_hearth(binary: &Path, out_dir: &Path, fixture: &Fixture) -> anyhow::Result<Measured> {
    let server = serve_hearth(binary, out_dir, &[], &[])?;
    let mut connection = Connection::open(&server.address)?;
    let created = connection.post_json("/v1/graphs", &json!({"name": "bench", "dimensions": 2}))?;
    if created.status != 201 {
        bail!("creating the graph failed: {}", created.text());
    }
    let started = Instant::now();
    let ids: Vec<usize> = (0..fixture.nodes).collect();
    for batch in ids.chunks(1000) {
        let nodes: Vec<Value> = batch
            .iter()
            .map(|&index| {
                json!({"id": node_id(index), "type": "thing", "title": format!("node {index}"),
                       "embedding": [1.0, (index % 97) as f32 + 1.0]})
            })
            .collect();
        let answer = connection.post_json("/v1/graphs/bench/nodes", &json!({ "nodes": nodes }))?;
        if answer.status != 200 {
            bail!("node upsert failed: {}", answer.text());
        }
    }
    for batch in fixture.edges.chunks(1000) {
        let relations: Vec<Value> = batch
            .iter()
            .map(|&(source, kind, target)| {
                json!({"source": node_id(source), "type": TYPES[kind], "target": node_id(target)})
            })
            .collect();
        let answer = connection.post_json(
            "/v1/graphs/bench/relations",
            &json!({ "relations": relations }),
        )?;
        if answer.status != 200 {
            bail!("relation upsert failed: {}", answer.text());
        }
    }
    let load_s = started.elapsed().as_secs_f64();
    eprintln!("bench: hearth loaded the graph in {load_s:.1} s");

    let mut neighbor_ms = Vec::with_capacity(fixture.neighbor_queries.len());
    for &node in &fixture.neighbor_queries {
        let path = format!(
            "/v1/graphs/bench/nodes/{}/neighbors?limit=100",
            node_id(node)
        );
        let sent = Instant::now();
        let answer = connection.request("GET", &path, None)?;
        neighbor_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        if answer.status != 200 {
            bail!("neighbours failed: {}", answer.text());
        }
    }
    let mut path_ms = Vec::with_capacity(fixture.path_queries.len());
    let mut paths_found = 0;
    for &(from, to) in &fixture.path_queries {
        let body = json!({"from": node_id(from), "to": node_id(to), "max_depth": 3, "limit": 10});
        let sent = Instant::now();
        let answer = connection.post_json("/v1/graphs/bench/paths", &body)?;
        path_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        if answer.status != 200 {
            bail!("paths failed: {}", answer.text());
        }
        paths_found += answer.json()?["data"]
            .as_array()
            .map_or(0, |paths| paths.len() as u64);
    }
    drop(server);
    Ok(Measured {
        load_s,
        neighbors: quantiles(neighbor_ms),
        paths: quantiles(path_ms),
        paths_found,
    })
}

fn bench_kuzu(out_dir: &Path, fixture: &Fixture) -> anyhow::Result<Measured> {
    let venv = target_dir().join("bench-peers").join("kuzu-venv");
    let python = crate::peer::ensure_venv(&venv, &PEER_PACKAGES, "a wheel: seconds")?;
    let nodes_csv = out_dir.join("nodes.csv");
    let edges_csv = out_dir.join("edges.csv");
    let queries = out_dir.join("queries.json");
    let mut nodes = String::with_capacity(fixture.nodes * 8);
    for index in 0..fixture.nodes {
        nodes.push_str(&format!("{},node {index}\n", node_id(index)));
    }
    std::fs::write(&nodes_csv, nodes)?;
    let mut edges = String::with_capacity(fixture.edges.len() * 20);
    for &(source, kind, target) in &fixture.edges {
        edges.push_str(&format!(
            "{},{},{}\n",
            node_id(source),
            node_id(target),
            TYPES[kind]
        ));
    }
    std::fs::write(&edges_csv, edges)?;
    let query_list = json!({
        "neighbors": fixture.neighbor_queries.iter().map(|&n| node_id(n)).collect::<Vec<_>>(),
        "paths": fixture.path_queries.iter().map(|&(f, t)| [node_id(f), node_id(t)]).collect::<Vec<_>>(),
    });
    std::fs::write(&queries, query_list.to_string())?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kuzu/graph_peer.py");
    let database = out_dir.join("kuzu-db");
    let _ = std::fs::remove_dir_all(&database);
    let _ = std::fs::remove_file(&database);
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&database)
        .arg(&nodes_csv)
        .arg(&edges_csv)
        .arg(&queries)
        .output()
        .context("running the Kùzu peer")?;
    if !output.status.success() {
        bail!(
            "the Kùzu peer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "the Kùzu peer said {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let times = |name: &str| -> Vec<f64> {
        result[name]
            .as_array()
            .map(|list| list.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    Ok(Measured {
        load_s: result["load_s"].as_f64().unwrap_or(f64::NAN),
        neighbors: quantiles(times("neighbors_ms")),
        paths: quantiles(times("paths_ms")),
        paths_found: result["paths_found"].as_u64().unwrap_or(0),
    })
}
