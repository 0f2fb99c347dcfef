//! The generator of the fuzz seed corpora (`fuzz/corpus/<target>/seed-*`), from the test PKI,
//! `openssl`, the PDF fixtures, the sample images and the edXML writer. Not part of the test run (ignored); run it
//! with `fuzz/seed.sh`, then fuzz and minimise (docs/FUZZING.md). Keys are fresh at every run,
//! so the seeds differ from one run to the next; their structure does not.

use std::fs;
use std::path::{Path, PathBuf};

use kyso_tests::pdf_fixtures::{BaseOptions, PdfDoc, SignOptions, classic_pdf, zlib_stored};
use kyso_tests::{CmsSign, LEAVES, TestPki, cms_sign_in, openssl};

/// Where the seeds go.
fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let path = corpus(target).join(format!("seed-{name}"));
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
#[ignore = "writes the fuzz seed corpora; run by fuzz/seed.sh"]
fn fuzz_seeds_write() {
    let pki = TestPki::get();
    cms_seeds(pki);
    cert_seeds(pki);
    revocation_seeds(pki);
    pdf_seeds();
    png_seeds();
    edxml_seeds(pki);
    tsp_seeds();
}

#[test]
#[ignore = "writes the tsp seed corpus only; run when the TSA harness changes"]
fn fuzz_seeds_write_tsp() {
    tsp_seeds();
}

/// `TimeStampResp`s of the test TSA (`openssl ts -reply`): granted over SHA-256 and SHA-512,
/// granted under the other policy, a rejection (unaccepted policy), and a bare TSTInfo.
fn tsp_seeds() {
    use kyso_pki::crypto::DigestAlgorithm;
    use kyso_pki::tsp::{TimeStampReq, TimeStampResp};
    let tsa = kyso_tests::TestTsa::start();
    let query = |alg: DigestAlgorithm, policy: Option<&str>| {
        TimeStampReq::new(
            alg,
            &alg.digest(b"Quyet dinh so 123/QD-UBND\n"),
            &[0x5a; 16],
            policy.map(der::asn1::ObjectIdentifier::new_unwrap),
        )
        .expect("request")
        .to_der_bytes()
        .expect("DER")
    };
    let granted = tsa.reply(&query(DigestAlgorithm::Sha256, None));
    write("tsp", "granted-sha256.der", &granted);
    write(
        "tsp",
        "granted-sha512.der",
        &tsa.reply(&query(DigestAlgorithm::Sha512, None)),
    );
    write(
        "tsp",
        "other-policy.der",
        &tsa.reply(&query(
            DigestAlgorithm::Sha384,
            Some(kyso_tests::TSA_OTHER_POLICY),
        )),
    );
    write(
        "tsp",
        "rejection.der",
        &tsa.reply(&query(
            DigestAlgorithm::Sha256,
            Some("1.3.6.1.4.1.59420.3161.99"),
        )),
    );
    let token = TimeStampResp::parse(&granted)
        .expect("parses")
        .into_token()
        .expect("granted");
    let msg = kyso_pki::cms::parse(&token).expect("token");
    write("tsp", "tstinfo.der", msg.content().expect("TSTInfo"));
}

/// Signatures as `openssl cms` makes them: attached, detached, streamed (BER with indefinite
/// lengths), without attributes, CAdES, without certificates, RSASSA-PSS, EC, legacy, and PEM.
fn cms_seeds(pki: &TestPki) {
    let content = b"Quyet dinh so 123/QD-UBND\n".to_vec();
    let sign = |name: &str, opts: CmsSign| {
        let der = cms_sign_in(pki, &opts);
        write("cms", &format!("{name}.der"), &der);
        der
    };
    let plain = sign("attached", CmsSign::new("personal-rsa", content.clone()));
    sign(
        "detached",
        CmsSign::new("personal-rsa", content.clone()).detached(),
    );
    sign(
        "stream-ber",
        CmsSign::new("personal-rsa", content.clone()).stream(),
    );
    sign("noattr", CmsSign::new("org-rsa", content.clone()).noattr());
    sign(
        "cades-with-ca",
        CmsSign::new("personal-rsa", content.clone())
            .cades()
            .with_ca(),
    );
    sign(
        "nocerts",
        CmsSign::new("personal-rsa", content.clone()).nocerts(),
    );
    sign("pss", CmsSign::new("personal-pss", content.clone()).pss());
    sign(
        "ec384-sha384",
        CmsSign::new("personal-ec384", content.clone()).md("sha384"),
    );
    sign("ec256", CmsSign::new("personal-ec256", content.clone()));
    sign("legacy-sha1", CmsSign::new("legacy", content).md("sha1"));
    let pem = der::pem::encode_string("CMS", der::pem::LineEnding::LF, &plain).expect("PEM");
    write("cms", "attached.pem", pem.as_bytes());
}

