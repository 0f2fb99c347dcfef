//! The XML signature peers: `xmlsec1` (system) and signxml (`tests/peers/signxml_tool.py` in
//! the peers' venv), shared by the verifier's interop tests and the signer's envelope tests
//! (N6).

#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::process::Command;

use crate::{COMMAND_TIMEOUT, Output, TestPki, run};

/// `xmlsec1 ARGS`.
pub fn xmlsec1(args: &[&dyn AsRef<OsStr>]) -> Output {
    let mut cmd = Command::new("xmlsec1");
    for a in args {
        cmd.arg(a);
    }
    run(&mut cmd, None, COMMAND_TIMEOUT)
}

/// `xmlsec1 --verify` of `signed` against the test PKI's root (the issuing CA untrusted),
/// the reference `URI=""` and the X509Data key only.
pub fn xmlsec_verify(pki: &TestPki, signed: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signed.xml");
    std::fs::write(&file, signed).unwrap();
    let o = xmlsec1(&[
        &"--verify",
        &"--trusted-pem",
        &pki.root_pem(),
        &"--untrusted-pem",
        &pki.issuing_ca_pem(),
        &"--enabled-reference-uris",
        &"empty",
        &"--enabled-key-data",
        &"x509",
        &file,
    ]);
    o.success()
}

/// `signxml_tool.py ARGS` in the peers' venv.
pub fn signxml(args: &[&dyn AsRef<OsStr>]) -> Output {
    let peers = crate::pdf_peers::Peers::get();
    let mut cmd = Command::new(peers.python());
    cmd.arg(crate::pdf_peers::peers_dir().join("signxml_tool.py"));
    for a in args {
        cmd.arg(a);
    }
    run(&mut cmd, None, COMMAND_TIMEOUT)
}

/// signxml's verification of `signed` against the test PKI's root.
pub fn signxml_verify(pki: &TestPki, signed: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signed.xml");
    std::fs::write(&file, signed).unwrap();
    signxml(&[&"verify", &file, &pki.root_pem()]).success()
}
