//! Unit tests of the DSS and document time-stamp writers on the sample decree;
//! `qpdf --check` judges the structure of what they write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::PadesLimits;
use kyso_pki::crypto::DigestAlgorithm;

const SAMPLE: &[u8] = include_bytes!("../../../assets/samples/quyet-dinh.pdf");

fn qpdf_check(pdf: &[u8]) {
    let dir = std::env::temp_dir().join(format!(
        "kyso-pades-ltv-{}-{}",
        std::process::id(),
        hex::encode(&DigestAlgorithm::Sha256.digest(pdf)[..8])
    ));
    std::fs::write(&dir, pdf).expect("write temp PDF");
    let out = std::process::Command::new("qpdf")
        .arg("--check")
        .arg(&dir)
        .output()
        .expect("qpdf runs");
    let _ = std::fs::remove_file(&dir);
    assert!(
        out.status.success(),
        "qpdf --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn data(contents: &[u8], certs: &[&[u8]], ocsps: &[&[u8]]) -> SignatureValidationData {
    SignatureValidationData {
        contents: contents.to_vec(),
        certs: certs.iter().map(|c| c.to_vec()).collect(),
        ocsps: ocsps.iter().map(|c| c.to_vec()).collect(),
        crls: Vec::new(),
    }
}

#[test]
fn dss_is_added_then_extended_without_duplicates() {
    let limits = PadesLimits::default();
    let t = time::macros::datetime!(2026-12-03 10:00 UTC);
    let first = add_dss(
        SAMPLE,
        &[data(b"sig-a", &[b"cert-1", b"cert-2"], &[b"ocsp-1"])],
        Some(t),
        &limits,
    )
    .expect("first DSS");
    assert_eq!(
        first.added,
        DssAdded {
            certs: 2,
            ocsps: 1,
            crls: 0,
            vri: 1
        }
    );
    assert!(first.pdf.starts_with(SAMPLE), "the original is the prefix");
    qpdf_check(&first.pdf);
    let dss = read_dss(&first.pdf, &limits).expect("read").expect("a DSS");
    assert_eq!(dss.certs, vec![b"cert-1".to_vec(), b"cert-2".to_vec()]);
    let a = dss.vri.get(&vri_key(b"sig-a")).expect("VRI of sig-a");
    assert_eq!((a.certs, a.ocsps, a.crls), (2, 1, 0));
    assert_eq!(a.tu.as_deref(), Some("D:20261203100000Z"));

    // Again: cert-2 is already there (referenced, not written twice); sig-a gains
    // cert-3; a second signature gets its own VRI entry.
    let second = add_dss(
        &first.pdf,
        &[
            data(b"sig-a", &[b"cert-2", b"cert-3"], &[]),
            data(b"sig-b", &[b"cert-1"], &[b"ocsp-2"]),
        ],
        None,
        &limits,
    )
    .expect("second DSS");
    assert_eq!(
        second.added,
        DssAdded {
            certs: 1,
            ocsps: 1,
            crls: 0,
            vri: 2
        }
    );
    assert!(second.pdf.starts_with(&first.pdf));
    qpdf_check(&second.pdf);
    let dss = read_dss(&second.pdf, &limits)
        .expect("read")
        .expect("a DSS");
    assert_eq!(dss.certs.len(), 3, "no duplicate certificate streams");
    assert_eq!(dss.ocsps.len(), 2);
    let a = dss.vri.get(&vri_key(b"sig-a")).expect("VRI of sig-a");
    assert_eq!(
        (a.certs, a.ocsps),
        (3, 1),
        "the old entry is kept and extended"
    );
    let b = dss.vri.get(&vri_key(b"sig-b")).expect("VRI of sig-b");
    assert_eq!((b.certs, b.ocsps), (1, 1));
}

#[test]
fn dss_with_nothing_new_leaves_the_document_unchanged() {
    let limits = PadesLimits::default();
    let first = add_dss(SAMPLE, &[data(b"s", &[b"c"], &[])], None, &limits).expect("DSS");
    let again = add_dss(&first.pdf, &[data(b"s", &[b"c"], &[])], None, &limits).expect("DSS");
    assert!(again.added.is_empty());
    assert_eq!(again.pdf, first.pdf);
}

#[test]
fn vri_key_is_uppercase_hex_sha1() {
    // SHA-1("abc"), FIPS 180 test vector.
    assert_eq!(vri_key(b"abc"), "A9993E364706816ABA3E25717850C26C9CD0D89D");
}

#[test]
fn document_timestamp_field_and_byte_range() {
    let req = DocTimestampRequest::default();
    let prepared = prepare_document_timestamp(SAMPLE, &req).expect("prepare");
    assert_eq!(prepared.field_name(), "kyso_doc_timestamp_1");
    assert_eq!(prepared.capacity(), req.token_room);
    let [a, b, c, d] = prepared.byte_range();
    assert_eq!(a, 0);
    let pdf = prepared.clone().into_prepared_bytes();
    assert_eq!(c + d, pdf.len());
    assert!(pdf.starts_with(SAMPLE));
    let mut digester = DigestAlgorithm::Sha256.digester();
    digester.update(&pdf[..b]);
    digester.update(&pdf[c..]);
    assert_eq!(digester.finish(), prepared.digest());
    assert_eq!(&pdf[b..b + 1], b"<");
    assert_eq!(&pdf[c - 1..c], b">");
    qpdf_check(&pdf);
    let sigs = signature_contents(&pdf, &PadesLimits::default()).expect("fields");
    let ts = sigs
        .iter()
        .find(|s| s.field_name == "kyso_doc_timestamp_1")
        .expect("the field");
    assert!(ts.document_timestamp);
    // A second one gets the next name.
    let next = prepare_document_timestamp(&pdf, &req).expect("prepare again");
    assert_eq!(next.field_name(), "kyso_doc_timestamp_2");
}

#[test]
fn document_timestamp_refuses_a_token_that_does_not_verify() {
    let prepared =
        prepare_document_timestamp(SAMPLE, &DocTimestampRequest::default()).expect("prepare");
    for junk in [&b""[..], b"\x30\x03\x02\x01\x00", b"not a token"] {
        match prepared.clone().finish(junk, &[]) {
            Err(crate::PadesError::Timestamp(_)) => {}
            other => panic!("a junk token was accepted or misreported: {other:?}"),
        }
    }
}

#[test]
fn document_timestamp_refuses_sha1() {
    let req = DocTimestampRequest {
        digest_algorithm: DigestAlgorithm::Sha1,
        ..DocTimestampRequest::default()
    };
    assert!(matches!(
        prepare_document_timestamp(SAMPLE, &req),
        Err(crate::PadesError::Unsupported(_))
    ));
}
