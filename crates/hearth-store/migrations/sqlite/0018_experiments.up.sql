-- Experiments: each tenant's definitions (JSON, which the experiments crate owns) with their
-- state, what each exposed request measured, and the feedback applications sent about them.
CREATE TABLE experiments (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    -- draft, running, paused, stopped.
    status TEXT NOT NULL,
    -- The variant a stop declared the winner.
    winner TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT,
    stopped_at_ms BIGINT,
    PRIMARY KEY (tenant_id, name)
);

-- One row per request an experiment assigned: its unit and variant, and what it measured.
CREATE TABLE experiment_exposures (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    unit TEXT NOT NULL,
    -- The request's `x-request-id` and the response's own id: what feedback names.
    request_id TEXT NOT NULL,
    response_id TEXT,
    at_ms BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    time_to_first_token_ms BIGINT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_micro_usd BIGINT NOT NULL,
    -- 1 when the answer was an error (status 400 or more).
    error BIGINT NOT NULL,
    cache_hit BIGINT NOT NULL
);
CREATE INDEX experiment_exposures_by_variant ON experiment_exposures (tenant_id, experiment, variant, unit);
CREATE INDEX experiment_exposures_by_request ON experiment_exposures (tenant_id, request_id);
CREATE INDEX experiment_exposures_by_response ON experiment_exposures (tenant_id, response_id);

-- Feedback on an exposed request, with its experiment, variant and unit copied from it.
CREATE TABLE experiment_feedback (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    unit TEXT NOT NULL,
    request_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX experiment_feedback_by_metric ON experiment_feedback (tenant_id, experiment, metric, variant, unit);
