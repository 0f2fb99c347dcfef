//! The government roots, pinned by their published SHA-256 fingerprints (issue 15
//! item 9): the default trust of `kyso verify` when no anchor is given. The roots'
//! files are not shipped: a certificate is an anchor when its SHA-256 equals a pinned
//! fingerprint, wherever it was found (the signature, the given certificates, an AIA
//! download within the fetch policy, or an anchors directory the operator filled from
//! the CA). The G1 root signs its sub-CAs with SHA-1: accepted below it only under the
//! legacy SHA-1 rule (V2).

/// One pinned root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedRoot {
    /// What a clerk calls it.
    pub name: &'static str,
    /// SHA-256 of its DER, hex with colons as the CA publishes it.
    pub sha256: &'static str,
    /// Whether SHA-1 CA certificates are accepted below it (the G1 hierarchy).
    pub legacy_sha1: bool,
}

/// The specialised government CA's roots (Ban Cơ yếu Chính phủ).
pub const GOVERNMENT_ROOTS: &[PinnedRoot] = &[
    PinnedRoot {
        name: "Co quan chung thuc so chuyen dung Chinh phu (RootCA, G1)",
        sha256: "F7:BC:89:05:4C:EC:7F:12:73:0D:7B:8C:D3:EB:79:55:B1:63:83:50:87:E5:EB:87:3E:DF:B5:84:76:3B:3F:90",
        legacy_sha1: true,
    },
    PinnedRoot {
        name: "RootCA chuyên dùng Chính phủ G2",
        sha256: "F0:4B:A4:B4:59:A7:C9:A1:B9:71:AD:9B:1C:B8:33:E6:95:A8:0C:79:AE:A6:3B:17:4B:66:A7:0E:DF:E2:FD:B8",
        legacy_sha1: false,
    },
];

/// The roots as a clerk reads them in a report: name and fingerprint.
pub fn describe(roots: &[PinnedRoot]) -> String {
    roots
        .iter()
        .map(|r| format!("{} (SHA-256 {})", r.name, r.sha256))
        .collect::<Vec<_>>()
        .join(", ")
}
