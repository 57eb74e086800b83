//! The registry: manifests and blobs under `<data_dir>/models/`, and the operations on them
//! (list, show, register, copy, remove, rollback).
//!
//! Layout:
//!
//! ```text
//! models/
//!   manifests/[namespace/]name@tag.json   one per name:tag, current version + previous ones
//!   blobs/sha256-<hex>                      owned weights, content-addressed
//!   partial/<id>.partial                    downloads in progress, resumable
//!   tmp/                                    manifests being written, renamed into place
//! ```
//!
//! Every manifest write goes to `tmp/` first and is renamed over the old file, so a crash
//! leaves either the old manifest or the new one, never half of one. Operations are plain
//! blocking file I/O on small files; two processes changing the same name at the same instant
//! can lose one of the changes (there is no lock yet).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::manifest::{ManifestFile, SCHEMA_VERSION};
use crate::{Manifest, ModelReference, ModelVersion, ModelsError, Storage};

/// A handle on `<data_dir>/models/`. Cheap to clone; holds no open files.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
    /// Manifests already parsed, by path, with the stamp of the file they came from. Writes
    /// rename a new file into place, so a changed manifest always has a new stamp; `show` costs
    /// one `stat` instead of a read and a parse on every request.
    parsed: Arc<Mutex<HashMap<PathBuf, (FileStamp, Manifest)>>>,
}

/// What tells one version of a manifest file from another: the rename that replaces it gives a
/// new inode, and a new modification time and length with it.
type FileStamp = (u64, Option<SystemTime>, u64);

fn file_stamp(metadata: &std::fs::Metadata) -> FileStamp {
    (metadata.ino(), metadata.modified().ok(), metadata.len())
}

/// What `remove` and `rollback` took away.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The manifest as it was before the change.
    pub manifest: Manifest,
    /// Owned blobs deleted because no manifest refers to them any more.
    pub deleted_blobs: Vec<PathBuf>,
}

impl Registry {
    /// Opens (creating when needed) the registry in `<data_dir>/models`.
    pub fn open(data_dir: &Path) -> Result<Registry, ModelsError> {
        let registry = Registry {
            root: data_dir.join("models"),
            parsed: Arc::default(),
        };
        for directory in ["manifests", "blobs", "partial", "tmp"] {
            let path = registry.root.join(directory);
            std::fs::create_dir_all(&path).map_err(ModelsError::io("create", path))?;
        }
        Ok(registry)
    }

