//! CMS parsing and per-signer checks against signatures made by the openssl CLI.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use kyso_pki::cert::Cert;
use kyso_pki::cms::{self, Detached, EssStatus, SignerCheck, SignerFailure};
use kyso_pki::crypto::DigestAlgorithm;

const DATA: &[u8] = b"Kinh gui: Uy ban nhan dan tinh. Noi dung van ban can ky so.\n";

/// A throwaway PKI in a unique temporary directory, removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Pki {
    /// A CA and an RSA-2048 leaf ("leaf"), and the content in `data.bin`.
    fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("kyso-pki-cms-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Self { dir };
        pki.write("data.bin", DATA);
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Kyso Test CA/O=Kyso",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki.leaf("leaf", &["-newkey", "rsa:2048"], "2");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.path(name), data).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A leaf certificate `name.pem` with key `name.key`, issued by the CA.
    fn leaf(&self, name: &str, keyargs: &[&str], serial: &str) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let mut args = vec!["req", "-new", "-nodes", "-keyout", &key, "-out", &csr];
        args.extend_from_slice(keyargs);
        args.extend_from_slice(&["-subj", "/CN=Nguyen Van A/O=Kyso"]);
        self.openssl(&args);
        self.issue(name, &csr, serial, "30");
    }

    fn issue(&self, name: &str, csr: &str, serial: &str, days: &str) {
        self.write(
            "leaf.ext",
            b"keyUsage=critical,digitalSignature,nonRepudiation\nsubjectKeyIdentifier=hash\n",
        );
        let out = format!("{name}.pem");
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-days",
            days,
            "-extfile",
            "leaf.ext",
            "-out",
            &out,
        ]);
    }

    fn cert(&self, name: &str) -> Cert {
        Cert::parse_many(&self.read(&format!("{name}.pem")))
            .unwrap()
            .remove(0)
    }

    /// `openssl cms -sign` with `signer`, over `data.bin`, returning the output.
    fn sign(&self, signer: &str, extra: &[&str]) -> Vec<u8> {
        let cert = format!("{signer}.pem");
        let key = format!("{signer}.key");
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-in",
            "data.bin",
            "-signer",
            &cert,
            "-inkey",
            &key,
            "-certfile",
            "ca.pem",
            "-out",
            "out.p7",
        ];
        if !extra.contains(&"-outform") {
            args.extend_from_slice(&["-outform", "DER"]);
        }
        if !extra.contains(&"-md") {
            args.extend_from_slice(&["-md", "sha256"]);
        }
        args.extend_from_slice(extra);
        self.openssl(&args);
        self.read("out.p7")
    }
}

fn check(msg: &cms::SignedDataMessage, detached: Detached<'_>, extra: &[Cert]) -> SignerCheck {
    assert_eq!(msg.signer_count(), 1);
    cms::check_signer(msg, 0, &detached, extra)
}

fn assert_passed(c: &SignerCheck) {
    assert!(c.failure.is_none(), "unexpected failure: {:?}", c.failure);
    assert!(c.signer_cert.is_some());
}

#[test]
fn attached_der() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &["-nodetach"]);
    let msg = cms::parse(&der).unwrap();
    assert_eq!(msg.content(), Some(DATA));
    assert!(!msg.is_detached());
    assert_eq!(msg.econtent_type(), cms::oid::DATA);
    assert_eq!(msg.certificates().len(), 2);
    assert_eq!(msg.digest_algorithms(), &[DigestAlgorithm::Sha256]);
    let c = check(&msg, Detached::None, &[]);
    assert_passed(&c);
    assert_eq!(c.signer_cert.as_ref(), Some(&pki.cert("leaf")));
    assert_eq!(c.digest_algorithm, Some(DigestAlgorithm::Sha256));
    assert_eq!(
        c.signature_algorithm.as_deref(),
        Some("RSA PKCS#1 v1.5 SHA-256")
    );
    assert!(c.signed_attributes);
    assert!(!c.detached);
    assert_eq!(c.ess, EssStatus::Absent);
    let st = c.signing_time.expect("openssl writes signing-time");
    let age = time::OffsetDateTime::now_utc() - st;
    assert!(age.whole_minutes().abs() < 10, "signing time {st}");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // Detached content given as well: the attached one is used, with a warning.
    let c = check(&msg, Detached::Content(b"something else"), &[]);
    assert_passed(&c);
    assert!(
        c.warnings.iter().any(|w| w.contains("differs")),
        "{:?}",
        c.warnings
    );

    // Altered encapsulated content.
    let at = der.windows(DATA.len()).position(|w| w == DATA).unwrap();
    let mut altered = der.clone();
    altered[at + 3] ^= 0x20;
    let msg = cms::parse(&altered).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert!(
        matches!(c.failure, Some(SignerFailure::HashFailure(_))),
        "{:?}",
        c.failure
    );

    // Flipped signature byte: the signature value ends the message.
    let mut flipped = der.clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    let msg = cms::parse(&flipped).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert!(
        matches!(c.failure, Some(SignerFailure::SigCrypto(_))),
        "{:?}",
        c.failure
    );
}

