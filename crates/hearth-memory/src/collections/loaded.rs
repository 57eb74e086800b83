//! A collection's index in memory: the HNSW graph, the metadata of every chunk it holds (by
//! key, for filters and for mapping hits back to documents), and how far it has applied the
//! collection's writes.
//!
//! Keys are the chunks' write sequences (see `hearth_store`'s memory module): a replaced chunk
//! gets a new key, so replaying the writes after a snapshot is inserting the chunks stored
//! after it and deleting the keys removed after it, in any order.
//!
//! Loading tries the snapshot first: it must read back cleanly (checksum, structure), match
//! the collection's parameters, not be newer than the store, and after the replay hold
//! exactly the stored chunks. Anything else is logged and the index is rebuilt from the rows,
//! so a damaged or stale snapshot is never served.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hearth_store::{MemoryChunkRow, MemoryCollectionRow, Store};
use serde_json::{Map, Value};

use super::validate;
use crate::{Allowed, Filter, Hnsw, HnswParams, MemoryError, Metric, SearchOptions};

/// Tombstones are compacted away once there are at least this many and they outnumber the
/// live nodes.
const COMPACT_MIN_DELETED: usize = 1024;

/// What the index knows of one chunk besides its vector.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) document_id: String,
    pub(crate) metadata: Map<String, Value>,
}

/// How far the index has applied the collection's writes. Kept behind the collection's write
/// lock, which a write holds from its store transaction until the index holds it, so the
/// index applies writes in sequence order.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Every write up to this sequence is in the index.
    pub(crate) applied_sequence: u64,
    /// The sequence the snapshot file on disk holds (0: none).
    pub(crate) snapshot_sequence: u64,
}

#[derive(Debug)]
pub(crate) struct LoadedIndex {
    params: HnswParams,
    int8: bool,
    threads: usize,
    /// Written only to grow, rebuild or compact the graph; searches and inserts read it.
    index: RwLock<Hnsw>,
    entries: RwLock<HashMap<u64, Entry>>,
    /// Shared so a writer can hold it while it checks that this index is still the current
    /// one (`Memory::lock_for_write`).
    pub(crate) write: Arc<tokio::sync::Mutex<Progress>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic under these locks leaves at worst a missing node or entry; the index stays
    // searchable, so a poisoned lock is taken over.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Runs CPU-bound index work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("index task cancelled: {error}"),
        },
    }
}

/// The index parameters of a stored collection.
pub(crate) fn params_of(row: &MemoryCollectionRow) -> Result<HnswParams, MemoryError> {
    let metric = Metric::from_name(&row.metric)
        .ok_or_else(|| MemoryError::StoredData(format!("unknown metric `{}`", row.metric)))?;
    Ok(HnswParams {
        m: row.hnsw_m as usize,
        ef_construction: row.hnsw_ef_construction as usize,
        ..HnswParams::new(row.dimensions as usize, metric)
    })
}

impl LoadedIndex {
    fn new(
        params: HnswParams,
        int8: bool,
        threads: usize,
        index: Hnsw,
        entries: HashMap<u64, Entry>,
        progress: Progress,
    ) -> LoadedIndex {
        LoadedIndex {
            params,
            int8,
            threads,
            index: RwLock::new(index),
            entries: RwLock::new(entries),
            write: Arc::new(tokio::sync::Mutex::new(progress)),
        }
    }

    /// Loads the collection's index: the snapshot at `snapshot` plus the writes after it when
    /// it is sound, else a rebuild from the stored rows (then saved as the new snapshot).
    pub(crate) async fn load(
        store: &Store,
        row: &MemoryCollectionRow,
        snapshot: PathBuf,
        threads: usize,
    ) -> Result<Arc<LoadedIndex>, MemoryError> {
        let params = params_of(row)?;
        let last_sequence = row.last_sequence.max(0) as u64;
        if snapshot.exists() {
            match LoadedIndex::from_snapshot(store, row, &params, &snapshot, threads).await? {
                Some(loaded) => return Ok(loaded),
                None => tracing::warn!(
                    collection = %row.id,
                    path = %snapshot.display(),
                    "the index snapshot is unusable; rebuilding the index from the store"
                ),
            }
        }

        let entries = load_entries(store, &row.id).await?;
        let chunks = store.memory_chunks_after(&row.id, 0).await?;
        let (keys, vectors) = decode_chunks(&chunks, params.dim)?;
        drop(chunks);
        let build_params = params.clone();
        let int8 = row.int8;
        let index =
            blocking(move || Hnsw::build(build_params, &keys, &vectors, threads, int8)).await?;
        let loaded = Arc::new(LoadedIndex::new(
            params,
            row.int8,
            threads,
            index,
            entries,
            Progress {
                applied_sequence: last_sequence,
                snapshot_sequence: 0,
            },
        ));
        if last_sequence > 0 {
            // A rebuild is what a snapshot saves the next start; failing to save costs only
            // that, so it is logged, not returned.
            match loaded.save(snapshot, last_sequence).await {
                Ok(()) => {
                    loaded.write.lock().await.snapshot_sequence = last_sequence;
                    store
                        .prune_memory_deletions(&row.id, last_sequence as i64)
                        .await?;
                }
                Err(error) => tracing::warn!(
                    collection = %row.id,
                    %error,
                    "the rebuilt index could not be saved as a snapshot"
                ),
            }
        }
        tracing::info!(collection = %row.id, "collection index rebuilt from the store");
        Ok(loaded)
    }

