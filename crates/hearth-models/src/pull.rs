//! Pull: fetch a model from a URL, a Hugging Face reference or a local path, verify it, and
//! register it.
//!
//! Downloads stream into `models/partial/<id>.partial` (the id is a hash of the URL) while the
//! sha256 is computed. An interrupted download leaves its partial file behind; the next pull of
//! the same URL asks for the rest with an HTTP `Range` request (guarded by `If-Range` with the
//! first response's validator, so a file that changed upstream is fetched again rather than
//! spliced). A server that ignores `Range` answers 200 with the whole file, and the download
//! starts again from zero. Only a file whose sha256 matches (when one was given) and whose GGUF
//! header reads is moved into `models/blobs/` and registered.
//!
//! Progress events have the shape of Ollama's `/api/pull` stream, so the server can forward
//! them as they are.

use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gguf::{self, GgufMetadata};
use crate::registry::now_ms;
use crate::{
    Manifest, ModelFormat, ModelKind, ModelReference, ModelVersion, ModelsError, Registry, Storage,
};

/// Where `hf:` references resolve unless told otherwise (the CLI passes `HF_ENDPOINT`).
pub const HUGGING_FACE_ENDPOINT: &str = "https://huggingface.co";

/// Progress is reported at most once per this many bytes, plus at the start and the end: often
/// enough for a progress bar, rare enough for an NDJSON stream.
const PROGRESS_STEP_BYTES: u64 = 1024 * 1024;
const READ_BUFFER_BYTES: usize = 1024 * 1024;
/// The safetensors format caps its JSON header at 100 MB.
const MAX_SAFETENSORS_HEADER_BYTES: u64 = 100 * 1024 * 1024;
const SAFETENSORS_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// What to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullSource {
    /// An `http://` or `https://` URL of a GGUF file.
    Url(String),
    /// `hf:owner/repo/path/file.gguf[@revision]`.
    HuggingFace(HuggingFaceFile),
    /// A GGUF file or a safetensors model directory on this machine.
    Local(PathBuf),
}

/// A file in a Hugging Face model repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuggingFaceFile {
    /// `owner/repo`.
    pub repository: String,
    /// The path inside the repository, e.g. `gguf/model-Q4_K_M.gguf`.
    pub file: String,
    /// A branch, tag or commit; `main` when absent.
    pub revision: Option<String>,
}

impl HuggingFaceFile {
    /// The download URL: `{endpoint}/owner/repo/resolve/{revision}/path`.
    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.repository,
            self.revision.as_deref().unwrap_or("main"),
            self.file
        )
    }
}

