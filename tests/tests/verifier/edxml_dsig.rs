//! The enveloped XML signature of an edXML envelope (N6), proven by interop: envelopes
//! signed by `xmlsec1` verify with `kyso_edxml::dsig::verify`, every kind of tampering gets
//! the right failure, unsafe constructs are refused before hashing, and envelopes kyso
//! signs (two-phase, the test PKI's key files standing in for the HSM) pass
//! `xmlsec1 --verify`.

use kyso_edxml::EdxmlLimits;
use kyso_edxml::dsig::{self, DsigCheck, DsigPolicy, alg::SignatureMethod};
use kyso_edxml::xml::parse::Source;
use kyso_pki::cert::Cert;
use kyso_pki::cms::SignerFailure;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_tests::TestPki;
use kyso_tests::xml_peers::{signxml, signxml_verify, xmlsec_verify, xmlsec1};

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const HEADER_END: &str = "</edXML:edXMLHeader>";

/// A small PDF, base64 (the attachment).
pub(crate) const PDF_B64: &str = "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZy9QYWdlcyAyIDAgUj4+ZW5kb2JqIDIgMCBvYmo8PC9UeXBlL1BhZ2VzL0tpZHNbXS9Db3VudCAwPj5lbmRvYmoKdHJhaWxlcjw8L1Jvb3QgMSAwIFI+PgolJUVPRgo=";

/// An unsigned envelope as the exchange's builders write it (EDXML.md): the root in the
/// QCVN namespace bound both as default and as `edXML:`, header, trace, manifest,
/// attachment.
fn envelope() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016" xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope>
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>000.00.15.H34</edXML:OrganId><edXML:OrganName>Ủy ban nhân dân tỉnh Khánh Hòa</edXML:OrganName></edXML:From>
        <edXML:To><edXML:OrganId>000.00.00.G22</edXML:OrganId><edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:To>
        <edXML:DocumentId>000.00.15.H34,2026/12/01,1234/QĐ-UBND</edXML:DocumentId>
        <edXML:Code><edXML:CodeNumber>1234</edXML:CodeNumber><edXML:CodeNotation>QĐ-UBND</edXML:CodeNotation></edXML:Code>
        <edXML:PromulgationInfo><edXML:Place>Khánh Hòa</edXML:Place><edXML:PromulgationDate>2026/12/01</edXML:PromulgationDate></edXML:PromulgationInfo>
        <edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeDetail>2</edXML:TypeDetail><edXML:TypeName>Quyết định</edXML:TypeName></edXML:DocumentType>
        <edXML:Subject>Về việc phê duyệt kế hoạch &amp; dự toán năm 2027</edXML:Subject>
        <edXML:SignerInfo><edXML:Competence>TM. Ủy ban nhân dân</edXML:Competence><edXML:Position>Chủ tịch</edXML:Position><edXML:FullName>Nguyễn Văn An</edXML:FullName></edXML:SignerInfo>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList>
        <edXML:TraceHeader><edXML:OrganId>000.00.15.H34</edXML:OrganId><edXML:Timestamp>2026/12/01 08:00:00</edXML:Timestamp></edXML:TraceHeader>
      </edXML:TraceHeaderList>
    {HEADER_END}
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference><edXML:ContentId>cid:1</edXML:ContentId><edXML:ContentType>application/pdf</edXML:ContentType><edXML:AttachmentName>1234-QD-UBND.pdf</edXML:AttachmentName></edXML:Reference>
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded>
    <Attachment><ContentId>cid:1</ContentId><AttachmentName>1234-QD-UBND.pdf</AttachmentName><ContentType>application/pdf</ContentType><edXML:ContentTransferEncoded>{PDF_B64}</edXML:ContentTransferEncoded></Attachment>
  </AttachmentEncoded>
</edXML>
"#
    )
}

/// The envelope with `signature` as the last child of the header.
pub(crate) fn with_signature(signature: &str) -> String {
    envelope().replacen(HEADER_END, &format!("{signature}{HEADER_END}"), 1)
}

