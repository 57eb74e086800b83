//! Searching the graph: layer search with an in-traversal filter (plain, or with two-hop
//! edges through rejected nodes when the filter is selective), the planner that scans small
//! allowed sets exactly instead, int8 traversal with f32 rescoring, and exact search.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;

use super::visited::{Candidate, Scratch};
use super::{Hnsw, NO_ENTRY, QuantizedStore, STATE_LIVE, unpack_entry};
use crate::quant::QuantizedQuery;
use crate::{IdSet, MemoryError, Metric, distance};

/// Which nodes a search may return (tombstoned nodes never are).
#[derive(Clone, Copy)]
pub enum Allowed<'a> {
    /// Every live node.
    All,
    /// Nodes for which the predicate holds. Its cardinality is unknown, so the graph is always
    /// searched, evaluating the predicate while traversing.
    Predicate(&'a dyn Fn(u32) -> bool),
    /// The nodes in the set. Its size is known, so the planner scans it exactly when that is
    /// cheaper than a filtered graph search.
    Set(&'a IdSet),
}

impl std::fmt::Debug for Allowed<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allowed::All => formatter.write_str("All"),
            Allowed::Predicate(_) => formatter.write_str("Predicate(..)"),
            Allowed::Set(set) => write!(formatter, "Set({} ids)", set.len()),
        }
    }
}

impl Allowed<'_> {
    #[inline(always)]
    fn contains(&self, id: u32) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Predicate(predicate) => predicate(id),
            Allowed::Set(set) => set.contains(id),
        }
    }
}

/// How a filtered search finds its hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plan {
    /// Scan the allowed nodes exactly when that is estimated to be cheaper than a filtered
    /// graph search, else search the graph.
    #[default]
    Auto,
    /// Always search the graph (falling back to a scan only when it finds fewer than `k`).
    Graph,
    /// Always scan the allowed nodes exactly.
    Scan,
}

/// How to search.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions<'a> {
    /// Hits wanted.
    pub k: usize,
    /// Candidate list size on level 0 (raised to `k`): larger is slower and finds more.
    pub ef: usize,
    pub allowed: Allowed<'a>,
    /// With int8 quantization, how many times `k` candidates to rescore on f32 vectors.
    pub oversampling: f32,
    pub plan: Plan,
}

impl SearchOptions<'_> {
    /// `k` hits with ef 64, no filter, and 3× oversampling for quantized indexes.
    pub fn new(k: usize) -> SearchOptions<'static> {
        SearchOptions {
            k,
            ef: 64,
            allowed: Allowed::All,
            oversampling: 3.0,
            plan: Plan::Auto,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The internal id.
    pub id: u32,
    /// The key the node was inserted under.
    pub key: u64,
    /// The distance to the query (lower is closer); see [`Metric::score`].
    pub distance: f32,
}

/// Distances from one query to indexed nodes.
pub(super) trait QueryDistance {
    fn distance(&self, id: u32) -> f32;
    fn prefetch(&self, id: u32);

    /// Four distances at once, where a kernel can overlap their memory loads.
    #[inline(always)]
    fn distance4(&self, ids: [u32; 4]) -> [f32; 4] {
        ids.map(|id| self.distance(id))
    }
}

/// Exact distances on the f32 vectors.
pub(super) struct ExactQuery<'a> {
    pub(super) index: &'a Hnsw,
    pub(super) query: &'a [f32],
}

impl QueryDistance for ExactQuery<'_> {
    #[inline(always)]
    fn distance(&self, id: u32) -> f32 {
        self.index.distance_between(self.query, id)
    }

    #[inline(always)]
    fn distance4(&self, ids: [u32; 4]) -> [f32; 4] {
        let index = self.index;
        match index.params.metric {
            Metric::Cosine => (index.kernels.dot4)(self.query, ids.map(|id| index.vector(id)))
                .map(|dot| 1.0 - dot),
            Metric::Dot => {
                (index.kernels.dot4)(self.query, ids.map(|id| index.vector(id))).map(|dot| -dot)
            }
            Metric::L2 => (index.kernels.l2_squared4)(self.query, ids.map(|id| index.vector(id))),
        }
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        let dim = self.index.params.dim;
        let pointer = self.index.vectors.as_ptr().wrapping_add(id as usize * dim);
        distance::prefetch(pointer.cast(), dim * 4);
    }
}

/// Approximate distances on the int8 codes.
struct QuantQuery<'a> {
    index: &'a Hnsw,
    store: &'a QuantizedStore,
    prepared: QuantizedQuery,
}