impl PullSource {
    /// Reads what the user typed: a URL, an `hf:` reference, or else a path.
    pub fn parse(text: &str) -> Result<PullSource, ModelsError> {
        let invalid = |reason: &str| ModelsError::InvalidSource {
            source_text: text.to_string(),
            reason: reason.to_string(),
        };
        if text.starts_with("http://") || text.starts_with("https://") {
            let url = reqwest::Url::parse(text).map_err(|error| invalid(&error.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("the URL has no host"));
            }
            return Ok(PullSource::Url(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("hf:") {
            let expected = "expected hf:owner/repo/path/to/file.gguf[@revision]";
            let (path, revision) = match rest.rsplit_once('@') {
                Some((path, revision)) => (path, Some(revision)),
                None => (rest, None),
            };
            let segments: Vec<&str> = path.split('/').collect();
            let bad_segment = segments.iter().any(|segment| {
                segment.is_empty()
                    || *segment == "."
                    || *segment == ".."
                    || segment.contains(char::is_whitespace)
            });
            if segments.len() < 3 || bad_segment {
                return Err(invalid(expected));
            }
            if let Some(revision) = revision
                && (revision.is_empty() || revision.contains(char::is_whitespace))
            {
                return Err(invalid("the revision after '@' is empty or has spaces"));
            }
            return Ok(PullSource::HuggingFace(HuggingFaceFile {
                repository: segments[..2].join("/"),
                file: segments[2..].join("/"),
                revision: revision.map(str::to_string),
            }));
        }
        if text.contains("://") {
            return Err(invalid("only http:// and https:// URLs can be pulled"));
        }
        if text.is_empty() {
            return Err(invalid("give a URL, an hf: reference or a path"));
        }
        Ok(PullSource::Local(PathBuf::from(text)))
    }

    /// The name a pull registers when none is given: the file (or directory) name without
    /// `.gguf`, lowercased, tag `latest`.
    pub fn default_reference(&self) -> Option<ModelReference> {
        let last = match self {
            PullSource::Url(url) => reqwest::Url::parse(url)
                .ok()?
                .path_segments()?
                .rfind(|segment| !segment.is_empty())?
                .to_string(),
            PullSource::HuggingFace(file) => file.file.rsplit('/').next()?.to_string(),
            PullSource::Local(path) => {
                let path = path.canonicalize().unwrap_or_else(|_| path.clone());
                path.file_name()?.to_string_lossy().into_owned()
            }
        };
        let stem = if last.to_ascii_lowercase().ends_with(".gguf") {
            &last[..last.len() - ".gguf".len()]
        } else {
            &last
        };
        ModelReference::from_file_stem(stem)
    }
}

impl fmt::Display for PullSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullSource::Url(url) => formatter.write_str(url),
            PullSource::HuggingFace(file) => {
                write!(formatter, "hf:{}/{}", file.repository, file.file)?;
                match &file.revision {
                    Some(revision) => write!(formatter, "@{revision}"),
                    None => Ok(()),
                }
            }
            PullSource::Local(path) => write!(formatter, "{}", path.display()),
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The expected sha256 (hex); the pull fails and registers nothing when it differs.
    pub sha256: Option<String>,
    /// Copy a local model into the registry's blobs instead of registering it in place.
    pub copy: bool,
    /// Base URL for `hf:` references.
    pub huggingface_endpoint: String,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            sha256: None,
            copy: false,
            huggingface_endpoint: HUGGING_FACE_ENDPOINT.to_string(),
        }
    }
}

/// One progress event, shaped like a line of Ollama's `/api/pull` stream: `pulling manifest`,
/// `pulling <digest prefix>` (with `total` and `completed` bytes), `verifying sha256 digest`,
/// `writing manifest`, `success`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    pub status: String,
    /// `sha256:<hex>` when the digest is known in advance (`--sha256`).
    pub digest: Option<String>,
    pub total: Option<u64>,
    pub completed: Option<u64>,
}

impl PullProgress {
    fn status(status: &str) -> PullProgress {
        PullProgress {
            status: status.to_string(),
            digest: None,
            total: None,
            completed: None,
        }
    }
}

/// Fetches `source`, verifies it and registers it as `name` (or the name derived from the
/// source), keeping the version it replaces as history. Calls `progress` along the way. The
/// future is `Send` (so `progress` must be too): the server runs pulls on its runtime.
pub async fn pull(
    registry: &Registry,
    source: &PullSource,
    name: Option<&ModelReference>,
    options: &PullOptions,
    mut progress: impl FnMut(&PullProgress) + Send,
) -> Result<Manifest, ModelsError> {
    let source_text = source.to_string();
    let reference = match name {
        Some(reference) => reference.clone(),
        None => source
            .default_reference()
            .ok_or_else(|| ModelsError::CannotDeriveName {
                source_text: source_text.clone(),
            })?,
    };
    let expected = options
        .sha256
        .as_deref()
        .map(normalize_sha256)
        .transpose()?;
    let pull = Pull {
        registry,
        source_text: &source_text,
        expected: expected.as_deref(),
        progress: &mut progress,
    };
    let version = match source {
        PullSource::Url(url) => pull.fetch_url(url).await?,
        PullSource::HuggingFace(file) => {
            pull.fetch_url(&file.url(&options.huggingface_endpoint))
                .await?
        }
        PullSource::Local(path) => pull.take_local_path(path, options.copy).await?,
    };
    progress(&PullProgress::status("writing manifest"));
    let manifest = registry.register(&reference, version)?;
    progress(&PullProgress::status("success"));
    Ok(manifest)
}

