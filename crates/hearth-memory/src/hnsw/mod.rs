//! The HNSW graph index (Malkov & Yashunin), laid out for speed and concurrent use.
//!
//! Layout: vectors live in one contiguous buffer, `dim` floats per node; level-0 neighbour
//! lists are fixed slots of `1 + 2m` words per node (a count, then ids), and the upper levels,
//! which only about one node in `m` reaches, share a second flat array addressed by a
//! per-node offset. A node's level is a function of the seed and its id, so it is known (and
//! its slots laid out) before the node is inserted, and a single-threaded build is fully
//! deterministic.
//!
//! Concurrency: all operations but [`Hnsw::reserve`] take `&self`. Neighbour slots are
//! atomics, so searches read them without locks while inserts rewrite them; a node's vector is
//! written once, before its id is stored in any list (release), and readers load ids with
//! acquire, so a reachable node's vector is always complete. Writers to a node's lists take
//! that node's mutex (never two at once, so they cannot deadlock), and an insert that raises
//! the top level holds one more lock for its duration, as hnswlib does. Snapshots wait for
//! in-flight inserts through a gate that searches never touch.
//!
//! Deletes are tombstones: a deleted node is still traversed but never returned;
//! [`Hnsw::compacted`] rebuilds the graph without them.

mod search;
mod snapshot;
mod visited;

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

pub use search::{Allowed, Hit, Plan, SearchOptions};
use visited::{Candidate, Scratch};

use crate::{Int8Quantizer, Kernels, MemoryError, Metric, distance};

/// The highest level a node can get; the chance of reaching it is m^-16.
const MAX_LEVEL: u8 = 16;
/// `entry` when the index has no node yet.
const NO_ENTRY: u64 = u64::MAX;

/// A slot's id was allocated but its insert has not published it yet.
const STATE_EMPTY: u8 = 0;
const STATE_LIVE: u8 = 1;
const STATE_DELETED: u8 = 2;

/// The index's shape and build effort.
#[derive(Debug, Clone, PartialEq)]
pub struct HnswParams {
    /// Dimensions of every vector.
    pub dim: usize,
    pub metric: Metric,
    /// Neighbours per node on the upper levels; level 0 keeps twice as many.
    pub m: usize,
    /// Candidate list size while inserting: larger builds slower and finds better neighbours.
    pub ef_construction: usize,
    /// Seeds level generation.
    pub seed: u64,
}

impl HnswParams {
    /// The usual parameters (m 16, ef_construction 200) for `dim` dimensions.
    pub fn new(dim: usize, metric: Metric) -> HnswParams {
        HnswParams {
            dim,
            metric,
            m: 16,
            ef_construction: 200,
            seed: 0x4865_6172_7468,
        }
    }

