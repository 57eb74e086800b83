//! Retrieval for generating endpoints: searching memory for the question, fitting what was
//! found into the model's context, and reading back which passages the answer cites. The
//! chat `memory` field and the Responses API's `file_search` share it.

use hearth_engine::Model;
use hearth_memory::retrieval::{Source, citations, fit_sources, quoted_sources};
use hearth_memory::{Filter, HybridWeights, SearchMode, SearchRequest};

use crate::error::ApiError;
use crate::gate::{CallerUser, Meter};
use crate::state::AppState;
use crate::wire::openai::{
    CitationOut, MEMORY_TOP_K, MemoryIn, MemoryMode, PlacedOut, RetrievalOut,
};

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

/// Where a placed passage came from.
#[derive(Debug, Clone)]
pub(crate) enum Passage {
    /// A chunk of a collection's document.
    Collection {
        collection: String,
        document_id: String,
        chunk: usize,
    },
    /// A node of a knowledge graph (a hit, or a node a hit reached along a relation).
    Graph { graph: String, node_id: String },
    /// An earlier turn from the user's conversation memory.
    Conversation { turn_id: String },
}

impl Passage {
    /// The passage as the answer names it, placed as source `number` with `score`.
    fn placed(&self, number: usize, score: f32) -> PlacedOut {
        let (source, collection, graph, document_id, chunk) = match self {
            Passage::Collection {
                collection,
                document_id,
                chunk,
            } => ("collection", Some(collection), None, document_id, *chunk),
            Passage::Graph { graph, node_id } => ("graph", None, Some(graph), node_id, 0),
            Passage::Conversation { turn_id } => ("conversation", None, None, turn_id, 0),
        };
        PlacedOut {
            number,
            source,
            collection: collection.cloned(),
            graph: graph.cloned(),
            document_id: document_id.clone(),
            chunk,
            score,
        }
    }

    /// The document's, node's or turn's id.
    fn id(&self) -> &str {
        match self {
            Passage::Collection { document_id, .. } => document_id,
            Passage::Graph { node_id, .. } => node_id,
            Passage::Conversation { turn_id } => turn_id,
        }
    }

    fn label(&self) -> String {
        match self {
            Passage::Collection {
                collection,
                document_id,
                chunk,
            } => format!("{collection}/{document_id}#{chunk}"),
            Passage::Graph { graph, node_id } => format!("graph:{graph}/{node_id}"),
            Passage::Conversation { turn_id } => format!("conversation/{turn_id}"),
        }
    }

    /// The heading the passage has among the prompt's sources.
    fn heading(&self) -> String {
        match self {
            Passage::Collection {
                collection,
                document_id,
                ..
            } => format!("{collection}/{document_id}"),
            Passage::Graph { graph, node_id } => format!("{graph}/{node_id}"),
            Passage::Conversation { .. } => "an earlier conversation".to_string(),
        }
    }
}

/// A passage found for the question: where it came from, its score and its text.
type Found = (Passage, f32, String);

/// Remembering the exchange once it is answered: whose memory, and what was asked.
pub(crate) struct Remembering {
    conversations: hearth_memory::Conversations,
    tenant: String,
    user: String,
    question: String,
}

/// What a chat's retrieval placed in its prompt.
pub(crate) struct Recalled {
    /// The last user turn with the sources before it.
    pub question: String,
    pub sources: Vec<Source>,
    /// Where each placed source came from (same order).
    pub passages: Vec<Passage>,
    search_ms: f64,
    embedding_tokens: u64,
    /// With `memory.remember`: where the answer goes.
    remembering: Option<Remembering>,
}

impl Recalled {
    /// The citations of an answer.
    pub fn citations(&self, text: &str) -> Vec<CitationOut> {
        cited(text, &self.sources)
            .into_iter()
            .map(|index| CitationOut {
                placed: self.placed(index),
                text: self.sources[index]
                    .text
                    .chars()
                    .take(EXCERPT_CHARS)
                    .collect(),
            })
            .collect()
    }

    /// Every placed passage, and what the search cost.
    pub fn retrieval(&self) -> RetrievalOut {
        RetrievalOut {
            search_ms: self.search_ms,
            embedding_tokens: self.embedding_tokens,
            placed: (0..self.sources.len())
                .map(|index| self.placed(index))
                .collect(),
        }
    }