fn normalize_sha256(value: &str) -> Result<String, ModelsError> {
    let normalized = value
        .trim()
        .trim_start_matches("sha256:")
        .to_ascii_lowercase();
    if normalized.len() != 64 || !normalized.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ModelsError::InvalidSha256 {
            value: value.to_string(),
        });
    }
    Ok(normalized)
}

/// The state one pull carries through its steps.
struct Pull<'a> {
    registry: &'a Registry,
    source_text: &'a str,
    expected: Option<&'a str>,
    progress: &'a mut (dyn FnMut(&PullProgress) + Send),
}

/// A file written and hashed in one pass.
struct Hashed {
    sha256: String,
    size_bytes: u64,
}

impl Pull<'_> {
    /// `pulling <prefix>`: the expected digest's prefix when known, else the download id's.
    fn report(&mut self, label: &str, total: Option<u64>, completed: u64) {
        (self.progress)(&PullProgress {
            status: format!("pulling {label}"),
            digest: self.expected.map(|hex| format!("sha256:{hex}")),
            total,
            completed: Some(completed),
        });
    }

    async fn fetch_url(mut self, url: &str) -> Result<ModelVersion, ModelsError> {
        (self.progress)(&PullProgress::status("pulling manifest"));
        let id = hex_sha256(url.as_bytes())[..32].to_string();
        let partial = self
            .registry
            .partial_directory()
            .join(format!("{id}.partial"));
        let validator = self
            .registry
            .partial_directory()
            .join(format!("{id}.validator"));
        let label = self.expected.unwrap_or(&id)[..12].to_string();
        let hashed = self.download(url, &partial, &validator, &label).await?;
        let _ = tokio::fs::remove_file(&validator).await;
        self.into_blob(&partial, hashed).await
    }

    /// Downloads `url` into `partial`, resuming what an earlier attempt left there.
    async fn download(
        &mut self,
        url: &str,
        partial: &Path,
        validator_path: &Path,
        label: &str,
    ) -> Result<Hashed, ModelsError> {
        let download_error = |source| ModelsError::Download {
            url: url.to_string(),
            source,
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(download_error)?;
        let mut may_resume = true;
        loop {
            let existing = match tokio::fs::metadata(partial).await {
                Ok(metadata) if may_resume => metadata.len(),
                _ => 0,
            };
            let mut request = client.get(url);
            if existing > 0 {
                request = request.header(RANGE, format!("bytes={existing}-"));
                if let Ok(validator) = tokio::fs::read_to_string(validator_path).await {
                    request = request.header(IF_RANGE, validator.trim());
                }
            }
            let mut response = request.send().await.map_err(download_error)?;
            let status = response.status();
            if existing > 0 && status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                // The partial is as long as the file or longer: it cannot be continued.
                tracing::info!(url, "partial download cannot be resumed; starting over");
                may_resume = false;
                continue;
            }
            if !status.is_success() {
                return Err(ModelsError::HttpStatus {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let content_range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_content_range);
            let resumed = existing > 0
                && status == reqwest::StatusCode::PARTIAL_CONTENT
                && content_range.is_some_and(|(start, _)| start == existing);
            if existing > 0 && status == reqwest::StatusCode::PARTIAL_CONTENT && !resumed {
                tracing::info!(url, "server sent an unexpected range; starting over");
                may_resume = false;
                continue;
            }
            let total = if resumed {
                content_range
                    .and_then(|(_, total)| total)
                    .or_else(|| response.content_length().map(|length| existing + length))
            } else {
                response.content_length()
            };

            let mut hasher = Sha256::new();
            let mut completed: u64 = 0;
            let mut file = if resumed {
                tracing::info!(url, bytes = existing, "resuming download");
                completed = hash_file_into(partial, &mut hasher).await?;
                tokio::fs::OpenOptions::new()
                    .append(true)
                    .open(partial)
                    .await
                    .map_err(ModelsError::io("open", partial))?
            } else {
                if existing > 0 {
                    tracing::info!(url, "server ignored the range request; starting over");
                }
                remember_validator(&response, validator_path).await;
                tokio::fs::File::create(partial)
                    .await
                    .map_err(ModelsError::io("create", partial))?
            };
            self.report(label, total, completed);
            let mut last_reported = completed;
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        file.write_all(&chunk)
                            .await
                            .map_err(ModelsError::io("write", partial))?;
                        hasher.update(&chunk);
                        completed += chunk.len() as u64;
                        if completed - last_reported >= PROGRESS_STEP_BYTES {
                            self.report(label, total, completed);
                            last_reported = completed;
                        }
                    }
                    Ok(None) => break,
                    Err(source) => {
                        // Keep what arrived: the next pull resumes from it.
                        let _ = file.flush().await;
                        let _ = file.sync_all().await;
                        return Err(download_error(source));
                    }
                }
            }
            file.flush()
                .await
                .and(file.sync_all().await)
                .map_err(ModelsError::io("write", partial))?;
            self.report(label, total, completed);
            if let Some(total) = total
                && completed != total
            {
                return Err(ModelsError::Truncated {
                    url: url.to_string(),
                    received: completed,
                    expected: total,
                });
            }
            return Ok(Hashed {
                sha256: format!("{:x}", hasher.finalize()),
                size_bytes: completed,
            });
        }
    }

    /// Checks the expected digest, then the GGUF header, then moves `temporary` into blobs.
    /// Anything that fails the checks is deleted, never registered.
    async fn into_blob(
        self,
        temporary: &Path,
        hashed: Hashed,
    ) -> Result<ModelVersion, ModelsError> {
        (self.progress)(&PullProgress::status("verifying sha256 digest"));
        if let Err(error) = self.check_expected(&hashed.sha256) {
            let _ = tokio::fs::remove_file(temporary).await;
            return Err(error);
        }
        let metadata = match read_gguf(temporary.to_path_buf()).await {
            Ok(metadata) => metadata,
            Err(error) => {
                let _ = tokio::fs::remove_file(temporary).await;
                return Err(name_the_source(error, self.source_text));
            }
        };
        let blob = self.registry.blob_path(&hashed.sha256);
        if tokio::fs::try_exists(&blob).await.unwrap_or(false) {
            // Content-addressed: the same bytes are already there.
            let _ = tokio::fs::remove_file(temporary).await;
        } else {
            tokio::fs::rename(temporary, &blob)
                .await
                .map_err(ModelsError::io("move into place", &blob))?;
        }
        Ok(version_from_gguf(
            &metadata,
            blob,
            Storage::Owned,
            hashed,
            self.source_text,
        ))
    }

    fn check_expected(&self, actual: &str) -> Result<(), ModelsError> {
        match self.expected {
            Some(expected) if expected != actual => Err(ModelsError::ChecksumMismatch {
                source_text: self.source_text.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            }),
            _ => Ok(()),
        }
    }

    async fn take_local_path(
        mut self,
        path: &Path,
        copy: bool,
    ) -> Result<ModelVersion, ModelsError> {
        (self.progress)(&PullProgress::status("pulling manifest"));
        let path = tokio::fs::canonicalize(path)
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => ModelsError::NotAModel {
                    path: path.to_path_buf(),
                    reason: "nothing exists at that path".to_string(),
                },
                _ => ModelsError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source: error,
                },
            })?;
        if path.is_dir() {
            return self.take_safetensors_directory(&path, copy).await;
        }
        if copy {
            let id = hex_sha256(path.as_os_str().as_encoded_bytes())[..32].to_string();
            let temporary = self
                .registry
                .partial_directory()
                .join(format!("{id}.partial"));
            let label = self.expected.unwrap_or(&id)[..12].to_string();
            let hashed = self.copy_and_hash(&path, &temporary, &label).await?;
            return self.into_blob(&temporary, hashed).await;
        }
        let hashed = self.hash_in_place(&path).await?;
        self.check_expected(&hashed.sha256)?;
        let metadata = read_gguf(path.clone()).await?;
        Ok(version_from_gguf(
            &metadata,
            path,
            Storage::InPlace,
            hashed,
            self.source_text,
        ))
    }

    /// Hashes a file that stays where it is, reporting progress as verification.
    async fn hash_in_place(&mut self, path: &Path) -> Result<Hashed, ModelsError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(ModelsError::io("open", path))?;
        let total = file
            .metadata()
            .await
            .map_err(ModelsError::io("read", path))?
            .len();
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; READ_BUFFER_BYTES];
        let mut completed: u64 = 0;
        let mut last_reported: u64 = 0;
        let report = |completed: u64, progress: &mut (dyn FnMut(&PullProgress) + Send)| {
            progress(&PullProgress {
                status: "verifying sha256 digest".to_string(),
                digest: None,
                total: Some(total),
                completed: Some(completed),
            });
        };
        report(0, self.progress);
        loop {
            let read = file
                .read(&mut buffer)
                .await
                .map_err(ModelsError::io("read", path))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            completed += read as u64;
            if completed - last_reported >= PROGRESS_STEP_BYTES {
                report(completed, self.progress);
                last_reported = completed;
            }
        }
        report(completed, self.progress);
        Ok(Hashed {
            sha256: format!("{:x}", hasher.finalize()),
            size_bytes: completed,
        })
    }

    /// Copies `source` to `destination`, hashing on the way.
    async fn copy_and_hash(
        &mut self,
        source: &Path,
        destination: &Path,
        label: &str,
    ) -> Result<Hashed, ModelsError> {
        let mut input = tokio::fs::File::open(source)
            .await
            .map_err(ModelsError::io("open", source))?;
        let total = input
            .metadata()
            .await
            .map_err(ModelsError::io("read", source))?
            .len();
        let mut output = tokio::fs::File::create(destination)
            .await
            .map_err(ModelsError::io("create", destination))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; READ_BUFFER_BYTES];
        let mut completed: u64 = 0;
        self.report(label, Some(total), 0);
        loop {
            let read = input
                .read(&mut buffer)
                .await
                .map_err(ModelsError::io("read", source))?;
            if read == 0 {
                break;
            }
            output
                .write_all(&buffer[..read])
                .await
                .map_err(ModelsError::io("write", destination))?;
            hasher.update(&buffer[..read]);
            completed += read as u64;
            self.report(label, Some(total), completed);
        }
        output
            .flush()
            .await
            .and(output.sync_all().await)
            .map_err(ModelsError::io("write", destination))?;
        Ok(Hashed {
            sha256: format!("{:x}", hasher.finalize()),
            size_bytes: completed,
        })
    }

    /// A sentence-embedding model as Hugging Face ships it: `config.json`, `tokenizer.json`,
    /// `model.safetensors`. Its sha256 is that of `model.safetensors`.
    async fn take_safetensors_directory(
        mut self,
        directory: &Path,
        copy: bool,
    ) -> Result<ModelVersion, ModelsError> {
        let not_a_model = |reason: String| ModelsError::NotAModel {
            path: directory.to_path_buf(),
            reason,
        };
        let mut size_bytes = 0;
        for name in SAFETENSORS_FILES {
            match tokio::fs::metadata(directory.join(name)).await {
                Ok(metadata) if metadata.is_file() => size_bytes += metadata.len(),
                _ => return Err(not_a_model(format!("{name} is missing"))),
            }
        }
        let config_path = directory.join("config.json");
        let config_text = tokio::fs::read_to_string(&config_path)
            .await
            .map_err(ModelsError::io("read", &config_path))?;
        let config: serde_json::Value = serde_json::from_str(&config_text)
            .map_err(|error| not_a_model(format!("config.json is not valid JSON: {error}")))?;
        let weights = directory.join("model.safetensors");
        let parameter_count = safetensors_parameter_count(&weights)
            .await
            .map_err(|reason| not_a_model(format!("model.safetensors: {reason}")))?;
        let hashed = self.hash_in_place(&weights).await?;
        self.check_expected(&hashed.sha256)?;

        let (path, storage) = if copy {
            let blob = self.registry.blob_path(&hashed.sha256);
            if !tokio::fs::try_exists(&blob).await.unwrap_or(false) {
                let temporary = self.registry.temporary_path("dir");
                tokio::fs::create_dir_all(&temporary)
                    .await
                    .map_err(ModelsError::io("create", &temporary))?;
                for name in SAFETENSORS_FILES {
                    let target = temporary.join(name);
                    tokio::fs::copy(directory.join(name), &target)
                        .await
                        .map_err(ModelsError::io("copy to", &target))?;
                }
                tokio::fs::rename(&temporary, &blob)
                    .await
                    .map_err(ModelsError::io("move into place", &blob))?;
            }
            (blob, Storage::Owned)
        } else {
            (directory.to_path_buf(), Storage::InPlace)
        };
        let number = |key: &str| config.get(key).and_then(serde_json::Value::as_u64);
        Ok(ModelVersion {
            kind: ModelKind::Embedding,
            format: ModelFormat::Safetensors,
            path,
            storage,
            sha256: hashed.sha256,
            size_bytes,
            family: config
                .get("model_type")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            quantization: config
                .get("torch_dtype")
                .and_then(serde_json::Value::as_str)
                .map(torch_dtype_name),
            context_length: number("max_position_embeddings"),
            embedding_length: number("hidden_size"),
            parameter_count: Some(parameter_count),
            size_label: None,
            chat_template: None,
            display_name: None,
            finetune: None,
            source: self.source_text.to_string(),
            created_at_ms: now_ms(),
        })
    }
}

