//! The audit trail as the tenant-scoped routes (jobs, prompts, flags, experiments) write it:
//! one entry per change, in the changed thing's tenant, when the server has a gateway.

use crate::error::ApiError;
use crate::gate::INSTANCE_SCOPE;
use crate::state::AppState;

/// Records `action` on `target` by `actor` in `tenant`'s part of the audit trail (the
/// instance's own for its scope).
pub(crate) async fn audit(
    state: &AppState,
    actor: &hearth_gateway::Actor,
    tenant: &str,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    if let Some(gateway) = &state.gateway {
        let tenant = (tenant != INSTANCE_SCOPE).then_some(tenant);
        gateway
            .service
            .audit(
                actor,
                action,
                tenant,
                Some(target.to_string()),
                detail,
                hearth_time::now_ms(),
            )
            .await?;
    }
    Ok(())
}
