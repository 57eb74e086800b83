//! The durable event log: its own SQLite file (`events.db` in the data directory), apart
//! from the main store so that a stream of publishes and retention deletes never slows the
//! gateway's writes, with `synchronous=FULL` so that a commit is an fsync.
//!
//! One writer thread owns every append. It takes whatever appends are waiting (up to
//! [`GROUP_MAX`]) and commits them in one transaction, then answers each: an append is
//! acknowledged only once it is on disk, and concurrent publishers share the fsync (group
//! commit). The writer has its own synchronous connection (rusqlite) rather than one of the
//! pool's: through sqlx each statement is a round trip to the connection's worker thread, and
//! on this kind of machine those round trips (BEGIN ~180 µs, the inserts ~370 µs per group of
//! 64) cost more than the fsync itself (~500 µs). Each tenant's events form one stream with its own gapless sequence. An idempotency
//! key seen within [`IDEMPOTENCY_WINDOW`] returns the first append's answer instead of a new
//! event. Readers read through their own connections, never waiting on the writer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::{Pattern, Topic};

/// The log's file in the data directory.
pub const EVENTS_FILE: &str = "events.db";
/// The most appends one commit takes.
pub const GROUP_MAX: usize = 512;
/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(120);
/// The longest the writer waits for publishers it expects to join a commit.
const LINGER_MAX: Duration = Duration::from_micros(300);
/// Appends waiting for the writer before publishers wait for room.
const QUEUE: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    tenant_id TEXT PRIMARY KEY NOT NULL,
    last_sequence BIGINT NOT NULL,
    -- Bytes of event data the stream holds now (inserts add, retention subtracts), for the
    -- per-tenant cap.
    bytes BIGINT NOT NULL DEFAULT 0,
    -- The highest sequence retention has deleted: a reader asking for one at or below it
    -- may have missed events, and is told so.
    evicted_through BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    tenant_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    id TEXT NOT NULL,
    topic TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    data TEXT NOT NULL,
    -- The topic pattern whose settings applied when it was published (its retention), or
    -- NULL for none.
    rule TEXT,
    PRIMARY KEY (tenant_id, sequence)
);
CREATE INDEX IF NOT EXISTS events_by_rule ON events (tenant_id, rule, sequence);
CREATE TABLE IF NOT EXISTS topic_settings (
    tenant_id TEXT NOT NULL,
    pattern TEXT NOT NULL,
    -- A JSON Schema, or NULL.
    schema TEXT,
    max_age_ms BIGINT,
    max_bytes BIGINT,
    max_events BIGINT,
    durable BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pattern)
);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
";

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the event log's database failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The group commit this append was in failed; nothing of it was stored.
    #[error("writing events failed: {0}")]
    Write(String),
    #[error("the event log is closed")]
    Closed,
    #[error("opening the event log's writer failed: {0}")]
    Writer(#[from] rusqlite::Error),
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub tenant_id: String,
    pub topic: Topic,
    /// The event's data, as JSON text.
    pub data: String,
    /// Publishes with the same key (per tenant) within the window are one event.
    pub idempotency_key: Option<String>,
    /// The pattern whose settings apply (its retention will trim this event).
    pub rule: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub tenant_id: String,
    /// Its place in the tenant's stream, from 1, gapless.
    pub sequence: u64,
    /// A time-ordered UUID.
    pub id: String,
    pub topic: String,
    pub time_ms: i64,
    pub data: Arc<str>,
}

/// What an append answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event: StoredEvent,
    /// True when an earlier publish with the same idempotency key is the answer.
    pub duplicate: bool,
}

/// Called by the writer with each new event right after its commit, in sequence order (a
/// duplicate is not new). It runs on the writer, so it must not block: the bus's publish.
pub type CommitHook = Arc<dyn Fn(&StoredEvent) + Send + Sync>;

struct Append {
    events: Vec<NewEvent>,
    answer: oneshot::Sender<Result<Vec<Appended>, String>>,
}

/// The durable log. Cheap to clone; the writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct EventLog {
    pub(crate) pool: SqlitePool,
    appends: mpsc::Sender<Append>,
    stats: Arc<CommitStats>,
}

/// Counters of the writer's group commits.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Transactions committed (each one fsync).
    pub commits: std::sync::atomic::AtomicU64,
    /// Events they stored.
    pub events: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EventLog").finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

