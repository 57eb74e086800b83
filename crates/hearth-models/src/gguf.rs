//! A GGUF metadata reader, in plain Rust, so that the registry can describe a model (family,
//! quantization, context length, chat template) without loading it into llama.cpp.
//!
//! Only the header, the key/value section and the tensor descriptions are read; tensor data is
//! never touched. Large arrays (a vocabulary of 262,144 tokens) are skipped with relative seeks
//! on the `BufReader`, never allocated. Sizes read from the file are bounded before anything is
//! allocated from them, so a damaged or hostile file yields an error, not an out-of-memory.
//!
//! [`GgufBuilder`] writes the same format: small but valid GGUF files for tests here and in the
//! crates that depend on this one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use crate::ModelsError;

/// `GGUF` read as a little-endian u32.
const MAGIC: [u8; 4] = *b"GGUF";
/// Keys and string values longer than this are treated as damage, not data. Chat templates,
/// the longest strings in real files, are tens of kilobytes.
const MAX_STRING_BYTES: u64 = 16 * 1024 * 1024;
const MAX_KEY_VALUE_COUNT: u64 = 1_000_000;
const MAX_TENSOR_COUNT: u64 = 10_000_000;
/// ggml tensors have at most four dimensions; a little slack for future formats.
const MAX_TENSOR_DIMENSIONS: u32 = 8;
/// Alignment of the tensor data section unless `general.alignment` says otherwise.
const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value. Integers and floats are widened so callers need not care which of
/// GGUF's twelve types the converter chose; arrays are described, not loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    String(String),
    Array { element_type: u32, length: u64 },
}

/// What a GGUF file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufMetadata {
    /// Format version: 2 or 3.
    pub version: u32,
    pub tensor_count: u64,
    /// Sum over the tensors of the product of their dimensions.
    pub parameter_count: u64,
    /// Every key/value pair, arrays described by type and length only.
    pub values: BTreeMap<String, GgufValue>,
}

impl GgufMetadata {
    pub fn string(&self, key: &str) -> Option<&str> {
        match self.values.get(key) {
            Some(GgufValue::String(value)) => Some(value),
            _ => None,
        }
    }

    pub fn unsigned(&self, key: &str) -> Option<u64> {
        match self.values.get(key) {
            Some(GgufValue::Unsigned(value)) => Some(*value),
            Some(GgufValue::Signed(value)) => u64::try_from(*value).ok(),
            _ => None,
        }
    }

    /// `general.architecture`, the model family llama.cpp dispatches on (`gemma3`, `llama`).
    pub fn architecture(&self) -> Option<&str> {
        self.string("general.architecture")
    }

    /// `general.name`, the human name the converter recorded.
    pub fn name(&self) -> Option<&str> {
        self.string("general.name")
    }

    /// `general.size_label`, e.g. `268M`.
    pub fn size_label(&self) -> Option<&str> {
        self.string("general.size_label")
    }

    /// `general.file_type`: llama.cpp's `llama_ftype`.
    pub fn file_type(&self) -> Option<u64> {
        self.unsigned("general.file_type")
    }

    /// The quantization name for `general.file_type` (`Q4_K_M`), when the file records it.
    pub fn quantization(&self) -> Option<String> {
        self.file_type().map(quantization_name)
    }

    /// `<architecture>.context_length`: the longest context the model was trained for.
    pub fn context_length(&self) -> Option<u64> {
        self.unsigned(&format!("{}.context_length", self.architecture()?))
    }

    /// `<architecture>.embedding_length`: the width of the hidden state.
    pub fn embedding_length(&self) -> Option<u64> {
        self.unsigned(&format!("{}.embedding_length", self.architecture()?))
    }

    /// `tokenizer.chat_template`, the Jinja template that turns messages into a prompt.
    pub fn chat_template(&self) -> Option<&str> {
        self.string("tokenizer.chat_template")
    }

    /// Whether this is an embedding model rather than a chat model: encoder architectures, and
    /// any file that declares how to pool token states into one vector.
    pub fn is_embedding_model(&self) -> bool {
        const ENCODER_ARCHITECTURES: [&str; 6] = [
            "bert",
            "nomic-bert",
            "nomic-bert-moe",
            "jina-bert-v2",
            "modern-bert",
            "t5encoder",
        ];
        let Some(architecture) = self.architecture() else {
            return false;
        };
        ENCODER_ARCHITECTURES.contains(&architecture)
            || self
                .values
                .contains_key(&format!("{architecture}.pooling_type"))
    }
}

