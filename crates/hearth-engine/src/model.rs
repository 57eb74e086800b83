//! A loaded GGUF model: its weights (shared, read-only), what its metadata says about it, and
//! the tokenizer. Running it is the scheduler's job (`crate::scheduler`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::chat::{ChatFormatter, ChatMessage, ChatTemplate};
use crate::grammar::{Constraint, GrammarCompiler, SequenceGrammar};
use crate::spm::SpmTokenizer;
use crate::{EngineConfig, EngineError, TokenId};

/// What the GGUF file says about a model, for listings and `/api/show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    /// `general.architecture`, e.g. `gemma3`; also used as the model family.
    pub architecture: String,
    /// The quantization of the weights, e.g. `Q4_K_M`, from `general.file_type`.
    pub quantization: String,
    /// The context length the model was trained with.
    pub context_length_trained: usize,
    /// Tokens a sliding-window attention layer looks back over (`{arch}.attention.sliding_window`),
    /// for models that have such layers (Gemma 2 and 3, ...).
    pub sliding_window: Option<usize>,
    pub parameter_count: u64,
    /// Bytes of all tensors (what the weights occupy in memory).
    pub tensor_bytes: u64,
    /// Bytes of the file on disk.
    pub file_bytes: u64,
    pub vocabulary_size: usize,
    pub embedding_length: usize,
    pub layer_count: usize,
    /// The raw `tokenizer.chat_template` of the file, if present.
    pub gguf_chat_template: Option<String>,
    /// The template in effect for chat requests (the file's own, or a built-in one).
    pub chat_template: ChatTemplate,
}

/// A model loaded into memory. Cheap to clone; the weights are freed when the last clone and the
/// last scheduler using them are gone.
#[derive(Clone)]
pub struct Model {
    pub(crate) inner: Arc<ModelInner>,
}

