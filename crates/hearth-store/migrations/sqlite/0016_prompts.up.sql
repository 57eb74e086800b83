-- Prompt templates: immutable numbered versions (the prompts crate owns the definition's
-- JSON shape) and movable labels that point at one version each. A prompt exists while it has
-- versions.
CREATE TABLE prompt_versions (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    definition TEXT NOT NULL,
    -- What changed, as its author said.
    note TEXT,
    -- Who pushed it (a key prefix, a user, `local`).
    created_by TEXT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

CREATE TABLE prompt_labels (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, label)
);

-- Which prompt version a request rendered, so usage can be told apart per version.
ALTER TABLE usage_records ADD COLUMN prompt_id TEXT;
ALTER TABLE usage_records ADD COLUMN prompt_version BIGINT;