    fn validate(&self) -> Result<(), MemoryError> {
        let invalid = |name, reason: &str| {
            Err(MemoryError::InvalidParameter {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.dim == 0 || self.dim > 65_536 {
            return invalid("dim", "must be between 1 and 65536");
        }
        if self.m < 2 || self.m > 128 {
            return invalid("m", "must be between 2 and 128");
        }
        if self.ef_construction == 0 || self.ef_construction > 10_000 {
            return invalid("ef_construction", "must be between 1 and 10000");
        }
        Ok(())
    }
}

/// int8 codes of every node, next to the f32 vectors that rescoring uses.
struct QuantizedStore {
    quantizer: Int8Quantizer,
    /// `dim` codes per node; written once, like the vectors.
    codes: Box<[UnsafeCell<u8>]>,
    /// The squared norm of each node's decoded vector, for l2.
    squared_norms: Box<[UnsafeCell<f32>]>,
}

/// An HNSW index over f32 vectors with u64 keys; see the module documentation.
pub struct Hnsw {
    params: HnswParams,
    kernels: &'static Kernels,
    capacity: usize,
    /// `capacity * dim` floats.
    vectors: Box<[UnsafeCell<f32>]>,
    /// `capacity * (1 + 2m)`: per node a count, then neighbour ids.
    links0: Box<[AtomicU32]>,
    /// Every id's level, known before insertion.
    levels: Vec<u8>,
    /// Per id, where its upper-level lists start in `links_upper`; one extra entry at the end.
    upper_offsets: Vec<u32>,
    /// `levels[id]` lists of `1 + m` words per node.
    links_upper: Box<[AtomicU32]>,
    keys: Box<[AtomicU64]>,
    states: Box<[AtomicU8]>,
    node_locks: Box<[Mutex<()>]>,
    /// Ids handed out so far.
    count: AtomicU32,
    n_deleted: AtomicUsize,
    /// The entry point and top level, packed as `level << 32 | id`.
    entry: AtomicU64,
    /// Held by an insert that raises the top level, for its duration.
    raise_lock: Mutex<()>,
    key_map: Mutex<HashMap<u64, u32>>,
    /// Inserts share it; a snapshot takes it alone so that it sees no half-inserted node.
    write_gate: RwLock<()>,
    scratch_pool: Mutex<Vec<Scratch>>,
    quantized: Option<QuantizedStore>,
}

// SAFETY: the only non-Sync fields are the `UnsafeCell` vector and code buffers. Each node's
// cells are written exactly once, by the thread that was handed the node's id, before the id
// is published (a release store of its state or into a neighbour list); they are read only
// for published ids, after an acquire load, and `reserve`, which moves them, takes `&mut self`.
unsafe impl Sync for Hnsw {}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Hnsw")
            .field("params", &self.params)
            .field("len", &self.len())
            .field("deleted", &self.deleted_len())
            .field("capacity", &self.capacity)
            .field("quantized", &self.quantized.is_some())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves nothing half-updated that matters more
    // than a lost neighbour link, so a poisoned lock is simply taken over.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn level_of(seed: u64, id: u32, m: usize) -> u8 {
    // splitmix64 of the seed and id: independent, uniform bits per id.
    let mut x = seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let uniform = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = (-uniform.ln() / (m as f64).ln()).floor();
    level.min(f64::from(MAX_LEVEL)) as u8
}

fn pack_entry(id: u32, level: u8) -> u64 {
    u64::from(level) << 32 | u64::from(id)
}

fn unpack_entry(entry: u64) -> (u32, usize) {
    (entry as u32, (entry >> 32) as usize)
}

fn cells<T: Default>(n: usize) -> Box<[T]> {
    (0..n).map(|_| T::default()).collect()
}

impl Hnsw {
    /// An empty index with room for `capacity` nodes; with a quantizer, searches traverse the
    /// graph on int8 codes and rescore on the f32 vectors.
    pub fn new(
        params: HnswParams,
        capacity: usize,
        quantizer: Option<Int8Quantizer>,
    ) -> Result<Hnsw, MemoryError> {
        params.validate()?;
        if let Some(quantizer) = &quantizer
            && quantizer.dim() != params.dim
        {
            return Err(MemoryError::DimensionMismatch {
                expected: params.dim,
                found: quantizer.dim(),
            });
        }
        let mut index = Hnsw {
            kernels: Kernels::detected(),
            capacity: 0,
            vectors: Box::new([]),
            links0: Box::new([]),
            levels: Vec::new(),
            upper_offsets: vec![0],
            links_upper: Box::new([]),
            keys: Box::new([]),
            states: Box::new([]),
            node_locks: Box::new([]),
            count: AtomicU32::new(0),
            n_deleted: AtomicUsize::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            raise_lock: Mutex::new(()),
            key_map: Mutex::new(HashMap::new()),
            write_gate: RwLock::new(()),
            scratch_pool: Mutex::new(Vec::new()),
            quantized: quantizer.map(|quantizer| QuantizedStore {
                quantizer,
                codes: Box::new([]),
                squared_norms: Box::new([]),
            }),
            params,
        };
        index.reserve(capacity)?;
        Ok(index)
    }

    /// Builds an index from `keys` and their `vectors` (rows of `dim` floats) on `threads`
    /// threads (0: one per core); with `quantize`, an int8 quantizer is trained on these
    /// vectors first.
    pub fn build(
        params: HnswParams,
        keys: &[u64],
        vectors: &[f32],
        threads: usize,
        quantize: bool,
    ) -> Result<Hnsw, MemoryError> {
        check_rows(&params, keys.len(), vectors)?;
        // The quantizer learns the ranges of the vectors as stored: normalized for cosine.
        let quantizer = quantize.then(|| {
            let cosine = params.metric == Metric::Cosine;
            Int8Quantizer::train_rows(
                vectors.chunks_exact(params.dim).map(|row| {
                    let mut row = row.to_vec();
                    if cosine {
                        distance::normalize(&mut row);
                    }
                    row
                }),
                params.dim,
            )
        });
        let index = Hnsw::new(params, keys.len(), quantizer)?;
        index.insert_prepared(keys, vectors, threads)?;
        Ok(index)
    }

    /// The parameters the index was made with.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// The int8 quantizer, when the index has one.
    pub fn quantizer(&self) -> Option<&Int8Quantizer> {
        self.quantized.as_ref().map(|store| &store.quantizer)
    }

    /// The kernels distances use.
    pub fn kernels(&self) -> &'static Kernels {
        self.kernels
    }

    /// Nodes inserted, deleted ones included.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire) as usize
    }

