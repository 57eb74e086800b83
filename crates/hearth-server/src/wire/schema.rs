//! OpenAPI schemas for the fields whose JSON shape the `ToSchema` derives cannot see: one value
//! or a list, seconds or a duration text, a value the handler checks by hand. The wire types
//! point at these with `#[schema(schema_with = ...)]`.
//!
//! Each schema says what parsing and validation accept, never more: a request built from the
//! document must not be refused with 400 (the OpenAPI test sends such requests and checks).
//! Where the code's rule cannot be said in a schema (a field that only matters beside another
//! one), the schema is the stricter side of it and the field's description says the rest.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

/// Go-style durations as `keep_alive` takes them: seconds as text, or numbers with units.
const DURATION_PATTERN: &str = r"^-?([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// A model reference, `name[:tag]` with at most one `namespace/` (`hearth_models::ModelReference`).
const MODEL_REFERENCE_PATTERN: &str = concat!(
    r"^[a-z0-9][a-z0-9._-]{0,127}(/[a-z0-9][a-z0-9._-]{0,127})?",
    r"(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$"
);

/// One path segment of an `hf:` reference: not empty, not `.` or `..`, no spaces.
const HF_SEGMENT: &str = r"([^\s/@.][^\s/@]*|\.[^\s/@.][^\s/@]*|\.\.[^\s/@]+)";

pub fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

fn strings_of(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}

fn nullable_string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

/// `item`, or a list of them (at most `max_items`).
pub fn one_or_many(item: ObjectBuilder, max_items: Option<usize>) -> OneOfBuilder {
    let item = item.build();
    OneOfBuilder::new()
        .item(item.clone())
        .item(ArrayBuilder::new().items(item).max_items(max_items))
}

/// `keep_alive`: how long the model stays loaded after the request.
pub fn keep_alive() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(string().pattern(Some(DURATION_PATTERN)))
        .item(null())
        .description(Some(
            "How long the model stays loaded after this request: seconds (300), or a duration \
             such as \"5m\" or \"1h30m\"; 0 unloads it when the request ends, a negative value \
             keeps it loaded.",
        ))
        .examples(["5m".into(), serde_json::json!(300), serde_json::json!(-1)])
        .into()
}

/// OpenAI's `stop`: one sequence or up to 16.
pub fn openai_stop() -> RefOr<Schema> {
    one_or_many(string(), Some(16))
        .item(null())
        .description(Some(
            "Text at which generation stops (not included in the output): one string or up to 16.",
        ))
        .into()
}

/// The legacy completions' `prompt`: one non-empty text, alone or as a one-element list.
pub fn completion_prompt() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(string().min_length(Some(1)))
        .item(
            ArrayBuilder::new()
                .items(string().min_length(Some(1)))
                .min_items(Some(1))
                .max_items(Some(1)),
        )
        .description(Some(
            "The text to continue. Hearth takes one prompt per request; a list must hold exactly \
             one.",
        ))
        .into()
}

/// OpenAI's embeddings `input`: texts (token arrays are refused).
pub fn embedding_input() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(string())
        .item(
            ArrayBuilder::new()
                .items(string())
                .min_items(Some(1))
                .max_items(Some(2048)),
        )
        .description(Some(
            "The text to embed, or up to 2048 texts. Token arrays are not accepted: the embedding \
             model has its own tokenizer.",
        ))
        .into()
}

/// Ollama's embed `input`: one text or a non-empty list.
pub fn ollama_embed_input() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(string())
        .item(ArrayBuilder::new().items(string()).min_items(Some(1)))
        .description(Some("The text to embed, or a list of texts."))
        .into()
}

/// `logit_bias`: token ids (as text) to a bias between -100 and 100.
pub fn logit_bias() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(string().pattern(Some(r"^-?[0-9]{1,9}$"))))
        .additional_properties(Some(AdditionalProperties::from(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(-100.0))
                .maximum(Some(100.0)),
        )))
        .description(Some(
            "Biases added to tokens' logits, keyed by token id written as a string.",
        ))
        .into()
}

