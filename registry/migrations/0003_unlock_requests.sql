-- I5: key device unlock requests, filed by the managing agency, done within one working day
-- or refused in writing with the reason.
CREATE TABLE unlock_requests (
    id TEXT PRIMARY KEY,
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    requested_by TEXT NOT NULL REFERENCES organisations (id),
    reason TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    resolution_reason TEXT,
    resolved_at BIGINT
);
CREATE INDEX unlock_requests_pending ON unlock_requests (status, due_at);