fn version_from_gguf(
    metadata: &GgufMetadata,
    path: PathBuf,
    storage: Storage,
    hashed: Hashed,
    source_text: &str,
) -> ModelVersion {
    ModelVersion {
        kind: if metadata.is_embedding_model() {
            ModelKind::Embedding
        } else {
            ModelKind::Chat
        },
        format: ModelFormat::Gguf,
        path,
        storage,
        sha256: hashed.sha256,
        size_bytes: hashed.size_bytes,
        family: metadata.architecture().map(str::to_string),
        quantization: metadata.quantization(),
        context_length: metadata.context_length(),
        embedding_length: metadata.embedding_length(),
        parameter_count: Some(metadata.parameter_count).filter(|count| *count > 0),
        size_label: metadata.size_label().map(str::to_string),
        chat_template: metadata.chat_template().map(str::to_string),
        display_name: metadata.name().map(str::to_string),
        finetune: metadata.string("general.finetune").map(str::to_string),
        source: source_text.to_string(),
        created_at_ms: now_ms(),
    }
}

/// Reads GGUF metadata on the blocking pool: it is synchronous file I/O.
async fn read_gguf(path: PathBuf) -> Result<GgufMetadata, ModelsError> {
    let path_for_error = path.clone();
    tokio::task::spawn_blocking(move || gguf::read_metadata(&path))
        .await
        .map_err(|error| ModelsError::Io {
            action: "read",
            path: path_for_error,
            source: std::io::Error::other(error),
        })?
}

