//! The snapshot file: the whole index (parameters, keys, tombstones, vectors, graph and int8
//! codes) in one file with a version header and a CRC-32 trailer.
//!
//! Layout, all little-endian: the magic `HRTHHNSW`, the format version (u32), dim (u32),
//! metric (u8), m (u32), ef_construction (u32), seed (u64), node count (u64), the caller's
//! applied sequence (u64), entry point (u64, packed), quantized flag (u8), and with int8 the
//! quantizer's mins and steps (`dim` f32 each); then per node its key (u64), its state (u8),
//! its vector (`dim` f32), its level-0 list (`1 + 2m` u32); the upper-level lists (their
//! length follows from the seed); with int8, the codes (`dim` u8 per node) and the decoded
//! squared norms (f32 per node); and last the CRC-32 of everything before it.
//!
//! Saving writes a temporary file beside the target, fsyncs it, renames it over the target and
//! fsyncs the directory, so a crash leaves the old snapshot or the new one, never a mix.
//! Loading checks the magic, version and checksum, then every count and id, and refuses a
//! damaged file with [`MemoryError::SnapshotCorrupt`]: it must be rebuilt, never served.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{Hnsw, HnswParams, NO_ENTRY, STATE_DELETED, STATE_LIVE, lock, unpack_entry};
use crate::{Int8Quantizer, MemoryError, Metric};

const MAGIC: &[u8; 8] = b"HRTHHNSW";
const VERSION: u32 = 1;

/// A writer that hashes what passes through it.
struct Checksummed<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes numbers through a small buffer, so each one is not its own `write_all` call.
fn write_all_le<W: Write, const N: usize>(
    out: &mut W,
    values: impl Iterator<Item = [u8; N]>,
) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(64 * 1024);
    for value in values {
        buffer.extend_from_slice(&value);
        if buffer.len() >= 60 * 1024 {
            out.write_all(&buffer)?;
            buffer.clear();
        }
    }
    out.write_all(&buffer)
}

fn metric_code(metric: Metric) -> u8 {
    match metric {
        Metric::Cosine => 0,
        Metric::Dot => 1,
        Metric::L2 => 2,
    }
}

impl Hnsw {
    /// Writes the index to `path` atomically (temporary file, fsync, rename). Inserts wait
    /// while it runs; searches do not. `applied_sequence` is stored for the caller: the
    /// position in its write log up to which the index holds every write, so that after a
    /// restart only the writes past it are replayed.
    pub fn save(&self, path: &Path, applied_sequence: u64) -> Result<(), MemoryError> {
        let io_error = |source| MemoryError::SnapshotIo {
            path: path.to_owned(),
            source,
        };
        let _gate = self
            .write_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".tmp-{}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let result = self
            .write_snapshot(&temporary, applied_sequence)
            .and_then(|()| std::fs::rename(&temporary, path));
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temporary);
            return Err(io_error(error));
        }
        // The rename is durable only once the directory is synced.
        let directory = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(io_error)
    }

    fn write_snapshot(&self, path: &Path, applied_sequence: u64) -> std::io::Result<()> {
        let file = File::create(path)?;
        let mut out = Checksummed {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: crc32fast::Hasher::new(),
        };
        let count = self.len();
        let params = &self.params;
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&(params.dim as u32).to_le_bytes())?;
        out.write_all(&[metric_code(params.metric)])?;
        out.write_all(&(params.m as u32).to_le_bytes())?;
        out.write_all(&(params.ef_construction as u32).to_le_bytes())?;
        out.write_all(&params.seed.to_le_bytes())?;
        out.write_all(&(count as u64).to_le_bytes())?;
        out.write_all(&applied_sequence.to_le_bytes())?;
        out.write_all(&self.entry.load(Ordering::Acquire).to_le_bytes())?;
        out.write_all(&[u8::from(self.quantized.is_some())])?;
        if let Some(store) = &self.quantized {
            write_all_le(
                &mut out,
                store
                    .quantizer
                    .mins()
                    .iter()
                    .map(|value| value.to_le_bytes()),
            )?;
            write_all_le(
                &mut out,
                store
                    .quantizer
                    .steps()
                    .iter()
                    .map(|value| value.to_le_bytes()),
            )?;
        }

        write_all_le(
            &mut out,
            self.keys[..count]
                .iter()
                .map(|key| key.load(Ordering::Acquire).to_le_bytes()),
        )?;
        write_all_le(
            &mut out,
            self.states[..count]
                .iter()
                .map(|state| [state.load(Ordering::Acquire)]),
        )?;
        write_all_le(
            &mut out,
            (0..count as u32)
                .flat_map(|id| self.vector(id).iter().map(|value| value.to_le_bytes())),
        )?;
        let stride0 = 1 + 2 * params.m;
        write_all_le(
            &mut out,
            self.links0[..count * stride0]
                .iter()
                .map(|slot| slot.load(Ordering::Acquire).to_le_bytes()),
        )?;
        let upper_len = self.upper_offsets[count] as usize;
        write_all_le(
            &mut out,
            self.links_upper[..upper_len]
                .iter()
                .map(|slot| slot.load(Ordering::Acquire).to_le_bytes()),
        )?;
        if let Some(store) = &self.quantized {
            write_all_le(
                &mut out,
                (0..count as u32).flat_map(|id| self.codes(store, id).iter().map(|code| [*code])),
            )?;
            write_all_le(
                &mut out,
                (0..count as u32).map(|id| Hnsw::squared_norm(store, id).to_le_bytes()),
            )?;
        }
        let checksum = out.hasher.clone().finalize();
        let mut writer = out.inner;
        writer.write_all(&checksum.to_le_bytes())?;
        let file = writer.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()
    }

    /// Reads an index saved by [`Hnsw::save`], with the applied sequence saved beside it; a
    /// damaged, truncated or unknown file is an error, never a partly loaded index. The index
    /// has room for exactly its nodes; [`Hnsw::reserve`] makes more.
    pub fn load(path: &Path) -> Result<(Hnsw, u64), MemoryError> {
        let bytes = std::fs::read(path).map_err(|source| MemoryError::SnapshotIo {
            path: path.to_owned(),
            source,
        })?;
        let corrupt = |reason: String| MemoryError::SnapshotCorrupt {
            path: path.to_owned(),
            reason,
        };
        parse(&bytes).map_err(corrupt)
    }
}

