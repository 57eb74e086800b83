//! The JSON shapes of conversation memory under `/v1/memories/{user}`.

use hearth_memory::Turn;
use serde::Serialize;
use utoipa::ToSchema;

/// One remembered exchange.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnOut {
    /// Always `memory.turn`.
    pub object: &'static str,
    pub id: String,
    /// `User: …` then `Assistant: …`.
    pub text: String,
    /// The model that answered.
    pub model: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Turn> for TurnOut {
    fn from(turn: Turn) -> TurnOut {
        TurnOut {
            object: "memory.turn",
            id: turn.id,
            text: turn.text,
            model: turn.model,
            created_at: turn.at_ms.div_euclid(1000),
        }
    }
}

/// What deleting a user's memory removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForgottenOut {
    /// Always `memory.deleted`.
    pub object: &'static str,
    pub user: String,
    /// Turns deleted.
    pub deleted: usize,
}