impl EventLog {
    /// Opens (creating) the log in `data_dir` and starts its writer on the current runtime.
    pub async fn open(data_dir: &Path) -> Result<EventLog, LogError> {
        EventLog::open_with_hook(data_dir, None).await
    }

    /// [`EventLog::open`], with `hook` told of every new event after its commit.
    pub async fn open_with_hook(
        data_dir: &Path,
        hook: Option<CommitHook>,
    ) -> Result<EventLog, LogError> {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(EVENTS_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every commit is an fsync: an acknowledged event survives a power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        sqlx::raw_sql(crate::consumers::SCHEMA)
            .execute(&pool)
            .await?;
        let writer = rusqlite::Connection::open(data_dir.join(EVENTS_FILE))?;
        writer.busy_timeout(Duration::from_secs(5))?;
        // Every commit is an fsync (the journal mode, WAL, is the file's own).
        writer.pragma_update(None, "synchronous", "FULL")?;
        let (appends, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(CommitStats::default());
        let writer_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("hearth-events-writer".into())
            .spawn(move || write(writer, queue, hook, writer_stats))
            .map_err(|error| LogError::Write(format!("cannot start the writer thread: {error}")))?;
        Ok(EventLog {
            pool,
            appends,
            stats,
        })
    }

    /// How many group commits the writer made, and how many events they stored.
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.stats.commits.load(Ordering::Relaxed),
            self.stats.events.load(Ordering::Relaxed),
        )
    }

    /// Appends events, in order, and answers once they are durable.
    pub async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, answered) = oneshot::channel();
        self.appends
            .send(Append { events, answer })
            .await
            .map_err(|_| LogError::Closed)?;
        match answered.await {
            Ok(Ok(appended)) => Ok(appended),
            Ok(Err(message)) => Err(LogError::Write(message)),
            Err(_) => Err(LogError::Closed),
        }
    }

    /// Up to `limit` of a tenant's events from `from_sequence` on, in order; with a filter,
    /// only those whose topic matches one of its patterns.
    pub async fn read(
        &self,
        tenant_id: &str,
        from_sequence: u64,
        limit: usize,
        filter: Option<&[Pattern]>,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let mut found = Vec::with_capacity(limit.min(1024));
        let mut from = i64::try_from(from_sequence).unwrap_or(i64::MAX);
        // Filtered reads page through the stream until enough match.
        let page = if filter.is_some() { 1024 } else { limit as i64 };
        while found.len() < limit {
            let rows = sqlx::query(
                "SELECT sequence, id, topic, time_ms, data FROM events \
                 WHERE tenant_id = $1 AND sequence >= $2 ORDER BY sequence LIMIT $3",
            )
            .bind(tenant_id)
            .bind(from)
            .bind(page)
            .fetch_all(&self.pool)
            .await?;
            let last_page = (rows.len() as i64) < page;
            for row in rows {
                let sequence: i64 = row.get(0);
                from = sequence + 1;
                let topic: String = row.get(2);
                let keep = match filter {
                    None => true,
                    Some(filter) => Topic::parse(&topic)
                        .is_ok_and(|topic| filter.iter().any(|pattern| pattern.matches(&topic))),
                };
                if keep {
                    found.push(stored_event(tenant_id, &row));
                    if found.len() == limit {
                        break;
                    }
                }
            }
            if last_page {
                break;
            }
        }
        Ok(found)
    }

    /// Deletes what `retention` no longer keeps of a tenant's events published under `rule`
    /// (older than `max_age`, beyond the newest `max_events`, or beyond `max_bytes` of data
    /// counted from the newest), in one transaction, and records the highest sequence deleted.
    /// Returns how many it deleted.
    pub async fn trim(
        &self,
        tenant_id: &str,
        rule: &str,
        retention: &crate::Retention,
        now_ms: i64,
    ) -> Result<u64, LogError> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The newest sequence each bound lets go of; everything at or below it goes.
        let mut cut: Option<i64> = None;
        if let Some(max_age) = retention.max_age {
            let oldest_kept = now_ms - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(sequence) FROM events WHERE tenant_id = $1 AND rule = $2 \
                 AND time_ms < $3",
            )
            .bind(tenant_id)
            .bind(rule)
            .bind(oldest_kept)
            .fetch_one(&mut *transaction)
            .await?;
            cut = cut.max(found);
        }
        if let Some(max_events) = retention.max_events {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT sequence FROM events WHERE tenant_id = $1 AND rule = $2 \
                 ORDER BY sequence DESC LIMIT 1 OFFSET $3",
            )
            .bind(tenant_id)
            .bind(rule)
            .bind(i64::try_from(max_events).unwrap_or(i64::MAX))
            .fetch_optional(&mut *transaction)
            .await?;
            cut = cut.max(found);
        }
        if let Some(max_bytes) = retention.max_bytes {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT sequence FROM (SELECT sequence, SUM(length(data)) OVER \
                 (ORDER BY sequence DESC) AS total FROM events WHERE tenant_id = $1 AND rule = $2) \
                 WHERE total > $3 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(tenant_id)
            .bind(rule)
            .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
            .fetch_optional(&mut *transaction)
            .await?;
            cut = cut.max(found);
        }
        let Some(cut) = cut else {
            return Ok(0);
        };
        let freed: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(length(data)), 0) FROM events WHERE tenant_id = $1 \
             AND rule = $2 AND sequence <= $3",
        )
        .bind(tenant_id)
        .bind(rule)
        .bind(cut)
        .fetch_one(&mut *transaction)
        .await?;
        let deleted =
            sqlx::query("DELETE FROM events WHERE tenant_id = $1 AND rule = $2 AND sequence <= $3")
                .bind(tenant_id)
                .bind(rule)
                .bind(cut)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
        sqlx::query(
            "UPDATE streams SET evicted_through = MAX(evicted_through, $2), \
             bytes = MAX(0, bytes - $3) WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .bind(cut)
        .bind(freed)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(deleted)
    }

    /// Bytes of event data a tenant's stream holds.
    pub async fn stream_bytes(&self, tenant_id: &str) -> Result<u64, LogError> {
        let bytes: Option<i64> =
            sqlx::query_scalar("SELECT bytes FROM streams WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(bytes.unwrap_or(0).max(0) as u64)
    }

    /// The highest sequence retention has deleted from a tenant's stream (0 for none).
    pub async fn evicted_through(&self, tenant_id: &str) -> Result<u64, LogError> {
        let evicted: Option<i64> =
            sqlx::query_scalar("SELECT evicted_through FROM streams WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(evicted.unwrap_or(0).max(0) as u64)
    }

    /// The sequence of a tenant's newest event (0 for none).
    pub async fn last_sequence(&self, tenant_id: &str) -> Result<u64, LogError> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_sequence FROM streams WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(last.unwrap_or(0).max(0) as u64)
    }
}