/// Reads fixed-size values off the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("truncated in {what}"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let bytes = self.take(N, what)?;
        Ok(bytes.try_into().unwrap_or([0; N]))
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// `n` values of `N` bytes each.
    fn values<const N: usize>(
        &mut self,
        n: usize,
        what: &str,
    ) -> Result<impl Iterator<Item = [u8; N]> + 'a, String> {
        let length = n
            .checked_mul(N)
            .ok_or_else(|| format!("{what} too large"))?;
        let bytes = self.take(length, what)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|chunk| chunk.try_into().unwrap_or([0; N])))
    }
}

fn parse(bytes: &[u8]) -> Result<(Hnsw, u64), String> {
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a Hearth HNSW snapshot".to_owned());
    }
    let (body, trailer) = bytes.split_at(bytes.len() - 4);
    let mut reader = Reader {
        bytes: &body[MAGIC.len()..],
    };
    let version = reader.u32("the header")?;
    if version != VERSION {
        return Err(format!(
            "format version {version}, this build reads version {VERSION}"
        ));
    }
    let stored = u32::from_le_bytes(trailer.try_into().unwrap_or([0; 4]));
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch".to_owned());
    }
    let dim = reader.u32("the header")? as usize;
    let metric = match reader.u8("the header")? {
        0 => Metric::Cosine,
        1 => Metric::Dot,
        2 => Metric::L2,
        other => return Err(format!("unknown metric code {other}")),
    };
    let m = reader.u32("the header")? as usize;
    let ef_construction = reader.u32("the header")? as usize;
    let seed = reader.u64("the header")?;
    let count = usize::try_from(reader.u64("the header")?)
        .map_err(|_| "node count too large".to_owned())?;
    let applied_sequence = reader.u64("the header")?;
    let entry = reader.u64("the header")?;
    let quantized = match reader.u8("the header")? {
        0 => false,
        1 => true,
        other => return Err(format!("unknown quantization flag {other}")),
    };
    let quantizer = if quantized {
        let mins: Vec<f32> = reader
            .values(dim, "quantizer")?
            .map(f32::from_le_bytes)
            .collect();
        let steps: Vec<f32> = reader
            .values(dim, "quantizer")?
            .map(f32::from_le_bytes)
            .collect();
        let quantizer = Int8Quantizer::from_parts(mins, steps)
            .ok_or_else(|| "the quantizer's ranges are invalid".to_owned())?;
        Some(quantizer)
    } else {
        None
    };
    let params = HnswParams {
        dim,
        metric,
        m,
        ef_construction,
        seed,
    };
    params.validate().map_err(|error| error.to_string())?;
    // Every section must fit in what is left before allocating for it.
    let stride0 = 1 + 2 * m;
    let per_node = 8 + 1 + dim * 4 + stride0 * 4 + if quantized { dim + 4 } else { 0 };
    if count
        .checked_mul(per_node)
        .is_none_or(|needed| needed > body.len())
    {
        return Err(format!("{count} nodes do not fit in {} bytes", body.len()));
    }

    let mut index = Hnsw::new(params, count, quantizer).map_err(|error| error.to_string())?;
    let keys: Vec<u64> = reader
        .values(count, "keys")?
        .map(u64::from_le_bytes)
        .collect();
    let states: Vec<u8> = reader
        .values::<1>(count, "states")?
        .map(|[state]| state)
        .collect();
    for (id, (&key, &state)) in keys.iter().zip(&states).enumerate() {
        if state != STATE_LIVE && state != STATE_DELETED {
            return Err(format!("node {id} has unknown state {state}"));
        }
        *index.keys[id].get_mut() = key;
        *index.states[id].get_mut() = state;
    }
    for (cell, value) in index
        .vectors
        .iter_mut()
        .zip(reader.values(count * dim, "vectors")?)
    {
        let value = f32::from_le_bytes(value);
        if !value.is_finite() {
            return Err("a vector holds a value that is not finite".to_owned());
        }
        *cell.get_mut() = value;
    }
    let check_list =
        |slots: &mut [std::sync::atomic::AtomicU32], what: &str| -> Result<(), String> {
            let capacity = slots.len() - 1;
            if *slots[0].get_mut() as usize > capacity {
                return Err(format!(
                    "a {what} list holds more than {capacity} neighbours"
                ));
            }
            let used = *slots[0].get_mut() as usize;
            if slots[1..=used]
                .iter_mut()
                .any(|slot| *slot.get_mut() as usize >= count)
            {
                return Err(format!("a {what} list names a node past the last one"));
            }
            Ok(())
        };
    for (slot, value) in index
        .links0
        .iter_mut()
        .zip(reader.values(count * stride0, "level-0 lists")?)
    {
        *slot.get_mut() = u32::from_le_bytes(value);
    }
    for slots in index.links0.chunks_exact_mut(stride0) {
        check_list(slots, "level-0")?;
    }
    let upper_len = index.upper_offsets[count] as usize;
    for (slot, value) in index
        .links_upper
        .iter_mut()
        .zip(reader.values(upper_len, "upper-level lists")?)
    {
        *slot.get_mut() = u32::from_le_bytes(value);
    }
    for slots in index.links_upper[..upper_len].chunks_exact_mut(1 + m) {
        check_list(slots, "upper-level")?;
    }
    // A neighbour on level l must itself reach level l, or its lists there do not exist.
    for id in 0..count {
        for level in 1..=usize::from(index.levels[id]) {
            let start = index.upper_offsets[id] as usize + (level - 1) * (1 + m);
            let slots = &mut index.links_upper[start..start + 1 + m];
            let used = *slots[0].get_mut() as usize;
            for slot in &mut slots[1..=used] {
                if usize::from(index.levels[*slot.get_mut() as usize]) < level {
                    return Err(format!("node {id} links on level {level} to a lower node"));
                }
            }
        }
    }
    if quantized {
        let Some(store) = index.quantized.as_mut() else {
            return Err("the quantizer is missing".to_owned());
        };
        for (cell, [code]) in store
            .codes
            .iter_mut()
            .zip(reader.values::<1>(count * dim, "codes")?)
        {
            *cell.get_mut() = code;
        }
        for (cell, value) in store
            .squared_norms
            .iter_mut()
            .zip(reader.values(count, "norms")?)
        {
            *cell.get_mut() = f32::from_le_bytes(value);
        }
    }
    if !reader.bytes.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the last section",
            reader.bytes.len()
        ));
    }
    if entry != NO_ENTRY {
        let (entry_id, level) = unpack_entry(entry);
        if entry_id as usize >= count || usize::from(index.levels[entry_id as usize]) != level {
            return Err("the entry point is not a node of its level".to_owned());
        }
    } else if count > 0 {
        return Err("nodes without an entry point".to_owned());
    }
    *index.entry.get_mut() = entry;
    *index.count.get_mut() = count as u32;
    let mut n_deleted = 0;
    {
        let mut key_map = lock(&index.key_map);
        key_map.reserve(count);
        for (id, (&key, &state)) in keys.iter().zip(&states).enumerate() {
            if state == STATE_LIVE {
                key_map.insert(key, id as u32);
            } else {
                n_deleted += 1;
            }
        }
    }
    *index.n_deleted.get_mut() = n_deleted;
    Ok((index, applied_sequence))
}
