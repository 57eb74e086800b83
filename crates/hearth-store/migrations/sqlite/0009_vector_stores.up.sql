-- OpenAI's vector stores: a tenant's named set of files, each file's text chunked, embedded and
-- stored as one document of the memory collection underneath (`collection_id`), so a vector
-- store is searched with the same index and filter language as any collection.
CREATE TABLE vector_stores (
    -- `vs_` and 32 hex digits.
    id TEXT PRIMARY KEY NOT NULL,
    -- The owner's scope, as for collections and files.
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    -- A JSON object of up to 16 string values.
    metadata TEXT NOT NULL,
    -- Days after the last activity when the store expires; NULL: never.
    expires_after_days BIGINT,
    created_at_ms BIGINT NOT NULL,
    last_active_at_ms BIGINT NOT NULL,
    -- When the store was found expired and its collection deleted; NULL while it is not.
    expired_at_ms BIGINT
);
CREATE INDEX vector_stores_by_tenant_time ON vector_stores (tenant_id, created_at_ms, id);

-- Batches of files attached together; their files point back at them.
CREATE TABLE vector_store_file_batches (
    -- `vsfb_` and 32 hex digits.
    id TEXT PRIMARY KEY NOT NULL,
    vector_store_id TEXT NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
    cancelled BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);

-- A file attached to a vector store and its ingestion: in_progress until its text is stored in
-- the collection (completed), or failed (error_code, error_message) or cancelled. `attempt`
-- names the current ingestion, so a late finish of an earlier one changes nothing.
CREATE TABLE vector_store_files (
    vector_store_id TEXT NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL,
    batch_id TEXT,
    -- The file's name when attached, so results name it even after the file is deleted.
    filename TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    -- A JSON object, stored as the document's metadata so filters see it.
    attributes TEXT NOT NULL,
    -- 1 for OpenAI's `auto` strategy, whose sizes are the two columns below.
    chunking_auto BIGINT NOT NULL,
    max_chunk_tokens BIGINT NOT NULL,
    chunk_overlap_tokens BIGINT NOT NULL,
    -- Bytes the file takes in the store (chunk text and vectors) once completed.
    usage_bytes BIGINT NOT NULL DEFAULT 0,
    attempt TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (vector_store_id, file_id)
);
CREATE INDEX vector_store_files_by_time ON vector_store_files (vector_store_id, created_at_ms, file_id);
CREATE INDEX vector_store_files_by_batch ON vector_store_files (batch_id);
CREATE INDEX vector_store_files_by_status ON vector_store_files (status, created_at_ms);