/// A downloaded file that fails to parse is described by its URL, not by the partial file
/// the user never named.
fn name_the_source(error: ModelsError, source_text: &str) -> ModelsError {
    match error {
        ModelsError::NotGguf { reason, .. } => ModelsError::NotGguf {
            path: PathBuf::from(source_text),
            reason,
        },
        ModelsError::MalformedGguf { reason, .. } => ModelsError::MalformedGguf {
            path: PathBuf::from(source_text),
            reason,
        },
        other => other,
    }
}

/// Feeds an existing file to `hasher`; returns its length.
async fn hash_file_into(path: &Path, hasher: &mut Sha256) -> Result<u64, ModelsError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(ModelsError::io("open", path))?;
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    let mut length = 0;
    loop {
        let read = file
            .read(&mut buffer)
            .await
            .map_err(ModelsError::io("read", path))?;
        if read == 0 {
            return Ok(length);
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
}

/// Saves the response's strong `ETag` (or else `Last-Modified`) for a later `If-Range`; a weak
/// ETag cannot guard a range request, so none is saved then.
async fn remember_validator(response: &reqwest::Response, validator_path: &Path) {
    let headers = response.headers();
    let validator = headers
        .get(ETAG)
        .and_then(|value| value.to_str().ok())
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| {
            headers
                .get(LAST_MODIFIED)
                .and_then(|value| value.to_str().ok())
        });
    let _ = match validator {
        Some(validator) => tokio::fs::write(validator_path, validator).await,
        None => tokio::fs::remove_file(validator_path).await,
    };
}