pub(crate) struct ModelInner {
    pub(crate) llama: LlamaModel,
    pub(crate) info: ModelInfo,
    pub(crate) config: EngineConfig,
    formatter: ChatFormatter,
    grammar: GrammarCompiler,
    /// The faster path to llama.cpp's own tokens, for models where it was checked to agree.
    pub(crate) spm: Option<SpmTokenizer>,
    /// Every end-of-generation token of the vocabulary, banned for `ignore_eos` requests; found
    /// on the first such request (a scan of the whole vocabulary, kept off model loading).
    end_of_generation_tokens: OnceLock<Vec<TokenId>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Model")
            .field("info", &self.inner.info)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Model {
    /// Loads the GGUF file at `path` (memory-mapped) and reads its metadata. The configuration
    /// is validated here and kept for the scheduler that later runs the model.
    pub fn load(path: impl AsRef<Path>, config: &EngineConfig) -> Result<Model, EngineError> {
        let path = path.as_ref();
        config.validate()?;
        let file_metadata =
            std::fs::metadata(path).map_err(|error| EngineError::ModelNotFound {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })?;
        if !file_metadata.is_file() {
            return Err(EngineError::ModelNotFound {
                path: path.to_path_buf(),
                reason: "not a regular file".to_owned(),
            });
        }
        let backend = crate::backend::backend()?;
        let params = LlamaModelParams::default();
        let llama = LlamaModel::load_from_file(backend, path, &params).map_err(|error| {
            EngineError::ModelLoad {
                path: path.to_path_buf(),
                reason: error.to_string(),
            }
        })?;

        let meta = |key: &str| {
            llama
                .meta_val_str(key)
                .ok()
                .filter(|value| !value.is_empty())
        };
        let architecture = meta("general.architecture").unwrap_or_else(|| "unknown".to_owned());
        let quantization = meta("general.file_type")
            .and_then(|value| value.parse::<u32>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |file_type| hearth_models::gguf::quantization_name(u64::from(file_type)),
            );
        let formatter = ChatFormatter::for_model(&llama, &architecture);
        let info = ModelInfo {
            path: path.to_path_buf(),
            name: meta("general.name"),
            quantization,
            context_length_trained: llama.n_ctx_train() as usize,
            sliding_window: meta(&format!("{architecture}.attention.sliding_window"))
                .and_then(|value| value.parse::<usize>().ok())
                .filter(|&window| window > 0),
            parameter_count: llama.n_params(),
            tensor_bytes: llama.size(),
            file_bytes: file_metadata.len(),
            vocabulary_size: usize::try_from(llama.n_vocab()).unwrap_or(0),
            embedding_length: usize::try_from(llama.n_embd()).unwrap_or(0),
            layer_count: llama.n_layer() as usize,
            gguf_chat_template: llama
                .chat_template(None)
                .ok()
                .and_then(|template| template.to_string().ok()),
            chat_template: formatter.template().clone(),
            architecture,
        };
        tracing::info!(
            path = %path.display(),
            architecture = %info.architecture,
            quantization = %info.quantization,
            parameters = info.parameter_count,
            chat_template = %info.chat_template.name,
            "model loaded"
        );
        let spm = checked_spm_tokenizer(&llama);
        Ok(Model {
            inner: Arc::new(ModelInner {
                llama,
                info,
                config: config.clone(),
                formatter,
                grammar: GrammarCompiler::default(),
                spm,
                end_of_generation_tokens: OnceLock::new(),
            }),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Turns text into token ids. `add_special` adds the model's BOS token where it expects one;
    /// control-token text such as `<start_of_turn>` is parsed into its token.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<TokenId> {
        if let Some(tokens) = self
            .inner
            .spm
            .as_ref()
            .and_then(|spm| spm.tokenize(text, add_special))
        {
            return tokens;
        }
        llama_tokenize(&self.inner.llama, text, add_special)
    }

    /// Turns token ids back into text; control tokens are left out.
    pub fn detokenize(&self, tokens: &[TokenId]) -> Result<String, EngineError> {
        self.validate_tokens(tokens)?;
        let tokens: Vec<LlamaToken> = tokens.iter().copied().map(LlamaToken).collect();
        let bytes = self.inner.llama.vocab().detokenize(&tokens, false, false);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Formats a conversation with the model's chat template, ending with the assistant's turn
    /// opened for generation.
    pub fn format_chat(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        self.inner.formatter.format(&self.inner.llama, messages)
    }

    /// A grammar enforcing `constraint` on one sequence's output. The first call per model
    /// builds the vocabulary trie (a few hundred milliseconds); later ones only compile the
    /// grammar.
    pub(crate) fn sequence_grammar(
        &self,
        constraint: &Constraint,
    ) -> Result<SequenceGrammar, EngineError> {
        self.inner.grammar.sequence_grammar(
            &self.inner.llama,
            constraint,
            self.config().json_number_max_digits,
        )
    }

    /// Every token that ends a generation (end of turn, EOS, ...).
    pub(crate) fn end_of_generation_tokens(&self) -> &[TokenId] {
        self.inner.end_of_generation_tokens.get_or_init(|| {
            let llama = &self.inner.llama;
            (0..llama.n_vocab())
                .filter(|&token| llama.vocab().is_eog(LlamaToken(token)))
                .collect()
        })
    }

    /// Whether generating this token ends the turn (EOS, `<end_of_turn>` and the like).
    pub fn is_end_of_generation(&self, token: TokenId) -> bool {
        self.validate_tokens(&[token]).is_ok() && self.inner.llama.vocab().is_eog(LlamaToken(token))
    }

    /// Rejects ids outside the vocabulary: llama.cpp indexes arrays with them unchecked.
    pub(crate) fn validate_tokens(&self, tokens: &[TokenId]) -> Result<(), EngineError> {
        let vocabulary_size = self.inner.info.vocabulary_size;
        match tokens
            .iter()
            .find(|&&token| token < 0 || token as usize >= vocabulary_size)
        {
            Some(token) => Err(EngineError::InvalidRequest(format!(
                "token id {token} is outside the vocabulary (0..{vocabulary_size})"
            ))),
            None => Ok(()),
        }
    }
}

/// `text`'s tokens as llama.cpp itself gives them.
pub(crate) fn llama_tokenize(llama: &LlamaModel, text: &str, add_special: bool) -> Vec<TokenId> {
    llama
        .vocab()
        .tokenize(text.as_bytes(), add_special, true)
        .into_iter()
        .map(|token| token.0)
        .collect()
}

/// Texts on which the faster tokenizer must agree with llama.cpp before it is used: spaces in
/// every position, special tokens real and fake, whitespace runs, characters outside the
/// vocabulary, and a chat turn.
const TOKENIZER_CHECKS: &[&str] = &[
    "",
    "Hello",
    " Hello",
    "Hello  world ",
    "   three leading spaces",
    "a\nb\n\n\nc\t\td",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text after a literal bos",
    "x <unused5> y <notatoken> <0x41> [multimodal]",
    "<h1>Title</h1><p>para</p>",
    "日本語のテキストと中文",
    "emoji 🦀🔥 and ünïcödé",
    "fn main() { println!(\"{}\", 1 + 2); } // 100% $3.50",
    "\u{0}\u{1f}\u{7f} control characters",
];

/// The faster tokenizer for `llama`, if it agrees with llama.cpp on every check text; which
/// `add_space_prefix` llama.cpp uses for this model is found the same way.
fn checked_spm_tokenizer(llama: &LlamaModel) -> Option<SpmTokenizer> {
    let expected: Vec<[Vec<TokenId>; 2]> = TOKENIZER_CHECKS
        .iter()
        .map(|text| [false, true].map(|add_special| llama_tokenize(llama, text, add_special)))
        .collect();
    let mut tokenizer = SpmTokenizer::new(llama);
    let agreed = tokenizer.as_mut().is_some_and(|tokenizer| {
        [false, true].into_iter().any(|add_space_prefix| {
            tokenizer.add_space_prefix = add_space_prefix;
            TOKENIZER_CHECKS
                .iter()
                .zip(&expected)
                .all(|(text, expected)| {
                    [false, true].into_iter().all(|add_special| {
                        tokenizer.tokenize(text, add_special).as_ref()
                            == Some(&expected[usize::from(add_special)])
                    })
                })
        })
    });
    let tokenizer = tokenizer.filter(|_| agreed);
    if tokenizer.is_none() {
        tracing::debug!(
            "the model's tokenizer has no faster path; llama.cpp tokenizes its prompts"
        );
    }
    tokenizer
}
