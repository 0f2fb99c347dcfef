-- R2: signatures made, as the signers report them from their audit logs. A batch is
-- counted once: its id names the audit records it covers, and the count and the batch
-- row are written in one transaction.
CREATE TABLE usage_batches (
    batch_id TEXT PRIMARY KEY,
    signatures BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE TABLE signature_usage (
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    certificate_fingerprint TEXT NOT NULL,
    profile TEXT NOT NULL,
    -- Vietnam's date of the signatures (UTC+07:00), as unix seconds of its midnight there,
    -- so report periods are plain comparisons.
    day BIGINT NOT NULL,
    count BIGINT NOT NULL CHECK (count > 0),
    PRIMARY KEY (organisation_id, certificate_fingerprint, profile, day)
);
CREATE INDEX signature_usage_day ON signature_usage (day);

-- W1, W3: the outgoing and incoming registers; R2 exchange volumes are counted from them.
-- A number is given once per organisation, direction and year (the unique key makes two
-- writers racing for the same number fail, not both succeed); a refused incoming document
-- has number 0 and is entered all the same.
CREATE TABLE document_register (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    direction TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    year BIGINT NOT NULL,
    number BIGINT NOT NULL,
    document_type TEXT NOT NULL,
    number_and_symbol TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    refused BIGINT NOT NULL CHECK (refused IN (0, 1)),
    reason TEXT NOT NULL,
    at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX document_register_number ON document_register
    (organisation_id, direction, year, number) WHERE number > 0;
CREATE INDEX document_register_at ON document_register (at);
CREATE INDEX document_register_sha256 ON document_register (sha256);