    /// Whether nothing was ever inserted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes deleted (tombstoned) but still in the graph.
    pub fn deleted_len(&self) -> usize {
        self.n_deleted.load(Ordering::Acquire)
    }

    /// Nodes that searches can return.
    pub fn live_len(&self) -> usize {
        self.len().saturating_sub(self.deleted_len())
    }

    /// How many nodes fit before [`Hnsw::reserve`] is needed.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The internal id that `key` currently maps to.
    pub fn id_of(&self, key: u64) -> Option<u32> {
        lock(&self.key_map).get(&key).copied()
    }

    /// The key of internal id `id`.
    pub fn key_of(&self, id: u32) -> Option<u64> {
        ((id as usize) < self.len()).then(|| self.keys[id as usize].load(Ordering::Acquire))
    }

    /// Whether `id` is a node that searches can return.
    pub fn is_live(&self, id: u32) -> bool {
        self.states
            .get(id as usize)
            .is_some_and(|state| state.load(Ordering::Acquire) == STATE_LIVE)
    }

    /// The stored vector of a live or deleted node (normalized for cosine).
    pub fn vector_of(&self, id: u32) -> Option<&[f32]> {
        let published = self
            .states
            .get(id as usize)
            .is_some_and(|state| state.load(Ordering::Acquire) != STATE_EMPTY);
        published.then(|| self.vector(id))
    }

    /// Bytes of memory the index holds (its arrays, not the allocator's overhead).
    pub fn memory_bytes(&self) -> usize {
        let mut bytes = self.vectors.len() * 4
            + self.links0.len() * 4
            + self.levels.len()
            + self.upper_offsets.len() * 4
            + self.links_upper.len() * 4
            + self.keys.len() * 8
            + self.states.len()
            + self.node_locks.len() * size_of::<Mutex<()>>()
            + lock(&self.key_map).capacity() * (8 + 4 + 1);
        if let Some(store) = &self.quantized {
            bytes += store.codes.len() + store.squared_norms.len() * 4 + store.quantizer.dim() * 8;
        }
        bytes
    }