/// `bytes <start>-<end>/<total or *>` → (start, total).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// Reads the JSON header of a safetensors file and adds up the elements of its tensors.
async fn safetensors_parameter_count(path: &Path) -> Result<u64, String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| error.to_string())?;
    let file_length = file
        .metadata()
        .await
        .map_err(|error| error.to_string())?
        .len();
    let header_length = file
        .read_u64_le()
        .await
        .map_err(|_| "the file is too short for a safetensors header".to_string())?;
    if header_length > MAX_SAFETENSORS_HEADER_BYTES || header_length + 8 > file_length {
        return Err(format!(
            "the header claims {header_length} bytes, which does not fit"
        ));
    }
    let mut header = vec![0u8; header_length as usize];
    file.read_exact(&mut header)
        .await
        .map_err(|error| error.to_string())?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|error| format!("the header is not a JSON object: {error}"))?;
    let mut count: u64 = 0;
    for (name, tensor) in &header {
        if name == "__metadata__" {
            continue;
        }
        let shape = tensor
            .get("shape")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("tensor {name:?} has no shape"))?;
        let elements = shape
            .iter()
            .map(|dimension| dimension.as_u64().unwrap_or(0))
            .product::<u64>();
        count = count.saturating_add(elements);
    }
    Ok(count)
}

