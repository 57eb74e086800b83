//! Keyword search over a collection's chunk text: one SQLite FTS5 table per collection, so
//! BM25's document frequencies are the collection's own and one tenant's words never weigh on
//! another's ranking. A chunk's row in it has the chunk's write sequence as its rowid and is
//! written and removed in the same transaction as the chunk (see `memory.rs`), so the text
//! index is as durable as the rows and needs no snapshot or replay.
//!
//! Tokenization is FTS5's `unicode61` (Unicode word boundaries, case and diacritics folded)
//! under the Porter stemmer for English.

use sqlx::Row;

use crate::{Store, StoreError};

/// One keyword hit: the chunk's sequence, its BM25 score (higher is better) and a fragment of
/// its text with the matched terms marked.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordRow {
    pub sequence: i64,
    pub score: f64,
    pub snippet: String,
}

/// Marks around a matched term in a snippet.
pub const SNIPPET_OPEN: &str = "<mark>";
pub const SNIPPET_CLOSE: &str = "</mark>";
/// FTS5's tokenizer: Unicode words, case and diacritics folded, English stems.
const TOKENIZER: &str = "porter unicode61 remove_diacritics 2";
/// Tokens of context a snippet keeps around its matches.
const SNIPPET_TOKENS: i64 = 24;

/// The FTS5 table of a collection. Collection ids are UUIDs made by the memory service; any
/// other character is refused rather than spliced into SQL.
pub(crate) fn text_table(collection_id: &str) -> Result<String, StoreError> {
    if collection_id.is_empty()
        || !collection_id
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        return Err(StoreError::Invalid(format!(
            "collection id `{collection_id}` cannot name a text index"
        )));
    }
    Ok(format!("memory_text_{}", collection_id.replace('-', "")))
}

async fn table_exists(
    connection: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sqlite_master WHERE name = $1")
            .bind(table)
            .fetch_one(connection)
            .await?
            > 0,
    )
}

/// Adds chunks' text to the collection's index, inside the caller's transaction.
pub(crate) async fn index_text(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    collection_id: &str,
    rows: &[(i64, &str)],
) -> Result<(), StoreError> {
    let table = text_table(collection_id)?;
    let statement = format!("INSERT INTO {table} (rowid, text) VALUES ($1, $2)");
    for &(sequence, text) in rows {
        sqlx::query(&statement)
            .bind(sequence)
            .bind(text)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Removes chunks' text from the collection's index, inside the caller's transaction.
pub(crate) async fn unindex_text(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    collection_id: &str,
    sequences: &[i64],
) -> Result<(), StoreError> {
    let table = text_table(collection_id)?;
    let statement = format!("DELETE FROM {table} WHERE rowid = $1");
    for &sequence in sequences {
        sqlx::query(&statement)
            .bind(sequence)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Makes the collection's (empty) index, inside the caller's transaction.
pub(crate) async fn create_text_index(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    collection_id: &str,
) -> Result<(), StoreError> {
    let table = text_table(collection_id)?;
    sqlx::query(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(text, tokenize = '{TOKENIZER}')"
    ))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Drops the collection's index, inside the caller's transaction.
pub(crate) async fn drop_text_index(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    collection_id: &str,
) -> Result<(), StoreError> {
    let table = text_table(collection_id)?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// The migration that made the memory tables; reverting it drops every text index too.
pub(crate) const MEMORY_MIGRATION: i64 = 6;

/// Drops every collection's text index (when the memory tables themselves are reverted).
pub(crate) async fn drop_all_text_indexes(
    connection: &mut sqlx::SqliteConnection,
) -> Result<(), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'memory_text_*' \
         AND sql LIKE 'CREATE VIRTUAL TABLE%'",
    )
    .fetch_all(&mut *connection)
    .await?;
    for table in tables {
        // Names come from sqlite_master and match what `text_table` makes.
        sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Turns what a user typed into an FTS5 query: its words (letters and digits), each quoted so
/// no word is read as FTS5 syntax, any of them matching. `None` when it has no words.
pub fn keyword_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| format!("\"{word}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

impl Store {
    /// Makes the collection's text index when it has none (a collection made before keyword
    /// search), filled from its chunks in one transaction. True when it was made now.
    pub async fn ensure_memory_text_index(&self, collection_id: &str) -> Result<bool, StoreError> {
        let table = text_table(collection_id)?;
        let mut connection = self.pool.acquire().await?;
        if table_exists(&mut connection, &table).await? {
            return Ok(false);
        }
        drop(connection);
        let mut transaction = self.begin_write().await?;
        if table_exists(&mut transaction, &table).await? {
            return Ok(false);
        }
        create_text_index(&mut transaction, collection_id).await?;
        sqlx::query(&format!(
            "INSERT INTO {table} (rowid, text) \
             SELECT sequence, text FROM memory_chunks WHERE collection_id = $1"
        ))
        .bind(collection_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Chunks matching an FTS5 query (see [`keyword_query`]), best BM25 first, `limit` of
    /// them after skipping `offset`.
    pub async fn memory_keyword_search(
        &self,
        collection_id: &str,
        query: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<KeywordRow>, StoreError> {
        let table = text_table(collection_id)?;
        let rows = sqlx::query(&format!(
            "SELECT rowid, bm25({table}) AS rank, \
             snippet({table}, 0, $2, $3, '…', {SNIPPET_TOKENS}) AS snippet \
             FROM {table} WHERE {table} MATCH $1 ORDER BY rank LIMIT $4 OFFSET $5"
        ))
        .bind(query)
        .bind(SNIPPET_OPEN)
        .bind(SNIPPET_CLOSE)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(KeywordRow {
                    sequence: row.try_get("rowid")?,
                    // FTS5's bm25() is negated so that ORDER BY puts the best first.
                    score: -row.try_get::<f64, _>("rank")?,
                    snippet: row.try_get("snippet")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_becomes_quoted_words_any_of_which_match() {
        assert_eq!(
            keyword_query("cats' \"NEAR\" (AND) x-ray*").as_deref(),
            Some("\"cats\" OR \"NEAR\" OR \"AND\" OR \"x\" OR \"ray\"")
        );
        assert_eq!(keyword_query("  -- ** "), None);
    }

    #[test]
    fn only_uuid_characters_name_a_table() {
        assert_eq!(
            text_table("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
            "memory_text_0193a1b2c3d47e5f8a9b0c1d2e3f4a5b"
        );
        assert!(text_table("x; DROP TABLE memory_chunks").is_err());
        assert!(text_table("").is_err());
    }
}
