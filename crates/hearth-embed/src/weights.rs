//! A safetensors file read tensor by tensor with positioned reads, for candle's `VarBuilder`.
//!
//! Candle's memory-mapped loader maps the whole file and copies every tensor out of the map,
//! so while a model loads the process holds the weights twice (the mapped pages count in its
//! resident set). Reading each tensor straight into its own buffer holds them once: the peak
//! is the weights plus one 1 MiB chunk, which matters on a small machine that also runs a chat
//! model.
//!
//! A table that is only ever looked up by row (BERT's word embeddings: 30,522 × 384 floats,
//! 45 MiB, for MiniLM) is not read at all: [`FileRows`] reads the rows a batch needs when it
//! needs them. Those come from the kernel's page cache, which is shared and reclaimable, so the
//! process never holds the table, only the rows of the batch at hand.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

/// A header larger than this is not a model we can load (the real ones are kilobytes).
const MAX_HEADER_BYTES: u64 = 100 << 20;
const CHUNK_BYTES: usize = 1 << 20;

/// Where one tensor lies in the file and what it holds.
#[derive(Debug, Clone, PartialEq)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// An open safetensors file and its tensor table.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    file: File,
    tensors: HashMap<String, TensorEntry>,
}

fn element_bytes(dtype: &str) -> Option<(DType, usize)> {
    Some(match dtype {
        "F32" => (DType::F32, 4),
        "F16" => (DType::F16, 2),
        "BF16" => (DType::BF16, 2),
        "F64" => (DType::F64, 8),
        "I64" => (DType::I64, 8),
        "I32" => (DType::I32, 4),
        "I16" => (DType::I16, 2),
        "U32" => (DType::U32, 4),
        "U8" => (DType::U8, 1),
        _ => return None,
    })
}

