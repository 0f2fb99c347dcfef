//! Unit tests of the parent module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};
use spki::der::asn1::BitString;

fn ai(oid: ObjectIdentifier, params: Option<der::Any>) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: params,
    }
}

fn null() -> Option<der::Any> {
    Some(der::Any::from(der::asn1::Null))
}

fn rsa_spki(pair: &RsaKeyPair, alg: ObjectIdentifier) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned {
        algorithm: ai(alg, null()),
        subject_public_key: BitString::from_bytes(pair.public_key().as_ref()).unwrap(),
    }
}

fn ec_spki(pair: &EcdsaKeyPair, curve: ObjectIdentifier) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned {
        algorithm: ai(
            oid::EC_PUBLIC_KEY,
            Some(der::Any::encode_from(&curve).unwrap()),
        ),
        subject_public_key: BitString::from_bytes(pair.public_key().as_ref()).unwrap(),
    }
}

fn rsa_pair(bits: aws_lc_rs::rsa::KeySize) -> RsaKeyPair {
    RsaKeyPair::generate(bits).unwrap()
}

fn rsa_sign(pair: &RsaKeyPair, enc: &'static dyn signature::RsaEncoding, msg: &[u8]) -> Vec<u8> {
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(enc, &SystemRandom::new(), msg, &mut sig).unwrap();
    sig
}

fn pss_params(hash: ObjectIdentifier, mgf_hash: ObjectIdentifier, salt: u32) -> der::Any {
    let p = PssParams {
        hash: Some(ai(hash, null())),
        mask_gen: Some(ai(
            oid::MGF1,
            Some(der::Any::encode_from(&ai(mgf_hash, null())).unwrap()),
        )),
        salt_len: Some(salt),
        trailer: None,
    };
    der::Any::encode_from(&p).unwrap()
}

