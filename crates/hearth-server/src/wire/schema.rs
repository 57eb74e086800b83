//! OpenAPI schemas for the fields whose JSON shape the `ToSchema` derives cannot see: one value
//! or a list, seconds or a duration text, a value the handler checks by hand. The wire types
//! point at these with `#[schema(schema_with = ...)]`.
//!
//! Each schema says what parsing and validation accept, never more: a request built from the
//! document must not be refused with 400 (the OpenAPI test sends such requests and checks).
//! Where the code's rule cannot be said in a schema (a field that only matters beside another
//! one), the schema is the stricter side of it and the field's description says the rest.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder,
    Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// A request body type whose schema is the component of `$base` (its derived `ToSchema`) and
/// rules across its fields that the handler checks and the derive cannot say: each rule an
/// `anyOf` of which some branch must hold.
macro_rules! checked_body {
    ($(#[$doc:meta])* $name:ident = $base:ty, $rules:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::wire::schema::with_rules(&<$base as utoipa::ToSchema>::name(), $rules)
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                $crate::wire::schema::register::<$base>(schemas);
            }
        }
    };
}

pub(crate) use checked_body;

/// A type for one event of a `text/event-stream` answer whose `data` is the JSON of `$chunk`
/// (the last event's data is `[DONE]`). Tools that read the stream check each event against
/// it: `{"event": ..., "data": ...}`, the data still text.
macro_rules! stream_event {
    ($(#[$doc:meta])* $name:ident = $chunk:ty) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::wire::schema::event_of(&<$chunk as utoipa::ToSchema>::name())
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                $crate::wire::schema::register::<$chunk>(schemas);
            }
        }
    };
}

pub(crate) use stream_event;

/// Adds `T`'s component and the components it refers to, for a wrapper type whose schema
/// refers to `T`.
pub fn register<T: utoipa::ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// One server-sent event whose data is the JSON of the component `chunk`, named in
/// `x-data-schema` for readers and generators (JSON Schema cannot point into a string).
pub fn event_of(chunk: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property(
            "data",
            string().description(Some(format!(
                "A {chunk} as JSON; the last event's data is `[DONE]`, and a failure after the \
                 stream started is `{{\"error\": {{...}}}}`."
            ))),
        )
        .required("data")
        .property("event", string())
        .extensions(Some(
            utoipa::openapi::extensions::ExtensionsBuilder::new()
                .add(
                    "x-data-schema",
                    serde_json::json!({"$ref": format!("#/components/schemas/{chunk}")}),
                )
                .build(),
        ))
        .into()
}

/// The component `base`, and every rule.
pub fn with_rules(base: &str, rules: impl IntoIterator<Item = AnyOfBuilder>) -> RefOr<Schema> {
    rules
        .into_iter()
        .fold(
            AllOfBuilder::new().item(Ref::from_schema_name(base)),
            |all, rule| all.item(rule),
        )
        .into()
}

/// A rule: one of `branches` holds.
pub fn one_of_holds(branches: impl IntoIterator<Item = ObjectBuilder>) -> AnyOfBuilder {
    branches
        .into_iter()
        .fold(AnyOfBuilder::new(), |any, branch| any.item(branch))
}

/// A branch: `field`, where present, matches `schema`.
pub fn where_present(field: &str, schema: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    ObjectBuilder::new().property(field, schema)
}

/// A branch: `field` is there and matches `schema`.
pub fn present(field: &str, schema: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    where_present(field, schema).required(field)
}

/// A list of at least one item.
pub fn some_items() -> ArrayBuilder {
    ArrayBuilder::new().min_items(Some(1))
}

/// Absent (or null), or an empty list.
pub fn no_items() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(null())
        .item(ArrayBuilder::new().max_items(Some(0)))
}

pub fn true_value() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
}

/// Go-style durations as `keep_alive` takes them: seconds as text, or numbers with units.
const DURATION_PATTERN: &str = r"^-?([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// A model reference, `name[:tag]` with at most one `namespace/` (`hearth_models::ModelReference`).
const MODEL_REFERENCE_PATTERN: &str = concat!(
    r"^[a-z0-9][a-z0-9._-]{0,127}(/[a-z0-9][a-z0-9._-]{0,127})?",
    r"(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$"
);

/// One path segment of an `hf:` reference: not empty, not `.` or `..`, no white space.
/// (`\u0085` is white space to Rust's `char::is_whitespace`, which checks these, but not to
/// ECMAScript's `\s`.)
const HF_SEGMENT: &str = concat!(
    r"([^\s\u0085/@.][^\s\u0085/@]*",
    r"|\.[^\s\u0085/@.][^\s\u0085/@]*",
    r"|\.\.[^\s\u0085/@]+)"
);

pub fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

