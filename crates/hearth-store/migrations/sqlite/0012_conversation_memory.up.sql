-- Conversation memory: each tenant's remembered chat turns are the documents of one memory
-- collection (named by a made id, so no name a tenant uses can collide with it), made on the
-- tenant's first remembered turn. Every turn carries its user in its metadata, and recall,
-- export and deletion always filter by it.
CREATE TABLE conversation_memories (
    tenant_id TEXT PRIMARY KEY NOT NULL,
    collection TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
