//! The JSON shapes of feature flags: a definition under `/v1/flags` (as the flags crate keeps
//! it, so what is read back is what was written), a flag as it stands, and the OpenFeature
//! Remote Evaluation Protocol's requests and answers under `/ofrep/v1`.

use hearth_flags::{FlagInfo, FlagSpec, Source};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// A flag's definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagIn {
    /// 1-128 letters, digits, `-`, `_`, `.`, `/`, `:`; on `PUT`, the path's key when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// boolean (default), string, number or object.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kill switch (default true): a disabled flag serves its default variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Variant name → value; a boolean flag without any has `on` (true) and `off` (false).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variants: Option<Map<String, Value>>,
    /// Served when no rule matches and there is no `split` (`off` for a plain boolean flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_variant: Option<String>,
    /// Tried in order, the first whose conditions all hold deciding:
    /// `{"when": [{"attribute", "op", "values"}], "variant" | "split"}`. Operators: in,
    /// not_in, contains, starts_with, ends_with, gt, gte, lt, lte, exists, not_exists.
    #[schema(value_type = Option<Vec<Object>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Value>>,
    /// A percentage rollout for contexts no rule matched: `[{"variant", "weight"}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<Value>>,
    /// What splits hash: `targetingKey` (default), `$user`, `$tenant`, or any attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Strings, numbers and booleans returned with every evaluation.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl FlagIn {
    /// The definition; a field the flags crate cannot read is a 400 naming it.
    pub fn into_spec(self) -> Result<FlagSpec, ApiError> {
        super::into_domain(
            &self,
            "key",
            &["type", "rules", "split", "variants", "metadata"],
            "the flag",
        )
    }
}

/// A flag as it stands: its definition with every default filled in.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagOut {
    /// `flag`.
    pub object: &'static str,
    pub key: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub definition: Map<String, Value>,
    /// `config` (change it in the configuration) or `api`.
    pub source: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

impl From<FlagInfo> for FlagOut {
    fn from(info: FlagInfo) -> FlagOut {
        let definition = match serde_json::to_value(&info.flag.spec) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        FlagOut {
            object: "flag",
            key: info.flag.key.clone(),
            definition,
            source: match info.source {
                Source::Config => "config",
                Source::Api => "api",
            },
            created_at: hearth_time::rfc3339_from_unix_millis(info.created_at_ms),
            updated_at: hearth_time::rfc3339_from_unix_millis(info.updated_at_ms),
        }
    }
}

/// The kill switch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagPatch {
    pub enabled: bool,
}

/// An evaluation request: the context (`targetingKey` and any attributes).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OfrepRequest {
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// One flag evaluated.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfrepSuccess {
    pub key: String,
    /// The variant's value: a boolean, string, number or JSON value, as the flag's type.
    pub value: Value,
    /// STATIC, TARGETING_MATCH, SPLIT, DEFAULT or DISABLED.
    pub reason: &'static str,
    pub variant: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// A flag that could not be evaluated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFailure {
    pub key: String,
    /// FLAG_NOT_FOUND, TARGETING_KEY_MISSING, INVALID_CONTEXT or PARSE_ERROR.
    pub error_code: &'static str,
    pub error_details: String,
}

/// One entry of a bulk answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OfrepResult {
    Success(OfrepSuccess),
    Failure(OfrepFailure),
}

/// Every flag of the caller's tenant, evaluated.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfrepBulk {
    pub flags: Vec<OfrepResult>,
}

/// A failure of the whole request (a body that is not JSON, a bad context).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkFailure {
    pub error_code: &'static str,
    pub error_details: String,
}