/// The name llama.cpp gives a `llama_ftype` value (llama.h). The "guessed" bit (1024), set when
/// the type was inferred rather than recorded, is ignored.
pub fn quantization_name(file_type: u64) -> String {
    let name = match file_type & !1024 {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        other => return format!("unknown file type {other}"),
    };
    name.to_string()
}

/// Reads the metadata of the GGUF file at `path`.
pub fn read_metadata(path: &Path) -> Result<GgufMetadata, ModelsError> {
    let file = File::open(path).map_err(ModelsError::io("open", path))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    read_metadata_from(&mut reader).map_err(|error| error.into_models_error(path))
}

/// Why a read failed, before the path is known.
#[derive(Debug)]
pub(crate) enum ReadError {
    NotGguf(String),
    Malformed(String),
    Io(std::io::Error),
}

impl ReadError {
    fn into_models_error(self, path: &Path) -> ModelsError {
        match self {
            ReadError::NotGguf(reason) => ModelsError::NotGguf {
                path: path.to_path_buf(),
                reason,
            },
            ReadError::Malformed(reason) => ModelsError::MalformedGguf {
                path: path.to_path_buf(),
                reason,
            },
            ReadError::Io(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                ModelsError::MalformedGguf {
                    path: path.to_path_buf(),
                    reason: "the file ends in the middle of the metadata (truncated?)".to_string(),
                }
            }
            ReadError::Io(source) => ModelsError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> Self {
        ReadError::Io(error)
    }
}

/// Reads GGUF metadata from any buffered, seekable reader positioned at the start of the file.
pub(crate) fn read_metadata_from(
    reader: &mut (impl BufRead + Seek),
) -> Result<GgufMetadata, ReadError> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        let read = reader.read(&mut magic[filled..])?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    if filled < magic.len() || magic != MAGIC {
        return Err(ReadError::NotGguf(describe_start(&magic[..filled], reader)));
    }
    let version = read_u32(reader)?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(ReadError::NotGguf(
                "GGUF version 1 is not supported; convert the model again with a current llama.cpp"
                    .to_string(),
            ));
        }
        other if matches!(other.swap_bytes(), 2 | 3) => {
            return Err(ReadError::NotGguf(
                "big-endian GGUF files are not supported".to_string(),
            ));
        }
        other => {
            return Err(ReadError::NotGguf(format!("unknown GGUF version {other}")));
        }
    }
    let tensor_count = read_u64(reader)?;
    let key_value_count = read_u64(reader)?;
    if tensor_count > MAX_TENSOR_COUNT {
        return Err(ReadError::Malformed(format!(
            "it claims {tensor_count} tensors"
        )));
    }
    if key_value_count > MAX_KEY_VALUE_COUNT {
        return Err(ReadError::Malformed(format!(
            "it claims {key_value_count} metadata entries"
        )));
    }

    let mut values = BTreeMap::new();
    for _ in 0..key_value_count {
        let key = read_string(reader)?;
        let value_type = read_u32(reader)?;
        let value = read_value(reader, value_type, &key)?;
        values.insert(key, value);
    }

    let mut parameter_count: u64 = 0;
    for _ in 0..tensor_count {
        let name_length = read_u64(reader)?;
        check_string_length(name_length)?;
        reader.seek_relative(name_length as i64)?;
        let dimension_count = read_u32(reader)?;
        if dimension_count > MAX_TENSOR_DIMENSIONS {
            return Err(ReadError::Malformed(format!(
                "a tensor has {dimension_count} dimensions"
            )));
        }
        let mut elements: u64 = 1;
        for _ in 0..dimension_count {
            elements = elements.saturating_mul(read_u64(reader)?);
        }
        parameter_count = parameter_count.saturating_add(elements);
        let _tensor_type = read_u32(reader)?;
        let _data_offset = read_u64(reader)?;
    }

    Ok(GgufMetadata {
        version,
        tensor_count,
        parameter_count,
        values,
    })
}