    /// The snapshot with the writes after it replayed, or `None` when it cannot be trusted.
    async fn from_snapshot(
        store: &Store,
        row: &MemoryCollectionRow,
        params: &HnswParams,
        snapshot: &Path,
        threads: usize,
    ) -> Result<Option<Arc<LoadedIndex>>, MemoryError> {
        let path = snapshot.to_path_buf();
        let (index, snapshot_sequence) = match blocking(move || Hnsw::load(&path)).await {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(collection = %row.id, %error, "index snapshot refused");
                return Ok(None);
            }
        };
        let shape = index.params();
        let matches = shape.dim == params.dim
            && shape.metric == params.metric
            && shape.m == params.m
            && shape.ef_construction == params.ef_construction
            && index.quantizer().is_some() == row.int8
            && snapshot_sequence <= row.last_sequence.max(0) as u64;
        if !matches {
            tracing::warn!(
                collection = %row.id,
                snapshot_sequence,
                "index snapshot does not match the collection"
            );
            return Ok(None);
        }

        let entries = load_entries(store, &row.id).await?;
        let chunks = store
            .memory_chunks_after(&row.id, snapshot_sequence as i64)
            .await?;
        let (keys, vectors) = decode_chunks(&chunks, params.dim)?;
        drop(chunks);
        let removed: Vec<u64> = store
            .memory_deletions_after(&row.id, snapshot_sequence as i64)
            .await?
            .into_iter()
            .map(|sequence| sequence as u64)
            .collect();
        let loaded = Arc::new(LoadedIndex::new(
            params.clone(),
            row.int8,
            threads,
            index,
            entries,
            Progress {
                applied_sequence: row.last_sequence.max(0) as u64,
                snapshot_sequence,
            },
        ));
        let replay = Arc::clone(&loaded);
        let replayed = blocking(move || -> Result<bool, MemoryError> {
            replay.insert_vectors(&keys, &vectors)?;
            let index = read(&replay.index);
            for key in &removed {
                index.delete(*key);
            }
            // The replayed index must hold exactly the stored chunks.
            let entries = read(&replay.entries);
            Ok(index.live_len() == entries.len()
                && entries.keys().all(|key| index.id_of(*key).is_some()))
        })
        .await;
        match replayed {
            Ok(true) => {
                tracing::info!(
                    collection = %row.id,
                    snapshot_sequence,
                    "collection index loaded from its snapshot"
                );
                Ok(Some(loaded))
            }
            Ok(false) => {
                tracing::warn!(
                    collection = %row.id,
                    "index snapshot and store disagree after replay"
                );
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(collection = %row.id, %error, "index snapshot replay failed");
                Ok(None)
            }
        }
    }

    /// Inserts vectors under their keys (a key already present is replaced), growing the
    /// graph as needed. An int8 index that is still empty is built from this first batch, so
    /// its quantizer learns the data's ranges rather than a guess. Blocking.
    fn insert_vectors(&self, keys: &[u64], vectors: &[f32]) -> Result<(), MemoryError> {
        if keys.is_empty() {
            return Ok(());
        }
        {
            let mut index = write(&self.index);
            if index.is_empty() && self.int8 {
                *index = Hnsw::build(self.params.clone(), keys, vectors, self.threads, true)?;
                return Ok(());
            }
            let needed = index.len() + keys.len();
            if needed > index.capacity() {
                let capacity = needed.max(index.capacity() * 2).max(64);
                index.reserve(capacity)?;
            }
        }
        // Writes are serialized by the collection's write lock, so the room made above is
        // still there; searches go on while the batch is inserted.
        read(&self.index).insert_batch(keys, vectors, self.threads)?;
        Ok(())
    }

    /// Applies a committed write: new chunks under their keys, then the removed keys. Blocking.
    pub(crate) fn apply(
        &self,
        keys: &[u64],
        entries: Vec<Entry>,
        vectors: &[f32],
        removed: &[u64],
    ) -> Result<(), MemoryError> {
        {
            // Entries go in before their nodes and leave after them, so a search never
            // returns a key without its entry.
            let mut map = write(&self.entries);
            for (key, entry) in keys.iter().zip(entries) {
                map.insert(*key, entry);
            }
        }
        self.insert_vectors(keys, vectors)?;
        self.remove(removed);
        self.compact_if_needed()
    }

    /// Deletes keys from the graph and their entries.
    pub(crate) fn remove(&self, keys: &[u64]) {
        if keys.is_empty() {
            return;
        }
        {
            let index = read(&self.index);
            for key in keys {
                index.delete(*key);
            }
        }
        let mut map = write(&self.entries);
        for key in keys {
            map.remove(key);
        }
    }

    fn compact_if_needed(&self) -> Result<(), MemoryError> {
        let compacted = {
            let index = read(&self.index);
            let deleted = index.deleted_len();
            if deleted < COMPACT_MIN_DELETED || deleted < index.live_len() {
                return Ok(());
            }
            index.compacted(self.threads)?
        };
        *write(&self.index) = compacted;
        Ok(())
    }

    /// How many distinct documents the chunks under `keys` belong to.
    pub(crate) fn document_count(&self, keys: &[u64]) -> usize {
        let entries = read(&self.entries);
        keys.iter()
            .filter_map(|key| entries.get(key))
            .map(|entry| entry.document_id.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Whether each chunk under `keys` is in the index with metadata that matches.
    pub(crate) fn keys_matching(&self, keys: &[u64], filter: &Filter) -> Vec<bool> {
        let entries = read(&self.entries);
        keys.iter()
            .map(|key| {
                entries
                    .get(key)
                    .is_some_and(|entry| filter.matches_object(&entry.metadata))
            })
            .collect()
    }

    /// The ids of the documents whose metadata matches, sorted.
    pub(crate) fn matching_documents(&self, filter: &Filter) -> Vec<String> {
        let entries = read(&self.entries);
        let ids: HashSet<&str> = entries
            .values()
            .filter(|entry| filter.matches_object(&entry.metadata))
            .map(|entry| entry.document_id.as_str())
            .collect();
        let mut ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        ids.sort_unstable();
        ids
    }

    /// The `k` nearest chunks as (key, score), closest first; the filter is evaluated on the
    /// chunks' metadata while the graph is traversed.
    pub(crate) fn search(
        &self,
        vector: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<(u64, f32)>, MemoryError> {
        let index = read(&self.index);
        let entries = read(&self.entries);
        let predicate;
        let allowed = match filter {
            None => Allowed::All,
            Some(filter) => {
                predicate = |id: u32| {
                    index
                        .key_of(id)
                        .and_then(|key| entries.get(&key))
                        .is_some_and(|entry| filter.matches_object(&entry.metadata))
                };
                Allowed::Predicate(&predicate)
            }
        };
        let options = SearchOptions {
            ef,
            allowed,
            ..SearchOptions::new(k)
        };
        let metric = self.params.metric;
        Ok(index
            .search(vector, &options)?
            .into_iter()
            .map(|hit| (hit.key, metric.score(hit.distance)))
            .collect())
    }

    /// Saves the graph as a snapshot holding the writes up to `sequence`. The caller holds
    /// the write lock, so nothing past `sequence` is in the graph.
    pub(crate) async fn save(
        self: &Arc<Self>,
        path: PathBuf,
        sequence: u64,
    ) -> Result<(), MemoryError> {
        let loaded = Arc::clone(self);
        blocking(move || {
            if let Some(directory) = path.parent() {
                std::fs::create_dir_all(directory).map_err(|source| MemoryError::SnapshotIo {
                    path: directory.to_path_buf(),
                    source,
                })?;
            }
            read(&loaded.index).save(&path, sequence)
        })
        .await
    }
}

/// Every stored chunk's entry, by key.
async fn load_entries(
    store: &Store,
    collection_id: &str,
) -> Result<HashMap<u64, Entry>, MemoryError> {
    let keys = store.memory_chunk_keys(collection_id).await?;
    let mut entries = HashMap::with_capacity(keys.len());
    for key in keys {
        entries.insert(
            key.sequence as u64,
            Entry {
                document_id: key.document_id,
                metadata: validate::stored_metadata(&key.metadata)?,
            },
        );
    }
    Ok(entries)
}

/// Keys and flat vectors of stored chunks.
fn decode_chunks(
    chunks: &[MemoryChunkRow],
    dimensions: usize,
) -> Result<(Vec<u64>, Vec<f32>), MemoryError> {
    let mut keys = Vec::with_capacity(chunks.len());
    let mut vectors = Vec::with_capacity(chunks.len() * dimensions);
    for chunk in chunks {
        keys.push(chunk.sequence as u64);
        validate::decode_embedding_into(&chunk.embedding, dimensions, &mut vectors)?;
    }
    Ok((keys, vectors))
}
