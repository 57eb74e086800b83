-- Memory: a tenant's collections of documents with their embeddings. The rows are the truth;
-- each collection's vector index is a cache rebuilt from them, or loaded from a snapshot that
-- records the last write sequence it holds, after which the writes recorded here are replayed.
CREATE TABLE memory_collections (
    id TEXT PRIMARY KEY NOT NULL,
    -- The owner's scope. No foreign key: callers without a tenant (the local user, instance
    -- keys) get a reserved scope of their own.
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- cosine, dot or l2.
    metric TEXT NOT NULL,
    dimensions BIGINT NOT NULL,
    -- The model that embeds text for this collection; NULL when clients supply vectors.
    embedding_model TEXT,
    int8 BIGINT NOT NULL DEFAULT 0,
    hnsw_m BIGINT NOT NULL,
    hnsw_ef_construction BIGINT NOT NULL,
    -- The search effort used when a search does not give its own.
    hnsw_ef BIGINT NOT NULL,
    -- A JSON object.
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- The newest write sequence handed out for this collection: every stored chunk and every
    -- deletion carries one, so they are totally ordered per collection.
    last_sequence BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX memory_collections_by_tenant_name ON memory_collections (tenant_id, name);

-- Chunks of documents (one per document until text is chunked). `sequence` is the write that
-- stored the row and is also the chunk's key in the vector index: a replaced chunk gets a new
-- row and a new key.
CREATE TABLE memory_chunks (
    collection_id TEXT NOT NULL REFERENCES memory_collections (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL,
    chunk_index BIGINT NOT NULL,
    text TEXT NOT NULL,
    -- A JSON object.
    metadata TEXT NOT NULL,
    -- Little-endian f32 values, `dimensions` of them.
    embedding BLOB NOT NULL,
    sequence BIGINT NOT NULL,
    PRIMARY KEY (collection_id, document_id, chunk_index)
);
CREATE UNIQUE INDEX memory_chunks_by_sequence ON memory_chunks (collection_id, sequence);

-- Chunks removed by a delete or replaced by an upsert, so that an index loaded from an older
-- snapshot can drop them. Rows at or below a saved snapshot's sequence are pruned.
CREATE TABLE memory_deletions (
    collection_id TEXT NOT NULL REFERENCES memory_collections (id) ON DELETE CASCADE,
    -- The sequence of the removed chunk, i.e. its index key.
    chunk_sequence BIGINT NOT NULL,
    -- The write that removed it.
    sequence BIGINT NOT NULL,
    PRIMARY KEY (collection_id, chunk_sequence)
);
CREATE INDEX memory_deletions_by_sequence ON memory_deletions (collection_id, sequence);