    /// Grows the index to hold `capacity` nodes (it never shrinks). Needs exclusive access,
    /// since the arrays move.
    pub fn reserve(&mut self, capacity: usize) -> Result<(), MemoryError> {
        if capacity <= self.capacity {
            return Ok(());
        }
        if capacity > u32::MAX as usize - 1 {
            return Err(MemoryError::InvalidParameter {
                name: "capacity",
                reason: "must be below 2^32 - 1".to_owned(),
            });
        }
        let (dim, m) = (self.params.dim, self.params.m);
        let (stride0, stride_upper) = (1 + 2 * m, 1 + m);
        let old = self.capacity;

        let mut vectors: Vec<UnsafeCell<f32>> = Vec::with_capacity(capacity * dim);
        vectors.extend(
            self.vectors
                .iter_mut()
                .map(|cell| UnsafeCell::new(*cell.get_mut())),
        );
        vectors.resize_with(capacity * dim, || UnsafeCell::new(0.0));
        self.vectors = vectors.into_boxed_slice();

        let mut links0: Vec<AtomicU32> = Vec::with_capacity(capacity * stride0);
        links0.extend(
            self.links0
                .iter_mut()
                .map(|slot| AtomicU32::new(*slot.get_mut())),
        );
        links0.resize_with(capacity * stride0, AtomicU32::default);
        self.links0 = links0.into_boxed_slice();

        for id in old..capacity {
            let level = level_of(self.params.seed, id as u32, m);
            self.levels.push(level);
            let end = self.upper_offsets[id] as usize + usize::from(level) * stride_upper;
            let end = u32::try_from(end).map_err(|_| MemoryError::InvalidParameter {
                name: "capacity",
                reason: "too large for the upper-level link array".to_owned(),
            })?;
            self.upper_offsets.push(end);
        }
        let upper_len = self.upper_offsets[capacity] as usize;
        let mut links_upper: Vec<AtomicU32> = Vec::with_capacity(upper_len);
        links_upper.extend(
            self.links_upper
                .iter_mut()
                .map(|slot| AtomicU32::new(*slot.get_mut())),
        );
        links_upper.resize_with(upper_len, AtomicU32::default);
        self.links_upper = links_upper.into_boxed_slice();

        let mut keys: Vec<AtomicU64> = self
            .keys
            .iter_mut()
            .map(|key| AtomicU64::new(*key.get_mut()))
            .collect();
        keys.resize_with(capacity, AtomicU64::default);
        self.keys = keys.into_boxed_slice();
        let mut states: Vec<AtomicU8> = self
            .states
            .iter_mut()
            .map(|state| AtomicU8::new(*state.get_mut()))
            .collect();
        states.resize_with(capacity, AtomicU8::default);
        self.states = states.into_boxed_slice();
        self.node_locks = cells(capacity);

        if let Some(store) = &mut self.quantized {
            let mut codes: Vec<UnsafeCell<u8>> = store
                .codes
                .iter_mut()
                .map(|cell| UnsafeCell::new(*cell.get_mut()))
                .collect();
            codes.resize_with(capacity * dim, || UnsafeCell::new(0));
            store.codes = codes.into_boxed_slice();
            let mut norms: Vec<UnsafeCell<f32>> = store
                .squared_norms
                .iter_mut()
                .map(|cell| UnsafeCell::new(*cell.get_mut()))
                .collect();
            norms.resize_with(capacity, || UnsafeCell::new(0.0));
            store.squared_norms = norms.into_boxed_slice();
        }
        // Pooled visited sets grow on their next use.
        self.capacity = capacity;
        Ok(())
    }

    /// Inserts one vector under `key`, replacing (tombstoning) the node the key had before.
    /// Returns the new internal id.
    pub fn insert(&self, key: u64, vector: &[f32]) -> Result<u32, MemoryError> {
        self.insert_batch(&[key], vector, 1).map(|ids| ids.start)
    }