impl QueryDistance for QuantQuery<'_> {
    #[inline(always)]
    fn distance(&self, id: u32) -> f32 {
        let codes = self.index.codes(self.store, id);
        let dot = self.prepared.offset + (self.index.kernels.dot_u8)(&self.prepared.weights, codes);
        match self.index.params.metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::L2 => {
                self.prepared.squared_norm + Hnsw::squared_norm(self.store, id) - 2.0 * dot
            }
        }
    }

    #[inline(always)]
    fn distance4(&self, ids: [u32; 4]) -> [f32; 4] {
        let codes = ids.map(|id| self.index.codes(self.store, id));
        let dots = (self.index.kernels.dot_u8x4)(&self.prepared.weights, codes);
        let mut distances = [0.0; 4];
        for ((distance, dot), id) in distances.iter_mut().zip(dots).zip(ids) {
            let dot = self.prepared.offset + dot;
            *distance = match self.index.params.metric {
                Metric::Cosine => 1.0 - dot,
                Metric::Dot => -dot,
                Metric::L2 => {
                    self.prepared.squared_norm + Hnsw::squared_norm(self.store, id) - 2.0 * dot
                }
            };
        }
        distances
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        let dim = self.index.params.dim;
        let pointer = self.store.codes.as_ptr().wrapping_add(id as usize * dim);
        distance::prefetch(pointer.cast(), dim);
    }
}

