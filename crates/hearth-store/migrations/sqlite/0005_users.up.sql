-- Users of a tenant: the people (or services) keys are issued to, so usage and audit can say
-- who, not only which key. A user belongs to one tenant; its name is unique there. Deleting a
-- user keeps the row (usage history still names it) and revokes its keys.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT
);
-- Names are unique among a tenant's live users; a deleted name can be reused.
CREATE UNIQUE INDEX users_by_tenant_name ON users (tenant_id, name) WHERE deleted_at_ms IS NULL;

-- Plain columns (no foreign key) so the down migration can drop them.
ALTER TABLE api_keys ADD COLUMN user_id TEXT;
ALTER TABLE usage_records ADD COLUMN user_id TEXT;
CREATE INDEX usage_records_by_user_time ON usage_records (user_id, at_ms);