    /// Inserts `keys` with their `vectors` (rows of `dim` floats) on up to `threads` threads
    /// (0: one per core).
    /// Every vector is checked before anything is inserted. A key seen before, in the index or
    /// earlier in the batch, is replaced. Returns the new internal ids, which are contiguous.
    pub fn insert_batch(
        &self,
        keys: &[u64],
        vectors: &[f32],
        threads: usize,
    ) -> Result<Range<u32>, MemoryError> {
        check_rows(&self.params, keys.len(), vectors)?;
        self.insert_prepared(keys, vectors, threads)
    }

    fn insert_prepared(
        &self,
        keys: &[u64],
        vectors: &[f32],
        threads: usize,
    ) -> Result<Range<u32>, MemoryError> {
        let _gate = self
            .write_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let n = keys.len();
        let mut base = self.count.load(Ordering::Relaxed);
        loop {
            if base as usize + n > self.capacity {
                return Err(MemoryError::CapacityExhausted {
                    capacity: self.capacity,
                });
            }
            match self.count.compare_exchange_weak(
                base,
                base + n as u32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => base = current,
            }
        }
        {
            let mut key_map = lock(&self.key_map);
            for (offset, &key) in keys.iter().enumerate() {
                let id = base + offset as u32;
                self.keys[id as usize].store(key, Ordering::Release);
                if let Some(previous) = key_map.insert(key, id) {
                    self.mark_deleted(previous);
                }
            }
        }
        let dim = self.params.dim;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            threads => threads,
        };
        // A thread gets at least 64 vectors, so small batches do not pay for spawning.
        let threads = threads.clamp(1, n.div_ceil(64).max(1));
        if threads == 1 {
            let mut scratch = self.take_scratch();
            for (offset, vector) in vectors.chunks_exact(dim).enumerate() {
                self.insert_node(base + offset as u32, vector, &mut scratch);
            }
            self.return_scratch(scratch);
        } else {
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        let mut scratch = self.take_scratch();
                        loop {
                            let offset = next.fetch_add(1, Ordering::Relaxed);
                            if offset >= n {
                                break;
                            }
                            let vector = &vectors[offset * dim..(offset + 1) * dim];
                            self.insert_node(base + offset as u32, vector, &mut scratch);
                        }
                        self.return_scratch(scratch);
                    });
                }
            });
        }
        Ok(base..base + n as u32)
    }

    /// Tombstones the node under `key`; returns whether there was one.
    pub fn delete(&self, key: u64) -> bool {
        let removed = lock(&self.key_map).remove(&key);
        match removed {
            Some(id) => {
                self.mark_deleted(id);
                true
            }
            None => false,
        }
    }

    fn mark_deleted(&self, id: u32) {
        let previous = self.states[id as usize].swap(STATE_DELETED, Ordering::AcqRel);
        if previous != STATE_DELETED {
            self.n_deleted.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A new index holding only the live nodes (same keys, parameters and quantizer), built on
    /// `threads` threads. The caller swaps it in; searches on `self` go on meanwhile.
    pub fn compacted(&self, threads: usize) -> Result<Hnsw, MemoryError> {
        let _gate = self
            .write_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let dim = self.params.dim;
        let mut keys = Vec::with_capacity(self.live_len());
        let mut vectors = Vec::with_capacity(self.live_len() * dim);
        for id in 0..self.len() as u32 {
            if self.is_live(id) {
                keys.push(self.keys[id as usize].load(Ordering::Acquire));
                vectors.extend_from_slice(self.vector(id));
            }
        }
        let index = Hnsw::new(self.params.clone(), keys.len(), self.quantizer().cloned())?;
        // Stored vectors are already normalized; renormalizing for cosine is harmless.
        index.insert_prepared(&keys, &vectors, threads)?;
        Ok(index)
    }

    // ----- Storage access. -----

    #[inline(always)]
    fn vector(&self, id: u32) -> &[f32] {
        let dim = self.params.dim;
        let cells = &self.vectors[id as usize * dim..(id as usize + 1) * dim];
        // SAFETY: `UnsafeCell<f32>` has the layout of `f32`, and the range is in bounds. Callers
        // only pass ids that are published (reached through an acquire load), whose cells are
        // never written again while `&self` lives (see `unsafe impl Sync`).
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), dim) }
    }

    #[inline(always)]
    fn codes(&self, store: &QuantizedStore, id: u32) -> &[u8] {
        let dim = self.params.dim;
        let cells = &store.codes[id as usize * dim..(id as usize + 1) * dim];
        // SAFETY: as in `vector`: published codes are never written again.
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), dim) }
    }

    #[inline(always)]
    fn squared_norm(store: &QuantizedStore, id: u32) -> f32 {
        // SAFETY: as in `vector`: a published node's norm is never written again.
        unsafe { *store.squared_norms[id as usize].get() }
    }

    /// A node's list at `level`: a count, then neighbour ids.
    #[inline(always)]
    fn links(&self, id: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let stride = 1 + 2 * self.params.m;
            &self.links0[id as usize * stride..(id as usize + 1) * stride]
        } else {
            let stride = 1 + self.params.m;
            let start = self.upper_offsets[id as usize] as usize + (level - 1) * stride;
            &self.links_upper[start..start + stride]
        }
    }

    /// Copies a node's neighbours at `level` into `out`.
    #[inline(always)]
    fn read_links(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        let links = self.links(id, level);
        let count = (links[0].load(Ordering::Acquire) as usize).min(links.len() - 1);
        out.clear();
        out.extend(
            links[1..=count]
                .iter()
                .map(|slot| slot.load(Ordering::Acquire)),
        );
    }

    fn write_links(&self, id: u32, level: usize, neighbours: &[u32]) {
        let links = self.links(id, level);
        for (slot, &neighbour) in links[1..].iter().zip(neighbours) {
            slot.store(neighbour, Ordering::Release);
        }
        links[0].store(
            neighbours.len().min(links.len() - 1) as u32,
            Ordering::Release,
        );
    }

    fn take_scratch(&self) -> Scratch {
        lock(&self.scratch_pool).pop().unwrap_or_default()
    }

    fn return_scratch(&self, scratch: Scratch) {
        lock(&self.scratch_pool).push(scratch);
    }

    #[inline(always)]
    fn distance_between(&self, a: &[f32], b: u32) -> f32 {
        self.params
            .metric
            .distance_with(self.kernels, a, self.vector(b))
    }

    // ----- Insertion. -----

    /// Writes node `id`'s data, then links it into the graph. `id` was handed to this thread
    /// alone by `insert_prepared`.
    fn insert_node(&self, id: u32, vector: &[f32], scratch: &mut Scratch) {
        let dim = self.params.dim;
        let start = id as usize * dim;
        // Cosine stores unit vectors (`check_rows` refused zero ones), normalized here rather
        // than in a copy of the whole batch.
        let scale = match self.params.metric {
            Metric::Cosine => 1.0 / (self.kernels.dot)(vector, vector).sqrt(),
            Metric::Dot | Metric::L2 => 1.0,
        };
        for (cell, value) in self.vectors[start..start + dim].iter().zip(vector) {
            // SAFETY: `id` is unpublished and owned by this thread: no one else reads or writes
            // these cells until the release store of the state below.
            unsafe { *cell.get() = *value * scale };
        }
        // Reading back the node's own cells is sound before publication too: no other thread
        // touches them, and this one writes them no more.
        let vector = self.vector(id);
        if let Some(store) = &self.quantized {
            let mut codes = vec![0u8; dim];
            let squared_norm = store.quantizer.encode(vector, &mut codes);
            for (cell, code) in store.codes[start..start + dim].iter().zip(&codes) {
                // SAFETY: as above, the node is not yet published.
                unsafe { *cell.get() = *code };
            }
            // SAFETY: as above.
            unsafe { *store.squared_norms[id as usize].get() = squared_norm };
        }
        // A node deleted (by key) before it was published stays deleted.
        let _ = self.states[id as usize].compare_exchange(
            STATE_EMPTY,
            STATE_LIVE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );

        let level = self.levels[id as usize];
        let mut entry = self.entry.load(Ordering::Acquire);
        let mut raise_guard = None;
        if entry == NO_ENTRY || usize::from(level) > unpack_entry(entry).1 {
            raise_guard = Some(lock(&self.raise_lock));
            entry = self.entry.load(Ordering::Acquire);
            if entry == NO_ENTRY {
                self.entry.store(pack_entry(id, level), Ordering::Release);
                return;
            }
            if usize::from(level) <= unpack_entry(entry).1 {
                raise_guard = None;
            }
        }
        let (entry_id, top_level) = unpack_entry(entry);
        let query = search::ExactQuery {
            index: self,
            query: vector,
        };
        let mut nearest = Candidate {
            distance: self.distance_between(vector, entry_id),
            id: entry_id,
        };
        for layer in (usize::from(level) + 1..=top_level).rev() {
            nearest = self.greedy_closest(&query, nearest, layer, scratch);
        }
        let m = self.params.m;
        let mut found = Vec::new();
        let mut selected = Vec::new();
        let mut entry_points = vec![nearest];
        for layer in (0..=usize::from(level).min(top_level)).rev() {
            self.search_layer(
                &query,
                &entry_points,
                self.params.ef_construction,
                layer,
                |_| true,
                scratch,
            );
            found.clear();
            found.extend(
                scratch
                    .results
                    .drain()
                    .filter(|candidate| candidate.id != id),
            );
            found.sort_unstable();
            self.select_neighbours(&found, m, &mut selected);
            {
                let _node = lock(&self.node_locks[id as usize]);
                self.write_links(id, layer, &selected);
            }
            for &neighbour in &selected {
                self.link(neighbour, id, layer, scratch);
            }
            entry_points.clear();
            entry_points.extend(found.first().copied());
            if entry_points.is_empty() {
                entry_points.push(nearest);
            }
        }
        if raise_guard.is_some() {
            self.entry.store(pack_entry(id, level), Ordering::Release);
        }
    }

    /// The HNSW paper's neighbour heuristic: walking candidates closest first, keep one only if
    /// it is closer to the base than to every neighbour kept so far, up to `m`.
    fn select_neighbours(&self, sorted: &[Candidate], m: usize, selected: &mut Vec<u32>) {
        selected.clear();
        if sorted.len() <= m {
            selected.extend(sorted.iter().map(|candidate| candidate.id));
            return;
        }
        for candidate in sorted {
            if selected.len() >= m {
                break;
            }
            let vector = self.vector(candidate.id);
            let diverse = selected
                .iter()
                .all(|&kept| self.distance_between(vector, kept) >= candidate.distance);
            if diverse {
                selected.push(candidate.id);
            }
        }
    }

    /// Adds `new` to `node`'s list at `level`, pruning the list with the heuristic when full.
    fn link(&self, node: u32, new: u32, level: usize, scratch: &mut Scratch) {
        let max = if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        };
        let _node = lock(&self.node_locks[node as usize]);
        self.read_links(node, level, &mut scratch.neighbours);
        if scratch.neighbours.contains(&new) {
            return;
        }
        if scratch.neighbours.len() < max {
            scratch.neighbours.push(new);
            self.write_links(node, level, &scratch.neighbours);
            return;
        }
        let base = self.vector(node);
        let mut candidates: Vec<Candidate> = scratch
            .neighbours
            .iter()
            .chain(std::iter::once(&new))
            .map(|&id| Candidate {
                distance: self.distance_between(base, id),
                id,
            })
            .collect();
        candidates.sort_unstable();
        let mut selected = Vec::with_capacity(max);
        self.select_neighbours(&candidates, max, &mut selected);
        self.write_links(node, level, &selected);
    }
}