impl SafetensorsFile {
    /// Opens `path` and reads its header (8 bytes of little-endian length, then JSON).
    pub fn open(path: &Path) -> Result<SafetensorsFile, String> {
        let file = File::open(path).map_err(|error| format!("cannot open: {error}"))?;
        let file_len = file
            .metadata()
            .map_err(|error| format!("cannot read its size: {error}"))?
            .len();
        let mut length = [0u8; 8];
        file.read_exact_at(&mut length, 0)
            .map_err(|_| "too short for a safetensors header".to_owned())?;
        let header_len = u64::from_le_bytes(length);
        if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
            return Err(format!(
                "the header claims {header_len} bytes in a file of {file_len}"
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact_at(&mut header, 8)
            .map_err(|error| format!("cannot read the header: {error}"))?;
        let tensors = parse_header(&header, 8 + header_len, file_len)?;
        Ok(SafetensorsFile {
            path: path.to_owned(),
            file,
            tensors,
        })
    }

    /// Tensor `name`'s entry, its candle type and the bytes of one element, or why it cannot
    /// be read.
    fn typed_entry(&self, name: &str) -> Result<(&TensorEntry, DType, usize), String> {
        let entry = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("{} has no tensor {name:?}", self.path.display()))?;
        let (dtype, size) = element_bytes(&entry.dtype).ok_or_else(|| {
            format!(
                "tensor {name:?} of {} has the unsupported type {}",
                self.path.display(),
                entry.dtype
            )
        })?;
        Ok((entry, dtype, size))
    }

    /// Reads tensor `name` as stored, without converting it.
    pub fn read(&self, name: &str, device: &Device) -> candle_core::Result<Tensor> {
        let (entry, dtype, _) = self.typed_entry(name).map_err(candle_core::Error::Msg)?;
        let io = |error: std::io::Error| {
            candle_core::Error::Msg(format!(
                "cannot read tensor {name:?} of {}: {error}",
                self.path.display()
            ))
        };
        let len = (entry.end - entry.start) as usize;
        if dtype == DType::F32 {
            // The big tensors: decoded chunk by chunk into their final buffer.
            let mut values = Vec::with_capacity(len / 4);
            let mut chunk = vec![0u8; CHUNK_BYTES.min(len)];
            let mut offset = entry.start;
            while offset < entry.end {
                let take = chunk.len().min((entry.end - offset) as usize);
                self.file
                    .read_exact_at(&mut chunk[..take], offset)
                    .map_err(io)?;
                values.extend(
                    chunk[..take]
                        .chunks_exact(4)
                        .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
                );
                offset += take as u64;
            }
            return Tensor::from_vec(values, entry.shape.as_slice(), device);
        }
        let mut bytes = vec![0u8; len];
        self.file
            .read_exact_at(&mut bytes, entry.start)
            .map_err(io)?;
        Tensor::from_raw_buffer(&bytes, dtype, &entry.shape, device)
    }
}

/// A 2-D tensor left in its file and read a row at a time (see the module docs).
#[derive(Debug)]
pub struct FileRows {
    path: PathBuf,
    file: File,
    dtype: DType,
    rows: usize,
    columns: usize,
    row_bytes: usize,
    start: u64,
}

impl SafetensorsFile {
    /// Tensor `name`, which must be 2-D, as rows to be read on demand.
    pub fn rows(&self, name: &str) -> Result<FileRows, String> {
        let (entry, dtype, element_bytes) = self.typed_entry(name)?;
        let &[rows, columns] = entry.shape.as_slice() else {
            return Err(format!(
                "tensor {name:?} has the shape {:?}, not rows × columns",
                entry.shape
            ));
        };
        // A second handle on the same open file: the rows stay readable while this model
        // lives, whatever happens to the path.
        let file = self
            .file
            .try_clone()
            .map_err(|error| format!("cannot reopen the file: {error}"))?;
        Ok(FileRows {
            path: self.path.clone(),
            file,
            dtype,
            rows,
            columns,
            row_bytes: columns * element_bytes,
            start: entry.start,
        })
    }
}

impl FileRows {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The rows `ids` in that order, as an `ids.len()` × columns F32 tensor. A row that occurs
    /// more than once (padding, common words) is read once.
    pub fn gather(&self, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        let mut bytes = vec![0u8; ids.len() * self.row_bytes];
        let mut first_at: HashMap<u32, usize> = HashMap::with_capacity(ids.len());
        for (index, &id) in ids.iter().enumerate() {
            let row = id as usize;
            if row >= self.rows {
                return Err(candle_core::Error::Msg(format!(
                    "token id {id} is outside the {} rows of the embedding table",
                    self.rows
                )));
            }
            let at = index * self.row_bytes;
            match first_at.entry(id) {
                Entry::Occupied(earlier) => {
                    let from = *earlier.get() * self.row_bytes;
                    bytes.copy_within(from..from + self.row_bytes, at);
                }
                Entry::Vacant(slot) => {
                    slot.insert(index);
                    let offset = self.start + (row * self.row_bytes) as u64;
                    self.file
                        .read_exact_at(&mut bytes[at..at + self.row_bytes], offset)
                        .map_err(|error| {
                            candle_core::Error::Msg(format!(
                                "cannot read row {row} of the embedding table in {}: {error}",
                                self.path.display()
                            ))
                        })?;
                }
            }
        }
        // Safetensors stores little-endian values, as the CPUs we run on do.
        let tensor =
            Tensor::from_raw_buffer(&bytes, self.dtype, &[ids.len(), self.columns], device)?;
        if self.dtype == DType::F32 {
            Ok(tensor)
        } else {
            tensor.to_dtype(DType::F32)
        }
    }
}

fn parse_header(
    header: &[u8],
    data_start: u64,
    file_len: u64,
) -> Result<HashMap<String, TensorEntry>, String> {
    let json: serde_json::Value = serde_json::from_slice(header)
        .map_err(|error| format!("the header is not JSON: {error}"))?;
    let table = json.as_object().ok_or("the header is not a JSON object")?;
    let mut tensors = HashMap::new();
    for (name, info) in table {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| format!("tensor {name:?}: {what}");
        let dtype = info["dtype"]
            .as_str()
            .ok_or_else(|| bad("no dtype"))?
            .to_owned();
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|dim| dim.as_u64().map(|dim| dim as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("the shape is not a list of sizes"))?;
        let offsets: Vec<u64> = info["data_offsets"]
            .as_array()
            .and_then(|pair| pair.iter().map(serde_json::Value::as_u64).collect())
            .filter(|pair: &Vec<u64>| pair.len() == 2)
            .ok_or_else(|| bad("data_offsets is not a pair of offsets"))?;
        let (start, end) = (data_start + offsets[0], data_start + offsets[1]);
        if start > end || end > file_len {
            return Err(bad("its data lies outside the file"));
        }
        // Types we cannot read are kept, and refused only if the model asks for them.
        if let Some((_, size)) = element_bytes(&dtype) {
            let elements: usize = shape.iter().product();
            if elements.checked_mul(size) != Some((end - start) as usize) {
                return Err(bad("its byte length does not match its shape and type"));
            }
        }
        tensors.insert(
            name.clone(),
            TensorEntry {
                dtype,
                shape,
                start,
                end,
            },
        );
    }
    Ok(tensors)
}

impl SimpleBackend for SafetensorsFile {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, device)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            }
            .bt());
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.read(name, device)?;
        if tensor.dtype() == dtype {
            Ok(tensor)
        } else {
            tensor.to_dtype(dtype)
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with the given tensors (name, dtype, shape, little-endian bytes).
    fn write(dir: &Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> PathBuf {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            header.insert(
                (*name).to_owned(),
                serde_json::json!({"dtype": dtype, "shape": shape,
                    "data_offsets": [data.len(), data.len() + bytes.len()]}),
            );
            data.extend_from_slice(bytes);
        }
        header.insert(
            "__metadata__".to_owned(),
            serde_json::json!({"format": "pt"}),
        );
        let header = serde_json::to_vec(&header).expect("json");
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(&header);
        file.extend_from_slice(&data);
        let path = dir.join("model.safetensors");
        std::fs::write(&path, file).expect("write");
        path
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect()
    }

    #[test]
    fn tensors_read_back_with_their_shapes_types_and_values() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(
            dir.path(),
            &[
                (
                    "weight",
                    "F32",
                    vec![2, 3],
                    f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]),
                ),
                (
                    "position_ids",
                    "I64",
                    vec![1, 3],
                    [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
            ],
        );
        let file = SafetensorsFile::open(&path).expect("open");
        let weight = file
            .get(
                (2, 3).into(),
                "weight",
                candle_nn::Init::Const(0.0),
                DType::F32,
                &Device::Cpu,
            )
            .expect("weight");
        assert_eq!(
            weight.to_vec2::<f32>().expect("values"),
            [[1.0, 2.0, 3.0], [4.0, 5.0, -6.5]]
        );
        // Integer tensors are read as stored, and converted only when asked.
        let ids = file
            .get_unchecked("position_ids", DType::I64, &Device::Cpu)
            .expect("ids");
        assert_eq!(ids.to_vec2::<i64>().expect("ids"), [[0, 1, 2]]);
        assert!(file.contains_tensor("weight") && !file.contains_tensor("bias"));
        assert!(
            file.get(
                (3, 2).into(),
                "weight",
                candle_nn::Init::Const(0.0),
                DType::F32,
                &Device::Cpu
            )
            .is_err(),
            "a wrong shape is refused"
        );
    }

    #[test]
    fn rows_are_read_from_the_file_in_the_order_asked() {
        let dir = tempfile::tempdir().expect("dir");
        let table: Vec<f32> = (0..12).map(|value| value as f32 * 0.5).collect();
        let path = write(
            dir.path(),
            &[
                ("scalar", "F32", vec![2], f32_bytes(&[9.0, 9.0])),
                ("table", "F32", vec![4, 3], f32_bytes(&table)),
            ],
        );
        let file = SafetensorsFile::open(&path).expect("open");
        let rows = file.rows("table").expect("a 2-D tensor");
        assert_eq!((rows.rows(), rows.columns()), (4, 3));
        let gathered = rows.gather(&[3, 0, 3, 1], &Device::Cpu).expect("gather");
        assert_eq!(
            gathered.to_vec2::<f32>().expect("values"),
            [
                [4.5, 5.0, 5.5],
                [0.0, 0.5, 1.0],
                [4.5, 5.0, 5.5],
                [1.5, 2.0, 2.5]
            ]
        );
        let error = rows.gather(&[4], &Device::Cpu).expect_err("row 4 of 4");
        assert!(error.to_string().contains("outside the 4 rows"), "{error}");
        assert!(
            file.rows("scalar")
                .expect_err("1-D")
                .contains("rows × columns")
        );
        assert!(file.rows("missing").is_err());
    }

    #[test]
    fn a_damaged_file_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, [1u8, 2, 3]).expect("write");
        assert!(SafetensorsFile::open(&path).is_err());
        let mut lying = u64::MAX.to_le_bytes().to_vec();
        lying.extend_from_slice(b"{}");
        std::fs::write(&path, lying).expect("write");
        let error = SafetensorsFile::open(&path).expect_err("oversized header");
        assert!(error.contains("header claims"), "{error}");
        // A tensor whose bytes do not match its shape.
        let path = write(dir.path(), &[("w", "F32", vec![4], f32_bytes(&[1.0]))]);
        let error = SafetensorsFile::open(&path).expect_err("short tensor");
        assert!(error.contains("byte length"), "{error}");
    }
}