/// Certificate sets as the path builder sees them: leaf first, anchor last (DER, one after the
/// other), single certificates, PEM bundles, and the 17 same-name same-key CAs of issue 14.
fn cert_seeds(pki: &TestPki) {
    let root = pki.cert_der(pki.root_cer());
    for leaf in LEAVES {
        let anchor = match *leaf {
            "legacy" => pki.cert_der(pki.legacy_root_pem()),
            "rogue" => pki.cert_der(pki.rogue_ca_pem()),
            _ => root.clone(),
        };
        let mut set = pki.leaf_der(leaf);
        set.extend(pki.cert_der(pki.leaf_issuer(leaf)));
        set.extend(anchor);
        write("certs", &format!("chain-{leaf}.der"), &set);
    }
    write("certs", "root.der", &root);
    write("certs", "ocsp.der", &pki.cert_der(pki.ocsp_cert()));
    for (name, pem) in [
        ("anchors.pem", pki.anchors_pem()),
        ("intermediates.pem", pki.intermediates_pem()),
    ] {
        write("certs", name, &fs::read(pem).expect("PEM bundle"));
    }
    write("certs", "same-name-cas.der", &same_name_cas(&root));
}

/// A leaf, 17 self-issued CAs with one name and one key (the path-building loop of issue 14,
/// N2's budget), and an unrelated anchor.
fn same_name_cas(anchor: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let p = |f: &str| dir.path().join(f).to_str().expect("UTF-8 path").to_owned();
    let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    for key in ["ca.key", "leaf.key"] {
        let out = p(key);
        let mut args = vec!["genpkey"];
        args.extend(ec);
        args.extend(["-out", &out]);
        openssl(&args).expect_success();
    }
    let mut cas = Vec::new();
    for i in 0..17 {
        let (out, serial) = (p(&format!("ca{i}.der")), (1000 + i).to_string());
        let key = p("ca.key");
        openssl([
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-subj",
            "/C=VN/O=Rogue/CN=Rogue CA",
            "-days",
            "3650",
            "-set_serial",
            &serial,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-outform",
            "DER",
            "-out",
            &out,
        ])
        .expect_success();
        cas.extend(fs::read(&out).expect("CA certificate"));
    }
    let (csr, leaf, ca0) = (p("leaf.csr"), p("leaf.der"), p("ca0.der"));
    let (leaf_key, ca_key) = (p("leaf.key"), p("ca.key"));
    openssl([
        "req",
        "-new",
        "-key",
        &leaf_key,
        "-subj",
        "/C=VN/O=Rogue/CN=Rogue signer",
        "-out",
        &csr,
    ])
    .expect_success();
    openssl([
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca0,
        "-CAform",
        "DER",
        "-CAkey",
        &ca_key,
        "-set_serial",
        "7",
        "-days",
        "365",
        "-outform",
        "DER",
        "-out",
        &leaf,
    ])
    .expect_success();
    let mut set = fs::read(&leaf).expect("leaf certificate");
    set.extend(cas);
    set.extend_from_slice(anchor);
    set
}

