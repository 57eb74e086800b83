//! Conversation memory: the chat turns an app asked Hearth to remember, per user, recalled
//! when the same user asks something related later.
//!
//! Each tenant's turns are the documents of one collection, made on its first remembered turn
//! and named by a made id (the store maps tenant to collection). A turn is one exchange, the
//! user's message and the answer, embedded together; its metadata names its user, the time and
//! the model. Every read of a user's turns (recall, export) and every delete filters by that
//! user here, where no caller can leave the filter out: one user's memory is never recalled
//! for another. One collection per tenant rather than per user keeps the number of indexes
//! flat however many users an app has (the filtered search is the index's own).

use std::sync::Arc;

use hearth_store::Store;
use serde_json::{Value, json};

use crate::collections::now_ms;
use crate::{
    DocumentSelector, Filter, HybridWeights, Memory, MemoryError, NewCollection, NewDocument, Page,
    PageRequest, SearchMode, SearchRequest,
};

const DAY_MS: i64 = 86_400_000;
const MAX_USER_BYTES: usize = 256;
/// The metadata keys of a remembered turn.
const USER_KEY: &str = "user";
const AT_KEY: &str = "at";
const MODEL_KEY: &str = "model";

/// One exchange to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub user: String,
    pub question: String,
    pub answer: String,
    pub model: String,
}

/// A remembered turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub id: String,
    /// `User: …` then `Assistant: …`.
    pub text: String,
    pub at_ms: i64,
    pub model: String,
}

/// A turn recalled for a question, with how well it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct RecalledTurn {
    pub turn: Turn,
    pub score: f32,
}

/// What a recall found, best first, and what embedding the question cost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recollection {
    pub turns: Vec<RecalledTurn>,
    pub embedding_tokens: u64,
    pub embedding_model: Option<String>,
}

/// What remembering a turn stored and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    pub id: String,
    pub embedding_tokens: u64,
    pub embedding_model: Option<String>,
}

/// The conversation memory service. Cheap to clone.
#[derive(Clone)]
pub struct Conversations {
    store: Store,
    memory: Arc<Memory>,
    /// Turns older than this are deleted by [`Conversations::sweep`]; `None`: kept.
    retention_days: Option<u32>,
}