#[test]
fn digests() {
    assert_eq!(
        hex::encode(DigestAlgorithm::Sha256.digest(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let mut d = DigestAlgorithm::Sha384.digester();
    d.update(b"a");
    d.update(b"bc");
    assert_eq!(d.finish(), DigestAlgorithm::Sha384.digest(b"abc"));
    for alg in [
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ] {
        assert_eq!(DigestAlgorithm::from_oid(&alg.oid()), Some(alg));
        assert_eq!(alg.digest(b"").len(), alg.output_len());
    }
    assert_eq!(DigestAlgorithm::Sha512.name(), "SHA-512");
    assert_eq!(DigestAlgorithm::from_oid(&oid::RSA_ENCRYPTION), None);
}

#[test]
fn rsa_pkcs1_and_pss() {
    let pair = rsa_pair(aws_lc_rs::rsa::KeySize::Rsa2048);
    let spki = rsa_spki(&pair, oid::RSA_ENCRYPTION);
    assert_eq!(rsa_modulus_bits(&spki), Some(2048));
    let policy = AlgorithmPolicy::default();
    let msg = b"hello kyso";

    let sig = rsa_sign(&pair, &signature::RSA_PKCS1_SHA256, msg);
    let alg = ai(oid::SHA256_WITH_RSA, null());
    let used = verify_signature(&spki, &alg, None, msg, &sig, policy).unwrap();
    assert_eq!(used.name(), "RSA PKCS#1 v1.5 SHA-256");
    assert_eq!(used.key_bits, 2048);
    // rsaEncryption plus the SignerInfo digest algorithm.
    let bare = ai(oid::RSA_ENCRYPTION, null());
    assert!(
        verify_signature(
            &spki,
            &bare,
            Some(DigestAlgorithm::Sha256),
            msg,
            &sig,
            policy
        )
        .is_ok()
    );
    assert!(matches!(
        verify_signature(&spki, &bare, None, msg, &sig, policy),
        Err(SigError::Unsupported(_))
    ));
    // Prehashed.
    let dg = DigestAlgorithm::Sha256.digest(msg);
    assert!(
        verify_signature_prehashed(&spki, &alg, DigestAlgorithm::Sha256, &dg, &sig, policy).is_ok()
    );
    assert!(matches!(
        verify_signature_prehashed(
            &spki,
            &alg,
            DigestAlgorithm::Sha384,
            &DigestAlgorithm::Sha384.digest(msg),
            &sig,
            policy
        ),
        Err(SigError::Unsupported(_))
    ));
    // Tampering.
    assert_eq!(
        verify_signature(&spki, &alg, None, b"hello kysO", &sig, policy),
        Err(SigError::Invalid)
    );
    let mut bad = sig.clone();
    bad[10] ^= 1;
    assert_eq!(
        verify_signature(&spki, &alg, None, msg, &bad, policy),
        Err(SigError::Invalid)
    );
    // Wrong hash claimed.
    let alg512 = ai(oid::SHA512_WITH_RSA, null());
    assert_eq!(
        verify_signature(&spki, &alg512, None, msg, &sig, policy),
        Err(SigError::Invalid)
    );

    // PSS with the supported parameters.
    let sig = rsa_sign(&pair, &signature::RSA_PSS_SHA384, msg);
    let pss = ai(
        oid::RSASSA_PSS,
        Some(pss_params(oid::SHA384, oid::SHA384, 48)),
    );
    let used = verify_signature(&spki, &pss, None, msg, &sig, policy).unwrap();
    assert_eq!(used.name(), "RSASSA-PSS SHA-384");
    // MGF1 with another hash is refused.
    let pss = ai(
        oid::RSASSA_PSS,
        Some(pss_params(oid::SHA384, oid::SHA256, 48)),
    );
    match verify_signature(&spki, &pss, None, msg, &sig, policy) {
        Err(SigError::Unsupported(m)) => assert!(m.contains("RSASSA-PSS"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Another salt length is verified (by the RustCrypto path): the salt-48 signature
    // checked as salt 20 is wrong, not unsupported.
    let pss20 = ai(
        oid::RSASSA_PSS,
        Some(pss_params(oid::SHA384, oid::SHA384, 20)),
    );
    assert!(matches!(
        verify_signature(&spki, &pss20, None, msg, &sig, policy),
        Err(SigError::Invalid)
    ));
    assert!(matches!(
        verify_signature(&spki, &ai(oid::RSASSA_PSS, None), None, msg, &sig, policy),
        Err(SigError::Unsupported(_))
    ));
}

/// aws-lc-rs does not sign with SHA-1: the legacy signature comes from openssl.
#[test]
fn sha1_only_when_allowed() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(
        format!(
            "kyso-pki-crypto-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        )
        .replace([' ', ':', '{', '}', ','], "_"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("msg"), b"legacy").unwrap();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "k.pem",
    ]);
    run(&[
        "pkey", "-in", "k.pem", "-pubout", "-outform", "DER", "-out", "pub.der",
    ]);
    run(&["dgst", "-sha1", "-sign", "k.pem", "-out", "sig", "msg"]);
    let spki =
        SubjectPublicKeyInfoOwned::from_der(&std::fs::read(dir.join("pub.der")).unwrap()).unwrap();
    let sig = std::fs::read(dir.join("sig")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let msg = b"legacy";
    let alg = ai(oid::SHA1_WITH_RSA, null());
    assert!(matches!(
        verify_signature(&spki, &alg, None, msg, &sig, AlgorithmPolicy::default()),
        Err(SigError::Weak(_))
    ));
    let legacy = AlgorithmPolicy {
        allow_sha1: true,
        ..AlgorithmPolicy::default()
    };
    let used = verify_signature(&spki, &alg, None, msg, &sig, legacy).unwrap();
    assert_eq!(used.name(), "RSA PKCS#1 v1.5 SHA-1");
    assert!(used.uses_sha1());
    assert_eq!(
        verify_signature(&spki, &alg, None, b"legacY", &sig, legacy),
        Err(SigError::Invalid)
    );
}

#[test]
fn short_rsa_keys_are_weak() {
    // A 1024-bit public key: only its size matters for the policy check.
    let mut modulus = [0u8; 129];
    modulus[1] = 0xc0;
    let key = RsaPublicKey {
        modulus: UintRef::new(&modulus[1..]).unwrap(),
        public_exponent: UintRef::new(&[1, 0, 1]).unwrap(),
    }
    .to_der()
    .unwrap();
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: ai(oid::RSA_ENCRYPTION, null()),
        subject_public_key: BitString::from_bytes(&key).unwrap(),
    };
    assert_eq!(rsa_modulus_bits(&spki), Some(1024));
    assert_eq!(public_key_bits(&spki), Some(1024));
    let alg = ai(oid::SHA256_WITH_RSA, null());
    assert!(matches!(
        verify_signature(
            &spki,
            &alg,
            None,
            b"m",
            &[0; 128],
            AlgorithmPolicy::default()
        ),
        Err(SigError::Weak(_))
    ));
    let lax = AlgorithmPolicy {
        allow_sha1: false,
        min_rsa_bits: 1024,
    };
    assert_eq!(
        verify_signature(&spki, &alg, None, b"m", &[0; 128], lax),
        Err(SigError::Invalid)
    );
}

#[test]
fn ecdsa_p256_and_p384() {
    let rng = SystemRandom::new();
    let policy = AlgorithmPolicy::default();
    let msg = b"ecdsa";
    for (signing, curve, sig_oid, name) in [
        (
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            oid::P256,
            oid::ECDSA_WITH_SHA256,
            "ECDSA P-256 SHA-256",
        ),
        (
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            oid::P384,
            oid::ECDSA_WITH_SHA384,
            "ECDSA P-384 SHA-384",
        ),
    ] {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).unwrap();
        let sig = pair.sign(&rng, msg).unwrap();
        let spki = ec_spki(&pair, curve);
        let used =
            verify_signature(&spki, &ai(sig_oid, None), None, msg, sig.as_ref(), policy).unwrap();
        assert_eq!(used.name(), name);
        assert_eq!(public_key_bits(&spki), Some(used.key_bits));
        // id-ecPublicKey as the signature algorithm, with the digest.
        let bare = ai(oid::EC_PUBLIC_KEY, None);
        assert!(
            verify_signature(&spki, &bare, Some(used.digest), msg, sig.as_ref(), policy).is_ok()
        );
        assert_eq!(
            verify_signature(
                &spki,
                &ai(sig_oid, None),
                None,
                b"other",
                sig.as_ref(),
                policy
            ),
            Err(SigError::Invalid)
        );
        // Prehashed.
        let dg = used.digest.digest(msg);
        assert!(
            verify_signature_prehashed(
                &spki,
                &ai(sig_oid, None),
                used.digest,
                &dg,
                sig.as_ref(),
                policy
            )
            .is_ok()
        );
        // An ECDSA signature with an RSA algorithm identifier.
        assert!(matches!(
            verify_signature(
                &spki,
                &ai(oid::SHA256_WITH_RSA, null()),
                None,
                msg,
                sig.as_ref(),
                policy
            ),
            Err(SigError::Unsupported(_))
        ));
    }
    // Unknown curve.
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .unwrap();
    let spki = ec_spki(&pair, ObjectIdentifier::new_unwrap("1.3.132.0.35"));
    assert!(matches!(
        verify_signature(
            &spki,
            &ai(oid::ECDSA_WITH_SHA256, None),
            None,
            msg,
            &[0; 64],
            policy
        ),
        Err(SigError::Unsupported(_))
    ));
}

#[test]
fn unknown_algorithms_are_unsupported() {
    let pair = rsa_pair(aws_lc_rs::rsa::KeySize::Rsa2048);
    let spki = rsa_spki(&pair, oid::RSA_ENCRYPTION);
    let alg = ai(
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.14"),
        null(),
    );
    assert!(matches!(
        verify_signature(&spki, &alg, None, b"", &[], AlgorithmPolicy::default()),
        Err(SigError::Unsupported(_))
    ));
    // Parameters where none are expected.
    let alg = ai(
        oid::SHA256_WITH_RSA,
        Some(der::Any::encode_from(&oid::P256).unwrap()),
    );
    assert!(matches!(
        verify_signature(&spki, &alg, None, b"", &[], AlgorithmPolicy::default()),
        Err(SigError::Unsupported(_))
    ));
}
