//! Checks on what callers send, each error naming the field (`documents[3].embedding`), and
//! the conversions between stored rows and domain values.

use serde_json::{Map, Value};

use crate::{MemoryError, Metric};

/// Longest collection name, in bytes.
const MAX_NAME_BYTES: usize = 128;
/// Longest document id, in bytes.
const MAX_DOCUMENT_ID_BYTES: usize = 256;

/// A collection name: 1 to 128 ASCII letters, digits, `_`, `-` or `.`, starting with a letter
/// or digit, so it is safe in a URL path.
pub(crate) fn collection_name(field: &str, name: &str) -> Result<(), MemoryError> {
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric());
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.len() > MAX_NAME_BYTES || !valid_start || !valid_chars {
        return Err(MemoryError::invalid(
            field,
            "a name is 1 to 128 ASCII letters, digits, `_`, `-` or `.`, starting with a letter \
             or digit",
        ));
    }
    Ok(())
}

/// A document id: 1 to 256 bytes without control characters.
pub(crate) fn document_id(field: &str, id: &str) -> Result<(), MemoryError> {
    if id.is_empty() || id.len() > MAX_DOCUMENT_ID_BYTES || id.chars().any(char::is_control) {
        return Err(MemoryError::invalid(
            field,
            "a document id is 1 to 256 bytes without control characters",
        ));
    }
    Ok(())
}

/// Metadata must be a JSON object.
pub(crate) fn metadata(field: &str, value: Value) -> Result<Map<String, Value>, MemoryError> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(MemoryError::invalid(
            field,
            format!("metadata must be a JSON object, not {}", json_type(&other)),
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An embedding: the collection's dimensions, finite values, and for cosine not all zero.
pub(crate) fn embedding(
    field: &str,
    vector: &[f32],
    dimensions: usize,
    metric: Metric,
) -> Result<(), MemoryError> {
    if vector.len() != dimensions {
        return Err(MemoryError::invalid(
            field,
            format!(
                "has {} dimensions, the collection has {dimensions}",
                vector.len()
            ),
        ));
    }
    if let Some(index) = vector.iter().position(|value| !value.is_finite()) {
        return Err(MemoryError::invalid(
            field,
            format!("value {index} is not a finite number"),
        ));
    }
    if metric == Metric::Cosine && vector.iter().all(|value| *value == 0.0) {
        return Err(MemoryError::invalid(
            field,
            "an all-zero vector has no direction for cosine similarity",
        ));
    }
    Ok(())
}

/// A number within `range`, inclusive.
pub(crate) fn within(
    field: &str,
    value: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), MemoryError> {
    if !range.contains(&value) {
        return Err(MemoryError::invalid(
            field,
            format!(
                "must be between {} and {}, not {value}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(())
}

/// An embedding as stored: little-endian f32 values.
pub(crate) fn encode_embedding(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// Reads a stored embedding back, appending it to `out`.
pub(crate) fn decode_embedding_into(
    bytes: &[u8],
    dimensions: usize,
    out: &mut Vec<f32>,
) -> Result<(), MemoryError> {
    if bytes.len() != dimensions * 4 {
        return Err(MemoryError::StoredData(format!(
            "an embedding of {} bytes in a collection of {dimensions} dimensions",
            bytes.len()
        )));
    }
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|word| f32::from_le_bytes([word[0], word[1], word[2], word[3]])),
    );
    Ok(())
}

/// Reads stored metadata back.
pub(crate) fn stored_metadata(text: &str) -> Result<Map<String, Value>, MemoryError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(MemoryError::StoredData(
            "metadata that is not an object".to_string(),
        )),
        Err(error) => Err(MemoryError::StoredData(format!("metadata: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_embeddings_are_checked_with_their_field() {
        assert!(collection_name("name", "docs-2024.v1_a").is_ok());
        let long = "x".repeat(129);
        for bad in ["", "-lead", "has space", "ü", long.as_str()] {
            let error = collection_name("name", bad).unwrap_err();
            assert!(error.to_string().contains("`name`"), "{error}");
        }
        assert!(document_id("id", "a/b c").is_ok());
        assert!(document_id("id", "").is_err() && document_id("id", "a\nb").is_err());

        let field = "documents[3].embedding";
        assert!(embedding(field, &[0.5, 1.0], 2, Metric::Cosine).is_ok());
        for (vector, metric) in [
            (vec![1.0], Metric::L2),
            (vec![1.0, f32::NAN], Metric::L2),
            (vec![f32::INFINITY, 1.0], Metric::Dot),
            (vec![0.0, 0.0], Metric::Cosine),
        ] {
            let error = embedding(field, &vector, 2, metric).unwrap_err();
            assert!(error.to_string().contains(field), "{error}");
        }
        assert!(embedding(field, &[0.0, 0.0], 2, Metric::L2).is_ok());
    }

    #[test]
    fn embeddings_round_trip_through_their_stored_bytes() {
        let vector = [1.5f32, -0.25, 3.0e-7];
        let mut back = Vec::new();
        decode_embedding_into(&encode_embedding(&vector), 3, &mut back).unwrap();
        assert_eq!(back, vector);
        assert!(decode_embedding_into(&[0; 8], 3, &mut back).is_err());
    }
}
