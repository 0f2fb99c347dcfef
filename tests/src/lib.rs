//! End-to-end test harness for kyso: a generated test PKI that mimics the government one, real
//! servers on loopback (CRL/AIA over HTTP, `openssl ocsp` behind a counting proxy) and
//! `openssl cms` as the reference peer.
//!
//! - [`TestPki::get`] generates the PKI once per test process (into a fresh temporary directory,
//!   so concurrent test processes never share one); `tests/pki/README.md` has the layout.
//! - [`HttpServer`], [`OcspResponder`] and [`CountingProxy`] stop on drop; every wait is
//!   bounded; nothing they spawn outlives the test process.
//! - [`TestTsa`] is an RFC 3161 timestamp authority of its own chain (`openssl ts -reply` behind
//!   HTTP), which can be made slow or dead.
//! - [`rewrites`] maps the URL prefixes inside the certificates onto the loopback servers.
//! - [`load_corpus::generate`] writes the mixed corpus of `kyso bench load` (CMS and PDFs of
//!   1–3 signatures, tampered and revoked-signer documents, each with its expected verdict) on
//!   a PKI of its own (many signers under four issuing CAs, `tests/pki/gen-load-pki.sh`).
//!
//! ```no_run
//! use kyso_tests::{CmsSign, PkiServers, TestPki, openssl_cms_sign, openssl_cms_verify};
//!
//! let pki = TestPki::get();
//! let servers = PkiServers::start(pki);
//! let rewrites = servers.rewrites(); // give these to the verifier
//! let sig = openssl_cms_sign(&CmsSign::new("personal-rsa", b"hello".to_vec()));
//! assert!(openssl_cms_verify(&sig, None, true));
//! assert_eq!(servers.ocsp_proxy.requests(), 0);
//! # let _ = rewrites;
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
mod cms;
pub mod hostile;
pub mod hsm;
mod http;
pub mod load_corpus;
pub mod mtls;
pub mod netns;
mod ocsp;
mod past;
pub mod pdf_fixtures;
pub mod pdf_peers;
pub mod pg;
mod pki;
mod process;
pub mod registry;
mod tsa;
pub mod xml_peers;

pub use cms::{
    CmsSign, CmsVerify, cms_sign_in, openssl_cms_sign, openssl_cms_verify,
    openssl_cms_verify_output,
};
pub use http::{DownMode, HttpServer, RawResponse, exchange};
pub use ocsp::{CountingProxy, OcspResponder};
pub use past::{PastTsa, PastTsaServer, openssl_at, os};
pub use pki::{
    AIA_PREFIX, CA_ORG, CAS, CRL_PREFIX, ISSUING_CA_CN, LEAVES, LOCALITY, OCSP_PREFIX, ORG_NAME,
    PERSONAL_CN, PERSONAL_EMAIL, PERSONAL_TITLE, PERSONAL_UID, ROOT_CN, TestPki, script_path,
    self_signed_ec,
};
pub use process::{COMMAND_TIMEOUT, Output, openssl, peak_rss, run};
pub use tsa::{TSA_OTHER_POLICY, TSA_POLICY, TSA_SUBJECT, TestTsa, TsaSigner};

/// URL rewrites from the prefixes inside the test certificates to local servers:
/// `http://ocsp.kyso.test/` → `ocsp_url/`, `http://crl.kyso.test/` → `crl_url/`,
/// `http://aia.kyso.test/` → `aia_url/` (a trailing slash is added where missing).
pub fn rewrites(ocsp_url: &str, crl_url: &str, aia_url: &str) -> Vec<(String, String)> {
    let slash = |u: &str| {
        if u.ends_with('/') {
            u.to_owned()
        } else {
            format!("{u}/")
        }
    };
    vec![
        (OCSP_PREFIX.to_owned(), slash(ocsp_url)),
        (CRL_PREFIX.to_owned(), slash(crl_url)),
        (AIA_PREFIX.to_owned(), slash(aia_url)),
    ]
}

/// Everything a verifier needs on the network side of the test PKI: CRLs (`crl/` of the PKI)
/// and AIA certificates (`aia/`) over HTTP, and the OCSP responder behind a counting proxy.
#[derive(Debug)]
pub struct PkiServers {
    /// Serves `PKI/crl/` at `/`: `/issuing-ca.crl`, `/root.crl`, ...
    pub crl: HttpServer,
    /// Serves `PKI/aia/` at `/`: `/issuing-ca.cer`, `/root.cer`, ...
    pub aia: HttpServer,
    /// The proxy the certificates' OCSP URL is rewritten to.
    pub ocsp_proxy: CountingProxy,
    /// The responder behind the proxy.
    pub ocsp: OcspResponder,
}

impl PkiServers {
    /// Starts the servers for `pki`.
    pub fn start(pki: &TestPki) -> PkiServers {
        let ocsp = OcspResponder::start(pki);
        PkiServers {
            crl: HttpServer::start(pki.path("crl")),
            aia: HttpServer::start(pki.path("aia")),
            ocsp_proxy: CountingProxy::in_front_of(&ocsp),
            ocsp,
        }
    }

    /// [`rewrites`] onto these servers.
    pub fn rewrites(&self) -> Vec<(String, String)> {
        rewrites(&self.ocsp_proxy.url(), &self.crl.url(), &self.aia.url())
    }
}

/// The loopback CRL/AIA/OCSP servers of [`TestPki::get`], shared by the tests of a process
/// (each test builds its own verifier, so no cache is shared).
pub fn shared_servers() -> &'static PkiServers {
    static SERVERS: std::sync::OnceLock<PkiServers> = std::sync::OnceLock::new();
    SERVERS.get_or_init(|| PkiServers::start(TestPki::get()))
}

/// The trust configuration a deployment of [`TestPki::get`] would have, on `servers`:
/// both roots (SHA-1 accepted under the legacy one), the intermediates, AIA on, revocation
/// required through the servers' URL rewrites.
pub fn trust_config(servers: &PkiServers) -> kyso_validation::config::TrustConfig {
    let pki = TestPki::get();
    let legacy = hex::encode(kyso_pki::crypto::sha256(
        &pki.cert_der(pki.legacy_root_pem()),
    ));
    kyso_validation::config::TrustConfig {
        trust_anchors: vec![pki.root_pem(), pki.legacy_root_pem()],
        intermediates: vec![pki.intermediates_pem()],
        legacy_sha1_roots: vec![legacy],
        fetch_aia: true,
        revocation: kyso_validation::config::RevocationSection {
            url_rewrites: servers
                .rewrites()
                .into_iter()
                .map(|(from, to)| kyso_validation::config::UrlRewrite { from, to })
                .collect(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The verifier service's configuration on `servers`: [`trust_config`], no metrics port.
pub fn verifier_config(servers: &PkiServers) -> kyso_verifier::Config {
    kyso_verifier::Config {
        metrics_listen: None,
        trust: trust_config(servers),
        ..kyso_verifier::Config::default()
    }
}

/// A verifier built from a trust configuration, as the verifier service and the signer
/// build theirs.
#[allow(clippy::expect_used)] // test set-up: a broken configuration is a broken test
pub fn verifier_from(
    config: &kyso_validation::config::TrustConfig,
) -> kyso_validation::verify::Verifier {
    let loaded = config.load().expect("the test configuration loads");
    let metrics = kyso_revocation::PkiMetrics::unregistered().expect("metrics");
    kyso_validation::verify::Verifier::from_config(loaded, metrics).expect("fetcher")
}
