-- The gateway: tenants, API keys (stored as hashes, never as keys), per-request usage, and a
-- change counter that running servers poll to pick up keys made by the CLI.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    -- Limits shared by all the tenant's keys; NULL means no limit of that kind.
    requests_per_minute BIGINT,
    tokens_per_minute BIGINT,
    max_concurrent BIGINT,
    tokens_per_day BIGINT,
    tokens_per_month BIGINT
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    -- NULL: an instance key, which administers every tenant.
    tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT,
    -- The visible start of the key (`hk_` and 8 characters), to tell keys apart.
    prefix TEXT NOT NULL,
    -- Hex sha256 of the whole key.
    secret_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    -- Space-separated scopes; empty means every scope the role allows.
    scopes TEXT NOT NULL DEFAULT '',
    requests_per_minute BIGINT,
    tokens_per_minute BIGINT,
    max_concurrent BIGINT,
    tokens_per_day BIGINT,
    tokens_per_month BIGINT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT,
    -- Set on a key replaced by rotation: the key that replaced it.
    rotated_to TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

CREATE TABLE usage_records (
    id TEXT PRIMARY KEY NOT NULL,
    at_ms BIGINT NOT NULL,
    tenant_id TEXT,
    key_id TEXT,
    model TEXT NOT NULL,
    target TEXT NOT NULL,
    route TEXT NOT NULL,
    status BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    time_to_first_token_ms BIGINT,
    cache_hit BIGINT NOT NULL DEFAULT 0,
    cost_micro_usd BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX usage_records_by_tenant_time ON usage_records (tenant_id, at_ms);
CREATE INDEX usage_records_by_key_time ON usage_records (key_id, at_ms);

-- Bumped by every change to tenants or keys, in the same transaction.
CREATE TABLE gateway_revision (
    id BIGINT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
INSERT INTO gateway_revision (id, revision) VALUES (1, 0);

-- Audit entries about one tenant name it, so that tenant's admins can read them.
ALTER TABLE audit_log ADD COLUMN tenant_id TEXT;
CREATE INDEX audit_log_by_tenant_time ON audit_log (tenant_id, at_ms);
