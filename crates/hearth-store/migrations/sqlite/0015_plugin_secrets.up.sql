-- Named secrets an instance admin sets for a plugin (an API token, say): the plugin reads
-- those its manifest declares; the API shows their names, never their values.
CREATE TABLE plugin_secrets (
    plugin TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (plugin, name)
);
