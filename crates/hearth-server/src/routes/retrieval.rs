//! Retrieval for generating endpoints: searching memory for the question, fitting what was
//! found into the model's context, and reading back which passages the answer cites. The
//! chat `memory` field and the Responses API's `file_search` share it.

use hearth_engine::Model;
use hearth_memory::retrieval::{Source, citations, fit_sources, quoted_sources};
use hearth_memory::{Filter, HybridWeights, SearchMode, SearchRequest};

use crate::error::ApiError;
use crate::gate::Meter;
use crate::state::AppState;
use crate::wire::openai::{CitationOut, MEMORY_TOP_K, MemoryIn, MemoryMode};

/// Output tokens a prompt leaves room for when the request sets no limit.
const ANSWER_RESERVE: usize = 512;

/// The longest excerpt of a passage a citation repeats.
const EXCERPT_CHARS: usize = 500;

/// The sources, best first, that fit `model`'s context beside the conversation (`texts`, the
/// messages' contents) and the answer (`max_output` tokens, or [`ANSWER_RESERVE`]).
pub(crate) fn fit_to_context<'a>(
    model: &Model,
    texts: impl Iterator<Item = &'a str>,
    max_output: Option<usize>,
    sources: Vec<Source>,
) -> Vec<Source> {
    let context = model.config().n_ctx_per_seq;
    let reserve = max_output.unwrap_or(ANSWER_RESERVE).min(context / 4);
    // A few tokens per message for the chat template's turn markers, and the sources'
    // heading and question lines.
    let conversation: usize = texts
        .map(|text| 8 + model.tokenize(text, false).len())
        .sum::<usize>()
        + model
            .tokenize(&hearth_memory::retrieval::with_sources("", &[]), false)
            .len();
    let budget = context.saturating_sub(conversation + reserve);
    fit_sources(sources, budget, |text| model.tokenize(text, false).len())
}

/// Which of the `placed` sources (0-based) an answer cites: its `[n]` markers, or, when it
/// has none, the sources it quotes.
pub(crate) fn cited(text: &str, placed: &[Source]) -> Vec<usize> {
    let marked: Vec<usize> = citations(text, placed.len())
        .iter()
        .map(|citation| citation.source)
        .collect();
    let mut cited = if marked.is_empty() {
        quoted_sources(text, placed)
    } else {
        marked
    };
    let mut seen = std::collections::HashSet::new();
    cited.retain(|index| seen.insert(*index));
    cited
}

/// A passage found in a collection.
#[derive(Debug, Clone)]
pub(crate) struct Passage {
    pub collection: String,
    pub document_id: String,
    pub chunk: usize,
}

/// What a chat's retrieval placed in its prompt.
pub(crate) struct Recalled {
    /// The last user turn with the sources before it.
    pub question: String,
    pub sources: Vec<Source>,
    /// Where each placed source came from (same order).
    pub passages: Vec<Passage>,
}

impl Recalled {
    /// The citations of an answer.
    pub fn citations(&self, text: &str) -> Vec<CitationOut> {
        cited(text, &self.sources)
            .into_iter()
            .map(|index| {
                let (source, passage) = (&self.sources[index], &self.passages[index]);
                CitationOut {
                    number: index + 1,
                    collection: passage.collection.clone(),
                    document_id: passage.document_id.clone(),
                    chunk: passage.chunk,
                    score: source.score,
                    text: source.text.chars().take(EXCERPT_CHARS).collect(),
                }
            })
            .collect()
    }
}

/// Searches the collections of the caller's tenant for `question` (the chat's last user
/// message; a chat without one is refused) and places the best passages that fit. Search
/// embedding tokens count as the request's prompt tokens.
pub(crate) async fn recall(
    state: &AppState,
    meter: &Meter,
    tenant: &str,
    memory: &MemoryIn,
    question: Option<&str>,
    (model, texts, max_output): (&Model, Vec<&str>, Option<usize>),
) -> Result<Recalled, ApiError> {
    let question = question.ok_or_else(|| {
        ApiError::bad_request("memory searches for the last user message, and there is none")
            .with_param("messages")
    })?;
    let service = state
        .memory
        .clone()
        .ok_or_else(|| ApiError::unavailable("memory is not configured on this server"))?;
    let filter = memory
        .filter
        .as_ref()
        .map(|value| {
            Filter::parse(value).map_err(|error| ApiError::from(error).with_param("memory.filter"))
        })
        .transpose()?;
    let top_k = memory.top_k.unwrap_or(MEMORY_TOP_K);
    let request = SearchRequest {
        text: Some(question.to_string()),
        vector: None,
        mode: match memory.mode.unwrap_or(MemoryMode::Hybrid) {
            MemoryMode::Hybrid => SearchMode::Hybrid(HybridWeights::default()),
            MemoryMode::Vector => SearchMode::Vector,
            MemoryMode::Keyword => SearchMode::Keyword,
        },
        top_k,
        filter,
        ef: None,
        include_embedding: false,
    };
    let searching = std::time::Instant::now();
    let mut found = Vec::new();
    for collection in &memory.collections {
        let results = service
            .search(tenant, collection, &request)
            .await
            .map_err(|error| ApiError::from(error).with_param("memory.collections"))?;
        super::memory::count_embedding(
            meter,
            results.embedding_model.as_deref(),
            results.embedding_tokens,
        );
        found.extend(
            results
                .hits
                .into_iter()
                .map(|hit| (collection.clone(), hit)),
        );
    }
    let searched_in = searching.elapsed();
    metrics::histogram!("hearth_memory_search_duration_seconds", "mode" => "chat")
        .record(searched_in.as_secs_f64());
    found.retain(|(_, hit)| memory.min_score.is_none_or(|min| hit.score >= min));
    found.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    found.truncate(top_k);
    let sources = found
        .iter()
        .map(|(collection, hit)| Source {
            id: hit.document.id.clone(),
            name: format!("{collection}/{}", hit.document.id),
            score: hit.score,
            text: hit.document.text.clone(),
        })
        .collect();
    let sources = fit_to_context(model, texts.into_iter(), max_output, sources);
    let passages: Vec<Passage> = found
        .into_iter()
        .take(sources.len())
        .map(|(collection, hit)| Passage {
            collection,
            document_id: hit.document.id,
            chunk: hit.chunk_index,
        })
        .collect();
    // Retrieval is observable: an event in the request's span (and so in its trace) with
    // what was searched, what was placed and how long the search took.
    let placed: Vec<String> = passages
        .iter()
        .map(|passage: &Passage| {
            format!(
                "{}/{}#{}",
                passage.collection, passage.document_id, passage.chunk
            )
        })
        .collect();
    tracing::info!(
        collections = ?memory.collections,
        placed = ?placed,
        search_ms = searched_in.as_secs_f64() * 1e3,
        "memory retrieved"
    );
    Ok(Recalled {
        question: hearth_memory::retrieval::with_sources(question, &sources),
        sources,
        passages,
    })
}