/// Checks rows (dimensions, finite values) and normalizes them for cosine.
fn check_rows(params: &HnswParams, n: usize, vectors: &[f32]) -> Result<(), MemoryError> {
    let dim = params.dim;
    if vectors.len() != n * dim {
        let found = vectors.len().checked_div(n).unwrap_or(vectors.len());
        return Err(MemoryError::DimensionMismatch {
            expected: dim,
            found,
        });
    }
    if let Some(index) = vectors.iter().position(|value| !value.is_finite()) {
        return Err(MemoryError::NonFiniteValue { index: index % dim });
    }
    let zero = |row: &[f32]| {
        let squared_norm = distance::scalar::dot(row, row);
        squared_norm == 0.0 || !squared_norm.is_finite()
    };
    if params.metric == Metric::Cosine && vectors.chunks_exact(dim).any(zero) {
        return Err(MemoryError::ZeroVector);
    }
    Ok(())
}

/// Checks a query and normalizes it for cosine.
fn prepare_query<'a>(
    params: &HnswParams,
    query: &'a [f32],
) -> Result<std::borrow::Cow<'a, [f32]>, MemoryError> {
    check_rows(params, 1, query)?;
    if params.metric != Metric::Cosine {
        return Ok(std::borrow::Cow::Borrowed(query));
    }
    let mut owned = query.to_vec();
    distance::normalize(&mut owned);
    Ok(std::borrow::Cow::Owned(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_deterministic_and_thin_out_by_m() {
        let m = 16;
        let levels: Vec<u8> = (0..100_000).map(|id| level_of(7, id, m)).collect();
        let again: Vec<u8> = (0..100_000).map(|id| level_of(7, id, m)).collect();
        assert_eq!(levels, again);
        let above_zero = levels.iter().filter(|level| **level >= 1).count();
        let above_one = levels.iter().filter(|level| **level >= 2).count();
        // P(level >= 1) = 1/m, P(level >= 2) = 1/m².
        assert!((5_500..7_000).contains(&above_zero), "{above_zero}");
        assert!((250..550).contains(&above_one), "{above_one}");
        assert_ne!(
            levels,
            (0..100_000)
                .map(|id| level_of(8, id, m))
                .collect::<Vec<_>>()
        );
    }

    /// Also pins the bug where a sample taken at a regular stride (every 19th id of 10k)
    /// estimated a filter of every 19th id at 100%.
    #[test]
    fn the_planner_scans_small_sets_and_searches_the_graph_for_large_ones() {
        let dim = 4;
        let n = 10_000;
        let keys: Vec<u64> = (0..n as u64).collect();
        let vectors: Vec<f32> = (0..n * dim).map(|i| ((i * 7919) % 1000) as f32).collect();
        let index =
            Hnsw::build(HnswParams::new(dim, Metric::L2), &keys, &vectors, 1, false).unwrap();
        // (allowed ids, predicate evaluations, ef, expect a scan)
        let cases = [
            (10, 0, 64, true),
            (100, 0, 64, true),
            (5_000, 0, 64, false),
            (50, n, 64, true),
            (9_000, n, 64, false),
        ];
        for (allowed, evaluations, ef, scan) in cases {
            assert_eq!(
                index.prefer_exact_scan(allowed, ef, evaluations),
                scan,
                "{allowed} allowed, {evaluations} evaluations"
            );
        }
        // (period of the predicate, least and most acceptable estimate of 10k ids)
        let cases = [
            (10, 800, 1_200),
            (19, 350, 750),
            (100, 30, 250),
            (10_001, 0, 30),
        ];
        for (period, least, most) in cases {
            let periodic = |id: u32| id.is_multiple_of(period);
            let estimate = index.estimate_matches(&periodic);
            assert!(
                (least..=most).contains(&estimate),
                "every {period}th: {estimate}"
            );
        }
    }
}