/// A readable description of how a non-GGUF file begins: the text of an HTML error page, or
/// the bytes of anything else.
fn describe_start(magic: &[u8], reader: &mut impl Read) -> String {
    if magic.is_empty() {
        return "the file is empty".to_string();
    }
    let mut start = magic.to_vec();
    let mut more = [0u8; 60];
    if let Ok(read) = reader.read(&mut more) {
        start.extend_from_slice(&more[..read]);
    }
    let is_text = start
        .iter()
        .all(|byte| byte.is_ascii_graphic() || byte.is_ascii_whitespace());
    if is_text {
        let text = String::from_utf8_lossy(&start);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("it starts with {text:?}, not the GGUF magic (an error page?)")
    } else {
        let hex: Vec<String> = magic.iter().map(|byte| format!("{byte:02x}")).collect();
        format!(
            "it starts with bytes {}, not the GGUF magic 47 47 55 46",
            hex.join(" ")
        )
    }
}

fn read_value(
    reader: &mut (impl BufRead + Seek),
    value_type: u32,
    key: &str,
) -> Result<GgufValue, ReadError> {
    Ok(match value_type {
        0 => GgufValue::Unsigned(read_array::<1>(reader)?[0].into()),
        1 => GgufValue::Signed(i8::from_le_bytes(read_array(reader)?).into()),
        2 => GgufValue::Unsigned(u16::from_le_bytes(read_array(reader)?).into()),
        3 => GgufValue::Signed(i16::from_le_bytes(read_array(reader)?).into()),
        4 => GgufValue::Unsigned(read_u32(reader)?.into()),
        5 => GgufValue::Signed(i32::from_le_bytes(read_array(reader)?).into()),
        6 => GgufValue::Float(f32::from_le_bytes(read_array(reader)?).into()),
        7 => GgufValue::Bool(read_array::<1>(reader)?[0] != 0),
        8 => GgufValue::String(read_string(reader)?),
        9 => {
            let element_type = read_u32(reader)?;
            let length = read_u64(reader)?;
            skip_array(reader, element_type, length, key)?;
            GgufValue::Array {
                element_type,
                length,
            }
        }
        10 => GgufValue::Unsigned(read_u64(reader)?),
        11 => GgufValue::Signed(i64::from_le_bytes(read_array(reader)?)),
        12 => GgufValue::Float(f64::from_le_bytes(read_array(reader)?)),
        other => {
            return Err(ReadError::Malformed(format!(
                "key {key:?} has unknown value type {other}"
            )));
        }
    })
}

/// Moves past an array without reading it into memory: one seek for fixed-size elements, one
/// small read and seek per string.
fn skip_array(
    reader: &mut (impl BufRead + Seek),
    element_type: u32,
    length: u64,
    key: &str,
) -> Result<(), ReadError> {
    let fixed_size: Option<u64> = match element_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    };
    match (element_type, fixed_size) {
        (_, Some(size)) => {
            let bytes = length
                .checked_mul(size)
                .and_then(|bytes| i64::try_from(bytes).ok())
                .ok_or_else(|| {
                    ReadError::Malformed(format!("array {key:?} claims {length} elements"))
                })?;
            reader.seek_relative(bytes)?;
        }
        (8, None) => {
            for _ in 0..length {
                let string_length = read_u64(reader)?;
                check_string_length(string_length)?;
                reader.seek_relative(string_length as i64)?;
            }
        }
        (9, None) => {
            for _ in 0..length {
                let inner_type = read_u32(reader)?;
                let inner_length = read_u64(reader)?;
                skip_array(reader, inner_type, inner_length, key)?;
            }
        }
        (other, None) => {
            return Err(ReadError::Malformed(format!(
                "array {key:?} has unknown element type {other}"
            )));
        }
    }
    Ok(())
}

fn check_string_length(length: u64) -> Result<(), ReadError> {
    if length > MAX_STRING_BYTES {
        return Err(ReadError::Malformed(format!(
            "a string claims {length} bytes"
        )));
    }
    Ok(())
}

fn read_string(reader: &mut impl Read) -> Result<String, ReadError> {
    let length = read_u64(reader)?;
    check_string_length(length)?;
    let mut bytes = vec![0u8; length as usize];
    reader.read_exact(&mut bytes)?;
    String::from_utf8(bytes)
        .map_err(|_| ReadError::Malformed("a string is not valid UTF-8".to_string()))
}