/// `torch_dtype` from config.json in the naming the GGUF quantizations use.
fn torch_dtype_name(dtype: &str) -> String {
    match dtype {
        "float32" => "F32".to_string(),
        "float16" => "F16".to_string(),
        "bfloat16" => "BF16".to_string(),
        other => other.to_string(),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_prefix() {
        assert_eq!(
            PullSource::parse("https://example.com/m.gguf").unwrap(),
            PullSource::Url("https://example.com/m.gguf".to_string())
        );
        assert_eq!(
            PullSource::parse("hf:unsloth/gemma-3-270m-it-GGUF/q4/gemma.Q4_K_M.gguf@v1").unwrap(),
            PullSource::HuggingFace(HuggingFaceFile {
                repository: "unsloth/gemma-3-270m-it-GGUF".to_string(),
                file: "q4/gemma.Q4_K_M.gguf".to_string(),
                revision: Some("v1".to_string()),
            })
        );
        assert_eq!(
            PullSource::parse("./models/x.gguf").unwrap(),
            PullSource::Local(PathBuf::from("./models/x.gguf"))
        );
        for bad in [
            "hf:owner/file.gguf",
            "hf:owner//x.gguf",
            "hf:o/r/../x.gguf",
            "hf:o/r/x.gguf@",
            "ftp://example.com/x.gguf",
            "https://",
            "",
        ] {
            let error = PullSource::parse(bad).expect_err(bad).to_string();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn hugging_face_urls_default_to_main() {
        let PullSource::HuggingFace(file) = PullSource::parse("hf:o/r/x.gguf").unwrap() else {
            panic!("not an hf source");
        };
        assert_eq!(
            file.url("https://huggingface.co/"),
            "https://huggingface.co/o/r/resolve/main/x.gguf"
        );
    }

    #[test]
    fn default_names_come_from_the_file_name() {
        let cases = [
            (
                "https://example.com/files/Gemma-3-270M-Q4_K_M.gguf?download=1",
                Some("gemma-3-270m-q4_k_m:latest"),
            ),
            ("hf:o/r/sub/tiny.GGUF", Some("tiny:latest")),
            (
                "/nonexistent/dir/all-MiniLM-L6-v2",
                Some("all-minilm-l6-v2:latest"),
            ),
            ("https://example.com/", None),
        ];
        for (text, expected) in cases {
            let derived = PullSource::parse(text)
                .unwrap()
                .default_reference()
                .map(|reference| reference.to_string());
            assert_eq!(derived.as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn sha256_values_are_normalized() {
        let hex = "A5FD3B62230AA5EC60212297DC9D20EAA70578AC519E00D93A17E44C087A6818";
        assert_eq!(
            normalize_sha256(&format!("sha256:{hex}")).unwrap(),
            hex.to_lowercase()
        );
        assert!(normalize_sha256("abc").is_err());
    }
}
