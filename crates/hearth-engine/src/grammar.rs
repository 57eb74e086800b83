//! Grammar-constrained output: a request may require its output to be JSON, JSON valid against
//! a schema, or text of a Lark grammar. The constraint becomes an llguidance matcher at the head
//! of the sequence's sampler chain, so every token it cannot continue with is masked out before
//! sampling; the output parses by construction, not by luck or retries.
//!
//! llguidance needs the model's vocabulary as a token trie. Building it walks every token (262k
//! for Gemma), so it is built once per model, on the first constrained request, and shared.

use std::sync::{Arc, OnceLock};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::TokEnv;
use llguidance::{Matcher, ParserFactory};

use crate::EngineError;
use crate::json_numbers::NumberBound;

/// What the output must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Any JSON object.
    JsonObject,
    /// A JSON value valid against this JSON Schema.
    JsonSchema(serde_json::Value),
    /// Text of this grammar, in llguidance's Lark dialect.
    Lark(String),
}

/// JSON is generated compactly, with one space after `,` and `:`. Free whitespace between tokens
/// would let a small model fill its whole budget with newlines inside an unfinished object.
const JSON_LAYOUT: &str =
    r#"{"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}"#;

impl Constraint {
    fn grammar(&self) -> Result<TopLevelGrammar, EngineError> {
        let layout: serde_json::Value =
            serde_json::from_str(JSON_LAYOUT).map_err(|error| EngineError::InvalidGrammar {
                reason: format!("internal JSON layout: {error}"),
            })?;
        let with_layout = |schema: serde_json::Value| match schema {
            serde_json::Value::Object(mut object) => {
                object.insert("x-guidance".to_owned(), layout.clone());
                Ok(serde_json::Value::Object(object))
            }
            // `true` (anything goes) is a valid schema, but not one we can attach options to.
            serde_json::Value::Bool(true) => Ok(serde_json::json!({"x-guidance": layout.clone()})),
            _ => Err(EngineError::InvalidGrammar {
                reason: "a JSON schema must be an object".to_owned(),
            }),
        };
        Ok(match self {
            Constraint::JsonObject => TopLevelGrammar::from_json_schema(with_layout(
                serde_json::json!({"type": "object"}),
            )?),
            Constraint::JsonSchema(schema) => {
                TopLevelGrammar::from_json_schema(with_layout(schema.clone())?)
            }
            Constraint::Lark(grammar) => TopLevelGrammar::from_lark(grammar.clone()),
        })
    }
}

/// Compiles constraints for one model. Cheap until first used.
#[derive(Default)]
pub(crate) struct GrammarCompiler {
    factory: OnceLock<Result<Arc<ParserFactory>, String>>,
}

impl GrammarCompiler {
    fn factory(&self, model: &LlamaModel) -> Result<&Arc<ParserFactory>, EngineError> {
        self.factory
            .get_or_init(|| {
                let started = std::time::Instant::now();
                let tok_env = LlamaSampler::llguidance_tok_env(model);
                let mut factory = ParserFactory::new(
                    &tok_env,
                    llguidance::toktrie::InferenceCapabilities::default(),
                    // No slices (token subsets precomputed per regex): llguidance's default
                    // four cost ~120 MiB on a 262k-token vocabulary and even the one for
                    // string contents ~11 MiB, while masks computed on the whole trie keep
                    // constrained decoding at full speed for a model this size.
                    &[],
                )
                .map_err(|error| error.to_string())?;
                // llguidance would otherwise print grammar warnings to stderr.
                factory.quiet();
                tracing::debug!(
                    build_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "grammar tokenizer built"
                );
                Ok(Arc::new(factory))
            })
            .as_ref()
            .map_err(|reason| EngineError::InvalidGrammar {
                reason: format!("the model's vocabulary cannot be used for grammars: {reason}"),
            })
    }

    /// A fresh grammar for one sequence, or the reason the constraint cannot be used. JSON
    /// numbers are held to `json_number_max_digits` digits per part (0: unbounded).
    pub(crate) fn sequence_grammar(
        &self,
        model: &LlamaModel,
        constraint: &Constraint,
        json_number_max_digits: usize,
    ) -> Result<SequenceGrammar, EngineError> {
        let factory = self.factory(model)?;
        let parser = factory
            .create_parser(constraint.grammar()?)
            .map_err(|error| EngineError::InvalidGrammar {
                reason: error.to_string(),
            })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(reason) = matcher.get_error() {
            return Err(EngineError::InvalidGrammar { reason });
        }
        let is_json = matches!(
            constraint,
            Constraint::JsonObject | Constraint::JsonSchema(_)
        );
        Ok(SequenceGrammar {
            matcher,
            numbers: (is_json && json_number_max_digits > 0)
                .then(|| NumberBound::new(json_number_max_digits)),
            tokens: factory.tok_env().clone(),
        })
    }
}

/// The grammar of one running sequence: llguidance's matcher, plus the bound on JSON numbers
/// for JSON constraints (`json_numbers.rs`).
pub(crate) struct SequenceGrammar {
    matcher: Matcher,
    numbers: Option<NumberBound>,
    /// The vocabulary's token bytes, for the number bound.
    tokens: TokEnv,
}

impl SequenceGrammar {
    /// Masks (sets to -inf) every candidate the grammar cannot continue with. `candidates` holds
    /// the whole vocabulary in token order.
    pub(crate) fn apply(&mut self, candidates: &mut [LlamaTokenData]) {
        // As llama.cpp's llguidance sampler does: a matcher in error masks nothing, and one
        // that has finished allows only the end of generation.
        let Ok(mut mask) = self.matcher.compute_mask_or_eos() else {
            return;
        };
        if let Some(numbers) = &self.numbers
            && numbers.may_refuse()
        {
            let trie = self.tokens.tok_trie();
            let refused: Vec<u32> = mask
                .iter()
                .filter(|&token| !numbers.allows(trie.token(token)))
                .collect();
            // All refused means the grammar itself wants a longer number: it wins.
            if !refused.is_empty() && refused.len() < mask.num_set() {
                for token in refused {
                    mask.disallow_token(token);
                }
            }
        }
        for candidate in candidates.iter_mut() {
            let allowed = u32::try_from(candidate.id().0).is_ok_and(|token| mask.is_allowed(token));
            if !allowed {
                candidate.set_logit(f32::NEG_INFINITY);
            }
        }
    }

    /// Advances the grammar past the chosen token.
    pub(crate) fn accept(&mut self, token: u32) {
        // Consuming into a stopped matcher would poison it (llama.cpp's sampler skips it too).
        if !self.matcher.is_stopped() {
            let _ = self.matcher.consume_token(token);
        }
        if let Some(numbers) = &mut self.numbers {
            numbers.accept(self.tokens.tok_trie().token(token));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_that_is_not_an_object_is_refused() {
        let error = Constraint::JsonSchema(serde_json::json!([1, 2]))
            .grammar()
            .expect_err("an array is not a schema");
        assert!(matches!(error, EngineError::InvalidGrammar { .. }));
    }

    #[test]
    fn the_compact_layout_is_attached_to_every_json_schema() {
        for constraint in [
            Constraint::JsonObject,
            Constraint::JsonSchema(serde_json::json!({"type": "string"})),
            Constraint::JsonSchema(serde_json::json!(true)),
        ] {
            let grammar = constraint.grammar().expect("valid");
            let schema = grammar.grammars[0]
                .json_schema
                .as_ref()
                .expect("a JSON schema grammar");
            assert_eq!(schema["x-guidance"]["whitespace_flexible"], false);
        }
    }
}