fn read_array<const N: usize>(reader: &mut impl Read) -> Result<[u8; N], ReadError> {
    let mut bytes = [0u8; N];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_u32(reader: &mut impl Read) -> Result<u32, ReadError> {
    Ok(u32::from_le_bytes(read_array(reader)?))
}

fn read_u64(reader: &mut impl Read) -> Result<u64, ReadError> {
    Ok(u64::from_le_bytes(read_array(reader)?))
}

/// Writes small, valid GGUF v3 files: metadata, and F32 tensors filled with zeros. Meant for
/// tests, which need real files that cost bytes rather than a real model.
#[derive(Debug, Clone, Default)]
pub struct GgufBuilder {
    entries: Vec<(String, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>)>,
}

impl GgufBuilder {
    pub fn new() -> GgufBuilder {
        GgufBuilder::default()
    }

    pub fn string(self, key: &str, value: &str) -> GgufBuilder {
        let mut bytes = 8u32.to_le_bytes().to_vec();
        push_string(&mut bytes, value);
        self.entry(key, bytes)
    }

    pub fn u32(self, key: &str, value: u32) -> GgufBuilder {
        let mut bytes = 4u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&value.to_le_bytes());
        self.entry(key, bytes)
    }

    pub fn u64(self, key: &str, value: u64) -> GgufBuilder {
        let mut bytes = 10u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&value.to_le_bytes());
        self.entry(key, bytes)
    }

    pub fn f32(self, key: &str, value: f32) -> GgufBuilder {
        let mut bytes = 6u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&value.to_le_bytes());
        self.entry(key, bytes)
    }

    pub fn bool(self, key: &str, value: bool) -> GgufBuilder {
        let mut bytes = 7u32.to_le_bytes().to_vec();
        bytes.push(u8::from(value));
        self.entry(key, bytes)
    }

    pub fn string_array(self, key: &str, values: &[&str]) -> GgufBuilder {
        let mut bytes = 9u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&8u32.to_le_bytes());
        bytes.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for value in values {
            push_string(&mut bytes, value);
        }
        self.entry(key, bytes)
    }

    pub fn f32_array(self, key: &str, values: &[f32]) -> GgufBuilder {
        let mut bytes = 9u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&6u32.to_le_bytes());
        bytes.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        self.entry(key, bytes)
    }

    /// Adds an F32 tensor of the given shape; its data is zeros. A large tensor is how a test
    /// makes a file big enough to interrupt mid-download.
    pub fn tensor(mut self, name: &str, dimensions: &[u64]) -> GgufBuilder {
        self.tensors.push((name.to_string(), dimensions.to_vec()));
        self
    }

    fn entry(mut self, key: &str, typed_value: Vec<u8>) -> GgufBuilder {
        self.entries.push((key.to_string(), typed_value));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (key, typed_value) in &self.entries {
            push_string(&mut bytes, key);
            bytes.extend_from_slice(typed_value);
        }
        let mut data_offset: u64 = 0;
        let mut data_size: u64 = 0;
        for (name, dimensions) in &self.tensors {
            push_string(&mut bytes, name);
            bytes.extend_from_slice(&(dimensions.len() as u32).to_le_bytes());
            for dimension in dimensions {
                bytes.extend_from_slice(&dimension.to_le_bytes());
            }
            bytes.extend_from_slice(&0u32.to_le_bytes()); // GGML_TYPE_F32
            bytes.extend_from_slice(&data_offset.to_le_bytes());
            let tensor_bytes = dimensions.iter().product::<u64>() * 4;
            data_size = data_offset + tensor_bytes;
            data_offset = (data_offset + tensor_bytes).next_multiple_of(DEFAULT_ALIGNMENT);
        }
        let padded = (bytes.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT);
        bytes.resize((padded + data_size) as usize, 0);
        bytes
    }
}