    /// Placed source `index` (0-based) as the answer names it.
    fn placed(&self, index: usize) -> PlacedOut {
        self.passages[index].placed(index + 1, self.sources[index].score)
    }

    /// Whether the exchange is to be remembered.
    pub fn remembers(&self) -> bool {
        self.remembering.is_some()
    }

    /// Stores the exchange (the user's question as asked, not as placed among sources, and
    /// the answer) in the user's conversation memory, when the request asked for it. The
    /// answer has been generated by then: a failure is logged and counted, not answered.
    pub async fn remember(&self, meter: &Meter, model: &str, answer: &str) {
        let Some(remembering) = &self.remembering else {
            return;
        };
        let exchange = hearth_memory::Exchange {
            user: remembering.user.clone(),
            question: remembering.question.clone(),
            answer: answer.to_string(),
            model: model.to_string(),
        };
        match remembering
            .conversations
            .remember(&remembering.tenant, exchange)
            .await
        {
            Ok(remembered) => {
                metrics::counter!("hearth_memory_turns_remembered_total").increment(1);
                super::memory::count_embedding(
                    meter,
                    remembered.embedding_model.as_deref(),
                    remembered.embedding_tokens,
                );
            }
            Err(error) => {
                metrics::counter!("hearth_memory_remember_failures_total").increment(1);
                tracing::warn!(%error, "cannot remember the exchange");
            }
        }
    }
}

