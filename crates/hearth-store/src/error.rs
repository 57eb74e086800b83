//! Errors from the store. Corruption is its own variant because the right response to it is
//! to stop and tell the operator, not to retry.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "database {path} failed its integrity check: {problem}. Hearth did not modify it. \
         Restore it from a backup, or move it aside to start with an empty database"
    )]
    Corrupt { path: PathBuf, problem: String },

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    #[error("unknown migration version {version}; known versions: {known}")]
    UnknownVersion { version: i64, known: String },

    #[error(
        "database schema version {applied} is newer than this binary knows ({known}); \
         upgrade hearth or restore a matching backup"
    )]
    SchemaTooNew { applied: i64, known: i64 },

    /// A caller passed a value the store cannot use (a bug in the caller, not bad input).
    #[error("{0}")]
    Invalid(String),
}
