//! RFC 3161 timestamps (N1): tokens of a real TSA (`openssl ts -reply` behind HTTP, its own
//! chain) verified by kyso-pki and by `openssl ts -verify`; each tampering refused with the
//! RFC reason.

use der::asn1::ObjectIdentifier;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::tsp::{
    Expected, TimeStampReq, TimeStampResp, TspError, verify_response, verify_token,
};
use std::time::{Duration, Instant};

use kyso_revocation::fetch::{BreakerConfig, FetchConfig, FetchError, Fetcher, UrlRewrite};
use kyso_revocation::metrics::PkiMetrics;
use kyso_revocation::tsa::{TsaClient, TsaConfig, TsaError};
use kyso_tests::{
    DownMode, TSA_OTHER_POLICY, TSA_POLICY, TSA_SUBJECT, TestTsa, TsaSigner, exchange,
};

/// A fresh nonce: the hash of the clock and a counter (the client uses a CSPRNG).
fn nonce() -> [u8; 16] {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = format!(
        "{:?}{}",
        std::time::SystemTime::now(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let h = kyso_pki::crypto::sha256(seed.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h[..16]);
    out
}

struct Stamp {
    query: Vec<u8>,
    reply: Vec<u8>,
    digest: Vec<u8>,
    nonce: [u8; 16],
}

impl Stamp {
    fn expected(&self, algorithm: DigestAlgorithm) -> Expected<'_> {
        Expected {
            algorithm,
            digest: &self.digest,
            nonce: Some(&self.nonce),
            policy: None,
        }
    }

    fn token(&self) -> Vec<u8> {
        TimeStampResp::parse(&self.reply)
            .expect("the reply parses")
            .into_token()
            .expect("granted")
    }
}

/// A query for `data` POSTed to the TSA over HTTP.
fn stamp(tsa: &TestTsa, algorithm: DigestAlgorithm, data: &[u8], policy: Option<&str>) -> Stamp {
    let digest = algorithm.digest(data);
    let nonce = nonce();
    let policy = policy.map(ObjectIdentifier::new_unwrap);
    let query = TimeStampReq::new(algorithm, &digest, &nonce, policy)
        .expect("request")
        .to_der_bytes()
        .expect("DER");
    let addr = tsa.addr();
    let resp = exchange(
        addr,
        "POST",
        "/",
        Some("application/timestamp-query"),
        &query,
        Duration::from_secs(30),
    )
    .expect("the TSA answers");
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(
        resp.content_type.as_deref(),
        Some("application/timestamp-reply")
    );
    Stamp {
        query,
        reply: resp.body,
        digest,
        nonce,
    }
}

#[test]
fn real_tsa_token_verified_imprint_nonce_ess_eku_N1() {
    let tsa = TestTsa::start();
    for alg in [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ] {
        let s = stamp(&tsa, alg, b"van ban can dau thoi gian", None);
        let before = time::OffsetDateTime::now_utc();
        let v = verify_response(&s.reply, &s.expected(alg), &[]).expect("the token verifies");
        assert_eq!(v.tsa_cert.der(), tsa.cert_der("tsa").as_slice());
        assert!(
            v.pool
                .iter()
                .any(|c| c.der() == tsa.cert_der("root").as_slice())
        );
        assert_eq!(v.tst_info.policy.to_string(), TSA_POLICY);
        assert!(v.tst_info.ordering);
        // accuracy secs:1 millisecs:500 microsecs:100 → genTime ± 1.5001 s.
        assert_eq!(
            v.latest() - v.gen_time(),
            time::Duration::microseconds(1_500_100)
        );
        assert_eq!(
            v.gen_time() - v.earliest(),
            time::Duration::microseconds(1_500_100)
        );
        assert!((before - v.gen_time()).abs() < time::Duration::minutes(2));
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
        let tsa_name = format!("{:?}", v.tst_info.tsa);
        assert!(
            tsa_name.contains("DirectoryName"),
            "{tsa_name}; {TSA_SUBJECT}"
        );
    }
}

#[test]
fn openssl_ts_verify_agrees_on_the_same_token_N1() {
    let tsa = TestTsa::start();
    let s = stamp(&tsa, DigestAlgorithm::Sha256, b"openssl agrees", None);
    let token = s.token();
    verify_token(&token, &s.expected(DigestAlgorithm::Sha256), &[]).expect("kyso accepts");
    let out = tsa.openssl_verify_token(&token, &s.query);
    assert!(
        out.success() && String::from_utf8_lossy(&out.stdout).contains("Verification: OK"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same token with one bit of the signature flipped: both refuse.
    let mut bad = token.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x01;
    let ours = verify_token(&bad, &s.expected(DigestAlgorithm::Sha256), &[]);
    assert!(matches!(ours, Err(TspError::Signature(_))), "{ours:?}");
    assert!(!tsa.openssl_verify_token(&bad, &s.query).success());
}

#[test]
fn imprint_mismatch_refused_N1() {
    let tsa = TestTsa::start();
    let s = stamp(&tsa, DigestAlgorithm::Sha256, b"the datum", None);
    let other = DigestAlgorithm::Sha256.digest(b"another datum");
    let r = verify_response(
        &s.reply,
        &Expected {
            digest: &other,
            ..s.expected(DigestAlgorithm::Sha256)
        },
        &[],
    );
    assert!(matches!(r, Err(TspError::ImprintMismatch(_))), "{r:?}");
    // The same digest bytes claimed under another algorithm.
    let r = verify_response(&s.reply, &s.expected(DigestAlgorithm::Sha384), &[]);
    assert!(matches!(r, Err(TspError::ImprintMismatch(_))), "{r:?}");
}

#[test]
fn nonce_mismatch_refused_N1() {
    let tsa = TestTsa::start();
    let s = stamp(&tsa, DigestAlgorithm::Sha256, b"the datum", None);
    let other = nonce();
    let r = verify_response(
        &s.reply,
        &Expected {
            nonce: Some(&other),
            ..s.expected(DigestAlgorithm::Sha256)
        },
        &[],
    );
    assert_eq!(r.err(), Some(TspError::NonceMismatch));
}

#[test]
fn policy_checked_and_unaccepted_policy_rejection_status_N1() {
    let tsa = TestTsa::start();
    let s = stamp(
        &tsa,
        DigestAlgorithm::Sha256,
        b"policy",
        Some(TSA_OTHER_POLICY),
    );
    let other = ObjectIdentifier::new_unwrap(TSA_OTHER_POLICY);
    let ok = verify_response(
        &s.reply,
        &Expected {
            policy: Some(other),
            ..s.expected(DigestAlgorithm::Sha256)
        },
        &[],
    )
    .expect("the asked policy");
    assert_eq!(ok.tst_info.policy, other);
    let wanted = ObjectIdentifier::new_unwrap(TSA_POLICY);
    let r = verify_response(
        &s.reply,
        &Expected {
            policy: Some(wanted),
            ..s.expected(DigestAlgorithm::Sha256)
        },
        &[],
    );
    assert!(matches!(r, Err(TspError::PolicyMismatch { .. })), "{r:?}");

    // A policy the TSA does not serve: the TSA answers rejection / unacceptedPolicy.
    let s = stamp(
        &tsa,
        DigestAlgorithm::Sha256,
        b"policy",
        Some("1.3.6.1.4.1.59420.3161.99"),
    );
    let r = verify_response(&s.reply, &s.expected(DigestAlgorithm::Sha256), &[]);
    match r {
        Err(TspError::Rejected {
            status, fail_info, ..
        }) => {
            assert_eq!(status, 2, "rejection");
            assert!(fail_info.contains("unacceptedPolicy"), "{fail_info}");
        }
        other => panic!("expected the rejection, got {other:?}"),
    }
}

#[test]
fn tsa_certificate_without_critical_timestamping_eku_refused_N1() {
    let tsa = TestTsa::start();
    let s = stamp(&tsa, DigestAlgorithm::Sha256, b"eku", None);
    let token = s.token();
    let expected = s.expected(DigestAlgorithm::Sha256);
    // Control: the TSTInfo re-signed by the TSA's own certificate verifies.
    let control = tsa.resign(&token, TsaSigner::Tsa);
    verify_token(&control, &expected, &[]).expect("the re-signed control verifies");
    for signer in [TsaSigner::NoEku, TsaSigner::NonCriticalEku] {
        let bad = tsa.resign(&token, signer);
        let r = verify_token(&bad, &expected, &[]);
        assert!(
            matches!(r, Err(TspError::NotTimestampingCert(_))),
            "{signer:?}: {r:?}"
        );
        assert!(
            !tsa.openssl_verify_token(&bad, &s.query).success(),
            "{signer:?}"
        );
    }
}

#[test]
fn ess_signing_certificate_naming_another_certificate_refused_N1() {
    let tsa = TestTsa::start();
    let s = stamp(&tsa, DigestAlgorithm::Sha256, b"ess", None);
    let expected = s.expected(DigestAlgorithm::Sha256);
    let twin = tsa.resign(&s.token(), TsaSigner::Twin);
    // Control: signed by the twin, named by ESS and by the signer identifier: it verifies.
    let v = verify_token(&twin, &expected, &[]).expect("the twin's token verifies");
    assert_eq!(v.tsa_cert.der(), tsa.cert_der("twin").as_slice());
    // The signer identifier (unsigned) moved to the TSA's own certificate, serial 2: the same
    // key verifies the signature, and the ESS attribute (signed) still names the twin.
    let sha256_alg = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let at = (0..twin.len() - 16)
        .find(|&i| {
            twin[i..i + 3] == [0x02, 0x01, 0x05]
                && twin[i + 3] == 0x30
                && twin[i + 5..i + 16] == sha256_alg
        })
        .expect("the signer identifier's serial, before the digest algorithm");
    let mut moved = twin.clone();
    moved[at + 2] = 0x02;
    let r = verify_token(&moved, &expected, &[]);
    assert!(matches!(r, Err(TspError::SigningCertificate(_))), "{r:?}");
}

#[test]
fn malformed_and_oversized_responses_refused_N1() {
    let r = TimeStampResp::parse(&[0x30, 0x03, 0x02, 0x01]);
    assert!(matches!(r, Err(TspError::Malformed { .. })), "{r:?}");
    let big = vec![0u8; kyso_pki::tsp::MAX_RESPONSE_LEN + 1];
    assert!(matches!(
        TimeStampResp::parse(&big),
        Err(TspError::TooLarge { .. })
    ));
    // Granted without a token.
    let r = TimeStampResp::parse(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00])
        .expect("parses")
        .into_token();
    assert_eq!(r.err(), Some(TspError::NoToken));
}

/// A client of `tsa` configured at a name that the fetcher rewrites to the loopback server.
fn client(
    tsa: &TestTsa,
    cfg: impl FnOnce(&mut TsaConfig),
    breaker: BreakerConfig,
) -> (TsaClient, PkiMetrics) {
    let metrics = PkiMetrics::unregistered().expect("metrics");
    let fetcher = Fetcher::new(
        FetchConfig {
            url_rewrites: vec![UrlRewrite {
                from: "http://tsa.kyso.test/".into(),
                to: tsa.url(),
            }],
            breaker,
            ..FetchConfig::default()
        },
        metrics.clone(),
    )
    .expect("fetcher");
    let mut c = TsaConfig::new("http://tsa.kyso.test/");
    cfg(&mut c);
    (TsaClient::new(c, fetcher), metrics)
}

fn fetches(m: &PkiMetrics, outcome: &str) -> u64 {
    m.fetches.with_label_values(&["tsa", outcome]).get()
}

#[tokio::test]
async fn tsa_client_returns_a_verified_token_and_counts_it_N1() {
    let tsa = TestTsa::start();
    let (c, m) = client(
        &tsa,
        |c| c.policy = Some(ObjectIdentifier::new_unwrap(TSA_OTHER_POLICY)),
        BreakerConfig::default(),
    );
    let digest = DigestAlgorithm::Sha256.digest(b"client");
    let v = c
        .timestamp(DigestAlgorithm::Sha256, &digest, &[])
        .await
        .expect("a verified token");
    assert_eq!(
        v.tst_info.message_imprint.hashed_message.as_bytes(),
        digest.as_slice()
    );
    assert_eq!(v.tst_info.policy.to_string(), TSA_OTHER_POLICY);
    assert!(v.tst_info.nonce.is_some());
    assert_eq!(fetches(&m, "ok"), 1);
    assert_eq!(
        m.fetch_duration
            .with_label_values(&["tsa"])
            .get_sample_count(),
        1
    );
    // The embedded token is what openssl verifies too (no query: imprint given by hand).
    let out = kyso_tests::openssl([
        "ts",
        "-verify",
        "-token_in",
        "-digest",
        &hex::encode(&digest),
        "-in",
        &{
            let p = tsa.dir().join("client-token.der");
            std::fs::write(&p, &v.token).unwrap();
            p.to_str().unwrap().to_owned()
        },
        "-CAfile",
        tsa.root_pem().to_str().unwrap(),
    ]);
    assert!(out.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn tsa_client_deadline_with_the_slow_tsa_N1() {
    let tsa = TestTsa::start();
    tsa.set_delay(Duration::from_secs(2));
    let (c, m) = client(
        &tsa,
        |c| {
            c.deadline = Duration::from_millis(400);
            c.attempts = 2;
            c.backoff = Duration::from_millis(50);
        },
        BreakerConfig::default(),
    );
    let digest = DigestAlgorithm::Sha256.digest(b"slow");
    let started = Instant::now();
    let r = c.timestamp(DigestAlgorithm::Sha256, &digest, &[]).await;
    let took = started.elapsed();
    match r {
        Err(TsaError::Fetch {
            error: FetchError::Timeout(d),
            attempts: 2,
            ..
        }) => assert_eq!(d, Duration::from_millis(400)),
        other => panic!("expected two timed-out attempts, got {other:?}"),
    }
    assert!(
        took < Duration::from_millis(1500),
        "{took:?}: the deadline bounds each attempt"
    );
    assert_eq!(fetches(&m, "ok"), 0);
    // The same slow TSA within a longer deadline answers.
    let (c, _) = client(
        &tsa,
        |c| c.deadline = Duration::from_secs(10),
        BreakerConfig::default(),
    );
    c.timestamp(DigestAlgorithm::Sha256, &digest, &[])
        .await
        .expect("within the deadline");
}

#[tokio::test]
async fn tsa_client_retries_then_the_breaker_opens_on_the_dead_tsa_N1() {
    let tsa = TestTsa::start();
    tsa.set_down_mode(DownMode::Status(503));
    tsa.set_down(true);
    let breaker = BreakerConfig {
        failure_threshold: 3,
        cool_down: Duration::from_secs(600),
    };
    let (c, m) = client(
        &tsa,
        |c| {
            c.attempts = 3;
            c.backoff = Duration::from_millis(10);
        },
        breaker,
    );
    let digest = DigestAlgorithm::Sha256.digest(b"dead");
    let r = c.timestamp(DigestAlgorithm::Sha256, &digest, &[]).await;
    assert!(
        matches!(
            r,
            Err(TsaError::Fetch {
                error: FetchError::Status(503),
                attempts: 3,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(tsa.requests(), 3, "three attempts");
    // Three failures opened the circuit: the next call costs nothing and is not retried.
    let r = c.timestamp(DigestAlgorithm::Sha256, &digest, &[]).await;
    assert!(
        matches!(
            r,
            Err(TsaError::Fetch {
                error: FetchError::CircuitOpen(_),
                attempts: 1,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(tsa.requests(), 3, "no request through an open circuit");
    assert_eq!(fetches(&m, "circuit_open"), 1);

    // Connection refused: a transport failure, retried, then reported.
    let tsa = TestTsa::start();
    tsa.set_down_mode(DownMode::Refuse);
    tsa.set_down(true);
    let (c, _) = client(&tsa, |c| c.attempts = 2, BreakerConfig::default());
    let r = c.timestamp(DigestAlgorithm::Sha256, &digest, &[]).await;
    assert!(
        matches!(
            r,
            Err(TsaError::Fetch {
                error: FetchError::Transport(_),
                attempts: 2,
                ..
            })
        ),
        "{r:?}"
    );
}