impl Hnsw {
    /// The `options.k` nearest allowed live nodes to `query`, closest first. Returns `k` hits
    /// whenever `k` allowed live nodes exist.
    pub fn search(
        &self,
        query: &[f32],
        options: &SearchOptions<'_>,
    ) -> Result<Vec<Hit>, MemoryError> {
        let query = self.prepare_query(query)?;
        let k = options.k;
        let entry = self.entry.load(Ordering::Acquire);
        if k == 0 || entry == NO_ENTRY {
            return Ok(Vec::new());
        }
        let ef = options.ef.max(k);
        let len = self.len();
        // The planner: how many nodes the filter allows, and whether scanning them beats the
        // graph.
        let allowed_count = match options.allowed {
            Allowed::All => len,
            Allowed::Set(set) => set.len(),
            Allowed::Predicate(predicate) => self.estimate_matches(predicate),
        };
        let evaluations = match options.allowed {
            Allowed::Predicate(_) => len,
            Allowed::All | Allowed::Set(_) => 0,
        };
        let scan = match options.plan {
            Plan::Scan => true,
            Plan::Graph => false,
            Plan::Auto => {
                !matches!(options.allowed, Allowed::All)
                    && self.prefer_exact_scan(allowed_count, ef, evaluations)
            }
        };
        if scan {
            return Ok(match options.allowed {
                Allowed::All => self.scan(&query, k, options.oversampling, 0..len as u32),
                Allowed::Set(set) => self.scan(&query, k, options.oversampling, set.iter()),
                Allowed::Predicate(predicate) => {
                    let ids = (0..len as u32).filter(|&id| predicate(id));
                    self.scan(&query, k, options.oversampling, ids)
                }
            });
        }
        let share = allowed_count as f64 / self.live_len().max(1) as f64;
        let two_hop = !matches!(options.allowed, Allowed::All) && self.use_two_hop(share);

        let mut scratch = self.take_scratch();
        let (entry_id, top_level) = unpack_entry(entry);
        let exact = ExactQuery {
            index: self,
            query: &query,
        };
        let allowed = |id: u32| {
            self.states[id as usize].load(Ordering::Relaxed) == STATE_LIVE
                && options.allowed.contains(id)
        };
        let (mut hits, visited) = match &self.quantized {
            None => {
                let visited = self.search_graph(
                    &exact,
                    (entry_id, top_level),
                    ef,
                    two_hop,
                    allowed,
                    &mut scratch,
                );
                (
                    self.drain_hits(&mut scratch, |candidate| candidate.distance),
                    visited,
                )
            }
            Some(store) => {
                let quant = QuantQuery {
                    index: self,
                    store,
                    prepared: store.quantizer.prepare(&query),
                };
                let oversampled =
                    ((k as f32 * options.oversampling.max(1.0)).ceil() as usize).max(ef);
                let visited = self.search_graph(
                    &quant,
                    (entry_id, top_level),
                    oversampled,
                    two_hop,
                    allowed,
                    &mut scratch,
                );
                let mut hits =
                    self.drain_hits(&mut scratch, |candidate| exact.distance(candidate.id));
                hits.sort_unstable_by(|a, b| {
                    a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id))
                });
                (hits, visited)
            }
        };
        self.return_scratch(scratch);
        hits.truncate(k);
        // The traversal stops when its candidates run out; a graph that is not connected (or
        // a node reached only through a concurrent insert) could leave allowed nodes unseen.
        if hits.len() < k && visited < self.len() {
            let ids = (0..self.len() as u32).filter(|&id| options.allowed.contains(id));
            return Ok(self.scan(&query, k, options.oversampling, ids));
        }
        Ok(hits)
    }

    /// The exact `k` nearest allowed live nodes, by scanning; the ground truth for tests and
    /// the planner's choice for small allowed sets.
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        allowed: Allowed<'_>,
    ) -> Result<Vec<Hit>, MemoryError> {
        let query = self.prepare_query(query)?;
        let ids = (0..self.len() as u32).filter(|&id| allowed.contains(id));
        Ok(self.exact_scan(&query, k, ids))
    }

    fn prepare_query<'q>(
        &self,
        query: &'q [f32],
    ) -> Result<std::borrow::Cow<'q, [f32]>, MemoryError> {
        super::prepare_query(&self.params, query)
    }

    /// Whether a filtered level-0 search should walk the allowed subgraph with two-hop edges
    /// ([`Hnsw::search_layer_two_hop`]). It needs enough allowed nodes within two hops,
    /// `(2m)² * share`, to stay connected: with m 16 that is from about 3% up. Below, the
    /// plain traversal (every node gets a distance) keeps recall, and the planner usually
    /// scans instead. (Measured with `ann_bench` on 100k × 384, m 16: at 10%, ef 16 reaches
    /// recall@10 0.998 at 2.5× the plain traversal's QPS; at 1% two-hop recall stalls at 0.87.)
    pub(super) fn use_two_hop(&self, share: f64) -> bool {
        let reach = (2 * self.params.m * 2 * self.params.m) as f64;
        share < 1.0 && reach * share >= 32.0
    }

    /// Whether scanning `allowed` ids exactly (after evaluating a predicate on
    /// `predicate_evaluations` ids) costs less than a filtered graph search, both counted in
    /// distance computations. An unfiltered search costs about `2 * ef * m`, a two-hop
    /// filtered one about half again as much. A plain filtered traversal with a share `s` of
    /// nodes allowed also expands about `ef / s` nodes before its result list fills, each
    /// adding about `m / 2` new neighbours (the rest were seen already). A predicate call
    /// counts as a sixteenth of a distance. (Calibrated with `ann_bench` on 50k and 100k
    /// vectors of 384 dimensions, m 16.)
    pub(super) fn prefer_exact_scan(
        &self,
        allowed: usize,
        ef: usize,
        predicate_evaluations: usize,
    ) -> bool {
        let live = self.live_len().max(1) as f64;
        let share = (allowed as f64 / live).max(1.0 / live);
        let m = self.params.m as f64;
        let graph_cost = if self.use_two_hop(share) {
            ef as f64 * m * 3.0
        } else {
            ef as f64 * m * (2.0 + 0.5 / share)
        };
        let scan_cost = allowed as f64 + predicate_evaluations as f64 / 16.0;
        scan_cost <= graph_cost.min(live)
    }

    /// Estimates how many nodes a predicate allows from a sample of 1024 ids.
    pub(super) fn estimate_matches(&self, predicate: &dyn Fn(u32) -> bool) -> usize {
        const SAMPLE: usize = 1024;
        let len = self.len();
        if len <= SAMPLE {
            return (0..len as u32).filter(|&id| predicate(id)).count();
        }
        // Hashed positions, not a regular stride: a stride would alias with periodic filters
        // (every hundredth id sampled every 195th would look like 5%, not 1%).
        let matches = (0..SAMPLE as u64)
            .filter(|&index| {
                let mut x = index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                predicate(((x ^ (x >> 31)) % len as u64) as u32)
            })
            .count();
        matches * len / SAMPLE
    }

    /// The `k` nearest allowed live nodes among `ids` by scanning: on the f32 vectors, or on
    /// the int8 codes with `oversampling` times `k` candidates rescored on the f32 vectors.
    fn scan(
        &self,
        query: &[f32],
        k: usize,
        oversampling: f32,
        ids: impl Iterator<Item = u32>,
    ) -> Vec<Hit> {
        let Some(store) = &self.quantized else {
            return self.exact_scan(query, k, ids);
        };
        let quant = QuantQuery {
            index: self,
            store,
            prepared: store.quantizer.prepare(query),
        };
        let wider = ((k as f32 * oversampling.max(1.0)).ceil() as usize).max(k);
        let mut hits: Vec<Hit> = self
            .top_k(wider, ids, |id| quant.distance(id))
            .into_iter()
            .map(|candidate| self.hit(candidate.id, self.distance_between(query, candidate.id)))
            .collect();
        hits.sort_unstable_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        hits.truncate(k);
        hits
    }

    fn hit(&self, id: u32, distance: f32) -> Hit {
        Hit {
            id,
            key: self.keys[id as usize].load(Ordering::Acquire),
            distance,
        }
    }

    /// The `k` live ids among `ids` with the smallest `distance`, closest first.
    fn top_k(
        &self,
        k: usize,
        ids: impl Iterator<Item = u32>,
        distance: impl Fn(u32) -> f32,
    ) -> Vec<Candidate> {
        let mut heap = std::collections::BinaryHeap::with_capacity(k + 1);
        let len = self.len();
        for id in ids {
            if id as usize >= len || self.states[id as usize].load(Ordering::Acquire) != STATE_LIVE
            {
                continue;
            }
            let distance = distance(id);
            if heap.len() < k {
                heap.push(Candidate { distance, id });
            } else if heap
                .peek()
                .is_some_and(|worst: &Candidate| distance < worst.distance)
            {
                heap.pop();
                heap.push(Candidate { distance, id });
            }
        }
        heap.into_sorted_vec()
    }

    fn exact_scan(&self, query: &[f32], k: usize, ids: impl Iterator<Item = u32>) -> Vec<Hit> {
        self.top_k(k, ids, |id| self.distance_between(query, id))
            .into_iter()
            .map(|candidate| self.hit(candidate.id, candidate.distance))
            .collect()
    }

    fn drain_hits(&self, scratch: &mut Scratch, distance: impl Fn(&Candidate) -> f32) -> Vec<Hit> {
        let mut hits: Vec<Hit> = scratch
            .results
            .drain()
            .map(|candidate| Hit {
                id: candidate.id,
                key: self.keys[candidate.id as usize].load(Ordering::Acquire),
                distance: distance(&candidate),
            })
            .collect();
        hits.sort_unstable_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        hits
    }

    /// Greedy descent through the upper levels, then the level-0 search; returns how many
    /// nodes the level-0 search visited. Results are left in `scratch.results`.
    fn search_graph<Q: QueryDistance>(
        &self,
        query: &Q,
        (entry_id, top_level): (u32, usize),
        ef: usize,
        two_hop: bool,
        allowed: impl Fn(u32) -> bool,
        scratch: &mut Scratch,
    ) -> usize {
        let mut nearest = Candidate {
            distance: query.distance(entry_id),
            id: entry_id,
        };
        for level in (1..=top_level).rev() {
            nearest = self.greedy_closest(query, nearest, level, scratch);
        }
        if two_hop {
            self.search_layer_two_hop(query, nearest, ef, allowed, scratch)
        } else {
            self.search_layer(query, &[nearest], ef, 0, allowed, scratch)
        }
    }

    /// Moves to ever closer neighbours on `level` until none is closer.
    pub(super) fn greedy_closest<Q: QueryDistance>(
        &self,
        query: &Q,
        mut nearest: Candidate,
        level: usize,
        scratch: &mut Scratch,
    ) -> Candidate {
        loop {
            let mut moved = false;
            self.read_links(nearest.id, level, &mut scratch.neighbours);
            for &id in &scratch.neighbours {
                let distance = query.distance(id);
                if distance < nearest.distance {
                    nearest = Candidate { distance, id };
                    moved = true;
                }
            }
            if !moved {
                return nearest;
            }
        }
    }

    /// The best-first search of one level. Every reached node is traversed, but only those
    /// `allowed` enter the results (at most `ef`, left in `scratch.results`); the search ends
    /// when the closest unexpanded candidate is farther than the worst of a full result list,
    /// or when candidates run out. Returns how many nodes were visited.
    pub(super) fn search_layer<Q: QueryDistance>(
        &self,
        query: &Q,
        entry_points: &[Candidate],
        ef: usize,
        level: usize,
        allowed: impl Fn(u32) -> bool,
        scratch: &mut Scratch,
    ) -> usize {
        let Scratch {
            visited,
            candidates,
            results,
            neighbours,
            ..
        } = scratch;
        visited.reset(self.capacity);
        candidates.clear();
        results.clear();
        let mut n_visited = 0;
        for &entry in entry_points {
            if visited.insert(entry.id) {
                n_visited += 1;
                candidates.push(Reverse(entry));
                if allowed(entry.id) {
                    results.push(entry);
                }
            }
        }
        let mut bound = if results.len() >= ef {
            results.peek().map_or(f32::INFINITY, |worst| worst.distance)
        } else {
            f32::INFINITY
        };
        while let Some(Reverse(current)) = candidates.pop() {
            if current.distance > bound {
                break;
            }
            self.read_links(current.id, level, neighbours);
            neighbours.retain(|&id| visited.insert(id));
            n_visited += neighbours.len();
            let mut consider = |id: u32, distance: f32| {
                if results.len() < ef || distance < bound {
                    candidates.push(Reverse(Candidate { distance, id }));
                    if allowed(id) {
                        results.push(Candidate { distance, id });
                        if results.len() > ef {
                            results.pop();
                        }
                        if results.len() >= ef {
                            bound = results.peek().map_or(f32::INFINITY, |worst| worst.distance);
                        }
                    }
                }
            };
            for_each_distance(query, neighbours, &mut consider);
        }
        n_visited
    }

    /// The level-0 search for a selective filter (after ACORN, Patel et al. 2024): only
    /// allowed nodes get a distance and become candidates, and a node the filter rejects is
    /// looked through to its own neighbours, so the search walks the allowed subgraph with
    /// two-hop edges instead of computing distances for the many rejected nodes. Returns how
    /// many nodes were visited.
    pub(super) fn search_layer_two_hop<Q: QueryDistance>(
        &self,
        query: &Q,
        entry: Candidate,
        ef: usize,
        allowed: impl Fn(u32) -> bool,
        scratch: &mut Scratch,
    ) -> usize {
        let Scratch {
            visited,
            candidates,
            results,
            neighbours,
            reachable,
        } = scratch;
        visited.reset(self.capacity);
        candidates.clear();
        results.clear();
        visited.insert(entry.id);
        let mut n_visited = 1;
        candidates.push(Reverse(entry));
        if allowed(entry.id) {
            results.push(entry);
        }
        let mut bound = f32::INFINITY;
        while let Some(Reverse(current)) = candidates.pop() {
            if current.distance > bound {
                break;
            }
            self.read_links(current.id, 0, neighbours);
            reachable.clear();
            for &id in neighbours.iter() {
                if !visited.insert(id) {
                    continue;
                }
                n_visited += 1;
                if allowed(id) {
                    reachable.push(id);
                    continue;
                }
                let links = self.links(id, 0);
                let count = (links[0].load(Ordering::Acquire) as usize).min(links.len() - 1);
                for slot in &links[1..=count] {
                    let second = slot.load(Ordering::Acquire);
                    if !visited.contains(second) && allowed(second) {
                        visited.insert(second);
                        n_visited += 1;
                        reachable.push(second);
                    }
                }
            }
            for_each_distance(query, reachable, |id, distance| {
                if results.len() < ef || distance < bound {
                    candidates.push(Reverse(Candidate { distance, id }));
                    results.push(Candidate { distance, id });
                    if results.len() > ef {
                        results.pop();
                    }
                    if results.len() >= ef {
                        bound = results.peek().map_or(f32::INFINITY, |worst| worst.distance);
                    }
                }
            });
        }
        n_visited
    }
}

/// Computes the distance to each of `ids` and hands it to `consider`, four at a time, with the
/// next four vectors prefetched meanwhile, so that memory latency overlaps with arithmetic.
#[inline(always)]
fn for_each_distance<Q: QueryDistance>(query: &Q, ids: &[u32], mut consider: impl FnMut(u32, f32)) {
    for &id in ids.iter().take(4) {
        query.prefetch(id);
    }
    let mut chunks = ids.chunks_exact(4);
    for (chunk_index, chunk) in chunks.by_ref().enumerate() {
        for &next in ids.iter().skip((chunk_index + 1) * 4).take(4) {
            query.prefetch(next);
        }
        let chunk = [chunk[0], chunk[1], chunk[2], chunk[3]];
        for (id, distance) in chunk.into_iter().zip(query.distance4(chunk)) {
            consider(id, distance);
        }
    }
    for &id in chunks.remainder() {
        consider(id, query.distance(id));
    }
}
