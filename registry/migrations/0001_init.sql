-- kyso registry schema, one text for SQLite and PostgreSQL.
-- Portable on purpose: ids are TEXT made by the registry, times are BIGINT
-- unix seconds (UTC), flags and counts are BIGINT, the certificate DER is hex
-- TEXT (BLOB and BYTEA differ between the two backends).

-- Organisations, their hierarchy and managing agency (I6), the mail domain of
-- I1, and a status whose pending values block new certificates (I2).
CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES organisations (id),
    managing_agency_id TEXT REFERENCES organisations (id),
    mail_domain TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'pending_dissolution', 'pending_merger',
        'pending_split', 'pending_rename', 'dissolved')),
    status_decision_ref TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX organisations_parent ON organisations (parent_id);
CREATE INDEX organisations_managing_agency ON organisations (managing_agency_id);

-- People; service_end feeds I2 (no new certificate with < 6 months left).
CREATE TABLE people (
    id TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    service_end BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE titles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Person P holds title T in organisation O from valid_from to valid_to (open when NULL).
CREATE TABLE appointments (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people (id),
    title_id TEXT NOT NULL REFERENCES titles (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    valid_from BIGINT NOT NULL,
    valid_to BIGINT,
    decision_ref TEXT NOT NULL,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX appointments_person_org ON appointments (person_id, organisation_id, valid_from);

-- Document types with their classification (A7: classified never signed).
CREATE TABLE document_types (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    classification TEXT NOT NULL CHECK (classification IN ('none', 'secret', 'top_secret',
        'highest_secret'))
);

-- Which titles of which organisation sign which document types as APPROVAL (A2, A3).
CREATE TABLE title_authorities (
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    title_id TEXT NOT NULL REFERENCES titles (id),
    document_type TEXT NOT NULL REFERENCES document_types (code),
    PRIMARY KEY (organisation_id, title_id, document_type)
);

-- Which profiles an organisation certificate may be used with, per document type (A4, A6).
CREATE TABLE organisation_profiles (
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    document_type TEXT NOT NULL REFERENCES document_types (code),
    profile TEXT NOT NULL,
    PRIMARY KEY (organisation_id, document_type, profile)
);

-- Certificates. `status` is the status now, kept with the history in the same
-- transaction so lookups need no scan; decisions at a past time read the history.
CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    der_hex TEXT NOT NULL,
    serial TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('personal', 'organisation')),
    person_id TEXT REFERENCES people (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    renewal_of TEXT REFERENCES certificates (id),
    renewal_count BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    registered_at BIGINT NOT NULL,
    UNIQUE (issuer, serial),
    CHECK ((kind = 'personal') = (person_id IS NOT NULL))
);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_renewal_of ON certificates (renewal_of);

-- Status history (V3, V4, N7): the status at time t is the last row with effective_at <= t.
CREATE TABLE certificate_status_history (
    id TEXT PRIMARY KEY,
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    reason TEXT,
    effective_at BIGINT NOT NULL,
    -- Orders changes with the same effective_at (1, 2, ... per certificate).
    ordinal BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    UNIQUE (certificate_id, ordinal)
);
CREATE INDEX certificate_status_history_cert ON certificate_status_history (certificate_id, effective_at);

-- Custodians of organisation certificates, assigned by written decision (A5).
CREATE TABLE custodians (
    id TEXT PRIMARY KEY,
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    decision_ref TEXT NOT NULL,
    decision_date BIGINT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT
);
CREATE INDEX custodians_cert ON custodians (certificate_id, valid_from);

-- Handover records between custodians (A5).
CREATE TABLE custodian_handovers (
    id TEXT PRIMARY KEY,
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    from_person_id TEXT NOT NULL REFERENCES people (id),
    to_person_id TEXT NOT NULL REFERENCES people (id),
    record_ref TEXT NOT NULL,
    handed_over_at BIGINT NOT NULL
);

-- Delegations for KT., TL., TUQ. (A2): the delegate signs with their own certificate.
CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    from_person_id TEXT NOT NULL REFERENCES people (id),
    to_person_id TEXT NOT NULL REFERENCES people (id),
    mode TEXT NOT NULL CHECK (mode IN ('kt', 'tl', 'tuq')),
    decision_ref TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (from_person_id <> to_person_id),
    CHECK (valid_to > valid_from)
);
CREATE INDEX delegations_to ON delegations (to_person_id, organisation_id);
CREATE INDEX delegations_from ON delegations (from_person_id, organisation_id);

CREATE TABLE delegation_document_types (
    delegation_id TEXT NOT NULL REFERENCES delegations (id),
    document_type TEXT NOT NULL REFERENCES document_types (code),
    PRIMARY KEY (delegation_id, document_type)
);

-- Append-only event log, written in the same transaction as each change.
-- seq is assigned under the writers' lock (see storage.rs), so it is gapless and ordered.
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    change_json TEXT NOT NULL
);
