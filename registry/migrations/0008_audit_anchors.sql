-- Audit anchors: the head of a signer's audit log (the sequence and hash of a seal record,
-- with the seal's signature), written by the signer at every seal. A signer refuses to start
-- on a log that is behind its last anchor (truncated, deleted, an older copy restored), and
-- `kyso audit verify` checks every anchor against the file.
--
-- A log is named by the signer's configured log id; the first anchor binds the id to the
-- subject of the client certificate that wrote it, and only a certificate with that subject
-- (and the signer role) appends to it afterwards. Each anchor keeps the fingerprint and the
-- subject of the certificate that wrote it. Anchors are append-only: the sequence of a log
-- only grows (checked by the book, and by the unique key on equal sequences), and the
-- triggers below refuse UPDATE and DELETE whoever connects.
CREATE TABLE audit_logs (
    log_id TEXT PRIMARY KEY,
    owner_subject TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE audit_anchors (
    log_id TEXT NOT NULL REFERENCES audit_logs (log_id),
    sequence BIGINT NOT NULL CHECK (sequence > 0),
    head_hash TEXT NOT NULL CHECK (length(head_hash) = 64),
    seal_algorithm TEXT NOT NULL,
    seal_key_sha256 TEXT NOT NULL,
    seal_signature TEXT NOT NULL,
    sealed_at BIGINT NOT NULL,
    writer_fingerprint TEXT NOT NULL,
    writer_subject TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (log_id, sequence)
);
-- backend: sqlite
CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are append-only: UPDATE is refused');
END;
CREATE TRIGGER audit_anchors_no_delete BEFORE DELETE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are append-only: DELETE is refused');
END;
CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit logs are append-only: UPDATE is refused');
END;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit logs are append-only: DELETE is refused');
END;
-- backend: postgres
CREATE FUNCTION audit_anchors_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit anchors are append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER audit_anchors_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION audit_anchors_append_only();
CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION audit_anchors_append_only();
CREATE TRIGGER audit_logs_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_anchors_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_anchors_append_only();
-- backend: all