/// Searches the collections of the caller's tenant for `question` (the chat's last user
/// message; a chat without one is refused) and, with `memory.remember`, the earlier turns of
/// `user` (resolved by the caller), and places the best passages that fit. Search embedding
/// tokens count as the request's prompt tokens.
pub(crate) async fn recall(
    state: &AppState,
    meter: &Meter,
    tenant: &str,
    (memory, user): (&MemoryIn, Option<String>),
    asked: &[String],
    (model, texts, max_output): (&Model, Vec<&str>, Option<usize>),
) -> Result<Recalled, ApiError> {
    let only_by_default =
        memory.remember_by_default && memory.collections.is_empty() && memory.graphs.is_empty();
    let question = match asked.last() {
        Some(question) => question.as_str(),
        // A key's default does not refuse a chat without a user message; it skips it.
        None if only_by_default => {
            return Ok(Recalled {
                question: String::new(),
                sources: Vec::new(),
                passages: Vec::new(),
                search_ms: 0.0,
                embedding_tokens: 0,
                remembering: None,
            });
        }
        None => {
            return Err(ApiError::bad_request(
                "memory searches for the last user message, and there is none",
            )
            .with_param("messages"));
        }
    };
    // The search reads the latest user messages (`query_turns`); the prompt asks the last.
    let search_text = asked.join("\n");
    // `user` is `Some` exactly when this chat is remembered (see `memory_user`).
    let remembering = match (user, state.conversations.clone()) {
        (None, _) => None,
        (Some(_), None) if memory.remember_by_default => None,
        (Some(_), None) => {
            return Err(ApiError::unavailable(
                "conversation memory is not configured on this server",
            )
            .with_param("memory.remember"));
        }
        (Some(user), Some(conversations)) => Some(Remembering {
            conversations,
            tenant: tenant.to_string(),
            user,
            question: question.to_string(),
        }),
    };
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
        text: Some(search_text.clone()),
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
    let mut embedding_tokens = 0;
    // (passage, score, text), from every collection and the user's memory.
    let mut found: Vec<Found> = Vec::new();
    // Nodes graph hits reached, by (graph, hit): placed right after their hit, outside the
    // `top_k` the hits compete for.
    let mut reached_from: std::collections::HashMap<(String, String), Vec<Found>> =
        std::collections::HashMap::new();
    for collection in &memory.collections {
        let results = service
            .search(tenant, collection, &request)
            .await
            .map_err(|error| ApiError::from(error).with_param("memory.collections"))?;
        charge(
            meter,
            &mut embedding_tokens,
            results.embedding_model.as_deref(),
            results.embedding_tokens,
        );
        found.extend(results.hits.into_iter().map(|hit| {
            (
                Passage::Collection {
                    collection: collection.clone(),
                    document_id: hit.document.id,
                    chunk: hit.chunk_index,
                },
                hit.score,
                hit.document.text,
            )
        }));
    }
    if !memory.graphs.is_empty() {
        let graphs = state.graphs.clone().ok_or_else(|| {
            ApiError::unavailable("graphs are not configured on this server")
                .with_param("memory.graphs")
        })?;
        for asked in &memory.graphs {
            let search = hearth_graph::GraphSearch {
                query: search_text.clone(),
                mode: request.mode,
                top_k,
                filter: None,
                expand: asked
                    .expand
                    .as_ref()
                    .map(|expand| expand.to_expand(top_k as u64)),
            };
            let results = graphs
                .search(tenant, &asked.graph, &search)
                .await
                .map_err(|error| ApiError::from(error).with_param("memory.graphs"))?;
            charge(
                meter,
                &mut embedding_tokens,
                results.embedding_model.as_deref(),
                results.embedding_tokens,
            );
            let mut scores = std::collections::HashMap::new();
            for hit in results.hits {
                scores.insert(hit.node.id.clone(), hit.score);
                found.push((
                    Passage::Graph {
                        graph: asked.graph.clone(),
                        node_id: hit.node.id.clone(),
                    },
                    hit.score,
                    node_text(&hit.node, None),
                ));
            }
            // A reached node scores below the hit it came from, less the farther it is, and
            // goes with the hit it was reached from (through the nodes between).
            let mut root: std::collections::HashMap<String, String> =
                std::collections::HashMap::new();
            for reached in results.reached {
                let from = scores.get(&reached.from).copied().unwrap_or(0.0);
                let score = from / (reached.depth as f32 + 1.0);
                scores.insert(reached.node.id.clone(), score);
                let hit = root
                    .get(&reached.from)
                    .cloned()
                    .unwrap_or_else(|| reached.from.clone());
                root.insert(reached.node.id.clone(), hit.clone());
                reached_from
                    .entry((asked.graph.clone(), hit))
                    .or_default()
                    .push((
                        Passage::Graph {
                            graph: asked.graph.clone(),
                            node_id: reached.node.id.clone(),
                        },
                        score,
                        node_text(&reached.node, Some(&reached.via)),
                    ));
            }
        }
    }
    if let Some(remembering) = &remembering {
        let recollection = remembering
            .conversations
            .recall(tenant, &remembering.user, &search_text, top_k)
            .await
            .map_err(|error| ApiError::from(error).with_param("memory.remember"))?;
        charge(
            meter,
            &mut embedding_tokens,
            recollection.embedding_model.as_deref(),
            recollection.embedding_tokens,
        );
        found.extend(recollection.turns.into_iter().map(|recalled| {
            (
                Passage::Conversation {
                    turn_id: recalled.turn.id,
                },
                recalled.score,
                recalled.turn.text,
            )
        }));
    }
    let searched_in = searching.elapsed();
    metrics::histogram!("hearth_memory_search_duration_seconds", "mode" => "chat")
        .record(searched_in.as_secs_f64());
    found.retain(|(_, score, _)| memory.min_score.is_none_or(|min| *score >= min));
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    found.truncate(top_k);
    if !reached_from.is_empty() {
        let hits = std::mem::take(&mut found);
        for hit in hits {
            let followers = match &hit.0 {
                Passage::Graph { graph, node_id } => {
                    reached_from.remove(&(graph.clone(), node_id.clone()))
                }
                _ => None,
            };
            found.push(hit);
            found.extend(followers.into_iter().flatten());
        }
    }
    let sources = found
        .iter()
        .map(|(passage, score, text)| Source {
            id: passage.id().to_string(),
            name: passage.heading(),
            score: *score,
            text: text.clone(),
        })
        .collect();
    let sources = fit_to_context(model, texts.into_iter(), max_output, sources);
    let passages: Vec<Passage> = found
        .into_iter()
        .take(sources.len())
        .map(|(passage, ..)| passage)
        .collect();
    // Retrieval is observable: an event in the request's span (and so in its trace) with
    // what was searched, what was placed and how long the search took.
    let placed: Vec<String> = passages.iter().map(Passage::label).collect();
    tracing::info!(
        collections = ?memory.collections,
        remember = remembering.is_some(),
        placed = ?placed,
        search_ms = searched_in.as_secs_f64() * 1e3,
        "memory retrieved"
    );
    Ok(Recalled {
        question: hearth_memory::retrieval::with_sources(question, &sources),
        sources,
        passages,
        search_ms: searched_in.as_secs_f64() * 1e3,
        embedding_tokens,
        remembering,
    })
}

