//! The JSON shapes of OpenAI's Files API (`/v1/files`).

use hearth_memory::StoredFile;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/files`, a multipart form.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the form; the handler reads its parts as they come.
pub struct FileUpload {
    /// The file, with its name.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// `assistants`, `batch`, `fine-tune`, `vision`, `user_data` or `evals`.
    pub purpose: String,
}

/// A file, as OpenAI describes one.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileOut {
    pub id: String,
    /// Always `file`.
    pub object: &'static str,
    pub bytes: u64,
    /// Unix seconds.
    pub created_at: i64,
    pub filename: String,
    pub purpose: String,
    /// Always `processed`: a file is stored whole before it is answered.
    pub status: &'static str,
    pub expires_at: Option<i64>,
    pub status_details: Option<String>,
}

impl From<StoredFile> for FileOut {
    fn from(file: StoredFile) -> FileOut {
        FileOut {
            object: "file",
            bytes: file.bytes,
            created_at: file.created_at_ms.div_euclid(1000),
            filename: file.filename,
            purpose: file.purpose,
            status: "processed",
            expires_at: None,
            status_details: None,
            id: file.id,
        }
    }
}

/// `GET /v1/files` query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    pub purpose: Option<String>,
    /// 1–10000; default 10000.
    pub limit: Option<usize>,
    /// `asc` or `desc` by creation time; default `desc`.
    pub order: Option<Order>,
    /// A file id: the page starts after it.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

/// A page of files, OpenAI's cursor list.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<FileOut>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// A deleted file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileDeleted {
    pub id: String,
    /// Always `file`.
    pub object: &'static str,
    pub deleted: bool,
}
