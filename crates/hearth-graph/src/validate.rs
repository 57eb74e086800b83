//! Checks on what a request asks of a graph, each naming the field at fault.

use std::ops::RangeInclusive;

use hearth_memory::MemoryError;
use serde_json::{Map, Value};

use crate::{Follow, MAX_BATCH, invalid};

const MAX_NAME_BYTES: usize = 128;
const MAX_ID_BYTES: usize = 256;
const MAX_TYPE_BYTES: usize = 64;
const MAX_TITLE_BYTES: usize = 1024;
const MAX_PROPERTIES_BYTES: usize = 64 * 1024;
const MAX_FOLLOWED_TYPES: usize = 32;

pub(crate) fn within(
    field: &str,
    value: usize,
    range: RangeInclusive<usize>,
) -> Result<(), MemoryError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "must be from {} to {}, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// A graph name: as a collection's, 1 to 128 ASCII letters, digits, `_`, `-` or `.`.
pub(crate) fn name(field: &str, name: &str) -> Result<(), MemoryError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            "a name is 1 to 128 ASCII letters, digits, `_`, `-` or `.`, starting with a letter \
             or digit",
        ))
    }
}

/// A node or relation id: 1 to 256 bytes without control characters.
pub(crate) fn id(field: &str, id: &str) -> Result<(), MemoryError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "an id is 1 to 256 bytes without control characters",
        ));
    }
    Ok(())
}

/// A node or relation type: 1 to 64 ASCII letters, digits, `_`, `-`, `.` or `:`.
pub(crate) fn kind(field: &str, kind: &str) -> Result<(), MemoryError> {
    let valid = !kind.is_empty()
        && kind.len() <= MAX_TYPE_BYTES
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            "a type is 1 to 64 ASCII letters, digits, `_`, `-`, `.` or `:`",
        ))
    }
}

pub(crate) fn title(field: &str, title: &str) -> Result<(), MemoryError> {
    if title.len() > MAX_TITLE_BYTES || title.chars().any(char::is_control) {
        return Err(invalid(field, "a title is at most 1024 bytes on one line"));
    }
    Ok(())
}

/// Properties: a JSON object (null: empty) of at most 64 KiB; a node's cannot have `type`,
/// which filters read as the node's own type.
pub(crate) fn properties(
    field: &str,
    value: Value,
    of_node: bool,
) -> Result<Map<String, Value>, MemoryError> {
    let map = match value {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(invalid(field, "must be a JSON object")),
    };
    if of_node && map.contains_key("type") {
        return Err(invalid(
            format!("{field}.type"),
            "`type` is the node's own field (filters read it); name the property otherwise",
        ));
    }
    let bytes = serde_json::to_string(&map)
        .map(|text| text.len())
        .unwrap_or(0);
    if bytes > MAX_PROPERTIES_BYTES {
        return Err(MemoryError::TooLarge {
            field: field.to_string(),
            reason: format!("{bytes} bytes of JSON; at most {MAX_PROPERTIES_BYTES}"),
        });
    }
    Ok(map)
}

pub(crate) fn batch(field: &str, count: usize) -> Result<(), MemoryError> {
    if count == 0 {
        return Err(invalid(field, "must not be empty"));
    }
    if count > MAX_BATCH {
        return Err(MemoryError::TooLarge {
            field: field.to_string(),
            reason: format!("{count} items; at most {MAX_BATCH} per request"),
        });
    }
    Ok(())
}

pub(crate) fn follow(follow: &Follow) -> Result<(), MemoryError> {
    if let Some(types) = &follow.types {
        if types.is_empty() || types.len() > MAX_FOLLOWED_TYPES {
            return Err(invalid(
                "types",
                format!("1 to {MAX_FOLLOWED_TYPES} relation types, or none for all"),
            ));
        }
        for (index, kind_name) in types.iter().enumerate() {
            kind(&format!("types[{index}]"), kind_name)?;
        }
    }
    Ok(())
}
