//! Uploaded files (OpenAI's Files API), the raw material of vector stores: a tenant's files
//! by id, their bytes in `<data_dir>/files/`, their description in the store. A file's bytes
//! are written to a temporary name, synced and renamed before its row is inserted, so a row
//! never names an incomplete file; a delete removes the row first, then the bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use hearth_store::{FileQuery, FileRow, Store};
use sha2::{Digest, Sha256};

use crate::MemoryError;

/// The directory under the data directory that holds uploaded files' bytes.
pub const FILES_DIRECTORY: &str = "files";
/// The purposes OpenAI's Files API accepts.
pub const FILE_PURPOSES: [&str; 6] = [
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];
/// The most files one list returns.
pub const MAX_FILE_PAGE: usize = 10_000;
/// Longest file name kept, in bytes.
const MAX_FILENAME_BYTES: usize = 512;

/// A stored file's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub created_at_ms: i64,
}

impl From<FileRow> for StoredFile {
    fn from(row: FileRow) -> StoredFile {
        StoredFile {
            id: row.id,
            filename: row.filename,
            purpose: row.purpose,
            bytes: row.bytes.max(0) as u64,
            sha256: row.sha256,
            created_at_ms: row.created_at_ms,
        }
    }
}

/// Which files to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileListRequest {
    pub purpose: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
    /// Newest first (OpenAI's default) when true.
    pub descending: bool,
}

/// A page of files and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePage {
    pub files: Vec<StoredFile>,
    pub has_more: bool,
}

/// The files service.
#[derive(Debug, Clone)]
pub struct Files {
    store: Store,
    directory: PathBuf,
    max_bytes: u64,
    /// All of one tenant's files together; `u64::MAX` for no limit.
    max_bytes_per_tenant: u64,
}

