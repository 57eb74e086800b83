-- Plugins: one row per installed plugin, naming the version that serves calls and the one a
-- rollback returns to. A component's bytes live in the data directory, named by their sha256;
-- the row holds the manifest it was installed with.
CREATE TABLE plugins (
    name TEXT PRIMARY KEY NOT NULL,
    enabled INTEGER NOT NULL,
    -- Why the plugin was disabled (an admin, or the breaker after repeated failures).
    disabled_reason TEXT,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    manifest TEXT NOT NULL,
    -- The trusted public key (base64) whose signature the serving version carried.
    signed_by TEXT,
    previous_version TEXT,
    previous_sha256 TEXT,
    previous_manifest TEXT,
    previous_signed_by TEXT,
    -- The plugin's configuration, a JSON object checked against its manifest's schema.
    config TEXT NOT NULL,
    installed_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Each plugin's key-value store, separate per tenant.
CREATE TABLE plugin_kv (
    plugin TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (plugin, tenant_id, key)
);

-- The tenants whose events a plugin's handler receives (through a system consumer of that
-- tenant, `_plugin_<name>`, which holds the delivery state).
CREATE TABLE plugin_subscriptions (
    plugin TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (plugin, tenant_id)
);
