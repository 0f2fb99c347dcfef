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

pub fn rogue() -> Rogue {
    let dir = tempfile::tempdir().expect("temporary directory");
    let d = dir.path();
    let (ca_key, leaf_key) = (d.join("ca.key"), d.join("leaf.key"));
    for key in [&ca_key, &leaf_key] {
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            s(key),
        ]);
    }
    // 17 self-issued CA certificates: one name, one key, different serials.
    let mut bundle = Vec::new();
    for i in 0..ROGUE_CAS {
        let out = d.join(format!("ca{i}.pem"));
        run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            s(&ca_key),
            "-subj",
            "/C=VN/O=Rogue/CN=Rogue CA",
            "-days",
            "3650",
            "-set_serial",
            &(1000 + i).to_string(),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            s(&out),
        ]);
        bundle.extend(std::fs::read(&out).expect("CA certificate"));
    }
    let all = d.join("all17.pem");
    std::fs::write(&all, &bundle).expect("bundle");
    // A leaf signed by that key.
    let (csr, leaf) = (d.join("leaf.csr"), d.join("leaf.pem"));
    run(&[
        "req",
        "-new",
        "-key",
        s(&leaf_key),
        "-subj",
        "/C=VN/O=Rogue/CN=Rogue signer",
        "-out",
        s(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&d.join("ca0.pem")),
        "-CAkey",
        s(&ca_key),
        "-set_serial",
        "7",
        "-days",
        "365",
        "-out",
        s(&leaf),
    ]);
    let (content, sig) = (d.join("content.txt"), d.join("sig.der"));
    std::fs::write(&content, b"van ban (kyso path budget test)\n").expect("content");
    run(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-outform",
        "DER",
        "-md",
        "sha256",
        "-signer",
        s(&leaf),
        "-inkey",
        s(&leaf_key),
        "-certfile",
        s(&all),
        "-in",
        s(&content),
        "-out",
        s(&sig),
    ]);
    let cas = Cert::parse_many(&bundle).expect("the 17 CA certificates parse");
    assert_eq!(cas.len(), ROGUE_CAS);
    Rogue {
        cms: std::fs::read(&sig).expect("signature"),
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
