-- Stored responses of OpenAI's Responses API, per tenant: what `previous_response_id` continues
-- and `GET /v1/responses/{id}` returns. A response keeps only its own turn (the input items it
-- was sent and its output); a conversation is its chain of `previous_response_id`s, walked back
-- when continued, so a long conversation is not copied into every turn.
CREATE TABLE responses (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    previous_response_id TEXT,
    -- The input items of this turn (a JSON array, each with its id).
    input_items TEXT NOT NULL,
    -- The response object as answered (JSON), output items included.
    response TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- Past this, the response is gone as if deleted.
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX responses_by_expiry ON responses (expires_at_ms);
-- A tenant's responses, oldest first: what its cap (`responses.max_per_tenant`) lets go.
CREATE INDEX responses_by_tenant ON responses (tenant_id, created_at_ms);
