//! `openssl cms` as the reference peer: it makes signatures for the verifier to check, and
//! gives the verdict the verifier's verdicts are compared against.

use std::fs;
use std::process::Command;

use crate::pki::TestPki;
use crate::process::{self, Output};

/// Options of `openssl cms -sign`. Defaults (from [`CmsSign::new`]): attached (opaque) DER,
/// signed attributes, SHA-256, PKCS#1 v1.5 for RSA, the signer's certificate included, the
/// issuing CA not included.
#[derive(Clone, Debug)]
pub struct CmsSign {
    /// Leaf name (see [`crate::LEAVES`]).
    pub leaf: String,
    /// The signed content.
    pub content: Vec<u8>,
    /// Detached signature (the content is not encapsulated); otherwise `-nodetach`.
    pub detached: bool,
    /// `-stream`: indefinite-length BER output.
    pub stream: bool,
    /// `-noattr`: no signed attributes (the signature is over the content itself).
    pub noattr: bool,
    /// `-cades`: add the ESS signing-certificate-v2 attribute.
    pub cades: bool,
    /// `-nocerts`: do not include the signer's certificate.
    pub nocerts: bool,
    /// RSASSA-PSS (`-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:digest`); RSA keys only.
    pub pss: bool,
    /// `-md`: `sha256`, `sha384`, `sha512`, ...
    pub md: String,
    /// Include the leaf's issuer CA certificate (`-certfile`).
    pub include_ca: bool,
    /// More `openssl cms` arguments, appended last.
    pub extra_args: Vec<String>,
}

impl CmsSign {
    /// Attached, DER, SHA-256, with signed attributes, signed by `leaf`.
    pub fn new(leaf: &str, content: impl Into<Vec<u8>>) -> CmsSign {
        CmsSign {
            leaf: leaf.to_owned(),
            content: content.into(),
            detached: false,
            stream: false,
            noattr: false,
            cades: false,
            nocerts: false,
            pss: false,
            md: "sha256".to_owned(),
            include_ca: false,
            extra_args: Vec::new(),
        }
    }
    /// Detached signature.
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self
    }
    /// Indefinite-length BER (`-stream`).
    pub fn stream(mut self) -> Self {
        self.stream = true;
        self
    }
    /// No signed attributes (`-noattr`).
    pub fn noattr(mut self) -> Self {
        self.noattr = true;
        self
    }
    /// CAdES-BES (`-cades`).
    pub fn cades(mut self) -> Self {
        self.cades = true;
        self
    }
    /// Without the signer's certificate (`-nocerts`).
    pub fn nocerts(mut self) -> Self {
        self.nocerts = true;
        self
    }
    /// RSASSA-PSS with salt length = digest length.
    pub fn pss(mut self) -> Self {
        self.pss = true;
        self
    }
    /// Digest algorithm (`sha256`, `sha384`, `sha512`).
    pub fn md(mut self, md: &str) -> Self {
        self.md = md.to_owned();
        self
    }
    /// Include the issuing CA certificate.
    pub fn with_ca(mut self) -> Self {
        self.include_ca = true;
        self
    }
    /// Append raw `openssl cms` arguments.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }
}

/// Signs with `openssl cms -sign` in the process-wide [`TestPki`]; panics if openssl fails.
/// Returns DER (or indefinite-length BER with [`CmsSign::stream`]).
#[track_caller]
pub fn openssl_cms_sign(opts: &CmsSign) -> Vec<u8> {
    cms_sign_in(TestPki::get(), opts)
}