fn not_found(id: &str) -> MemoryError {
    MemoryError::NotFound {
        what: format!("file `{id}`"),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> MemoryError {
    MemoryError::FileIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `id` could be a file id made here (`file-` and 32 hex digits), so it is safe in a
/// path.
fn is_file_id(id: &str) -> bool {
    id.strip_prefix("file-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

impl Files {
    /// Files kept under `data_dir`, each at most `max_bytes`.
    pub fn new(store: Store, data_dir: &Path, max_bytes: u64) -> Files {
        Files {
            store,
            directory: data_dir.join(FILES_DIRECTORY),
            max_bytes,
            max_bytes_per_tenant: u64::MAX,
        }
    }

    /// The service keeping each tenant's files to `max_bytes_per_tenant` together. Uploads
    /// racing each other may pass it by what they carry; it bounds disk use, not billing.
    pub fn with_tenant_limit(mut self, max_bytes_per_tenant: u64) -> Files {
        self.max_bytes_per_tenant = max_bytes_per_tenant;
        self
    }

    /// The largest file accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.directory.join(id)
    }

    /// Stores a file for `tenant_id`: its bytes durable on disk, then its row.
    pub async fn create(
        &self,
        tenant_id: &str,
        filename: &str,
        purpose: &str,
        content: Vec<u8>,
    ) -> Result<StoredFile, MemoryError> {
        if !FILE_PURPOSES.contains(&purpose) {
            return Err(MemoryError::invalid(
                "purpose",
                format!("must be one of {}", FILE_PURPOSES.join(", ")),
            ));
        }
        let filename = filename.trim();
        if filename.is_empty()
            || filename.len() > MAX_FILENAME_BYTES
            || filename.chars().any(char::is_control)
        {
            return Err(MemoryError::invalid(
                "file",
                "the file needs a name of 1 to 512 bytes without control characters",
            ));
        }
        if content.len() as u64 > self.max_bytes {
            return Err(MemoryError::too_large(
                "file",
                format!(
                    "{} bytes, at most {} allowed (memory.max_file_bytes)",
                    content.len(),
                    self.max_bytes
                ),
            ));
        }
        if self.max_bytes_per_tenant != u64::MAX {
            let stored = self.store.file_bytes_of_tenant(tenant_id).await?.max(0) as u64;
            if stored.saturating_add(content.len() as u64) > self.max_bytes_per_tenant {
                return Err(MemoryError::LimitReached {
                    field: "file".to_string(),
                    reason: format!(
                        "this tenant's files take {stored} bytes, and {} more would pass the {} \
                         bytes memory.max_file_bytes_per_tenant allows; delete files first",
                        content.len(),
                        self.max_bytes_per_tenant
                    ),
                });
            }
        }
        let id = format!("file-{}", uuid::Uuid::now_v7().simple());
        let row = FileRow {
            sha256: format!("{:x}", Sha256::digest(&content)),
            id: id.clone(),
            tenant_id: tenant_id.to_string(),
            filename: filename.to_string(),
            purpose: purpose.to_string(),
            bytes: content.len() as i64,
            created_at_ms: crate::collections::now_ms(),
        };
        let directory = self.directory.clone();
        let path = self.path_of(&id);
        crate::collections::blocking(move || write_durably(&directory, &path, &content)).await?;
        if let Err(error) = self.store.insert_file(&row).await {
            let _ = std::fs::remove_file(self.path_of(&id));
            return Err(error.into());
        }
        Ok(row.into())
    }

    /// A tenant's file by id.
    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<StoredFile, MemoryError> {
        if !is_file_id(id) {
            return Err(not_found(id));
        }
        self.store
            .file(tenant_id, id)
            .await?
            .map(StoredFile::from)
            .ok_or_else(|| not_found(id))
    }

    /// A tenant's file with its bytes.
    pub async fn content(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(StoredFile, Vec<u8>), MemoryError> {
        let file = self.get(tenant_id, id).await?;
        let path = self.path_of(&file.id);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| io_error(&path, source))?;
        Ok((file, bytes))
    }

    /// A page of a tenant's files by creation time.
    pub async fn list(
        &self,
        tenant_id: &str,
        request: &FileListRequest,
    ) -> Result<FilePage, MemoryError> {
        crate::collections::within("limit", request.limit, 1..=MAX_FILE_PAGE)?;
        let mut rows = self
            .store
            .files(&FileQuery {
                tenant_id,
                purpose: request.purpose.as_deref(),
                after: request.after.as_deref(),
                limit: request.limit as i64 + 1,
                descending: request.descending,
            })
            .await?;
        let has_more = rows.len() > request.limit;
        rows.truncate(request.limit);
        Ok(FilePage {
            files: rows.into_iter().map(StoredFile::from).collect(),
            has_more,
        })
    }

    /// Deletes a tenant's file: its row, then its bytes.
    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<(), MemoryError> {
        if !is_file_id(id) || !self.store.delete_file(tenant_id, id).await? {
            return Err(not_found(id));
        }
        let path = self.path_of(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_error(&path, source)),
        }
    }
}

impl Files {
    /// Removes what a crash can leave in the files directory: a partly written upload, or the
    /// bytes of a file whose row was never inserted (or was deleted before its bytes were).
    /// Returns how many were removed. Run at start, before uploads are taken.
    pub async fn remove_orphans(&self) -> Result<usize, MemoryError> {
        let mut entries = match tokio::fs::read_dir(&self.directory).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => return Err(io_error(&self.directory, source)),
        };
        // One read of the rows, not one query per file on disk.
        let stored: std::collections::HashSet<String> =
            self.store.file_ids().await?.into_iter().collect();
        let mut removed = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|source| io_error(&self.directory, source))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let orphan = match name.strip_suffix(".partial") {
                Some(id) => is_file_id(id),
                None => is_file_id(&name) && !stored.contains(&name),
            };
            if orphan {
                let path = entry.path();
                tokio::fs::remove_file(&path)
                    .await
                    .map_err(|source| io_error(&path, source))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Writes `content` to `path` through a temporary file that is synced and renamed, then syncs
/// the directory, so the name appears only with the whole content behind it.
fn write_durably(directory: &Path, path: &Path, content: &[u8]) -> Result<(), MemoryError> {
    std::fs::create_dir_all(directory).map_err(|source| io_error(directory, source))?;
    let temporary = path.with_extension("partial");
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(directory)?.sync_all()
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(path, source));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_made_here_name_a_path() {
        assert!(is_file_id("file-0193a1b2c3d47e5f8a9b0c1d2e3f4a5b"));
        assert!(!is_file_id("file-../../etc/passwd"));
        assert!(!is_file_id("file-0193a1b2c3d47e5f8a9b0c1d2e3f4a5"));
        assert!(!is_file_id("0193a1b2c3d47e5f8a9b0c1d2e3f4a5b"));
    }
}
