//! `kyso verify` as a clerk uses it (issue 15 items 8 and 9): a CMS without its signer's
//! certificate verified with the certificate supplied (`--certificates`, in-process and
//! through `--server`), a supplied certificate whose key does not verify reported and not
//! used, and `kyso verify FILE` with no trust flags: the government roots pinned by
//! fingerprint, an INDETERMINATE verdict naming them when nothing reaches them, an anchors
//! directory that must hold only pinned roots (fail closed).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kyso_tests::{CmsSign, TestPki, openssl_cms_sign};
use serde_json::Value;

use crate::cli::{
    Server, artifacts, exit_code, expect_one, kyso_verify, local_flags, remote, server_config,
};

const CONTENT: &[u8] = b"Cong van so 46/UBND-VP (kyso clerk test)\n";

/// The files these tests verify.
struct Files {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    /// `openssl cms -sign -nocerts`: the signer's certificate is not in the CMS.
    nocerts: PathBuf,
    /// The signer's certificate (PEM).
    signer: PathBuf,
    /// Same issuer name and serial as the signer's certificate, another key (made by the
    /// rogue CA that copies the issuing CA's name).
    imposter: PathBuf,
}

fn files() -> &'static Files {
    static F: OnceLock<Files> = OnceLock::new();
    F.get_or_init(|| {
        let pki = TestPki::get();
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().to_path_buf();
        let nocerts = dir.join("nocerts.p7s");
        let mut sign = CmsSign::new("personal-rsa", CONTENT);
        sign.nocerts = true;
        std::fs::write(&nocerts, openssl_cms_sign(&sign)).expect("write");
        let csr = dir.join("imposter.csr");
        let imposter = dir.join("imposter.pem");
        kyso_tests::openssl([
            OsStr::new("req"),
            "-new".as_ref(),
            "-key".as_ref(),
            pki.leaf_key("rogue").as_os_str(),
            "-subj".as_ref(),
            "/CN=Imposter".as_ref(),
            "-out".as_ref(),
            csr.as_os_str(),
        ])
        .expect_success();
        let serial = format!("0x{}", pki.serial("personal-rsa"));
        kyso_tests::openssl([
            OsStr::new("x509"),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            pki.rogue_ca_pem().as_os_str(),
            "-CAkey".as_ref(),
            pki.path("rogue-ca.key").as_os_str(),
            "-set_serial".as_ref(),
            serial.as_ref(),
            "-days".as_ref(),
            "30".as_ref(),
            "-out".as_ref(),
            imposter.as_os_str(),
        ])
        .expect_success();
        Files {
            _dir: tmp,
            dir,
            nocerts,
            signer: pki.leaf_cert("personal-rsa"),
            imposter,
        }
    })
}

fn with(
    mut base: Vec<OsString>,
    extra: &[&OsStr],
    file: &Path,
) -> (kyso_tests::Output, Option<Value>) {
    base.extend(extra.iter().map(|s| s.to_os_string()));
    base.push(file.as_os_str().to_owned());
    let refs: Vec<&OsStr> = base.iter().map(OsString::as_os_str).collect();
    kyso_verify(&refs)
}

fn certificates(p: &Path) -> [&OsStr; 2] {
    ["--certificates".as_ref(), p.as_os_str()]
}

// ---------------------------------------------------------------------------------------------
// Item 8: the signer's certificate from outside the CMS
// ---------------------------------------------------------------------------------------------

#[test]
fn nocerts_cms_needs_the_supplied_certificate_in_process_V2() {
    let f = files();
    // Today's failure: nothing names the signer.
    expect_one(
        with(local_flags(), &[], &f.nocerts),
        &f.nocerts,
        1,
        "INDETERMINATE",
        Some("NO_SIGNING_CERTIFICATE_FOUND"),
    );
    // Supplied: the signature decides, then path, validity and revocation as usual.
    let json = expect_one(
        with(local_flags(), &certificates(&f.signer), &f.nocerts),
        &f.nocerts,
        0,
        "TOTAL_PASSED",
        None,
    );
    let s = &json["signatures"][0];
    assert_eq!(s["signer_certificate_origin"], "SUPPLIED", "{json:#}");
    assert_eq!(s["path"].as_array().map(Vec::len), Some(3), "{json:#}");
    // An embedded certificate is reported as such.
    let a = artifacts();
    let json = expect_one(
        with(local_flags(), &certificates(&f.signer), &a.pass),
        &a.pass,
        0,
        "TOTAL_PASSED",
        None,
    );
    assert_eq!(
        json["signatures"][0]["signer_certificate_origin"], "EMBEDDED",
        "{json:#}"
    );
}

