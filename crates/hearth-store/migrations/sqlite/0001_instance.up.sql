-- One row naming this data directory's Hearth instance. Nodes sharing a database in scale-out
-- each have their own id in their own state; this one identifies the data set itself.
CREATE TABLE instance (
    id TEXT PRIMARY KEY NOT NULL,
    created_at_ms BIGINT NOT NULL
);