/// [`openssl_cms_sign`] in a given PKI.
#[track_caller]
pub fn cms_sign_in(pki: &TestPki, opts: &CmsSign) -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let input = tmp.path().join("content.bin");
    let output = tmp.path().join("sig.der");
    fs::write(&input, &opts.content).expect("write content");
    let mut cmd = Command::new("openssl");
    cmd.current_dir(&pki.dir)
        .args(["cms", "-sign", "-binary", "-outform", "DER"])
        .arg("-signer")
        .arg(pki.leaf_cert(&opts.leaf))
        .arg("-inkey")
        .arg(pki.leaf_key(&opts.leaf))
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .args(["-md", &opts.md]);
    if !opts.detached {
        cmd.arg("-nodetach");
    }
    if opts.stream {
        cmd.arg("-stream");
    }
    if opts.noattr {
        cmd.arg("-noattr");
    }
    if opts.cades {
        cmd.arg("-cades");
    }
    if opts.nocerts {
        cmd.arg("-nocerts");
    }
    if opts.pss {
        cmd.args([
            "-keyopt",
            "rsa_padding_mode:pss",
            "-keyopt",
            "rsa_pss_saltlen:digest",
        ]);
    }
    if opts.include_ca {
        cmd.arg("-certfile").arg(pki.leaf_issuer(&opts.leaf));
    }
    cmd.args(&opts.extra_args);
    process::run(&mut cmd, None, process::COMMAND_TIMEOUT).expect_success();
    fs::read(&output).expect("read the signature")
}

/// What `openssl cms -verify` runs against.
#[derive(Clone, Debug, Default)]
pub struct CmsVerify {
    /// Check revocation of the whole path against the genuine CRLs (`-crl_check_all`, with
    /// `crl/all.pem` in the trust store).
    pub crl_check_all: bool,
    /// Verify at this time (seconds since the epoch, `-attime`) instead of now.
    pub at_time: Option<i64>,
    /// More `openssl cms` arguments, appended last.
    pub extra_args: Vec<String>,
}

/// openssl's verdict on a DER/BER CMS signature (`content`: the detached content, if any):
/// `openssl cms -verify -CAfile TRUST -binary [-content FILE] -inform DER -purpose any
/// [-crl_check_all]`, true if it exits 0. TRUST is `anchors.pem` + `intermediates.pem`
/// (+ `crl/all.pem` with `crl_check_all`), written afresh for each call.
///
/// Why not `-untrusted intermediates.pem -CRLfile ...`: `openssl cms` (3.0) has neither option
/// (it reads an unknown option as a cipher name), builds the chain only from the certificates
/// in the message and the trust store (`-certfile` only helps find the signer), and takes CRLs
/// only from the trust store file. The intermediates in the store still get their signatures
/// and (with `crl_check_all`) their revocation checked, since the chain is always built up to
/// a self-signed root. The anchors are both roots (modern and legacy), as a verifier configured
/// with the government's trust store has them.
#[track_caller]
pub fn openssl_cms_verify(sig: &[u8], content: Option<&[u8]>, crl_check_all: bool) -> bool {
    let opts = CmsVerify {
        crl_check_all,
        ..CmsVerify::default()
    };
    openssl_cms_verify_output(TestPki::get(), sig, content, &opts).success()
}

/// The full `openssl cms -verify` run (for its messages), in a given PKI.
#[track_caller]
pub fn openssl_cms_verify_output(
    pki: &TestPki,
    sig: &[u8],
    content: Option<&[u8]>,
    opts: &CmsVerify,
) -> Output {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let sig_file = tmp.path().join("sig.der");
    fs::write(&sig_file, sig).expect("write signature");
    let mut trust = Vec::new();
    let mut bundle = vec![pki.anchors_pem(), pki.intermediates_pem()];
    if opts.crl_check_all {
        bundle.push(pki.crls_pem());
    }
    for f in bundle {
        trust.extend(fs::read(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display())));
    }
    let trust_file = tmp.path().join("trust.pem");
    fs::write(&trust_file, trust).expect("write the trust bundle");
    let mut cmd = Command::new("openssl");
    cmd.current_dir(&pki.dir)
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-CAfile")
        .arg(&trust_file)
        .arg("-in")
        .arg(&sig_file)
        .arg("-out")
        .arg(tmp.path().join("content.out"));
    if opts.crl_check_all {
        cmd.arg("-crl_check_all");
    }
    if let Some(t) = opts.at_time {
        cmd.args(["-attime", &t.to_string()]);
    }
    if let Some(content) = content {
        let content_file = tmp.path().join("content.bin");
        fs::write(&content_file, content).expect("write content");
        cmd.arg("-content").arg(content_file);
    }
    cmd.args(&opts.extra_args);
    process::run(&mut cmd, None, process::COMMAND_TIMEOUT)
}
