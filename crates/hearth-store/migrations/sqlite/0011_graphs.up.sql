-- Knowledge graphs, per tenant: typed nodes and typed, directed relations between them. A
-- graph's nodes are also the documents of a memory collection (named by the graph's id), which
-- is what embeds and searches them; these tables are the truth about what exists and how it
-- connects. Integer keys keep the edge indexes small: a relation is found from either end by
-- one index (out: the unique key on source, type, target; in: relations_in).
CREATE TABLE graphs (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The memory collection that holds the nodes' text and embeddings.
    collection TEXT NOT NULL,
    -- A JSON object.
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE graph_nodes (
    key INTEGER PRIMARY KEY,
    graph_key INTEGER NOT NULL REFERENCES graphs (key) ON DELETE CASCADE,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    -- A JSON object.
    properties TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (graph_key, id)
);
CREATE INDEX graph_nodes_by_type ON graph_nodes (graph_key, type, id);

-- One relation per (source, type, target): upserting the same triple again updates it. Deleting
-- a node deletes its relations (both directions) through the foreign keys.
CREATE TABLE graph_relations (
    key INTEGER PRIMARY KEY,
    graph_key INTEGER NOT NULL REFERENCES graphs (key) ON DELETE CASCADE,
    id TEXT NOT NULL,
    source_key INTEGER NOT NULL REFERENCES graph_nodes (key) ON DELETE CASCADE,
    type TEXT NOT NULL,
    target_key INTEGER NOT NULL REFERENCES graph_nodes (key) ON DELETE CASCADE,
    -- A JSON object.
    properties TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (graph_key, id),
    UNIQUE (source_key, type, target_key)
);
CREATE INDEX graph_relations_in ON graph_relations (target_key, type, source_key);