pub fn strings_of(values: &[&str]) -> ObjectBuilder {
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

/// `logit_bias`: token ids (as text) to a bias between -100 and 100. A token id past the
/// model's vocabulary is refused too, which only the model can tell.
pub fn logit_bias() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(string().pattern(Some(r"^[0-9]{1,9}$"))))
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

pub fn collection_type() -> RefOr<Schema> {
    strings_of(&["collection"]).into()
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
        .items(string().pattern(Some(r"^[^\s\u0085]+$")))
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
    let huggingface = format!(r"hf:{HF_SEGMENT}/{HF_SEGMENT}(/{HF_SEGMENT})+(@[^\s\u0085@]+)?");
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

fn text_parts() -> ArrayBuilder {
    ArrayBuilder::new().items(
        ObjectBuilder::new()
            .property("type", strings_of(&["input_text", "output_text", "text"]))
            .property("text", string())
            .required("type")
            .required("text"),
    )
}

/// The Responses API's `input`: a text, or a non-empty list of items (messages, function
/// calls and their outputs).
pub fn responses_input() -> RefOr<Schema> {
    let message = ObjectBuilder::new()
        .property("type", strings_of(&["message"]))
        .property(
            "role",
            strings_of(&["user", "assistant", "system", "developer"]),
        )
        .property(
            "content",
            OneOfBuilder::new().item(string()).item(text_parts()),
        )
        .required("role")
        .required("content");
    let call = ObjectBuilder::new()
        .property("type", strings_of(&["function_call"]))
        .property("call_id", string())
        .property("name", string())
        .property("arguments", string())
        .required("type")
        .required("call_id")
        .required("name")
        .required("arguments");
    let output = ObjectBuilder::new()
        .property("type", strings_of(&["function_call_output"]))
        .property("call_id", string())
        .property(
            "output",
            OneOfBuilder::new().item(string()).item(text_parts()),
        )
        .required("type")
        .required("call_id")
        .required("output");
    OneOfBuilder::new()
        .item(string())
        .item(
            ArrayBuilder::new()
                .items(OneOfBuilder::new().item(message).item(call).item(output))
                .min_items(Some(1)),
        )
        .description(Some(
            "A text (one user message), or a list of items: messages ({\"role\", \"content\"}), \
             function_call and function_call_output items.",
        ))
        .into()
}

/// The Responses API's function `tools` (flat: `name` beside `type`).
pub fn responses_tools() -> RefOr<Schema> {
    let function = ObjectBuilder::new()
        .property("type", strings_of(&["function"]))
        .property("name", string().pattern(Some("^[A-Za-z0-9_-]{1,64}$")))
        .property("description", nullable_string())
        .property(
            "parameters",
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::Null])),
        )
        .property("strict", ObjectBuilder::new().schema_type(Type::Boolean))
        .required("type")
        .required("name");
    let file_search = ObjectBuilder::new()
        .property("type", strings_of(&["file_search"]))
        .property(
            "vector_store_ids",
            ArrayBuilder::new()
                .items(string())
                .min_items(Some(1))
                .max_items(Some(10)),
        )
        .property(
            "max_num_results",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(50)),
        )
        .property(
            "filters",
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::Null])),
        )
        .property(
            "ranking_options",
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::Null])),
        )
        .required("type")
        .required("vector_store_ids");
    OneOfBuilder::new()
        .item(
            ArrayBuilder::new()
                .items(OneOfBuilder::new().item(function).item(file_search))
                .max_items(Some(128)),
        )
        .item(null())
        .description(Some(
            "Functions the model may call, and at most one file_search over vector stores \
             (run by Hearth before the model answers; its passages are cited).",
        ))
        .into()
}

/// The Responses API's `tool_choice`.
pub fn responses_tool_choice() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(strings_of(&["none", "auto", "required"]))
        .item(
            ObjectBuilder::new()
                .property("type", strings_of(&["function"]))
                .property("name", string())
                .required("type")
                .required("name"),
        )
        .item(null())
        .description(Some(
            "Whether and which tool the model calls: \"none\", \"auto\" (the default with \
             tools), \"required\", or {\"type\": \"function\", \"name\": ...}.",
        ))
        .into()
}

/// The Responses API's `text`: the output's format.
pub fn responses_text() -> RefOr<Schema> {
    let format = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .property("type", strings_of(&["text", "json_object"]))
                .required("type"),
        )
        .item(
            ObjectBuilder::new()
                .property("type", strings_of(&["json_schema"]))
                .property("name", string())
                .property("schema", ObjectBuilder::new().schema_type(Type::Object))
                .property("strict", ObjectBuilder::new().schema_type(Type::Boolean))
                .required("type")
                .required("schema"),
        );
    OneOfBuilder::new()
        .item(ObjectBuilder::new().property("format", format))
        .item(null())
        .description(Some(
            "{\"format\": {\"type\": \"text\" | \"json_object\" | \"json_schema\", \"schema\"}}: \
             JSON output is enforced while sampling.",
        ))
        .into()
}