/// An event from a row of `sequence, id, topic, time_ms, data`.
fn stored_event(tenant_id: &str, row: &sqlx::sqlite::SqliteRow) -> StoredEvent {
    let sequence: i64 = row.get(0);
    let data: String = row.get(4);
    StoredEvent {
        tenant_id: tenant_id.to_string(),
        sequence: sequence.max(0) as u64,
        id: row.get(1),
        topic: row.get(2),
        time_ms: row.get(3),
        data: Arc::from(data),
    }
}

/// The writer: group commits until every handle is gone. It runs on its own thread.
fn write(
    mut connection: rusqlite::Connection,
    mut queue: mpsc::Receiver<Append>,
    hook: Option<CommitHook>,
    stats: Arc<CommitStats>,
) {
    // Each tenant's last sequence as committed: the writer is the only one to move it, so
    // it is read from the database once, not in every commit.
    let mut last_sequences: HashMap<String, i64> = HashMap::new();
    // Expired idempotency keys are deleted at most once a second, not in every commit.
    let mut forgotten_at = Instant::now() - Duration::from_secs(2);
    // Publishers that may come back for the next commit: those that were waiting when the last
    // commit ended, and those it answered (each publisher waits for its answer before it
    // sends again). With many publishers, the ones answered last and the ones that waited
    // would otherwise alternate in two half-size groups, each paying a whole fsync.
    let mut expected = 1;
    let mut last_commit = Duration::ZERO;
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        let mut count = group[0].events.len();
        // Take what waits; while the expected publishers are still arriving (those just
        // answered are sending their next), wait a little for them to join this commit's
        // fsync: at most half the last commit's time, and never past LINGER_MAX.
        let linger = (last_commit / 2).min(LINGER_MAX);
        let lingering_since = Instant::now();
        loop {
            while count < GROUP_MAX {
                match queue.try_recv() {
                    Ok(append) => {
                        count += append.events.len();
                        group.push(append);
                    }
                    Err(_) => break,
                }
            }
            if count >= GROUP_MAX || group.len() >= expected || lingering_since.elapsed() >= linger
            {
                break;
            }
            std::thread::yield_now();
        }
        let forget_keys = forgotten_at.elapsed() >= Duration::from_secs(1);
        if forget_keys {
            forgotten_at = Instant::now();
        }
        let committing = Instant::now();
        let committed = commit(&mut connection, &group, forget_keys, &last_sequences);
        last_commit = committing.elapsed();
        expected = (queue.len() + group.len()).max(1);
        match committed {
            Ok((answers, lasts)) => {
                last_sequences.extend(lasts);
                let stored = answers.iter().flatten().filter(|a| !a.duplicate).count();
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.events.fetch_add(stored as u64, Ordering::Relaxed);
                if let Some(hook) = &hook {
                    for appended in answers.iter().flatten() {
                        if !appended.duplicate {
                            hook(&appended.event);
                        }
                    }
                }
                for (append, answer) in group.into_iter().zip(answers) {
                    let _ = append.answer.send(Ok(answer));
                }
            }
            Err(error) => {
                // What the database holds now is read again.
                last_sequences.clear();
                tracing::warn!(%error, "an event group commit failed; its publishers are told");
                let message = error.to_string();
                for append in group {
                    let _ = append.answer.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Each group's answers, and each tenant's last sequence after it.
type Committed = (Vec<Vec<Appended>>, Vec<(String, i64)>);

/// One transaction for a group of appends: sequences handed out per tenant, idempotency keys
/// honoured, a row per event through cached prepared statements, then one commit (one fsync).
fn commit(
    connection: &mut rusqlite::Connection,
    group: &[Append],
    forget_keys: bool,
    last_sequences: &HashMap<String, i64>,
) -> rusqlite::Result<Committed> {
    use rusqlite::OptionalExtension;
    let now = now_ms();
    let window_start = now - IDEMPOTENCY_WINDOW.as_millis() as i64;
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut next: HashMap<&str, i64> = HashMap::new();
    let mut added_bytes: HashMap<&str, i64> = HashMap::new();
    // Keys given a new event in this group: a second publish with one is its duplicate.
    let mut keyed: HashMap<(&str, &str), StoredEvent> = HashMap::new();
    let mut answers = Vec::with_capacity(group.len());
    {
        let mut earlier_event = transaction.prepare_cached(
            "SELECT events.sequence, events.id, events.topic, events.time_ms, events.data \
             FROM idempotency JOIN events ON events.tenant_id = idempotency.tenant_id \
             AND events.sequence = idempotency.sequence \
             WHERE idempotency.tenant_id = ?1 AND idempotency.key = ?2 \
             AND idempotency.at_ms >= ?3",
        )?;
        let mut stream_last =
            transaction.prepare_cached("SELECT last_sequence FROM streams WHERE tenant_id = ?1")?;
        let mut insert_event = transaction.prepare_cached(
            "INSERT INTO events (tenant_id, sequence, id, topic, time_ms, data, rule) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut insert_key = transaction.prepare_cached(
            "INSERT INTO idempotency (tenant_id, key, sequence, at_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET sequence = excluded.sequence, \
             at_ms = excluded.at_ms",
        )?;
        for append in group {
            let mut answer = Vec::with_capacity(append.events.len());
            for event in &append.events {
                let tenant = event.tenant_id.as_str();
                if let Some(key) = &event.idempotency_key {
                    if let Some(first) = keyed.get(&(tenant, key.as_str())) {
                        answer.push(Appended {
                            event: first.clone(),
                            duplicate: true,
                        });
                        continue;
                    }
                    // The event an earlier publish with this key stored, if within the window.
                    let earlier = earlier_event
                        .query_row(rusqlite::params![tenant, key, window_start], |row| {
                            Ok(StoredEvent {
                                tenant_id: event.tenant_id.clone(),
                                sequence: row.get::<_, i64>(0)?.max(0) as u64,
                                id: row.get(1)?,
                                topic: row.get(2)?,
                                time_ms: row.get(3)?,
                                data: Arc::from(row.get::<_, String>(4)?),
                            })
                        })
                        .optional()?;
                    if let Some(earlier) = earlier {
                        answer.push(Appended {
                            event: earlier,
                            duplicate: true,
                        });
                        continue;
                    }
                }
                let sequence = match next.get_mut(tenant) {
                    Some(sequence) => {
                        *sequence += 1;
                        *sequence
                    }
                    None => {
                        let last = match last_sequences.get(tenant) {
                            Some(last) => Some(*last),
                            None => stream_last
                                .query_row([tenant], |row| row.get::<_, i64>(0))
                                .optional()?,
                        };
                        let sequence = last.unwrap_or(0) + 1;
                        next.insert(tenant, sequence);
                        sequence
                    }
                };
                *added_bytes.entry(tenant).or_default() += event.data.len() as i64;
                let stored = StoredEvent {
                    tenant_id: event.tenant_id.clone(),
                    sequence: sequence as u64,
                    id: uuid::Uuid::now_v7().to_string(),
                    topic: event.topic.as_str().to_string(),
                    time_ms: now,
                    data: Arc::from(event.data.as_str()),
                };
                insert_event.execute(rusqlite::params![
                    tenant,
                    sequence,
                    stored.id,
                    stored.topic,
                    now,
                    event.data,
                    event.rule,
                ])?;
                if let Some(key) = &event.idempotency_key {
                    insert_key.execute(rusqlite::params![tenant, key, sequence, now])?;
                    keyed.insert((tenant, key), stored.clone());
                }
                answer.push(Appended {
                    event: stored,
                    duplicate: false,
                });
            }
            answers.push(answer);
        }
        let mut upsert_stream = transaction.prepare_cached(
            "INSERT INTO streams (tenant_id, last_sequence, bytes) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = ?2, \
             bytes = streams.bytes + ?3",
        )?;
        for (tenant, last) in &next {
            upsert_stream.execute(rusqlite::params![
                tenant,
                last,
                added_bytes.get(tenant).copied().unwrap_or(0)
            ])?;
        }
        if forget_keys {
            // Keys past the window are forgotten as the log goes.
            transaction
                .prepare_cached("DELETE FROM idempotency WHERE at_ms < ?1")?
                .execute([window_start])?;
        }
    }
    transaction.commit()?;
    let lasts = next
        .into_iter()
        .map(|(tenant_id, last)| (tenant_id.to_string(), last))
        .collect();
    Ok((answers, lasts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: &str, topic: &str, data: &str, key: Option<&str>) -> NewEvent {
        NewEvent {
            tenant_id: tenant.to_string(),
            topic: Topic::parse(topic).unwrap(),
            data: data.to_string(),
            idempotency_key: key.map(str::to_string),
            rule: None,
        }
    }

    #[tokio::test]
    async fn appends_get_gapless_sequences_per_tenant_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).await.unwrap();
        let first = log
            .append(vec![
                event("t1", "agent.task.done", r#"{"n": 1}"#, None),
                event("t1", "emotion.joy", r#"{"n": 2}"#, None),
                event("t2", "agent.task.done", r#"{"n": 3}"#, None),
            ])
            .await
            .unwrap();
        let sequences: Vec<(String, u64)> = first
            .iter()
            .map(|appended| (appended.event.tenant_id.clone(), appended.event.sequence))
            .collect();
        assert_eq!(
            sequences,
            [("t1".into(), 1), ("t1".into(), 2), ("t2".into(), 1)]
        );
        drop(log);

        let log = EventLog::open(dir.path()).await.unwrap();
        assert_eq!(log.last_sequence("t1").await.unwrap(), 2);
        let next = log
            .append(vec![event("t1", "agent.job.done", "{}", None)])
            .await
            .unwrap();
        assert_eq!(next[0].event.sequence, 3);
        let all = log.read("t1", 1, 10, None).await.unwrap();
        assert_eq!(
            all.iter().map(|event| event.sequence).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(&*all[0].data, r#"{"n": 1}"#);
        let done = Pattern::parse("agent.*.done").unwrap();
        let filtered = log
            .read("t1", 1, 10, Some(std::slice::from_ref(&done)))
            .await
            .unwrap();
        assert_eq!(
            filtered
                .iter()
                .map(|event| event.sequence)
                .collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(log.read("t1", 3, 10, None).await.unwrap().len(), 1);
        assert!(log.read("t3", 1, 10, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn retention_trims_by_count_bytes_and_age_and_records_the_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).await.unwrap();
        let ruled = |data: &str| NewEvent {
            rule: Some("a.>".to_string()),
            ..event("t1", "a.b", data, None)
        };
        let mut batch: Vec<NewEvent> = (0..5).map(|n| ruled(&format!("\"{n}\""))).collect();
        // An event under no rule is never trimmed by it.
        batch.insert(2, event("t1", "other", "\"kept\"", None));
        log.append(batch).await.unwrap();
        let keep_two = crate::Retention {
            max_events: Some(2),
            ..crate::Retention::default()
        };
        // Five 3-byte events and one of 6 bytes.
        assert_eq!(log.stream_bytes("t1").await.unwrap(), 21);
        assert_eq!(log.trim("t1", "a.>", &keep_two, now_ms()).await.unwrap(), 3);
        assert_eq!(log.stream_bytes("t1").await.unwrap(), 12);
        let left: Vec<u64> = log
            .read("t1", 1, 10, None)
            .await
            .unwrap()
            .iter()
            .map(|event| event.sequence)
            .collect();
        assert_eq!(left, [3, 5, 6]);
        assert_eq!(log.evicted_through("t1").await.unwrap(), 4);
        // Each kept event's data is 3 bytes ("4"): 4 bytes keep one.
        let four_bytes = crate::Retention {
            max_bytes: Some(4),
            ..crate::Retention::default()
        };
        assert_eq!(
            log.trim("t1", "a.>", &four_bytes, now_ms()).await.unwrap(),
            1
        );
        let day = crate::Retention {
            max_age: Some(Duration::from_secs(86_400)),
            ..crate::Retention::default()
        };
        assert_eq!(log.trim("t1", "a.>", &day, now_ms()).await.unwrap(), 0);
        let tomorrow = now_ms() + 86_400_000 + 1;
        assert_eq!(log.trim("t1", "a.>", &day, tomorrow).await.unwrap(), 1);
        assert_eq!(log.evicted_through("t1").await.unwrap(), 6);
        assert_eq!(log.read("t1", 1, 10, None).await.unwrap().len(), 1);
        assert_eq!(log.trim("t2", "a.>", &day, tomorrow).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_idempotency_key_publishes_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).await.unwrap();
        let first = log
            .append(vec![event("t1", "a.b", "1", Some("order-7"))])
            .await
            .unwrap();
        let again = log
            .append(vec![event("t1", "a.b", "2", Some("order-7"))])
            .await
            .unwrap();
        assert!(!first[0].duplicate);
        assert!(again[0].duplicate);
        assert_eq!(again[0].event, first[0].event);
        // Keys are per tenant.
        let other = log
            .append(vec![event("t2", "a.b", "3", Some("order-7"))])
            .await
            .unwrap();
        assert!(!other[0].duplicate);
        assert_eq!(log.last_sequence("t1").await.unwrap(), 1);
        // Twice in one group: the second is the first's duplicate.
        let twice = log
            .append(vec![
                event("t1", "a.b", "4", Some("order-8")),
                event("t1", "a.b", "5", Some("order-8")),
            ])
            .await
            .unwrap();
        assert!(!twice[0].duplicate && twice[1].duplicate);
        assert_eq!(twice[1].event, twice[0].event);
        assert_eq!(log.last_sequence("t1").await.unwrap(), 2);
    }

    #[tokio::test]
    async fn concurrent_publishers_share_commits_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).await.unwrap();
        let mut tasks = Vec::new();
        for publisher in 0..64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut sequences = Vec::new();
                for n in 0..20 {
                    let data = format!(r#"{{"publisher": {publisher}, "n": {n}}}"#);
                    let appended = log
                        .append(vec![event("t1", "load.test", &data, None)])
                        .await
                        .unwrap();
                    sequences.push(appended[0].event.sequence);
                }
                sequences
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let sequences = task.await.unwrap();
            // One publisher's events keep their order.
            assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]));
            all.extend(sequences);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=1280).collect::<Vec<u64>>());
        assert_eq!(log.read("t1", 1, 2000, None).await.unwrap().len(), 1280);
    }
}
