-- W4, N6 (issue 15, item 5): the status history of each registered document. The sender's
-- row for a document sent to a counterparty has code '' (the envelope itself, SENT); the
-- receiver's answers are the N6 codes (RECEIVED). Codes 07-12 and 14 have no known meaning
-- and are refused (N6): the check is the book's and, as a last guard, the table's.
-- `seq` is the recording order, which breaks ties between rows with the same `at`.
CREATE TABLE document_status (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    register_entry_id TEXT NOT NULL REFERENCES document_register (id),
    counterparty_code TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    code TEXT NOT NULL CHECK (code IN ('', '01', '02', '03', '04', '05', '06', '13', '15', '16')),
    description TEXT NOT NULL,
    envelope_sha256 TEXT NOT NULL,
    -- An accepted document's stamped copy kept with the 03 (what a take-back deletes, W4).
    document_sha256 TEXT NOT NULL DEFAULT '',
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX document_status_entry ON document_status (register_entry_id, at, seq);
CREATE INDEX document_status_organisation ON document_status (organisation_id, direction);

-- Issue 15, item 8: a signer certificate a CMS does not carry is found in the book by issuer
-- and serial (already unique) or by its subject key identifier: the extension's value, or
-- RFC 5280 method 1 (SHA-1 of the public key) without it, lowercase hex. Filled at
-- registration; rows from before are filled from their der_hex when the registry starts
-- (storage.rs). The DER itself is kept since migration 1 (der_hex).
ALTER TABLE certificates ADD COLUMN subject_key_identifier TEXT;
CREATE INDEX certificates_subject_key_identifier ON certificates (subject_key_identifier);
