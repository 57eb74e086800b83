-- Files uploaded through OpenAI's Files API, per tenant. The row describes the file; its bytes
-- live in the data directory (`files/<id>`), written and synced before the row is inserted, so a
-- row never names a file that is not complete.
CREATE TABLE files (
    id TEXT PRIMARY KEY NOT NULL,
    -- The owner's scope, as for collections.
    tenant_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    -- Hex SHA-256 of the content.
    sha256 TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX files_by_tenant_time ON files (tenant_id, created_at_ms, id);
