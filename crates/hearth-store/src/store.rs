//! Opening the database: integrity first, then a pool tuned for one writer and many readers.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqlitePool};

use crate::error::StoreError;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "hearth.db";

/// How thoroughly to check the database file before using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityCheck {
    /// `PRAGMA quick_check`: every page and b-tree structure, in about linear time.
    Quick,
    /// `PRAGMA integrity_check`: also verifies that indexes match their tables.
    Full,
    Off,
}

#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub integrity_check: IntegrityCheck,
    /// Apply pending migrations after opening (the server does; `hearth migrate` does not).
    pub run_migrations: bool,
}

/// The durable store of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`. An existing file is checked
    /// read-only before any connection that could write to it is made, so a corrupt file is
    /// reported and left byte-for-byte as it was.
    pub async fn open(data_dir: &Path, options: OpenOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        if path.exists() && options.integrity_check != IntegrityCheck::Off {
            check_integrity(&path, options.integrity_check).await?;
        }

        let connect_options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode and much faster than
            // FULL; only a power loss can roll back the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(connect_options)
            .await?;
        let store = Store { pool, path };
        if options.run_migrations {
            store.migrate_up(None).await?;
        }
        Ok(store)
    }

    /// A transaction that takes the write lock at its start (`BEGIN IMMEDIATE`). Every write
    /// goes through one: a deferred transaction that reads first and then writes cannot wait
    /// for another writer (SQLite answers "database is locked" at once, without the busy
    /// timeout, when a read transaction cannot be upgraded), while this one waits its turn.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A cheap round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Folds the write-ahead log into the database file, then waits for open connections to
    /// finish and closes the pool. SQLite also checkpoints when its last connection closes,
    /// but sqlx closes connections on their worker threads after `close` returns, so without
    /// the explicit checkpoint a copy taken right after `close` could miss the newest pages.
    pub async fn close(&self) {
        // Best effort: a busy or read-only database keeps its WAL, which SQLite replays on
        // the next open, so nothing is lost when the checkpoint cannot run.
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await;
        self.pool.close().await;
    }

    /// The id of this data set, created on first call with the id and time the caller gives.
    pub async fn instance_id(
        &self,
        new_id: &str,
        created_at_ms: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO instance (id, created_at_ms) SELECT $1, $2 \
             WHERE NOT EXISTS (SELECT 1 FROM instance)",
        )
        .bind(new_id)
        .bind(created_at_ms)
        .execute(&self.pool)
        .await?;
        let id: String = sqlx::query_scalar("SELECT id FROM instance LIMIT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

async fn check_integrity(path: &Path, check: IntegrityCheck) -> Result<(), StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };

    // An empty file is a valid, empty database; anything else must start with the header.
    let mut header = [0u8; 16];
    let length = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    if length > 0 {
        use std::io::Read;
        let read = std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header));
        if read.is_err() || &header != SQLITE_HEADER {
            return Err(corrupt(
                "the file does not start with a SQLite header".to_string(),
            ));
        }
    }

    // Without a write-ahead log beside it the file is the whole database, and `immutable`
    // reads it without creating the -shm/-wal files a read-only WAL connection would. With a
    // log present (an unclean stop), the log's pages belong to the check, so read through it.
    let wal_present = wal_path(path).exists();
    let url = format!("sqlite://{}", path.display());
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(StoreError::Database)?
        .read_only(true)
        .immutable(!wal_present)
        .disable_statement_logging();
    let mut connection = options
        .connect()
        .await
        .map_err(|error| corrupt(error.to_string()))?;
    let pragma = match check {
        IntegrityCheck::Full => "PRAGMA integrity_check(20)",
        _ => "PRAGMA quick_check(20)",
    };
    let rows: Result<Vec<String>, sqlx::Error> =
        sqlx::query_scalar(pragma).fetch_all(&mut connection).await;
    let _ = connection.close().await;
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) => Err(corrupt(rows.join("; "))),
        Err(error) => Err(corrupt(error.to_string())),
    }
}
