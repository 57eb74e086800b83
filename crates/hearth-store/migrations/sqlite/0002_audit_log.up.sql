-- Who did what, when and from where: admin actions and changes of running state.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    source TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
