//! (in progress: digests and signature verification)

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A readable name for an algorithm OID.
pub fn algorithm_name(oid: &const_oid::ObjectIdentifier) -> String {
    const_oid::db::DB.by_oid(oid).map(str::to_owned).unwrap_or_else(|| oid.to_string())
}