/// A node as a source: its title and content, and for a node reached along a relation, that
/// relation (`ada worked_with babbage`), which is often what the question is about.
fn node_text(node: &hearth_graph::Node, via: Option<&hearth_graph::Relation>) -> String {
    let mut text = match (node.title.is_empty(), node.content.is_empty()) {
        (false, false) => format!("{}\n{}", node.title, node.content),
        (false, true) => node.title.clone(),
        _ => node.content.clone(),
    };
    if let Some(relation) = via {
        text.push_str(&format!(
            "\n({} {} {})",
            relation.source, relation.relation_type, relation.target
        ));
    }
    text
}

/// Charges a search's embedding tokens to the request and adds them to its retrieval total.
fn charge(meter: &Meter, total: &mut u64, model: Option<&str>, tokens: u64) {
    super::memory::count_embedding(meter, model, tokens);
    *total += tokens;
}

/// Whose conversation memory a chat with `memory.remember` reaches (`None` without it): the
/// key's user, or the one the request names (`memory.user`, else OpenAI's `user`).
pub(crate) fn memory_user(
    caller: &CallerUser,
    memory: &MemoryIn,
    request_user: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if !memory.remembers() {
        return Ok(None);
    }
    let (named, param) = match (&memory.user, request_user) {
        (Some(user), _) => (Some(user.as_str()), "memory.user"),
        (None, Some(user)) => (Some(user), "user"),
        (None, None) => (None, "memory.user"),
    };
    match caller.memory_user(named, param) {
        Ok(user) => Ok(Some(user)),
        // Remembering by the key's default: a chat whose user cannot be told is answered
        // without conversation memory rather than refused.
        Err(_) if memory.remember_by_default && named.is_none() => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: Option<&str>, remember_by_default: bool) -> CallerUser {
        CallerUser {
            user: user.map(str::to_string),
            remember_by_default,
        }
    }

    fn memory(value: serde_json::Value) -> MemoryIn {
        serde_json::from_value(value).expect("memory")
    }

    #[test]
    fn whose_memory_a_chat_reaches() {
        let remember = memory(serde_json::json!({"remember": true}));
        // A key issued to a user: that user, and no other.
        let own = caller(Some("alice"), false);
        assert_eq!(
            memory_user(&own, &remember, None).expect("own"),
            Some("alice".to_string())
        );
        let other = memory_user(&own, &remember, Some("bob")).expect_err("bob");
        assert_eq!(other.status, axum::http::StatusCode::FORBIDDEN);
        assert_eq!(other.param.as_deref(), Some("user"));
        // An app's key names the user, in `memory.user` or OpenAI's `user`.
        let app = caller(None, false);
        assert_eq!(
            memory_user(&app, &remember, Some("bob")).expect("named"),
            Some("bob".to_string())
        );
        let missing = memory_user(&app, &remember, None).expect_err("nobody");
        assert_eq!(missing.param.as_deref(), Some("memory.user"));
        // Without remember, nobody's memory.
        let plain = memory(serde_json::json!({"collections": ["docs"]}));
        assert_eq!(memory_user(&own, &plain, None).expect("plain"), None);
    }

    #[test]
    fn a_key_that_remembers_by_default_remembers_unless_the_request_says_not() {
        let by_default = MemoryIn::with_default(None, true).expect("memory");
        assert!(by_default.remembers() && by_default.remember_by_default);
        assert!(by_default.clone().checked().is_ok());
        // Its app key cannot tell the user: the chat goes on without memory.
        assert_eq!(
            memory_user(&caller(None, true), &by_default, None).expect("skipped"),
            None
        );
        assert_eq!(
            memory_user(&caller(Some("alice"), true), &by_default, None).expect("alice"),
            Some("alice".to_string())
        );
        let declined = MemoryIn::with_default(
            Some(memory(
                serde_json::json!({"collections": ["docs"], "remember": false}),
            )),
            true,
        )
        .expect("memory");
        assert!(!declined.remembers());
        assert!(MemoryIn::with_default(None, false).is_none());
    }
}