/// Every CA's CRL (DER and PEM) and OCSP responses of the test responder: good, revoked, on
/// hold, unknown, with and without the responder's certificate, SHA-1, and a refusal.
fn revocation_seeds(pki: &TestPki) {
    for ca in kyso_tests::CAS {
        write(
            "revocation",
            &format!("{ca}.crl"),
            &fs::read(pki.crl(ca)).expect("CRL"),
        );
    }
    write(
        "revocation",
        "issuing-ca.crl.pem",
        &fs::read(pki.crl_pem("issuing-ca")).expect("PEM CRL"),
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let p = |f: &str| dir.path().join(f).to_str().expect("UTF-8 path").to_owned();
    for (leaf, extra) in [
        ("personal-rsa", &[][..]),
        ("revoked", &[][..]),
        ("onhold", &[][..]),
        ("unknown", &["-resp_no_certs"][..]),
        ("org-rsa", &["-rmd", "sha1", "-resp_key_id"][..]),
    ] {
        let (req, resp) = (p(&format!("{leaf}.req")), p(&format!("{leaf}.resp")));
        let cert = pki.leaf_cert(leaf);
        let cert = cert.to_str().expect("UTF-8 path");
        openssl_in(
            pki,
            &[
                "ocsp",
                "-issuer",
                "issuing-ca.pem",
                "-cert",
                cert,
                "-reqout",
                &req,
            ],
        );
        let mut args = vec![
            "ocsp",
            "-index",
            "db/issuing-ca/index.txt",
            "-CA",
            "issuing-ca.pem",
            "-rsigner",
            "ocsp.pem",
            "-rkey",
            "ocsp.key",
            "-ndays",
            "1",
            "-reqin",
            &req,
            "-respout",
            &resp,
        ];
        args.extend(extra);
        openssl_in(pki, &args);
        write(
            "revocation",
            &format!("ocsp-{leaf}.der"),
            &fs::read(&resp).expect("OCSP response"),
        );
    }
    // An OCSPResponse with only a status (unauthorized, 6): no responseBytes.
    write(
        "revocation",
        "ocsp-unauthorized.der",
        &[0x30, 0x03, 0x0a, 0x01, 0x06],
    );
}

fn openssl_in(pki: &TestPki, args: &[&str]) {
    pki.openssl(args).expect_success();
}

/// The PDF fixtures: both cross-reference forms, signed once and twice, and the changes after
/// a signature that the modification analysis classifies (allowed or not).
fn pdf_seeds() {
    let classic = PdfDoc::base(&BaseOptions::default());
    write("pdf", "base.pdf", &classic.bytes);
    let xref_stream = BaseOptions {
        xref_stream: true,
        ..BaseOptions::default()
    };
    write(
        "pdf",
        "base-xref-stream.pdf",
        &PdfDoc::base(&xref_stream).bytes,
    );
    let signed = |opts: &BaseOptions| {
        let mut doc = PdfDoc::base(opts);
        doc.sign(&SignOptions::new("personal-rsa", "Sig1"));
        doc
    };
    let one = signed(&BaseOptions::default());
    write("pdf", "signed.pdf", &one.bytes);
    write("pdf", "signed-xref-stream.pdf", &signed(&xref_stream).bytes);
    let mut two = one.clone();
    two.sign(&SignOptions::new("org-rsa", "Sig2"));
    write("pdf", "signed-twice.pdf", &two.bytes);
    let mut changed = one.clone();
    changed.change_page_content("Quyet dinh da sua");
    write("pdf", "signed-then-content-changed.pdf", &changed.bytes);
    let mut annotated = one.clone();
    annotated.add_text_annotation();
    write("pdf", "signed-then-annotated.pdf", &annotated.bytes);
    let mut hidden = one;
    hidden.update_with_hidden_xref();
    write("pdf", "signed-then-hidden-xref.pdf", &hidden.bytes);
    let mut shadow = signed(&BaseOptions {
        shadow_content: true,
        ..BaseOptions::default()
    });
    shadow.redirect_to_shadow();
    write("pdf", "signed-shadow-redirect.pdf", &shadow.bytes);
    let nested = BaseOptions {
        nested_arrays: Some(80),
        ..BaseOptions::default()
    };
    write("pdf", "nested-arrays.pdf", &PdfDoc::base(&nested).bytes);
    // A form field tree: a parent whose kids all point to one signature field (fan-out).
    let form = classic_pdf(
        &[
            "<</Type /Catalog /Pages 2 0 R /AcroForm <</Fields [3 0 R]>>>>".to_owned(),
            "<</Type /Pages /Kids [] /Count 0>>".to_owned(),
            format!("<</T (parent) /Kids [{}]>>", "4 0 R ".repeat(8)),
            "<</T (k) /FT /Sig /Parent 3 0 R /V 5 0 R>>".to_owned(),
            "<</Type /Sig /ByteRange [0 10 20 10] /Contents <3003020100>>>".to_owned(),
        ],
        "",
    );
    write("pdf", "form-fan-out.pdf", &form);
}

/// The sample images and small synthetic PNGs: RGB and RGBA rows with every filter type, and
/// the kinds the decoder refuses (palette, 16-bit, interlaced).
fn png_seeds() {
    write(
        "png",
        "signature-sample.png",
        kyso_pades::samples::SIGNATURE_PNG,
    );
    write("png", "seal-sample.png", kyso_pades::samples::SEAL_PNG);
    for (name, colour, channels) in [("rgb", 2u8, 3usize), ("rgba", 6, 4)] {
        // Five rows of three pixels, row y with filter type y (None, Sub, Up, Average, Paeth).
        let mut raw = Vec::new();
        for y in 0..5u8 {
            raw.push(y);
            raw.extend((0..3 * channels).map(|i| (i as u8).wrapping_mul(37).wrapping_add(y)));
        }
        write(
            "png",
            &format!("{name}-filters.png"),
            &png(3, 5, 8, colour, 0, &raw),
        );
    }
    write("png", "palette.png", &png(1, 1, 8, 3, 0, &[0, 0]));
    write("png", "depth16.png", &png(1, 1, 16, 2, 0, &[0; 7]));
    write("png", "interlaced.png", &png(1, 1, 8, 2, 1, &[0; 4]));
}

/// A PNG with one IHDR, one IDAT (stored zlib) and IEND.
fn png(width: u32, height: u32, depth: u8, colour: u8, interlace: u8, raw: &[u8]) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([depth, colour, 0, 0, interlace]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", ihdr),
        (b"IDAT", zlib_stored(raw)),
        (b"IEND", Vec::new()),
    ] {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(&data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    out
}

/// CRC-32 (ISO 3309, the PNG chunk checksum), bit by bit: a few hundred bytes in all.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// edXML envelopes and status messages as kyso writes them, with the signature placeholders
/// the readers must place (one XML-DSig in the header, one in the QCVN namespace, two), other
/// builders' layouts, and what the reader refuses; organisation codes, exchange addresses and
/// document identifiers, valid and not (N6).
fn edxml_seeds(pki: &TestPki) {
    use kyso_edxml::attachment::Attachment;
    use kyso_edxml::envelope::model::*;
    use kyso_edxml::envelope::{write as write_envelope, write_status};
    use kyso_edxml::organ::OrganId;
    use kyso_edxml::status::{StatusCode, StatusMessage};
    use time::{Date, Month, PrimitiveDateTime, Time};

    let organ = |code: &str| OrganId::parse(code).expect("a valid code");
    let day = Date::from_calendar_date(2026, Month::November, 30).expect("a date");
    let at = PrimitiveDateTime::new(day, Time::from_hms(8, 15, 0).expect("a time"));
    let document_id = DocumentId::parse("000.00.12.H41,2026/11/30,1234/QĐ-UBND").expect("an id");
    let mut from = Organization::new(organ("000.00.12.H41"));
    from.organ_name = Some("Văn phòng UBND tỉnh".into());
    from.email = Some("vp@example.gov.vn".into());
    let envelope = Envelope {
        header: MessageHeader {
            from: from.clone(),
            to: vec![
                Organization::new(organ("000.00.00.G22")),
                Organization::new(organ("000.03.12.H34")),
            ],
            document_id: document_id.clone(),
            code: Code {
                code_number: "1234".into(),
                code_notation: "QĐ-UBND".into(),
            },
            promulgation_info: PromulgationInfo {
                place: "Huế".into(),
                promulgation_date: day,
            },
            document_type: DocumentType {
                doc_type: "1".into(),
                type_detail: Some("2".into()),
                type_name: Some("Quyết định".into()),
            },
            subject: "Về việc A & B <c>".into(),
            content: Some("Nội dung".into()),
            signer_info: Some(SignerInfo {
                competence: Some("TM. Ủy ban nhân dân".into()),
                position: Some("Chủ tịch".into()),
                full_name: Some("Nguyễn Văn A".into()),
            }),
            due_date: Some("2026/12/31".into()),
            other_info: Some(OtherInfo {
                priority: Some("0".into()),
                page_amount: Some("2".into()),
                appendixes: vec!["Phụ lục 1".into()],
                ..OtherInfo::default()
            }),
            response_for: vec![ResponseFor {
                organ_id: organ("000.00.00.G22"),
                code: "7816/VPCP-TTĐT".into(),
                document_id: None,
                promulgation_date: Some(day),
            }],
            steering_type: Some("1".into()),
            to_places: vec!["Lưu: VT".into()],
        },
        trace: TraceHeaderList {
            trace_headers: vec![TraceHeader {
                organ_id: organ("000.00.12.H41"),
                timestamp: at,
            }],
            bussiness: Some(Bussiness {
                doc_type: BussinessDocType::New,
                reason: None,
                document_id: None,
                paper: Some("0".into()),
                staff_info: None,
            }),
        },
        manifest: vec![
            ManifestReference {
                content_id: "cid:1".into(),
                content_type: Some("application/pdf".into()),
                description: None,
                attachment_name: Some("qd.pdf".into()),
            },
            ManifestReference {
                content_id: "cid:2".into(),
                content_type: Some("application/pdf".into()),
                description: None,
                attachment_name: Some("phu-luc.docx".into()),
            },
        ],
        attachments: vec![
            Attachment {
                content_id: "cid:1".into(),
                attachment_name: "qd.pdf".into(),
                description: Some("Văn bản".into()),
                content_type: "application/pdf".into(),
                data: b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n".to_vec(),
            },
            Attachment {
                content_id: "cid:2".into(),
                attachment_name: "phu-luc.docx".into(),
                description: None,
                content_type: "application/zip".into(),
                data: b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
            },
        ],
    };
    let written = write_envelope(&envelope).expect("write the envelope");
    let sig = r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>"#;
    let e = |name: &str, text: &str| write("edxml_read", &format!("{name}.xml"), text.as_bytes());
    e("envelope", &written.text);
    edxml_open_seeds(pki, &written.text, written.signature_at);
    e("envelope-signed", &written.with_signature(sig));
    e(
        "envelope-qcvn-signature",
        &written.with_signature(
            "<Signature><SignedInfo/><SignatureValue>AAAA</SignatureValue></Signature>",
        ),
    );
    e(
        "envelope-two-signatures",
        &written.with_signature(&format!("{sig}{sig}")),
    );
    e(
        "envelope-signature-in-message-header",
        &written.text.replacen(
            "</edXML:MessageHeader>",
            &format!("{sig}</edXML:MessageHeader>"),
            1,
        ),
    );
    e(
        "envelope-comment",
        &written.text.replacen("<Subject>", "<Subject><!--x-->", 1),
    );
    e(
        "envelope-repeated-subject",
        &written
            .text
            .replacen("<Subject>", "<Subject>x</Subject><Subject>", 1),
    );
    e(
        "envelope-crlf-unknown-element",
        &written
            .text
            .replacen("<Subject>", "<Novelty>x</Novelty><Subject>", 1)
            .replace('\n', "\r\n"),
    );
    e(
        "envelope-other-builder",
        r#"<?xml version="1.0" encoding="utf-8"?><q:edXML xmlns:q="http://www.mic.gov.vn/TBT/QCVN_102_2016"><q:AttachmentEncoded><q:Attachment><q:ContentTransferEncoded>JVBERi0x
LjcK</q:ContentTransferEncoded><q:ContentType>application/pdf</q:ContentType><q:AttachmentName>a.pdf</q:AttachmentName><q:ContentId>cid:1</q:ContentId></q:Attachment></q:AttachmentEncoded><q:edXMLEnvelope><q:edXMLBody><q:edXMLManifest version="1.0"><q:Reference><q:ContentId>cid:1</q:ContentId></q:Reference></q:edXMLManifest></q:edXMLBody><q:edXMLHeader><q:MessageHeader><q:Subject><![CDATA[A & B]]></q:Subject><q:To><q:OrganId>000.00.00.G22</q:OrganId></q:To><q:From><q:OrganId>000.00.12.H41</q:OrganId></q:From><q:ToPlaces><q:Place>Lưu</q:Place></q:ToPlaces><q:OtherInfo><q:Priority>0</q:Priority></q:OtherInfo><q:DocumentType><q:Type>1</q:Type></q:DocumentType><q:PromulgationInfo><q:PromulgationDate>2026/11/30</q:PromulgationDate><q:Place>Huế</q:Place></q:PromulgationInfo><q:Code><q:CodeNotation>QĐ-UBND</q:CodeNotation><q:CodeNumber>1234</q:CodeNumber></q:Code><q:DocumentId>000.00.12.H41,2026/11/30,1234/QĐ-UBND</q:DocumentId></q:MessageHeader></q:edXMLHeader></q:edXMLEnvelope></q:edXML>"#,
    );

    let mut status = StatusMessage {
        from: Organization::new(organ("000.03.12.H34")),
        response_for: ResponseFor {
            organ_id: organ("000.00.12.H41"),
            code: "1234/QĐ-UBND".into(),
            document_id: Some(document_id),
            promulgation_date: Some(day),
        },
        staff_info: Some(StaffInfo {
            department: Some("Văn thư".into()),
            staff: Some("Lê C".into()),
            email: None,
            mobile: Some("0900000000".into()),
        }),
        status_code: StatusCode::Arrived,
        description: Some("Thiếu chữ ký cơ quan".into()),
        timestamp: at,
    };
    for code in StatusCode::ALL {
        status.status_code = code;
        let written = write_status(&status).expect("write the status message");
        write(
            "edxml_status",
            &format!("status-{code}.xml"),
            written.text.as_bytes(),
        );
        if code == StatusCode::Refused {
            let signed = written.with_signature(sig);
            write("edxml_status", "status-02-signed.xml", signed.as_bytes());
        }
        if code == StatusCode::Accepted {
            let unknown = written
                .text
                .replacen("<StatusCode>03<", "<StatusCode>07<", 1);
            write("edxml_status", "status-07-unknown.xml", unknown.as_bytes());
            let with_body = written.text.replacen(
                "</edXML:edXMLEnvelope>",
                "<edXML:edXMLBody/></edXML:edXMLEnvelope>",
                1,
            );
            write("edxml_status", "status-with-body.xml", with_body.as_bytes());
        }
    }
    write("edxml_status", "code-13", b"13");

    for (name, text) in [
        ("g22", "000.00.00.G22"),
        ("h41-level4", "123.03.12.H41"),
        ("gap", "001.00.05.H34"),
        ("short", "00.00.00.G22"),
        ("address", "VN:GOV:000.00.12.H41:vbdh"),
        ("address-bad", "VN:GOV:000.00.12.H41:"),
        ("document-id", "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"),
        ("document-id-bad-date", "000.00.00.G22,2015/02/30,7816/VPCP"),
    ] {
        write("organ_id", name, text.as_bytes());
    }
}

/// Envelopes kyso signs (RSA, ECDSA, RSA-PSS), one with its subject changed after signing
/// and one with its signature value cut: everything `kyso_edxml::open` verifies.
fn edxml_open_seeds(pki: &TestPki, unsigned: &str, at: usize) {
    use kyso_edxml::dsig::{self, alg::SignatureMethod};
    use kyso_pki::cert::Cert;
    use kyso_pki::crypto::DigestAlgorithm;
    for (name, leaf, method) in [
        (
            "rsa",
            "org-rsa",
            SignatureMethod::RsaPkcs1(DigestAlgorithm::Sha256),
        ),
        (
            "ec256",
            "personal-ec256",
            SignatureMethod::Ecdsa(DigestAlgorithm::Sha256),
        ),
        (
            "pss",
            "personal-pss",
            SignatureMethod::RsaPss(DigestAlgorithm::Sha256),
        ),
    ] {
        let chain = [
            Cert::from_der(&pki.leaf_der(leaf)).expect("the leaf"),
            Cert::from_der(&pki.cert_der(pki.leaf_issuer(leaf))).expect("its issuer"),
        ];
        let prepared = dsig::prepare(unsigned, at, &chain, method).expect("prepare");
        let pss = matches!(method, SignatureMethod::RsaPss(_));
        let value = pki.sign_digest(leaf, "sha256", pss, prepared.signed_info_digest());
        let signed = prepared.finish(&value).expect("finish");
        write("edxml_open", &format!("{name}.xml"), signed.as_bytes());
        if name == "rsa" {
            let tampered = signed.replacen("Nội dung", "Nội dunh", 1);
            write("edxml_open", "rsa-tampered.xml", tampered.as_bytes());
            let cut = signed.replacen("<ds:SignatureValue>", "<ds:SignatureValue>AA", 1);
            write("edxml_open", "rsa-value-cut.xml", cut.as_bytes());
        }
    }
}
