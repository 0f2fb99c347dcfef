-- Issuer and subject of certificates are stored in kyso's one rendering of X.509 names
-- (kyso_pki::name: RFC 4514 order, RFC 4514 escaping, UTF-8 values), the rendering of the
-- verifier's reports, so the issuer a report gives finds the certificate by issuer and
-- serial. Rows written before were rendered by x509-cert, which escapes non-ASCII bytes;
-- after this migration storage.rs re-renders every row still at 0 from its der_hex, once.
ALTER TABLE certificates ADD COLUMN names_rendering INTEGER NOT NULL DEFAULT 0;
