-- Feature flags per tenant. The definition is JSON (the flags crate owns its shape); `source`
-- says whether configuration or the API defined it, so a reload replaces configuration's
-- flags without touching the API's.
CREATE TABLE flags (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    definition TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