#[test]
fn detached_content_and_digest() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &[]);
    let msg = cms::parse(&der).unwrap();
    assert!(msg.is_detached());
    assert_eq!(msg.content(), None);

    let c = check(&msg, Detached::None, &[]);
    assert!(c.detached);
    assert!(
        matches!(c.failure, Some(SignerFailure::SignedDataNotFound(_))),
        "{:?}",
        c.failure
    );
    assert_passed(&check(&msg, Detached::Content(DATA), &[]));

    let mut other = DATA.to_vec();
    other[0] ^= 1;
    let c = check(&msg, Detached::Content(&other), &[]);
    assert!(matches!(c.failure, Some(SignerFailure::HashFailure(_))));

    let digest = DigestAlgorithm::Sha256.digest(DATA);
    let ok = Detached::Digest {
        algorithm: DigestAlgorithm::Sha256,
        value: &digest,
    };
    assert_passed(&check(&msg, ok, &[]));

    let d384 = DigestAlgorithm::Sha384.digest(DATA);
    let wrong_alg = Detached::Digest {
        algorithm: DigestAlgorithm::Sha384,
        value: &d384,
    };
    assert!(matches!(
        check(&msg, wrong_alg, &[]).failure,
        Some(SignerFailure::Format(_))
    ));
    let wrong_len = Detached::Digest {
        algorithm: DigestAlgorithm::Sha256,
        value: &digest[..31],
    };
    assert!(matches!(
        check(&msg, wrong_len, &[]).failure,
        Some(SignerFailure::Format(_))
    ));
    let bad = DigestAlgorithm::Sha256.digest(&other);
    let wrong_value = Detached::Digest {
        algorithm: DigestAlgorithm::Sha256,
        value: &bad,
    };
    assert!(matches!(
        check(&msg, wrong_value, &[]).failure,
        Some(SignerFailure::HashFailure(_))
    ));
}

/// `-stream` with DER output always encapsulates the content (openssl 3.0),
/// as an indefinite-length constructed OCTET STRING.
#[test]
fn streamed_ber() {
    let pki = Pki::new();
    for args in [
        &["-stream"][..],
        &["-stream", "-nodetach"],
        &["-stream", "-cades"],
    ] {
        let ber = pki.sign("leaf", args);
        // Indefinite length on the outer ContentInfo.
        assert_eq!(&ber[..2], &[0x30, 0x80]);
        let msg = cms::parse(&ber).unwrap();
        assert_eq!(msg.content(), Some(DATA));
        let c = check(&msg, Detached::None, &[]);
        assert_passed(&c);
        // The content chunk is stored once: altering it breaks the digest.
        let at = ber.windows(DATA.len()).position(|w| w == DATA).unwrap();
        let mut altered = ber.clone();
        altered[at] ^= 1;
        let msg = cms::parse(&altered).unwrap();
        let c = check(&msg, Detached::None, &[]);
        assert!(matches!(c.failure, Some(SignerFailure::HashFailure(_))));
        for cut in (0..ber.len()).step_by(7) {
            assert!(cms::parse(&ber[..cut]).is_err(), "cut {cut}");
        }
    }
}

#[test]
fn without_signed_attributes() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &["-noattr", "-nodetach"]);
    let msg = cms::parse(&der).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert_passed(&c);
    assert!(!c.signed_attributes);
    assert_eq!(c.signing_time, None);

    let der = pki.sign("leaf", &["-noattr"]);
    let msg = cms::parse(&der).unwrap();
    assert_passed(&check(&msg, Detached::Content(DATA), &[]));
    // Digest only: verified as a prehashed signature.
    let digest = DigestAlgorithm::Sha256.digest(DATA);
    let c = check(
        &msg,
        Detached::Digest {
            algorithm: DigestAlgorithm::Sha256,
            value: &digest,
        },
        &[],
    );
    assert_passed(&c);
    // Without signed attributes a content change breaks the signature itself.
    let c = check(&msg, Detached::Content(b"other"), &[]);
    assert!(matches!(c.failure, Some(SignerFailure::SigCrypto(_))));
}