impl std::fmt::Debug for Conversations {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Conversations")
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

/// A user names whose memory a request reaches: 1 to 256 bytes without control characters.
pub fn check_user(field: &str, user: &str) -> Result<(), MemoryError> {
    if user.is_empty() || user.len() > MAX_USER_BYTES || user.chars().any(char::is_control) {
        return Err(MemoryError::invalid(
            field,
            "a user is 1 to 256 bytes without control characters",
        ));
    }
    Ok(())
}

fn only_user(user: &str) -> Result<Filter, MemoryError> {
    Filter::parse(&json!({"key": USER_KEY, "type": "eq", "value": user}))
}

fn turn_of(id: String, text: String, metadata: &serde_json::Map<String, Value>) -> Turn {
    Turn {
        id,
        text,
        at_ms: metadata.get(AT_KEY).and_then(Value::as_i64).unwrap_or(0),
        model: metadata
            .get(MODEL_KEY)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

impl Conversations {
    pub fn new(store: Store, memory: Arc<Memory>, retention_days: Option<u32>) -> Conversations {
        Conversations {
            store,
            memory,
            retention_days,
        }
    }

    /// The tenant's collection, made (with the default embedding model) when `create`.
    async fn collection(
        &self,
        tenant_id: &str,
        create: bool,
    ) -> Result<Option<String>, MemoryError> {
        if let Some(name) = self.store.conversation_collection(tenant_id).await? {
            return Ok(Some(name));
        }
        if !create {
            return Ok(None);
        }
        let name = format!("conversations_{}", uuid::Uuid::now_v7().simple());
        let mut new = NewCollection::embedded(name.clone(), None);
        new.metadata = json!({"conversation_memory": true});
        self.memory
            .create_collection(tenant_id, new)
            .await
            .map_err(|error| match error {
                MemoryError::Invalid { .. } => MemoryError::invalid(
                    "memory.remember",
                    "conversation memory embeds turns with the default embedding model, and \
                     this server has none (set memory.embedding_model)",
                ),
                other => other,
            })?;
        let standing = self
            .store
            .claim_conversation_collection(tenant_id, &name, now_ms())
            .await?;
        if standing != name {
            // Another request made the tenant's collection first: use that one.
            let _ = self.memory.delete_collection(tenant_id, &name).await;
        }
        Ok(Some(standing))
    }

    /// Whether `collection` is the tenant's conversation memory (which is changed through
    /// this service only).
    pub async fn holds_collection(
        &self,
        tenant_id: &str,
        collection: &str,
    ) -> Result<bool, MemoryError> {
        Ok(self
            .store
            .conversation_collection(tenant_id)
            .await?
            .as_deref()
            == Some(collection))
    }

    /// Stores one exchange as a turn of its user's memory.
    pub async fn remember(
        &self,
        tenant_id: &str,
        exchange: Exchange,
    ) -> Result<Remembered, MemoryError> {
        check_user("user", &exchange.user)?;
        let Some(collection) = self.collection(tenant_id, true).await? else {
            return Err(MemoryError::NotFound {
                what: "conversation memory".to_string(),
            });
        };
        let id = uuid::Uuid::now_v7().to_string();
        let document = NewDocument {
            id: Some(id.clone()),
            text: format!(
                "User: {}\nAssistant: {}",
                exchange.question.trim(),
                exchange.answer.trim()
            ),
            metadata: json!({USER_KEY: exchange.user, AT_KEY: now_ms(), MODEL_KEY: exchange.model}),
            embedding: None,
        };
        let upserted = self
            .memory
            .upsert_documents(tenant_id, &collection, vec![document])
            .await?;
        Ok(Remembered {
            id,
            embedding_tokens: upserted.embedding_tokens,
            embedding_model: upserted.embedding_model,
        })
    }

    /// The user's turns that best match `question` (hybrid search), best first, at most
    /// `top_k`; none before the tenant's first remembered turn.
    pub async fn recall(
        &self,
        tenant_id: &str,
        user: &str,
        question: &str,
        top_k: usize,
    ) -> Result<Recollection, MemoryError> {
        check_user("user", user)?;
        let Some(collection) = self.collection(tenant_id, false).await? else {
            return Ok(Recollection::default());
        };
        let request = SearchRequest {
            text: Some(question.to_string()),
            vector: None,
            mode: SearchMode::Hybrid(HybridWeights::default()),
            top_k,
            filter: Some(only_user(user)?),
            ef: None,
            include_embedding: false,
        };
        let found = self.memory.search(tenant_id, &collection, &request).await?;
        let mut turns: Vec<RecalledTurn> = Vec::with_capacity(found.hits.len());
        for hit in found.hits {
            // The filter already holds the user to `user`; this second check is what the
            // whole design leans on, so it is made again on what comes back.
            if hit.document.metadata.get(USER_KEY).and_then(Value::as_str) != Some(user) {
                continue;
            }
            if turns
                .iter()
                .any(|recalled| recalled.turn.id == hit.document.id)
            {
                continue;
            }
            turns.push(RecalledTurn {
                turn: turn_of(hit.document.id, hit.document.text, &hit.document.metadata),
                score: hit.score,
            });
        }
        Ok(Recollection {
            turns,
            embedding_tokens: found.embedding_tokens,
            embedding_model: found.embedding_model,
        })
    }

    /// The user's turns, oldest first, a page at a time.
    pub async fn export(
        &self,
        tenant_id: &str,
        user: &str,
        page: &PageRequest,
    ) -> Result<Page<Turn>, MemoryError> {
        check_user("user", user)?;
        let Some(collection) = self.collection(tenant_id, false).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let filter = only_user(user)?;
        let found = self
            .memory
            .list_documents(tenant_id, &collection, page, Some(&filter), false)
            .await?;
        Ok(Page {
            items: found
                .items
                .into_iter()
                .map(|document| turn_of(document.id, document.text, &document.metadata))
                .collect(),
            next_cursor: found.next_cursor,
        })
    }

    /// Deletes every turn of the user; returns how many there were.
    pub async fn forget(&self, tenant_id: &str, user: &str) -> Result<usize, MemoryError> {
        check_user("user", user)?;
        let Some(collection) = self.collection(tenant_id, false).await? else {
            return Ok(0);
        };
        self.memory
            .delete_documents(
                tenant_id,
                &collection,
                &DocumentSelector::Filter(only_user(user)?),
            )
            .await
    }

    /// Deletes the turns older than the retention window, in every tenant; returns how many.
    pub async fn sweep(&self) -> Result<usize, MemoryError> {
        match self.retention_days {
            Some(days) => self.sweep_before(now_ms() - i64::from(days) * DAY_MS).await,
            None => Ok(0),
        }
    }

    /// Deletes the turns remembered before `cutoff_ms`, in every tenant; returns how many.
    pub async fn sweep_before(&self, cutoff_ms: i64) -> Result<usize, MemoryError> {
        let older = Filter::parse(&json!({"key": AT_KEY, "type": "lt", "value": cutoff_ms}))?;
        let mut deleted = 0;
        for (tenant_id, collection) in self.store.conversation_collections().await? {
            match self
                .memory
                .delete_documents(
                    &tenant_id,
                    &collection,
                    &DocumentSelector::Filter(older.clone()),
                )
                .await
            {
                Ok(count) => deleted += count,
                // Its collection was deleted by hand: nothing to keep.
                Err(MemoryError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(deleted)
    }
}
