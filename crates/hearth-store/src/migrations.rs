//! Versioned schema migrations, embedded in the binary, each with an up and a down script.
//! sqlx keeps the applied set (with checksums) in `_sqlx_migrations`; stepping up or down to a
//! given version is ours, since sqlx only runs everything up or undoes down to a target.

use sqlx::migrate::{Migrate, Migration, Migrator};

use crate::error::StoreError;
use crate::store::Store;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// One known migration and whether this database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

fn up_migrations() -> impl DoubleEndedIterator<Item = &'static Migration> {
    MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
}

fn known_versions() -> String {
    up_migrations()
        .map(|migration| migration.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The known migrations in order, each marked applied or pending.
    pub async fn migration_status(&self) -> Result<Vec<MigrationState>, StoreError> {
        let applied = self.applied_versions().await?;
        Ok(up_migrations()
            .map(|migration| MigrationState {
                version: migration.version,
                description: migration.description.to_string(),
                applied: applied.contains(&migration.version),
            })
            .collect())
    }

    /// Applies pending migrations in order, up to and including `to` (all when `None`).
    /// Returns the versions applied.
    pub async fn migrate_up(&self, to: Option<i64>) -> Result<Vec<i64>, StoreError> {
        if let Some(version) = to {
            self.require_known(version)?;
        }
        let mut connection = self.pool.acquire().await?;
        connection.ensure_migrations_table().await?;
        if let Some(version) = connection.dirty_version().await? {
            return Err(sqlx::migrate::MigrateError::Dirty(version).into());
        }
        let applied = connection.list_applied_migrations().await?;
        self.refuse_newer_schema(applied.iter().map(|migration| migration.version))?;
        let mut done = Vec::new();
        for migration in up_migrations() {
            if to.is_some_and(|target| migration.version > target) {
                break;
            }
            match applied.iter().find(|row| row.version == migration.version) {
                Some(row) if row.checksum != migration.checksum => {
                    return Err(
                        sqlx::migrate::MigrateError::VersionMismatch(migration.version).into(),
                    );
                }
                Some(_) => {}
                None => {
                    connection.apply(migration).await?;
                    tracing::info!(version = migration.version, description = %migration.description, "migration applied");
                    done.push(migration.version);
                }
            }
        }
        Ok(done)
    }

    /// Reverts applied migrations newer than `to`, newest first; with `None`, reverts only the
    /// newest one. Returns the versions reverted.
    pub async fn migrate_down(&self, to: Option<i64>) -> Result<Vec<i64>, StoreError> {
        if let Some(version) = to.filter(|version| *version != 0) {
            self.require_known(version)?;
        }
        let mut connection = self.pool.acquire().await?;
        connection.ensure_migrations_table().await?;
        let applied: Vec<i64> = connection
            .list_applied_migrations()
            .await?
            .iter()
            .map(|migration| migration.version)
            .collect();
        let target = match to {
            Some(version) => version,
            None => {
                let mut versions = applied.clone();
                versions.sort_unstable();
                match versions.len() {
                    0 => return Ok(Vec::new()),
                    1 => 0,
                    n => versions[n - 2],
                }
            }
        };
        let mut done = Vec::new();
        for migration in MIGRATOR.iter().rev().filter(|migration| {
            migration.migration_type.is_down_migration()
                && migration.version > target
                && applied.contains(&migration.version)
        }) {
            if migration.version == crate::memory_text::MEMORY_MIGRATION {
                // The per-collection keyword tables are made at run time, so the migration's
                // own SQL cannot name them.
                crate::memory_text::drop_all_text_indexes(&mut connection).await?;
            }
            connection.revert(migration).await?;
            tracing::info!(version = migration.version, description = %migration.description, "migration reverted");
            done.push(migration.version);
        }
        Ok(done)
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        connection.ensure_migrations_table().await?;
        Ok(connection
            .list_applied_migrations()
            .await?
            .iter()
            .map(|migration| migration.version)
            .collect())
    }

    fn require_known(&self, version: i64) -> Result<(), StoreError> {
        if up_migrations().any(|migration| migration.version == version) {
            Ok(())
        } else {
            Err(StoreError::UnknownVersion {
                version,
                known: known_versions(),
            })
        }
    }

    fn refuse_newer_schema(&self, applied: impl Iterator<Item = i64>) -> Result<(), StoreError> {
        let known = up_migrations()
            .map(|migration| migration.version)
            .max()
            .unwrap_or(0);
        match applied.max() {
            Some(newest) if newest > known => Err(StoreError::SchemaTooNew {
                applied: newest,
                known,
            }),
            _ => Ok(()),
        }
    }
}