#[test]
fn cades_signing_certificate_v2() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &["-cades", "-nodetach"]);
    let msg = cms::parse(&der).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert_passed(&c);
    assert_eq!(c.ess, EssStatus::V2Matched);

    // A second certificate for the same key, issuer and serial: the signer
    // identifier and the key match, the ESS hash does not.
    pki.issue("twin", "leaf.csr", "2", "20");
    let twin = pki.cert("twin");
    assert_ne!(twin, pki.cert("leaf"));
    let der = pki.sign("leaf", &["-cades", "-nodetach", "-nocerts"]);
    let msg = cms::parse(&der).unwrap();
    let c = check(&msg, Detached::None, &[twin]);
    assert!(
        matches!(c.failure, Some(SignerFailure::SigConstraints(_))),
        "{:?}",
        c.failure
    );
    assert_passed(&check(&msg, Detached::None, &[pki.cert("leaf")]));
}

#[test]
fn no_certificates() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &["-nocerts", "-nodetach"]);
    let msg = cms::parse(&der).unwrap();
    // -certfile still adds the CA.
    assert!(!msg.certificates().contains(&pki.cert("leaf")));
    let c = check(&msg, Detached::None, &[]);
    assert!(
        matches!(c.failure, Some(SignerFailure::NoSigningCertificate(_))),
        "{:?}",
        c.failure
    );
    assert!(c.signer_cert.is_none());
    // The CA alone does not match the signer identifier.
    let c = check(&msg, Detached::None, &[pki.cert("ca")]);
    assert!(matches!(
        c.failure,
        Some(SignerFailure::NoSigningCertificate(_))
    ));
    assert_passed(&check(
        &msg,
        Detached::None,
        &[pki.cert("ca"), pki.cert("leaf")],
    ));
}

#[test]
fn subject_key_identifier_and_pem() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &["-keyid", "-nodetach"]);
    let msg = cms::parse(&der).unwrap();
    assert!(matches!(
        msg.signer(0).unwrap().sid,
        ::cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(_)
    ));
    assert_passed(&check(&msg, Detached::None, &[]));

    let pem = pki.sign("leaf", &["-nodetach", "-outform", "PEM"]);
    assert!(pem.starts_with(b"-----BEGIN CMS-----"));
    let msg = cms::parse(&pem).unwrap();
    assert_passed(&check(&msg, Detached::None, &[]));
}

#[test]
fn rsa_pss() {
    let pki = Pki::new();
    let der = pki.sign(
        "leaf",
        &[
            "-nodetach",
            "-keyopt",
            "rsa_padding_mode:pss",
            "-keyopt",
            "rsa_pss_saltlen:digest",
        ],
    );
    let msg = cms::parse(&der).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert_passed(&c);
    assert_eq!(c.signature_algorithm.as_deref(), Some("RSASSA-PSS SHA-256"));

    // openssl 3.0's default salt is the longest possible (aws-lc-rs verifies only a salt as
    // long as the hash; the RustCrypto path takes the others).
    let der = pki.sign("leaf", &["-nodetach", "-keyopt", "rsa_padding_mode:pss"]);
    let msg = cms::parse(&der).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert_passed(&c);
    assert_eq!(c.signature_algorithm.as_deref(), Some("RSASSA-PSS SHA-256"));
}

#[test]
fn ecdsa_p256_and_p384() {
    let pki = Pki::new();
    pki.leaf(
        "p256",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "3",
    );
    pki.leaf(
        "p384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "4",
    );
    for (signer, md, name) in [
        ("p256", "sha256", "ECDSA P-256 SHA-256"),
        ("p256", "sha384", "ECDSA P-256 SHA-384"),
        ("p384", "sha384", "ECDSA P-384 SHA-384"),
        ("p384", "sha512", "ECDSA P-384 SHA-512"),
    ] {
        let der = pki.sign(signer, &["-nodetach", "-md", md]);
        let msg = cms::parse(&der).unwrap();
        let c = check(&msg, Detached::None, &[]);
        assert_passed(&c);
        assert_eq!(c.signature_algorithm.as_deref(), Some(name));
    }
}

