-- Jobs: scheduled, triggered and dependent work. A job's definition is kept as JSON (the
-- jobs crate owns its shape); `source` says whether configuration or the API defined it, so a
-- restart replaces configuration's jobs without touching the API's.
CREATE TABLE jobs (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    source TEXT NOT NULL,
    -- The last scheduled time a run was made for (ms): what catch-up counts missed runs from.
    last_fire_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- One row per run of a job: why it ran, and how it ended.
CREATE TABLE job_runs (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    job TEXT NOT NULL,
    -- schedule, catch_up, event, after, manual.
    reason TEXT NOT NULL,
    -- The scheduled time (schedule, catch_up) or when it was asked for (ms).
    due_at_ms BIGINT NOT NULL,
    -- queued, running, succeeded, failed, skipped, interrupted.
    status TEXT NOT NULL,
    -- What the action was given (an event, a parent's output), JSON.
    input TEXT,
    output TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT,
    finished_at_ms BIGINT
);
CREATE INDEX job_runs_by_job ON job_runs (tenant_id, job, created_at_ms);
CREATE INDEX job_runs_by_status ON job_runs (status);

-- Each attempt of a run: retries are recorded, not just their last outcome.
CREATE TABLE job_attempts (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    -- succeeded, failed, timed_out, interrupted (a restart stopped it).
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    started_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT,
    PRIMARY KEY (run_id, attempt)
);