#[test]
fn nocerts_cms_with_the_supplied_certificate_through_the_server_V2() {
    let f = files();
    let server = Server::start(server_config());
    expect_one(
        remote(&server.url, &[], &[&f.nocerts]),
        &f.nocerts,
        1,
        "INDETERMINATE",
        Some("NO_SIGNING_CERTIFICATE_FOUND"),
    );
    let json = expect_one(
        remote(&server.url, &certificates(&f.signer), &[&f.nocerts]),
        &f.nocerts,
        0,
        "TOTAL_PASSED",
        None,
    );
    assert_eq!(
        json["signatures"][0]["signer_certificate_origin"], "SUPPLIED",
        "{json:#}"
    );
    // A supplied certificate whose key does not verify: reported, not used.
    let json = expect_one(
        remote(&server.url, &certificates(&f.imposter), &[&f.nocerts]),
        &f.nocerts,
        1,
        "TOTAL_FAILED",
        Some("SIG_CRYPTO_FAILURE"),
    );
    let msg = json["signatures"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("Imposter") && msg.contains("none is used"),
        "{json:#}"
    );
    server.assert_running();
}

#[test]
fn supplied_certificate_whose_key_does_not_verify_is_reported_not_used_V2() {
    let f = files();
    // Alone: it matches issuer and serial, but the signature says no.
    let json = expect_one(
        with(local_flags(), &certificates(&f.imposter), &f.nocerts),
        &f.nocerts,
        1,
        "TOTAL_FAILED",
        Some("SIG_CRYPTO_FAILURE"),
    );
    let msg = json["signatures"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("Imposter") && msg.contains("none is used"),
        "{json:#}"
    );
    // With the genuine one: the genuine one is used, the imposter is named in a warning.
    let json = expect_one(
        with(
            local_flags(),
            &[
                "--certificates".as_ref(),
                f.imposter.as_os_str(),
                "--certificates".as_ref(),
                f.signer.as_os_str(),
            ],
            &f.nocerts,
        ),
        &f.nocerts,
        0,
        "TOTAL_PASSED",
        None,
    );
    let s = &json["signatures"][0];
    assert_eq!(
        s["signer"]["common_name"],
        kyso_tests::PERSONAL_CN,
        "{json:#}"
    );
    let warned = s["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|w| w.contains("Imposter") && w.contains("not used"));
    assert!(warned, "{json:#}");
}

#[test]
fn supplied_certificates_are_bounded_and_checked_through_the_server() {
    let f = files();
    let server = Server::start(server_config());
    let junk = f.dir.join("junk.der");
    std::fs::write(&junk, [0x30, 0x03, 0x02, 0x01, 0x01]).expect("write");
    let (out, _) = remote(&server.url, &certificates(&junk), &[&f.nocerts]);
    assert_eq!(
        exit_code(&out),
        2,
        "a bad certificate is a usage error: {out}"
    );
    server.assert_running();
}

// ---------------------------------------------------------------------------------------------
// Item 9: no flags, the pinned government roots
// ---------------------------------------------------------------------------------------------

#[test]
fn no_flags_verdict_names_the_pinned_government_roots_V2() {
    let a = artifacts();
    // No --trust-anchors: not a usage error, a verdict.
    let json = expect_one(
        with(Vec::new(), &[], &a.pass),
        &a.pass,
        1,
        "INDETERMINATE",
        Some("NO_CERTIFICATE_CHAIN_FOUND"),
    );
    let msg = json["signatures"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("pinned") && msg.contains("G2") && msg.contains("F7:BC:89:05"),
        "{json:#}"
    );
}

#[test]
fn anchors_directory_holds_only_pinned_roots_V2() {
    let a = artifacts();
    let f = files();
    // A test root in the anchors directory: not pinned, refused before anything runs.
    let bad = f.dir.join("anchors-bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::copy(TestPki::get().root_pem(), bad.join("root.pem")).expect("copy");
    let (out, _) = with(
        Vec::new(),
        &["--anchors-dir".as_ref(), bad.as_os_str()],
        &a.pass,
    );
    assert_eq!(exit_code(&out), 2, "{out}");
    assert!(out.to_string().contains("anchor_fingerprints"), "{out}");
    // The real G1 and G2 roots: accepted (the test signature does not chain to them).
    let good = f.dir.join("anchors-good");
    std::fs::create_dir_all(&good).expect("mkdir");
    let vgca = vgca_dir();
    for file in ["g1-root.pem", "g2-root.pem"] {
        std::fs::copy(vgca.join(file), good.join(file)).expect("copy");
    }
    expect_one(
        with(
            Vec::new(),
            &["--anchors-dir".as_ref(), good.as_os_str()],
            &a.pass,
        ),
        &a.pass,
        1,
        "INDETERMINATE",
        Some("NO_CERTIFICATE_CHAIN_FOUND"),
    );
    // A missing directory given on purpose is an error, not an empty trust.
    let (out, _) = with(
        Vec::new(),
        &["--anchors-dir".as_ref(), f.dir.join("none").as_os_str()],
        &a.pass,
    );
    assert_eq!(exit_code(&out), 2, "{out}");
}

/// The public government CA certificates (`shared/trust/vgca`, next to the workspace, or
/// `$KYSO_SHARED_DIR/trust/vgca`). Required: these tests do not skip.
pub(crate) fn vgca_dir() -> PathBuf {
    let dir = match std::env::var_os("KYSO_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("trust/vgca"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/trust/vgca"),
    };
    assert!(
        dir.join("g1-root.pem").is_file(),
        "the government CA certificates are needed at {} (set KYSO_SHARED_DIR)",
        dir.display()
    );
    dir
}

// ---------------------------------------------------------------------------------------------
// Issue 15 item 3 (part): one JSON shape for every format
// ---------------------------------------------------------------------------------------------

#[test]
fn pdf_and_cms_signatures_share_one_json_shape_V2() {
    use kyso_tests::pdf_fixtures::{BaseOptions, PdfDoc, SignOptions};
    let a = artifacts();
    let f = files();
    let mut doc = PdfDoc::base(&BaseOptions::default());
    doc.sign(&SignOptions::new("personal-rsa", "Sig1"));
    let pdf = f.dir.join("signed.pdf");
    std::fs::write(&pdf, &doc.bytes).expect("write");
    let mut args = local_flags();
    args.push(pdf.clone().into());
    args.push(a.revoked.clone().into());
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let (out, json) = kyso_verify(&refs);
    assert_eq!(exit_code(&out), 1, "{out}");
    let json = json.unwrap_or_else(|| panic!("not JSON: {out}"));
    let sigs = json["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), 2, "{json:#}");
    for s in sigs {
        // indication and sub_indication at the top level of every entry, nothing nested.
        assert!(s["indication"].is_string(), "{json:#}");
        assert!(s.get("sub_indication").is_some(), "{json:#}");
        assert!(s.get("report").is_none(), "{json:#}");
    }
    let by_file = |file: &Path| {
        sigs.iter()
            .find(|s| s["file"] == file.display().to_string())
            .unwrap_or_else(|| panic!("{}: {json:#}", file.display()))
    };
    let p = by_file(&pdf);
    assert_eq!(p["indication"], "TOTAL_PASSED", "{json:#}");
    assert_eq!(p["field_name"], "Sig1", "the PDF fields are kept: {json:#}");
    assert_eq!(p["signer_certificate_origin"], "EMBEDDED", "{json:#}");
    let c = by_file(&a.revoked);
    assert_eq!(
        (&c["indication"], &c["sub_indication"]),
        (&Value::from("TOTAL_FAILED"), &Value::from("REVOKED")),
        "{json:#}"
    );
    // The documents list them the same way, with their format.
    let formats: Vec<&str> = json["documents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["format"].as_str())
        .collect();
    assert_eq!(formats, ["pdf", "cms"], "{json:#}");
    assert_eq!(
        json["documents"][0]["signatures"][0]["indication"], "TOTAL_PASSED",
        "{json:#}"
    );
}