fn push_string(bytes: &mut Vec<u8>, value: &str) {
    bytes.extend_from_slice(&(value.len() as u64).to_le_bytes());
    bytes.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn read(bytes: Vec<u8>) -> Result<GgufMetadata, ReadError> {
        read_metadata_from(&mut Cursor::new(bytes))
    }

    #[test]
    fn built_files_read_back_with_every_value_type() {
        let bytes = GgufBuilder::new()
            .string("general.architecture", "llama")
            .string("general.name", "Tiny")
            .u32("general.file_type", 15)
            .u64("llama.context_length", 4096)
            .u32("llama.embedding_length", 64)
            .f32("llama.rope.freq_base", 10000.0)
            .bool("tokenizer.ggml.add_bos_token", true)
            .string_array("tokenizer.ggml.tokens", &["<s>", "</s>", "hello"])
            .f32_array("tokenizer.ggml.scores", &[0.0, 1.0, 2.0])
            .string("tokenizer.chat_template", "{{ messages }}")
            .tensor("token_embd.weight", &[64, 3])
            .tensor("output_norm.weight", &[64])
            .build();
        let metadata = read(bytes).expect("valid GGUF");
        assert_eq!(metadata.version, 3);
        assert_eq!(metadata.architecture(), Some("llama"));
        assert_eq!(metadata.name(), Some("Tiny"));
        assert_eq!(metadata.quantization().as_deref(), Some("Q4_K_M"));
        assert_eq!(metadata.context_length(), Some(4096));
        assert_eq!(metadata.embedding_length(), Some(64));
        assert_eq!(metadata.chat_template(), Some("{{ messages }}"));
        assert_eq!(metadata.tensor_count, 2);
        assert_eq!(metadata.parameter_count, 64 * 3 + 64);
        assert_eq!(
            metadata.values["tokenizer.ggml.tokens"],
            GgufValue::Array {
                element_type: 8,
                length: 3
            }
        );
        assert_eq!(
            metadata.values["llama.rope.freq_base"],
            GgufValue::Float(10000.0)
        );
        assert_eq!(
            metadata.values["tokenizer.ggml.add_bos_token"],
            GgufValue::Bool(true)
        );
        assert!(!metadata.is_embedding_model());
    }

    #[test]
    fn quantization_names_follow_llama_cpp() {
        let cases = [
            (0, "F32"),
            (1, "F16"),
            (7, "Q8_0"),
            (15, "Q4_K_M"),
            (18, "Q6_K"),
            (32, "BF16"),
            (1024 + 15, "Q4_K_M"),
            (99, "unknown file type 99"),
        ];
        for (file_type, name) in cases {
            assert_eq!(quantization_name(file_type), name, "{file_type}");
        }
    }

    #[test]
    fn embedding_models_are_recognised() {
        let bert = GgufBuilder::new()
            .string("general.architecture", "bert")
            .build();
        assert!(read(bert).unwrap().is_embedding_model());
        let pooled = GgufBuilder::new()
            .string("general.architecture", "qwen3")
            .u32("qwen3.pooling_type", 1)
            .build();
        assert!(read(pooled).unwrap().is_embedding_model());
    }

    #[test]
    fn an_html_error_page_is_not_gguf() {
        let page = b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>".to_vec();
        match read(page) {
            Err(ReadError::NotGguf(reason)) => {
                assert!(reason.contains("<!DOCTYPE html> <html>"), "{reason}")
            }
            other => panic!("expected NotGguf, got {other:?}"),
        }
        match read(Vec::new()) {
            Err(ReadError::NotGguf(reason)) => assert_eq!(reason, "the file is empty"),
            other => panic!("expected NotGguf, got {other:?}"),
        }
        match read(vec![0, 1, 2, 3, 4, 5]) {
            Err(ReadError::NotGguf(reason)) => {
                assert!(reason.contains("bytes 00 01 02 03"), "{reason}")
            }
            other => panic!("expected NotGguf, got {other:?}"),
        }
    }

    #[test]
    fn damaged_files_are_errors_not_allocations() {
        let valid = GgufBuilder::new()
            .string("general.architecture", "llama")
            .build();
        // Truncated in the middle of the key/value section.
        let truncated = valid[..30].to_vec();
        assert!(matches!(read(truncated), Err(ReadError::Io(_))));

        // A string length of 2^62 bytes.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&3u32.to_le_bytes());
        huge.extend_from_slice(&0u64.to_le_bytes());
        huge.extend_from_slice(&1u64.to_le_bytes());
        huge.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(read(huge), Err(ReadError::Malformed(_))));

        let mut version_one = MAGIC.to_vec();
        version_one.extend_from_slice(&1u32.to_le_bytes());
        assert!(
            matches!(read(version_one), Err(ReadError::NotGguf(reason)) if reason.contains("version 1"))
        );
    }
}