/// An xmlsec1 template: `prefix` is `ds:` or `""` (a default-namespace Signature, as
/// .NET-style builders write it).
pub(crate) fn template(prefix: &str, method: &str, digest: &str) -> String {
    let decl = if prefix.is_empty() {
        format!(r#"xmlns="{DSIG}""#)
    } else {
        format!(r#"xmlns:ds="{DSIG}""#)
    };
    let p = prefix;
    format!(
        r#"<{p}Signature {decl}><{p}SignedInfo>
 <{p}CanonicalizationMethod Algorithm="{C14N10}"/>
 <{p}SignatureMethod Algorithm="{method}"/>
 <{p}Reference URI=""><{p}Transforms>
  <{p}Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
  <{p}Transform Algorithm="{C14N10}"/></{p}Transforms>
  <{p}DigestMethod Algorithm="{digest}"/><{p}DigestValue/>
 </{p}Reference></{p}SignedInfo><{p}SignatureValue/><{p}KeyInfo><{p}X509Data/></{p}KeyInfo>
</{p}Signature>"#
    )
}

pub(crate) const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub(crate) const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// Signs `template_doc` with xmlsec1 and `leaf`'s key; the chain goes into X509Data.
pub(crate) fn xmlsec_sign(pki: &TestPki, leaf: &str, template_doc: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let tmpl = dir.path().join("tmpl.xml");
    let out = dir.path().join("out.xml");
    std::fs::write(&tmpl, template_doc).unwrap();
    let keys = format!(
        "{},{},{}",
        pki.leaf_key(leaf).display(),
        pki.leaf_cert(leaf).display(),
        pki.leaf_issuer(leaf).display()
    );
    let o = xmlsec1(&[&"--sign", &"--privkey-pem", &keys, &"--output", &out, &tmpl]);
    assert!(o.success(), "xmlsec1 --sign: {}", o.stderr_str());
    std::fs::read_to_string(&out).unwrap()
}

fn check_with(text: &str, policy: DsigPolicy) -> DsigCheck {
    let limits = EdxmlLimits::default();
    let source = Source::new(text.as_bytes(), &limits).unwrap();
    let doc = source.parse(&limits).unwrap();
    let sigs = dsig::signatures(&doc);
    dsig::verify(&doc, sigs[0], &policy, &limits).unwrap()
}

fn check(text: &str) -> DsigCheck {
    check_with(text, DsigPolicy::default())
}

#[track_caller]
fn assert_passes(c: &DsigCheck, pki: &TestPki, leaf: &str) {
    assert!(c.check.failure.is_none(), "{:?}", c.check.failure);
    assert_eq!(
        c.check.signer_cert.as_ref().map(|c| c.der().to_vec()),
        Some(pki.leaf_der(leaf))
    );
    assert!(!c.pool.is_empty());
}

fn failure(c: &DsigCheck) -> SignerFailure {
    c.check.failure.clone().expect("the check must fail")
}

#[test]
fn xmlsec1_signed_envelopes_verify_N6() {
    let pki = TestPki::get();
    for (leaf, method, prefix) in [
        ("org-rsa", RSA_SHA256, "ds:"),
        ("personal-ec256", ECDSA_SHA256, "ds:"),
        ("personal-ec384", ECDSA_SHA384, "ds:"),
        ("org-rsa", RSA_SHA256, ""),
    ] {
        let signed = xmlsec_sign(
            pki,
            leaf,
            &with_signature(&template(prefix, method, SHA256)),
        );
        assert!(xmlsec_verify(pki, &signed), "{leaf} {method}: control");
        let c = check(&signed);
        assert_passes(&c, pki, leaf);
        assert_eq!(c.check.digest_algorithm, Some(DigestAlgorithm::Sha256));
        assert_eq!(c.pool.len(), 2, "leaf and issuing CA from X509Data");
    }
}

#[test]
fn sha1_is_accepted_only_under_the_legacy_policy_N6() {
    let pki = TestPki::get();
    let signed = xmlsec_sign(
        pki,
        "org-rsa",
        &with_signature(&template("ds:", RSA_SHA1, SHA1)),
    );
    assert!(matches!(
        failure(&check(&signed)),
        SignerFailure::CryptoConstraints(_)
    ));
    let c = check_with(&signed, DsigPolicy { legacy_sha1: true });
    assert_passes(&c, pki, "org-rsa");
    assert!(
        c.check.warnings.iter().any(|w| w.contains("SHA-1")),
        "{:?}",
        c.check.warnings
    );
}

#[test]
fn every_kind_of_tampering_fails_N6() {
    let pki = TestPki::get();
    let signed = xmlsec_sign(
        pki,
        "org-rsa",
        &with_signature(&template("ds:", RSA_SHA256, SHA256)),
    );
    assert_passes(&check(&signed), pki, "org-rsa");
    let hash_cases = [
        (
            "header text",
            signed.replacen("kế hoạch &amp; dự toán", "kế hoạch &amp; quyết toán", 1),
        ),
        (
            "recipient added",
            signed.replacen(
                "</edXML:To>",
                "</edXML:To><edXML:To><edXML:OrganId>000.00.00.H01</edXML:OrganId></edXML:To>",
                1,
            ),
        ),
        (
            "attachment replaced",
            signed.replacen(PDF_B64, "JVBERi0xLjQKJSVFT0YK", 1),
        ),
        (
            "trace appended",
            signed.replacen(
                "</edXML:TraceHeaderList>",
                "<edXML:TraceHeader><edXML:OrganId>000.00.00.G22</edXML:OrganId><edXML:Timestamp>2026/12/02 09:00:00</edXML:Timestamp></edXML:TraceHeader></edXML:TraceHeaderList>",
                1,
            ),
        ),
    ];
    for (what, tampered) in hash_cases {
        assert_ne!(tampered, signed, "{what}: the edit applied");
        assert!(!xmlsec_verify(pki, &tampered), "{what}: xmlsec1 agrees");
        assert!(
            matches!(failure(&check(&tampered)), SignerFailure::HashFailure(_)),
            "{what}"
        );
    }
    // One bit of the SignatureValue.
    let start = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut bytes = signed.clone().into_bytes();
    let b = bytes[start + 10];
    bytes[start + 10] = if b == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert!(!xmlsec_verify(pki, &flipped));
    assert!(matches!(
        failure(&check(&flipped)),
        SignerFailure::SigCrypto(_)
    ));
}

#[test]
fn unsafe_constructs_are_refused_before_hashing_N6() {
    let pki = TestPki::get();
    let signed = xmlsec_sign(
        pki,
        "org-rsa",
        &with_signature(&template("ds:", RSA_SHA256, SHA256)),
    );
    let sig_start = signed.find("<ds:Signature ").unwrap();
    let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &signed[sig_start..sig_end];
    let c14n_transform = format!(r#"<ds:Transform Algorithm="{C14N10}"/>"#);
    assert!(signed.contains(&c14n_transform));
    let cases = [
        (
            "two signatures",
            signed.replacen(
                "</edXML:edXMLBody>",
                &format!("{signature}</edXML:edXMLBody>"),
                1,
            ),
        ),
        (
            "ID data reference",
            signed.replacen(r#"URI="""#, r##"URI="#h1""##, 1),
        ),
        (
            "external reference",
            signed.replacen(r#"URI="""#, r#"URI="http://example.org/doc.xml""#, 1),
        ),
        (
            "XPath transform",
            signed.replacen(
                &c14n_transform,
                r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>"#,
                1,
            ),
        ),
        (
            "XSLT transform",
            signed.replacen(
                &c14n_transform,
                r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#,
                1,
            ),
        ),
        (
            "wrong exclusive C14N URI",
            signed.replacen(
                &c14n_transform,
                r#"<ds:Transform Algorithm="http://www.w3.org/TR/xml-exc-c14n#"/>"#,
                1,
            ),
        ),
        (
            "a comment in a signed value",
            signed.replacen("1234/QĐ-UBND<", "1234/QĐ-UBND<!--x--><", 1),
        ),
    ];
    for (what, hostile) in cases {
        assert_ne!(hostile, signed, "{what}: the edit applied");
        let f = failure(&check(&hostile));
        assert!(matches!(f, SignerFailure::Format(_)), "{what}: {f:?}");
    }
}

/// Signs the envelope the way the signer does: prepare, the digest to the "HSM" (the
/// leaf's key file), finish.
fn kyso_sign(pki: &TestPki, leaf: &str, method: SignatureMethod) -> String {
    let unsigned = envelope();
    let at = unsigned.find(HEADER_END).unwrap();
    let chain = [
        Cert::from_der(&pki.leaf_der(leaf)).unwrap(),
        Cert::from_der(&pki.cert_der(pki.leaf_issuer(leaf))).unwrap(),
    ];
    let prepared = dsig::prepare(&unsigned, at, &chain, method).unwrap();
    let md = match method.digest() {
        DigestAlgorithm::Sha384 => "sha384",
        DigestAlgorithm::Sha512 => "sha512",
        _ => "sha256",
    };
    let pss = matches!(method, SignatureMethod::RsaPss(_));
    let value = pki.sign_digest(leaf, md, pss, prepared.signed_info_digest());
    let signed = prepared.finish(&value).unwrap();
    // Nothing but the Signature was added.
    let sig_start = signed.find("<ds:Signature ").unwrap();
    let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    assert_eq!(
        format!("{}{}", &signed[..sig_start], &signed[sig_end..]),
        unsigned
    );
    signed
}

#[test]
fn envelopes_kyso_signs_pass_xmlsec1_N6() {
    let pki = TestPki::get();
    for (leaf, method) in [
        (
            "org-rsa",
            SignatureMethod::RsaPkcs1(DigestAlgorithm::Sha256),
        ),
        (
            "personal-ec256",
            SignatureMethod::Ecdsa(DigestAlgorithm::Sha256),
        ),
        (
            "personal-ec384",
            SignatureMethod::Ecdsa(DigestAlgorithm::Sha384),
        ),
    ] {
        let signed = kyso_sign(pki, leaf, method);
        assert!(xmlsec_verify(pki, &signed), "{leaf}: xmlsec1 --verify");
        assert_passes(&check(&signed), pki, leaf);
        let tampered = signed.replacen("1234/QĐ-UBND", "1235/QĐ-UBND", 1);
        assert!(
            !xmlsec_verify(pki, &tampered),
            "{leaf}: xmlsec1 sees the change"
        );
    }
    // RSA-PSS: xmlsec1 1.2 has no PSS; kyso's own verify is checked here, signxml below.
    let signed = kyso_sign(
        pki,
        "personal-pss",
        SignatureMethod::RsaPss(DigestAlgorithm::Sha256),
    );
    assert_passes(&check(&signed), pki, "personal-pss");
}

#[test]
fn signing_refuses_what_it_cannot_sign_exactly_N6() {
    let pki = TestPki::get();
    let chain = [Cert::from_der(&pki.leaf_der("org-rsa")).unwrap()];
    let rsa = SignatureMethod::RsaPkcs1(DigestAlgorithm::Sha256);
    let unsigned = envelope();
    let at = unsigned.find(HEADER_END).unwrap();
    // CR in the text.
    assert!(dsig::prepare(&unsigned.replace('\n', "\r\n"), at, &chain, rsa).is_err());
    // An offset inside a tag.
    assert!(dsig::prepare(&unsigned, at + 3, &chain, rsa).is_err());
    // An ECDSA method with an RSA key.
    assert!(
        dsig::prepare(
            &unsigned,
            at,
            &chain,
            SignatureMethod::Ecdsa(DigestAlgorithm::Sha256)
        )
        .is_err()
    );
    // Already signed.
    let signed = kyso_sign(pki, "org-rsa", rsa);
    let at = signed.find(HEADER_END).unwrap();
    assert!(dsig::prepare(&signed, at, &chain, rsa).is_err());
    // A signature value from another key is caught by the self-check.
    let prepared =
        dsig::prepare(&unsigned, unsigned.find(HEADER_END).unwrap(), &chain, rsa).unwrap();
    let wrong = pki.sign_digest(
        "personal-rsa",
        "sha256",
        false,
        prepared.signed_info_digest(),
    );
    assert!(prepared.finish(&wrong).is_err());
}

fn signxml_sign(pki: &TestPki, leaf: &str, algorithm: &str, c14n: &str) -> String {
    signxml_sign_with(pki, leaf, algorithm, c14n, false)
}

fn signxml_sign_with(
    pki: &TestPki,
    leaf: &str,
    algorithm: &str,
    c14n: &str,
    key_value: bool,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.xml");
    let out = dir.path().join("out.xml");
    let chain = dir.path().join("chain.pem");
    std::fs::write(
        &src,
        with_signature(&format!(
            r#"<ds:Signature xmlns:ds="{DSIG}" Id="placeholder"/>"#
        )),
    )
    .unwrap();
    let mut pem = std::fs::read_to_string(pki.leaf_cert(leaf)).unwrap();
    pem.push_str(&std::fs::read_to_string(pki.leaf_issuer(leaf)).unwrap());
    std::fs::write(&chain, pem).unwrap();
    let key = pki.leaf_key(leaf);
    let extra = if key_value { "keyvalue" } else { "" };
    let command = if algorithm.starts_with("xades:") {
        "xades-sign"
    } else {
        "sign"
    };
    let algorithm = algorithm.trim_start_matches("xades:");
    let o = signxml(&[
        &command, &src, &out, &key, &chain, &algorithm, &c14n, &extra,
    ]);
    assert!(o.success(), "signxml sign: {}", o.stderr_str());
    std::fs::read_to_string(&out).unwrap()
}

#[test]
fn signxml_signed_envelopes_verify_N6() {
    let pki = TestPki::get();
    for (leaf, algorithm, c14n) in [
        ("org-rsa", "rsa-sha256", C14N10),
        (
            "personal-ec256",
            "ecdsa-sha256",
            "http://www.w3.org/2006/12/xml-c14n11",
        ),
        (
            "org-rsa",
            "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
            "http://www.w3.org/2001/10/xml-exc-c14n#",
        ),
    ] {
        let signed = signxml_sign(pki, leaf, algorithm, c14n);
        assert!(signxml_verify(pki, &signed), "{algorithm}: control");
        let c = check(&signed);
        assert_passes(&c, pki, leaf);
        let tampered = signed.replacen("000.00.00.G22", "000.00.00.G23", 1);
        assert!(
            !signxml_verify(pki, &tampered),
            "{algorithm}: signxml sees it"
        );
        assert!(
            matches!(failure(&check(&tampered)), SignerFailure::HashFailure(_)),
            "{algorithm}"
        );
    }
}

#[test]
fn envelopes_kyso_signs_pass_signxml_N6() {
    let pki = TestPki::get();
    for (leaf, method) in [
        (
            "org-rsa",
            SignatureMethod::RsaPkcs1(DigestAlgorithm::Sha256),
        ),
        (
            "personal-ec256",
            SignatureMethod::Ecdsa(DigestAlgorithm::Sha256),
        ),
        ("org-rsa", SignatureMethod::RsaPss(DigestAlgorithm::Sha256)),
    ] {
        let signed = kyso_sign(pki, leaf, method);
        assert!(signxml_verify(pki, &signed), "{leaf} {method:?}: signxml");
        let tampered = signed.replacen("Văn phòng Chính phủ", "Bộ Nội vụ", 1);
        assert!(
            !signxml_verify(pki, &tampered),
            "{leaf} {method:?}: tampered"
        );
    }
}

#[test]
fn a_key_value_must_be_the_signer_key_N6() {
    let pki = TestPki::get();
    for (leaf, algorithm, component) in [
        ("org-rsa", "rsa-sha256", "<ds:Modulus>"),
        ("personal-ec256", "ecdsa-sha256", "PublicKey>"),
    ] {
        let signed = signxml_sign_with(pki, leaf, algorithm, C14N10, true);
        assert!(
            signed.contains(component),
            "{leaf}: signxml wrote a KeyValue"
        );
        assert_passes(&check(&signed), pki, leaf);
        // KeyInfo is not signed: change the key it claims, the signature still verifies.
        let at = signed.find(component).unwrap() + component.len() + 8;
        let mut bytes = signed.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let other = String::from_utf8(bytes).unwrap();
        let f = failure(&check(&other));
        assert!(
            matches!(&f, SignerFailure::Format(m) if m.contains("KeyValue")),
            "{leaf}: {f:?}"
        );
    }
}

#[test]
fn xades_signed_properties_are_verified_N6() {
    let pki = TestPki::get();
    for (leaf, algorithm) in [
        ("org-rsa", "xades:rsa-sha256"),
        ("personal-ec256", "xades:ecdsa-sha256"),
    ] {
        let signed = signxml_sign_with(pki, leaf, algorithm, C14N10, false);
        assert!(signed.contains("SigningCertificateV2"), "{leaf}: XAdES");
        let c = check(&signed);
        assert_passes(&c, pki, leaf);
        assert_eq!(c.check.ess, kyso_pki::cms::EssStatus::V2Matched, "{leaf}");
        assert!(c.check.signing_time.is_some(), "{leaf}: SigningTime read");
        // The signing time is signed.
        let at = signed.find("SigningTime>").unwrap() + "SigningTime>".len();
        let year = &signed[at..at + 4];
        let tampered = format!("{}1999{}", &signed[..at], &signed[at + 4..]);
        assert_ne!(year, "1999");
        assert!(
            matches!(failure(&check(&tampered)), SignerFailure::HashFailure(_)),
            "{leaf}"
        );
        // An ID that a second element also carries names nothing (signature wrapping).
        let id_at = signed.find("SignedProperties Id=\"").unwrap() + "SignedProperties Id=\"".len();
        let id = &signed[id_at..id_at + signed[id_at..].find('"').unwrap()];
        let wrapped = signed.replacen(
            "<edXML:Subject>",
            &format!("<edXML:Subject Id=\"{id}\">"),
            1,
        );
        let f = failure(&check(&wrapped));
        assert!(
            matches!(&f, SignerFailure::Format(m) if m.contains("exactly one")),
            "{leaf}: {f:?}"
        );
    }
}

/// `kyso verify` recognises an envelope by its content and reports its signature in the
/// same JSON shape as a CMS one (indication at the top level, the part it belongs to), with
/// the envelope's header and attachments; a tampered envelope fails on its digest (N6, V5).
#[test]
fn kyso_verify_reads_envelopes_N6() {
    let pki = TestPki::get();
    let dir = tempfile::tempdir().unwrap();
    // A real (unsigned) PDF as the attachment: listed with its hash, not judged.
    let pdf = kyso_tests::pdf_fixtures::classic_pdf(
        &[
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [] /Count 0 >>".to_string(),
        ],
        "",
    );
    let pdf_b64 = {
        use base64ct::Encoding;
        base64ct::Base64::encode_string(&pdf)
    };
    let unsigned = with_signature(&template("ds:", RSA_SHA256, SHA256)).replace(PDF_B64, &pdf_b64);
    let signed = xmlsec_sign(pki, "org-rsa", &unsigned);
    let good = dir.path().join("envelope.edxml");
    std::fs::write(&good, &signed).unwrap();
    let (out, json) = crate::cli::local(&[&good]);
    let json = json.unwrap_or_else(|| panic!("no JSON: {}", out.stderr_str()));
    assert_eq!(json["indication"], "TOTAL_PASSED", "{json:#}");
    assert_eq!(json["signatures"][0]["part"], "envelope");
    assert_eq!(json["signatures"][0]["indication"], "TOTAL_PASSED");
    let doc = &json["documents"][0];
    assert_eq!(doc["format"], "edxml");
    assert_eq!(doc["summary"]["from"], "000.00.15.H34");
    assert_eq!(
        doc["summary"]["document_id"],
        "000.00.15.H34,2026/12/01,1234/QĐ-UBND"
    );
    assert_eq!(doc["attachments"][0]["sniffed"], "PDF");
    assert_eq!(doc["attachments"][0]["size"], pdf.len());
    assert!(
        doc["warnings"].to_string().contains("without signatures"),
        "{doc:#}"
    );
    assert!(out.success());
    // The same through a verifier (VerifyEdxml), in the same shape.
    let server = crate::cli::Server::start(crate::cli::server_config());
    let (out, remote) = crate::cli::remote(&server.url, &[], &[&good]);
    let remote = remote.unwrap_or_else(|| panic!("no JSON: {}", out.stderr_str()));
    assert_eq!(remote["indication"], "TOTAL_PASSED", "{remote:#}");
    assert_eq!(remote["signatures"][0]["part"], "envelope");
    assert_eq!(remote["documents"][0]["summary"], doc["summary"]);
    assert_eq!(
        remote["documents"][0]["attachments"][0]["sha256"],
        doc["attachments"][0]["sha256"]
    );

    let tampered = dir.path().join("tampered.edxml");
    std::fs::write(&tampered, signed.replace("năm 2027", "năm 2028")).unwrap();
    let (out, json) = crate::cli::local(&[&tampered]);
    let json = json.unwrap_or_else(|| panic!("no JSON: {}", out.stderr_str()));
    assert_eq!(json["indication"], "TOTAL_FAILED", "{json:#}");
    assert_eq!(json["signatures"][0]["sub_indication"], "HASH_FAILURE");
    assert_eq!(out.status.code(), Some(1));
}

/// Envelopes whose signature is intact but whose signer must not be trusted get the verdict
/// a CMS by the same certificate gets: revoked, on hold (N7), expired, or issued by a CA
/// that chains to no anchor (N6, V1).
#[test]
fn untrusted_signers_of_intact_envelopes_are_refused_N6() {
    let pki = TestPki::get();
    let dir = tempfile::tempdir().unwrap();
    for (leaf, indication, sub) in [
        ("revoked", "TOTAL_FAILED", "REVOKED"),
        ("onhold", "TOTAL_FAILED", "REVOKED"),
        ("expired", "INDETERMINATE", "OUT_OF_BOUNDS_NO_POE"),
        ("rogue", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
    ] {
        let signed = xmlsec_sign(
            pki,
            leaf,
            &with_signature(&template("ds:", RSA_SHA256, SHA256)),
        );
        let c = check(&signed);
        assert!(c.check.passed(), "{leaf}: the signature itself is intact");
        let file = dir.path().join(format!("{leaf}.edxml"));
        std::fs::write(&file, &signed).unwrap();
        let (out, json) = crate::cli::local(&[&file]);
        let json = json.unwrap_or_else(|| panic!("no JSON: {}", out.stderr_str()));
        let s = &json["signatures"][0];
        assert_eq!(
            (s["indication"].as_str(), s["sub_indication"].as_str()),
            (Some(indication), Some(sub)),
            "{leaf}: {json:#}"
        );
        assert_ne!(out.status.code(), Some(0), "{leaf}");
    }
}

/// Envelope wrapping (the signed header moved aside, an unsigned one where the reader looks):
/// a second, unsigned envelope or header beside the signed one is refused by the reader as
/// ambiguous, the signed one wrapped inside an unknown element fails the digest over the
/// whole document, and an ID reference that would let the signature cover only the moved
/// header is refused before hashing. `kyso verify` never reports the forged header as
/// signed; xmlsec1 agrees that none of them verifies (N6).
#[test]
fn an_envelope_wrapping_attack_is_refused_N6() {
    let pki = TestPki::get();
    let dir = tempfile::tempdir().unwrap();
    let signed = xmlsec_sign(
        pki,
        "org-rsa",
        &with_signature(&template("ds:", RSA_SHA256, SHA256)),
    );
    let forged = "<edXML:MessageHeader><edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:From><edXML:To><edXML:OrganId>000.00.00.H34</edXML:OrganId></edXML:To><edXML:DocumentId>000.00.00.G22,2026/12/01,9/VPCP</edXML:DocumentId><edXML:Code><edXML:CodeNumber>9</edXML:CodeNumber><edXML:CodeNotation>VPCP</edXML:CodeNotation></edXML:Code><edXML:PromulgationInfo><edXML:Place>Hà Nội</edXML:Place><edXML:PromulgationDate>2026/12/01</edXML:PromulgationDate></edXML:PromulgationInfo><edXML:DocumentType><edXML:Type>1</edXML:Type></edXML:DocumentType><edXML:Subject>Giả mạo</edXML:Subject></edXML:MessageHeader>";
    let header_start = signed.find("<edXML:edXMLHeader>").unwrap();
    let header_end = signed.find("</edXML:edXMLHeader>").unwrap() + "</edXML:edXMLHeader>".len();
    let signed_header = &signed[header_start..header_end];
    let cases = [
        (
            "a second, unsigned envelope after the signed one",
            signed.replacen(
                "</edXML:edXMLEnvelope>",
                &format!(
                    "</edXML:edXMLEnvelope><edXML:edXMLEnvelope><edXML:edXMLHeader>{forged}</edXML:edXMLHeader></edXML:edXMLEnvelope>"
                ),
                1,
            ),
        ),
        (
            "a second, unsigned header before the signed one",
            signed.replacen(
                "<edXML:edXMLEnvelope>",
                &format!("<edXML:edXMLEnvelope><edXML:edXMLHeader>{forged}</edXML:edXMLHeader>"),
                1,
            ),
        ),
        (
            "the signed header wrapped in an unknown element, a forged one in its place",
            signed.replacen(
                signed_header,
                &format!(
                    "<edXML:edXMLHeader>{forged}<Wrapper xmlns=\"urn:x\">{signed_header}</Wrapper></edXML:edXMLHeader>"
                ),
                1,
            ),
        ),
    ];
    for (what, attack) in cases {
        assert_ne!(attack, signed, "{what}: the edit applied");
        assert!(!xmlsec_verify(pki, &attack), "{what}: xmlsec1 agrees");
        let file = dir.path().join("wrapped.edxml");
        std::fs::write(&file, &attack).unwrap();
        let (out, json) = crate::cli::local(&[&file]);
        assert_ne!(out.status.code(), Some(0), "{what}: refused");
        if let Some(json) = json {
            assert_ne!(json["indication"], "TOTAL_PASSED", "{what}: {json:#}");
        }
    }
}
