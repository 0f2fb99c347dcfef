//! Hostile inputs the tests throw at the verifier (issue 14), made here so that each test
//! binary can use them: a CMS carrying 17 self-issued CA certificates with one name and one
//! key (a loop of issuers that verify each other) and a PDF whose form field tree fans out
//! from a huge name to one kid.

use std::path::Path;

use kyso_pki::cert::Cert;

use crate::openssl;
use crate::pdf_fixtures::classic_pdf;

pub const ROGUE_CAS: usize = 17;

/// The hostile material, made with openssl.
#[derive(Debug)]
pub struct Rogue {
    /// The CMS signature (DER), carrying the leaf and the 17 CA certificates.
    pub cms: Vec<u8>,
    /// The 17 CA certificates.
    pub cas: Vec<Cert>,
    /// The leaf.
    pub leaf: Cert,
}

fn run(args: &[&str]) {
    openssl(args).expect_success();
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

/// A new EC P-256 key at `out`.
pub fn ec_key(out: &Path) {
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(out),
    ]);
}

/// A self-signed CA certificate (PEM) of `key` at `out`, named `subject`.
pub fn ca_certificate(key: &Path, subject: &str, serial: u32, out: &Path) {
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        s(key),
        "-subj",
        subject,
        "-days",
        "3650",
        "-set_serial",
        &serial.to_string(),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        s(out),
    ]);
}

/// A certificate (PEM) for `key` named `subject`, issued by `ca` with `ca_key`, with the
/// extensions of `extfile` if given, at `out`.
pub fn issue(
    key: &Path,
    subject: &str,
    (ca, ca_key): (&Path, &Path),
    serial: u32,
    extfile: Option<&Path>,
    out: &Path,
) {
    let csr = out.with_extension("csr");
    run(&[
        "req",
        "-new",
        "-key",
        s(key),
        "-subj",
        subject,
        "-out",
        s(&csr),
    ]);
    let serial = serial.to_string();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(ca),
        "-CAkey",
        s(ca_key),
        "-set_serial",
        &serial,
        "-days",
        "365",
        "-out",
        s(out),
    ];
    if let Some(e) = extfile {
        args.extend(["-extfile", s(e)]);
    }
    run(&args);
}

/// `content` signed by `cert` with `key` as an attached CMS (DER, SHA-256), carrying the
/// certificates of `certfile` if given.
pub fn cms_sign(cert: &Path, key: &Path, certfile: Option<&Path>, content: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (input, sig) = (dir.path().join("content"), dir.path().join("sig.der"));
    std::fs::write(&input, content).expect("content");
    let mut args = vec![
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-outform",
        "DER",
        "-md",
        "sha256",
        "-signer",
        s(cert),
        "-inkey",
        s(key),
        "-in",
        s(&input),
        "-out",
        s(&sig),
    ];
    if let Some(c) = certfile {
        args.extend(["-certfile", s(c)]);
    }
    run(&args);
    std::fs::read(&sig).expect("signature")
}

pub fn rogue() -> Rogue {
    let dir = tempfile::tempdir().expect("temporary directory");
    let d = dir.path();
    let (ca_key, leaf_key) = (d.join("ca.key"), d.join("leaf.key"));
    ec_key(&ca_key);
    ec_key(&leaf_key);
    // 17 self-issued CA certificates: one name, one key, different serials.
    let mut bundle = Vec::new();
    for i in 0..ROGUE_CAS {
        let out = d.join(format!("ca{i}.pem"));
        ca_certificate(&ca_key, "/C=VN/O=Rogue/CN=Rogue CA", 1000 + i as u32, &out);
        bundle.extend(std::fs::read(&out).expect("CA certificate"));
    }
    let all = d.join("all17.pem");
    std::fs::write(&all, &bundle).expect("bundle");
    // A leaf signed by that key.
    let leaf = d.join("leaf.pem");
    let ca0 = d.join("ca0.pem");
    issue(
        &leaf_key,
        "/C=VN/O=Rogue/CN=Rogue signer",
        (&ca0, &ca_key),
        7,
        None,
        &leaf,
    );
    let cms = cms_sign(
        &leaf,
        &leaf_key,
        Some(&all),
        b"van ban (kyso path budget test)\n",
    );
    let cas = Cert::parse_many(&bundle).expect("the 17 CA certificates parse");
    assert_eq!(cas.len(), ROGUE_CAS);
    Rogue {
        cms,
        cas,
        leaf: Cert::parse_many(&std::fs::read(&leaf).expect("leaf"))
            .expect("leaf parses")
            .remove(0),
    }
}

/// A PDF whose form has one field (partial name `name`) whose `/Kids` are `kids`; object 4
/// is a signature field with `kid_extra` in its dictionary, object 3 the parent.
pub fn form_pdf(name: &str, kids: &str, kid_extra: &str) -> Vec<u8> {
    classic_pdf(
        &[
            "<</Type /Catalog /Pages 2 0 R /AcroForm <</Fields [3 0 R]>>>>".to_owned(),
            "<</Type /Pages /Kids [] /Count 0>>".to_owned(),
            format!("<</T ({name}) /Kids [{kids}]>>"),
            format!("<</T (k) /FT /Sig /Parent 3 0 R{kid_extra}>>"),
        ],
        "",
    )
}

/// The field fan-out: a 1 MiB field name and 100,000 references to one kid (building the
/// kid's dotted name once per reference would need about 100 GB).
pub fn field_fan_out_pdf() -> Vec<u8> {
    form_pdf(&"N".repeat(1 << 20), &"4 0 R ".repeat(100_000), "")
}
