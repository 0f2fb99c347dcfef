//! Path building within its budget (N2): candidates de-duplicated by (subject, key), no
//! certificate identity twice on a path, and the build stopped once the budget is spent.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use super::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
        ],
    );
}

fn self_signed(dir: &Path, key: &str, subject: &str, serial: u32, out: &str) -> Cert {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            subject,
            "-days",
            "3650",
            "-set_serial",
            &serial.to_string(),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            out,
        ],
    );
    Cert::parse_many(&std::fs::read(dir.join(out)).unwrap())
        .unwrap()
        .remove(0)
}

fn issued(dir: &Path, key: &str, subject: &str, ca: &str, ca_key: &str, out: &str) -> Cert {
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &["req", "-new", "-key", key, "-subj", subject, "-out", &csr],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-set_serial",
            "77",
            "-days",
            "365",
            "-out",
            out,
        ],
    );
    Cert::parse_many(&std::fs::read(dir.join(out)).unwrap())
        .unwrap()
        .remove(0)
}

fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(
        format!(
            "kyso-pki-path-{what}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        )
        .replace([' ', ':', '{', '}', ','], "_"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn builder(anchors: Vec<Cert>, budget: PathBudget) -> PathBuilder {
    PathBuilder::new(Arc::new(TrustStore::new(anchors, Vec::new(), &[])), None).with_budget(budget)
}

#[test]
fn same_name_same_key_issuers_are_tried_once_and_never_twice_on_a_path_N2() {
    let dir = temp_dir("loop");
    key(&dir, "ca.key");
    key(&dir, "leaf.key");
    let cas: Vec<Cert> = (0..17)
        .map(|i| {
            self_signed(
                &dir,
                "ca.key",
                "/CN=Rogue CA",
                100 + i,
                &format!("ca{i}.pem"),
            )
        })
        .collect();
    let leaf = issued(
        &dir,
        "leaf.key",
        "/CN=Rogue leaf",
        "ca0.pem",
        "ca.key",
        "leaf.pem",
    );
    let paths = builder(Vec::new(), PathBudget::default());
    let r = futures::executor::block_on(paths.build(&leaf, &cas));
    match r {
        Err(PathFailure::NoChain(m)) => assert!(!m.contains("budget"), "{m}"),
        other => panic!("expected no chain, got {other:?}"),
    }
    // One link checked (leaf → the rogue CA); its 16 twins are the same issuer.
    assert_eq!(paths.signature_checks(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spent_budget_stops_the_build_with_the_reason_N2() {
    let dir = temp_dir("budget");
    key(&dir, "root.key");
    key(&dir, "leaf.key");
    let root = self_signed(&dir, "root.key", "/CN=Root", 1, "root.pem");
    let leaf = issued(
        &dir, "leaf.key", "/CN=Leaf", "root.pem", "root.key", "leaf.pem",
    );
    // Without any signature check allowed the good path cannot be found.
    let paths = builder(
        vec![root.clone()],
        PathBudget {
            max_candidates: 8,
            max_signature_checks: 0,
        },
    );
    match futures::executor::block_on(paths.build(&leaf, &[])) {
        Err(PathFailure::NoChain(m)) => {
            assert!(m.contains("path-building budget was exhausted"), "{m}");
            assert!(m.contains("0 signature checks"), "{m}");
        }
        other => panic!("expected an exhausted budget, got {other:?}"),
    }
    assert_eq!(paths.signature_checks(), 0);
    // The good path costs one check, then none once the link is cached (the hot path).
    let paths = builder(vec![root], PathBudget::default());
    let vp = futures::executor::block_on(paths.build(&leaf, &[])).unwrap();
    assert_eq!(vp.certs.len(), 2);
    assert_eq!(paths.signature_checks(), 1);
    futures::executor::block_on(paths.build(&leaf, &[])).unwrap();
    assert_eq!(paths.signature_checks(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA certificate for `subject` (key `key`) issued by `ca`.
fn issued_ca(dir: &Path, key: &str, subject: &str, ca: &str, ca_key: &str, out: &str) -> Cert {
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &["req", "-new", "-key", key, "-subj", subject, "-out", &csr],
    );
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-set_serial",
            "55",
            "-days",
            "365",
            "-extfile",
            "ca.ext",
            "-out",
            out,
        ],
    );
    Cert::parse_many(&std::fs::read(dir.join(out)).unwrap())
        .unwrap()
        .remove(0)
}

#[test]
fn a_sub_ca_reissued_with_the_same_key_under_another_root_is_still_tried_N2() {
    let dir = temp_dir("cross");
    for k in ["old.key", "root.key", "sub.key", "leaf.key"] {
        key(&dir, k);
    }
    self_signed(&dir, "old.key", "/CN=Old Root", 1, "old.pem");
    let root = self_signed(&dir, "root.key", "/CN=Root", 2, "root.pem");
    // The same sub-CA (name and key) certified by an untrusted root and by the anchor.
    let sub_old = issued_ca(
        &dir,
        "sub.key",
        "/CN=Sub",
        "old.pem",
        "old.key",
        "sub-old.pem",
    );
    let sub = issued_ca(
        &dir, "sub.key", "/CN=Sub", "root.pem", "root.key", "sub.pem",
    );
    let leaf = issued(
        &dir,
        "leaf.key",
        "/CN=Leaf",
        "sub-old.pem",
        "sub.key",
        "leaf.pem",
    );
    let paths = builder(vec![root], PathBudget::default());
    let vp = futures::executor::block_on(paths.build(&leaf, &[sub_old, sub.clone()])).unwrap();
    assert_eq!(vp.certs.len(), 3);
    assert!(vp.certs[1].cert == sub);
    let _ = std::fs::remove_dir_all(&dir);
}