#[test]
fn two_signers() {
    let pki = Pki::new();
    pki.leaf(
        "p256",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "3",
    );
    let der = pki.sign(
        "leaf",
        &["-nodetach", "-signer", "p256.pem", "-inkey", "p256.key"],
    );
    let msg = cms::parse(&der).unwrap();
    assert_eq!(msg.signer_count(), 2);
    let mut names: Vec<String> = (0..2)
        .map(|i| {
            let c = cms::check_signer(&msg, i, &Detached::None, &[]);
            assert_passed(&c);
            assert_eq!(c.index, i);
            c.signature_algorithm.unwrap()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["ECDSA P-256 SHA-256", "RSA PKCS#1 v1.5 SHA-256"]);
    let none = cms::check_signer(&msg, 2, &Detached::None, &[]);
    assert!(matches!(none.failure, Some(SignerFailure::Format(_))));
}

#[test]
fn not_signed_data() {
    let pki = Pki::new();
    pki.openssl(&[
        "cms",
        "-data_create",
        "-in",
        "data.bin",
        "-outform",
        "DER",
        "-out",
        "data.p7",
    ]);
    match cms::parse(&pki.read("data.p7")) {
        Err(kyso_pki::Error::Malformed { reason, .. }) => {
            assert!(reason.contains("wrong content type"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let pki = Pki::new();
    let der = pki.sign("leaf", &["-nodetach", "-cades"]);
    let ber = pki.sign("leaf", &["-nodetach", "-stream"]);
    for sample in [&der, &ber] {
        for cut in 0..sample.len() {
            assert!(cms::parse(&sample[..cut]).is_err(), "cut {cut}");
        }
    }
    // Random byte mutations: any outcome but a panic.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for round in 0..3000 {
        let sample = if round % 2 == 0 { &der } else { &ber };
        let mut m = sample.clone();
        for _ in 0..1 + next() % 3 {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        if let Ok(msg) = cms::parse(&m) {
            parsed += 1;
            for i in 0..msg.signer_count() {
                let _ = cms::check_signer(&msg, i, &Detached::Content(DATA), &[]);
            }
        }
    }
    assert!(parsed > 0);
    for garbage in [
        &b""[..],
        b"-----BEGIN CMS-----\n!!!\n-----END CMS-----\n",
        b"-----BEGIN CMS-----\nMAA=\n",
        &[0x30, 0x80, 0x30, 0x80, 0x30, 0x80],
        &[0xff; 64],
    ] {
        assert!(cms::parse(garbage).is_err());
    }
}

/// Some signers sign their signed attributes in the order they wrote them,
/// not in DER SET OF order: accepted over the signer's own encoding, with a
/// warning.
#[test]
fn unsorted_signed_attributes() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use kyso_pki::ber::{children, read_tlv};

    let pki = Pki::new();
    let mut der = pki.sign("leaf", &["-nodetach"]);
    pki.openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-outform", "DER", "-out", "leaf.p8",
    ]);
    let key = RsaKeyPair::from_pkcs8(&pki.read("leaf.p8")).unwrap();

    // ContentInfo / [0] / SignedData / signerInfos / SignerInfo / [0] attrs.
    let (ci, _) = read_tlv(&der).unwrap();
    let explicit = children(ci.content).nth(1).unwrap().unwrap();
    let (sd, _) = read_tlv(explicit.content).unwrap();
    let signer_infos = children(sd.content).last().unwrap().unwrap();
    let si = children(signer_infos.content).next().unwrap().unwrap();
    let attrs = children(si.content)
        .map(|k| k.unwrap())
        .find(|k| k.tag == 0xA0)
        .unwrap();
    let items: Vec<&[u8]> = children(attrs.content).map(|a| a.unwrap().raw).collect();
    assert!(items.len() >= 3);
    let reversed: Vec<u8> = items.iter().rev().flat_map(|a| a.iter().copied()).collect();
    let start = attrs.content.as_ptr() as usize - der.as_ptr() as usize;
    let header = attrs.raw.len() - attrs.content.len();
    let mut signed = vec![0x31];
    signed.extend_from_slice(&attrs.raw[1..header]);
    signed.extend_from_slice(&reversed);

    der[start..start + reversed.len()].copy_from_slice(&reversed);
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &signed, &mut sig)
        .unwrap();
    let at = der.len() - sig.len();
    der[at..].copy_from_slice(&sig);

    let msg = cms::parse(&der).unwrap();
    let c = check(&msg, Detached::None, &[]);
    assert_passed(&c);
    assert!(
        c.warnings.iter().any(|w| w.contains("not DER-encoded")),
        "{:?}",
        c.warnings
    );
}
