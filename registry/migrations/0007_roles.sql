-- Access control: roles bound to client certificates, kept in the registry itself so they are
-- audited (role.granted / role.revoked events) and replicated like everything else. A grant is
-- never deleted: revoking it sets revoked_at, and valid_to limits it in time.
CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    subject TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('signer', 'verifier', 'reader', 'agency-admin',
        'provincial-admin', 'auditor')),
    -- agency-admin: the managing agency whose organisations it manages (I6).
    agency_id TEXT REFERENCES organisations (id),
    valid_from BIGINT NOT NULL,
    valid_to BIGINT,
    revoked_at BIGINT,
    granted_at BIGINT NOT NULL,
    CHECK ((role = 'agency-admin' AND agency_id IS NOT NULL)
        OR (role <> 'agency-admin' AND agency_id IS NULL)),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX roles_fingerprint ON roles (fingerprint);

-- Who made each change: the caller's client certificate and the role that allowed it; the
-- request's free actor text is only a note.
ALTER TABLE events ADD COLUMN actor_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN actor_role TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN note TEXT NOT NULL DEFAULT '';
