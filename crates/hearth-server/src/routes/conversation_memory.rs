//! Conversation memory per user under `/v1/memories/{user}`: what `memory.remember` kept for a
//! user, exported a page at a time or deleted at once (the data-safety requests an app passes
//! on for its users). A key issued to a user reaches only that user's memory; other keys of
//! the tenant name the user in the path.

use axum::Json;
use axum::extract::{Path, State};
use hearth_memory::{Conversations, PageRequest};

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::gate::{CallerUser, TenantScope};
use crate::state::AppState;
use crate::wire::conversation_memory::{ForgottenOut, TurnOut};
use crate::wire::memory::{PageQuery, Paged};

const DEFAULT_PAGE: usize = 100;

fn conversations(state: &AppState) -> Result<Conversations, ApiError> {
    state.conversations.clone().ok_or_else(|| {
        ApiError::unavailable("conversation memory is not configured on this server")
    })
}

/// The turns remembered for a user, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/memories/{user}", tag = "memory",
    params(("user" = String, Path, description = "The user whose memory this is"),
           ("after" = Option<String>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "A page of remembered turns", body = Paged<TurnOut>),
        (status = 400, description = "A bad user or limit", body = ErrorBody),
        (status = 403, description = "The key belongs to another user", body = ErrorBody),
        (status = 503, description = "Conversation memory is not configured", body = ErrorBody)))]
pub async fn export_memory(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller_user: CallerUser,
    Path(user): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<TurnOut>>, ApiError> {
    let user = caller_user.memory_user(Some(&user), "user")?;
    let page = PageRequest {
        after: query.after,
        limit: query.limit.unwrap_or(DEFAULT_PAGE),
    };
    let turns = conversations(&state)?.export(&tenant, &user, &page).await?;
    Ok(Json(Paged::of(turns, TurnOut::from)))
}

/// Deletes every turn remembered for a user.
#[utoipa::path(delete, path = "/v1/memories/{user}", tag = "memory",
    params(("user" = String, Path, description = "The user whose memory this is")),
    responses(
        (status = 200, description = "How many turns were deleted", body = ForgottenOut),
        (status = 400, description = "A bad user", body = ErrorBody),
        (status = 403, description = "The key belongs to another user", body = ErrorBody),
        (status = 503, description = "Conversation memory is not configured", body = ErrorBody)))]
pub async fn forget_memory(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller_user: CallerUser,
    Path(user): Path<String>,
) -> Result<Json<ForgottenOut>, ApiError> {
    let user = caller_user.memory_user(Some(&user), "user")?;
    let deleted = conversations(&state)?.forget(&tenant, &user).await?;
    tracing::info!(deleted, "a user's conversation memory was deleted");
    Ok(Json(ForgottenOut {
        object: "memory.deleted",
        user,
        deleted,
    }))
}