/// OpenAI's `tool_choice`.
pub fn tool_choice() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(strings_of(&["none", "auto", "required"]))
        .item(
            ObjectBuilder::new()
                .property("type", strings_of(&["function"]))
                .property(
                    "function",
                    ObjectBuilder::new()
                        .property("name", string())
                        .required("name"),
                )
                .required("function"),
        )
        .item(null())
        .description(Some(
            "Whether and which tool the model calls: \"none\", \"auto\" (the default with \
             tools), \"required\", or {\"type\": \"function\", \"function\": {\"name\": ...}} \
             naming one of `tools`. Cannot be combined with `response_format` yet.",
        ))
        .into()
}

/// Ollama's `format`: `"json"`, a JSON schema, or nothing.
pub fn ollama_format() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(strings_of(&["", "json"]))
        .item(ObjectBuilder::new().schema_type(Type::Object))
        .item(null())
        .description(Some(
            "\"json\" for any JSON object, or a JSON schema the output must follow. On \
             /api/chat it cannot be combined with `tools` yet.",
        ))
        .into()
}

/// Ollama's `num_predict`: a positive limit, or a negative number for none; never 0.
pub fn num_predict() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .minimum(Some(1)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .maximum(Some(-1)),
        )
        .item(null())
        .description(Some(
            "Most tokens to generate; -1 (or any negative number) for no limit.",
        ))
        .into()
}

pub fn openai_role() -> RefOr<Schema> {
    strings_of(&[
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "function",
    ])
    .into()
}

pub fn ollama_role() -> RefOr<Schema> {
    strings_of(&["system", "user", "assistant", "tool"]).into()
}

pub fn function_type() -> RefOr<Schema> {
    strings_of(&["function"]).into()
}

pub fn text_part_type() -> RefOr<Schema> {
    strings_of(&["text"])
        .description(Some("Only text parts are supported."))
        .into()
}

/// Why an Ollama generation ended, or what a request without input did.
pub fn done_reason() -> RefOr<Schema> {
    strings_of(&["stop", "length", "load", "unload"]).into()
}

pub fn encoding_format() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(strings_of(&["float", "base64"]))
        .item(null())
        .description(Some(
            "\"float\" (the default): arrays of numbers; \"base64\": little-endian f32 bytes.",
        ))
        .into()
}

pub fn key_role() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(strings_of(&["admin", "member", "reader"]))
        .item(null())
        .description(Some("`admin`, `member` (the default) or `reader`."))
        .into()
}

pub fn scopes() -> RefOr<Schema> {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(string().pattern(Some(r"^\S+$")))
        .description(Some("Scopes, each one word."))
        .into()
}

/// A model name an endpoint parses as a registry reference.
pub fn model_reference() -> RefOr<Schema> {
    string()
        .pattern(Some(MODEL_REFERENCE_PATTERN))
        .description(Some(
            "A model name, `name[:tag]` (the tag defaults to `latest`).",
        ))
        .examples(["gemma3:270m"])
        .into()
}

/// `/api/pull`'s `name`: a model name, or empty (or absent) to derive one from the file.
pub fn optional_model_reference() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(string().pattern(Some(MODEL_REFERENCE_PATTERN)))
        .item(string().max_length(Some(0)))
        .item(null())
        .description(Some(
            "`NAME:TAG` to register the model under; derived from the file name when absent.",
        ))
        .into()
}

/// `/api/pull`'s `model`: what to pull.
pub fn pull_source() -> RefOr<Schema> {
    let url = r"https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,4})?(/\S*)?";
    let huggingface = format!(r"hf:{HF_SEGMENT}/{HF_SEGMENT}(/{HF_SEGMENT})+(@[^\s@]+)?");
    string()
        .pattern(Some(format!("^({url}|{huggingface})$")))
        .description(Some(
            "An https:// URL, or hf:owner/repo/path/to/file.gguf[@revision]. Hearth has no model \
             hub to look names up in, and does not read paths on the server over HTTP.",
        ))
        .examples(["hf:ggml-org/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf"])
        .into()
}

/// `/api/pull`'s `sha256`: 64 hex digits, optionally `sha256:`-prefixed, or empty.
pub fn sha256() -> RefOr<Schema> {
    nullable_string()
        .pattern(Some(r"^((sha256:)?[0-9A-Fa-f]{64})?$"))
        .description(Some(
            "The file's expected SHA-256 (hex, optionally `sha256:`-prefixed); a file that does \
             not match is refused.",
        ))
        .into()
}