    /// The models directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the owned blob with this sha256 lives (whether or not it exists).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(format!("sha256-{sha256}"))
    }

    pub(crate) fn partial_directory(&self) -> PathBuf {
        self.root.join("partial")
    }

    fn manifest_path(&self, reference: &ModelReference) -> PathBuf {
        // Names and tags cannot contain '@', so `name@tag` never collides, and a namespace
        // becomes a directory beside the un-namespaced manifests.
        self.root
            .join("manifests")
            .join(format!("{}@{}.json", reference.name(), reference.tag()))
    }

    /// Every registered model, sorted by name and tag. A manifest that cannot be read is
    /// logged and left out, so one damaged file does not hide the others.
    pub fn list(&self) -> Result<Vec<Manifest>, ModelsError> {
        let mut manifests = Vec::new();
        for path in self.manifest_files()? {
            match self.read_manifest(&path) {
                Ok(manifest) => manifests.push(manifest),
                Err(error) => tracing::warn!(%error, "skipping an unreadable model manifest"),
            }
        }
        manifests.sort_by(|left, right| left.reference.cmp(&right.reference));
        Ok(manifests)
    }

    /// The manifest of one model.
    pub fn show(&self, reference: &ModelReference) -> Result<Manifest, ModelsError> {
        let path = self.manifest_path(reference);
        let stamp = match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => file_stamp(&metadata),
            _ => return Err(ModelsError::NotFound(reference.to_string())),
        };
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, manifest)) = parsed.get(&path)
            && *cached == stamp
        {
            return Ok(manifest.clone());
        }
        let manifest = self.read_manifest(&path)?;
        parsed.insert(path, (stamp, manifest.clone()));
        Ok(manifest)
    }

    /// Makes `version` the current version of `reference`. The version it replaces is kept as
    /// the previous one, unless it is the same file (pulling the same thing twice adds no
    /// history).
    pub fn register(
        &self,
        reference: &ModelReference,
        version: ModelVersion,
    ) -> Result<Manifest, ModelsError> {
        let manifest = match self.show(reference) {
            Ok(mut manifest) => {
                let same_file = manifest.current.sha256 == version.sha256
                    && manifest.current.path == version.path;
                let replaced = std::mem::replace(&mut manifest.current, version);
                if !same_file {
                    manifest.previous.insert(0, replaced);
                }
                manifest
            }
            Err(ModelsError::NotFound(_)) => Manifest {
                reference: reference.clone(),
                current: version,
                previous: Vec::new(),
            },
            Err(error) => return Err(error),
        };
        self.write_manifest(&manifest)?;
        tracing::info!(model = %reference, sha256 = %manifest.current.sha256, "model registered");
        Ok(manifest)
    }

    /// Gives the current version of `source` a second name, like `ollama cp`: both point at
    /// the same file. An existing `destination` keeps its current version as history.
    pub fn copy(
        &self,
        source: &ModelReference,
        destination: &ModelReference,
    ) -> Result<Manifest, ModelsError> {
        let mut version = self.show(source)?.current;
        version.created_at_ms = now_ms();
        self.register(destination, version)
    }

    /// Removes a model and all its versions, then deletes the owned blobs nothing else
    /// refers to. Files registered in place are never deleted.
    pub fn remove(&self, reference: &ModelReference) -> Result<Removed, ModelsError> {
        let manifest = self.show(reference)?;
        let path = self.manifest_path(reference);
        std::fs::remove_file(&path).map_err(ModelsError::io("remove", &path))?;
        tracing::info!(model = %reference, "model removed");
        let deleted_blobs = self.collect_garbage(manifest.versions());
        Ok(Removed {
            manifest,
            deleted_blobs,
        })
    }

    /// Drops the current version and makes the previous one current again.
    pub fn rollback(&self, reference: &ModelReference) -> Result<Removed, ModelsError> {
        let before = self.show(reference)?;
        if before.previous.is_empty() {
            return Err(ModelsError::NoPreviousVersion(reference.to_string()));
        }
        let mut after = before.clone();
        after.current = after.previous.remove(0);
        self.write_manifest(&after)?;
        tracing::info!(model = %reference, sha256 = %after.current.sha256, "model rolled back");
        let deleted_blobs = self.collect_garbage(std::iter::once(&before.current));
        Ok(Removed {
            manifest: before,
            deleted_blobs,
        })
    }

    /// Deletes the owned blobs among `dropped` that no manifest refers to any more. Best
    /// effort: when any manifest cannot be read, nothing is deleted, since that manifest might
    /// be the one that still needs the blob.
    fn collect_garbage<'a>(&self, dropped: impl Iterator<Item = &'a ModelVersion>) -> Vec<PathBuf> {
        let candidates: Vec<&ModelVersion> = dropped
            .filter(|version| version.storage == Storage::Owned)
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut referenced = Vec::new();
        let files = match self.manifest_files() {
            Ok(files) => files,
            Err(error) => {
                tracing::warn!(%error, "keeping blobs: cannot list manifests");
                return Vec::new();
            }
        };
        for path in files {
            match self.read_manifest(&path) {
                Ok(manifest) => referenced.extend(
                    manifest
                        .versions()
                        .filter(|version| version.storage == Storage::Owned)
                        .map(|version| version.path.clone()),
                ),
                Err(error) => {
                    tracing::warn!(%error, "keeping blobs: a manifest is unreadable");
                    return Vec::new();
                }
            }
        }
        let mut deleted = Vec::new();
        for version in candidates {
            if referenced.contains(&version.path) || deleted.contains(&version.path) {
                continue;
            }
            let result = if version.path.is_dir() {
                std::fs::remove_dir_all(&version.path)
            } else {
                std::fs::remove_file(&version.path)
            };
            match result {
                Ok(()) => {
                    tracing::info!(blob = %version.path.display(), "unreferenced blob deleted");
                    deleted.push(version.path.clone());
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, blob = %version.path.display(), "cannot delete blob")
                }
            }
        }
        deleted
    }

    /// Paths of all manifest files: `manifests/*.json` and `manifests/<namespace>/*.json`.
    fn manifest_files(&self) -> Result<Vec<PathBuf>, ModelsError> {
        let mut files = Vec::new();
        let directory = self.root.join("manifests");
        for entry in read_directory(&directory)? {
            if entry.is_dir() {
                files.extend(
                    read_directory(&entry)?
                        .into_iter()
                        .filter(|path| is_manifest_file(path)),
                );
            } else if is_manifest_file(&entry) {
                files.push(entry);
            }
        }
        Ok(files)
    }

    fn read_manifest(&self, path: &Path) -> Result<Manifest, ModelsError> {
        let text = std::fs::read_to_string(path).map_err(ModelsError::io("read", path))?;
        let corrupt = |reason: String| ModelsError::CorruptManifest {
            path: path.to_path_buf(),
            reason,
        };
        let file: ManifestFile =
            serde_json::from_str(&text).map_err(|error| corrupt(error.to_string()))?;
        if file.schema_version != SCHEMA_VERSION {
            return Err(corrupt(format!(
                "schema version {} is not {SCHEMA_VERSION}; written by another Hearth version?",
                file.schema_version
            )));
        }
        let reference = ModelReference::parse(&format!("{}:{}", file.name, file.tag))
            .map_err(|error| corrupt(error.to_string()))?;
        let resolve = |mut version: ModelVersion| {
            if version.path.is_relative() {
                version.path = self.root.join(&version.path);
            }
            version
        };
        Ok(Manifest {
            reference,
            current: resolve(file.current),
            previous: file.previous.into_iter().map(resolve).collect(),
        })
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), ModelsError> {
        let relative = |version: &ModelVersion| {
            let mut version = version.clone();
            if version.storage == Storage::Owned
                && let Ok(inside) = version.path.strip_prefix(&self.root)
            {
                version.path = inside.to_path_buf();
            }
            version
        };
        let file = ManifestFile {
            schema_version: SCHEMA_VERSION,
            name: manifest.reference.name().to_string(),
            tag: manifest.reference.tag().to_string(),
            current: relative(&manifest.current),
            previous: manifest.previous.iter().map(relative).collect(),
        };
        let mut text =
            serde_json::to_string_pretty(&file).map_err(|error| ModelsError::CorruptManifest {
                path: self.manifest_path(&manifest.reference),
                reason: error.to_string(),
            })?;
        text.push('\n');
        let path = self.manifest_path(&manifest.reference);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(ModelsError::io("create", parent))?;
        }
        write_atomically(&self.temporary_path("json"), &path, text.as_bytes())
    }

    /// A fresh path in `tmp/`, unique within this process and across processes.
    pub(crate) fn temporary_path(&self, extension: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!(
            "{}-{count}-{}.{extension}",
            std::process::id(),
            now_ms()
        ))
    }
}

/// Writes `bytes` to `temporary`, flushes it to disk, and renames it over `destination`.
fn write_atomically(temporary: &Path, destination: &Path, bytes: &[u8]) -> Result<(), ModelsError> {
    use std::io::Write;
    let mut file =
        std::fs::File::create(temporary).map_err(ModelsError::io("create", temporary))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(ModelsError::io("write", temporary))?;
    drop(file);
    std::fs::rename(temporary, destination).map_err(|source| {
        let _ = std::fs::remove_file(temporary);
        ModelsError::Io {
            action: "replace",
            path: destination.to_path_buf(),
            source,
        }
    })
}

fn read_directory(directory: &Path) -> Result<Vec<PathBuf>, ModelsError> {
    let entries = std::fs::read_dir(directory).map_err(ModelsError::io("list", directory))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(ModelsError::io("list", directory))?.path());
    }
    Ok(paths)
}

fn is_manifest_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|extension| extension == "json")
}

/// Milliseconds since the Unix epoch: the registry's timestamps.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
