//! The signer's HSM layer end to end: `kyso signer keygen|csr|keys|sign-raw` against SoftHSM2
//! tokens behind `p11-kit server`, loaded through `p11-kit-client.so` in a child process (the
//! client and SoftHSM read their configuration from the environment, which only a child may
//! have changed). Results are checked with openssl.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kyso_tests::hsm::{P11_KIT_CLIENT, P11KitServer, SOFTHSM_MODULE, SoftHsm, workspace_bin};
use kyso_tests::{Output, openssl, run};

const PIN: &str = "246810";
const SO_PIN: &str = "13579024";

struct Fixture {
    hsm: SoftHsm,
    server: P11KitServer,
    token: String,
    pin_file: PathBuf,
}

impl Fixture {
    fn new(token: &str) -> Fixture {
        let hsm = SoftHsm::new();
        hsm.init_token(token, PIN, SO_PIN);
        let server = P11KitServer::start(&hsm, token);
        let pin_file = hsm.write_pin("pin", PIN);
        Fixture {
            hsm,
            server,
            token: token.to_owned(),
            pin_file,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.hsm.dir().join(name)
    }

    /// `kyso signer <args>` with the p11-kit client pointed at the server.
    fn kyso(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(workspace_bin("kyso"));
        cmd.arg("signer").args(args);
        let (k, v) = self.server.client_env();
        cmd.env(k, v);
        let (k, v) = self.hsm.env();
        cmd.env(k, v);
        run(&mut cmd, None, Duration::from_secs(120))
    }

    /// `--module P11_KIT_CLIENT --token TOKEN --pin-file PIN` + `rest`.
    fn on_token(&self, sub: &str, rest: &[&str]) -> Output {
        let mut args = vec![
            sub,
            "--module",
            P11_KIT_CLIENT,
            "--token",
            &self.token,
            "--pin-file",
            self.pin_file.to_str().unwrap(),
        ];
        args.extend_from_slice(rest);
        self.kyso(&args)
    }

    fn keygen(&self, label: &str, id: &str, algorithm: &str) -> PathBuf {
        let out = self.path(&format!("{label}.pub.pem"));
        self.on_token(
            "keygen",
            &[
                "--label",
                label,
                "--id",
                id,
                "--algorithm",
                algorithm,
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .expect_success();
        out
    }
}

fn openssl_ok(args: &[&str]) -> Output {
    openssl(args).expect_success()
}

#[test]
fn keygen_rsa_and_p256_then_csrs_verify_with_openssl() {
    let f = Fixture::new("kyso-keygen");
    // keygen prints the PEM on stdout without --out.
    let printed = f.on_token(
        "keygen",
        &["--label", "org-rsa", "--id", "01", "--algorithm", "rsa2048"],
    );
    let printed = printed.expect_success().stdout_str();
    assert!(
        printed.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{printed}"
    );
    std::fs::write(f.path("org-rsa.pub.pem"), &printed).unwrap();
    let text = openssl_ok(&[
        "pkey",
        "-pubin",
        "-noout",
        "-text",
        "-in",
        f.path("org-rsa.pub.pem").to_str().unwrap(),
    ]);
    assert!(
        text.stdout_str().contains("2048 bit"),
        "{}",
        text.stdout_str()
    );

    let ec = f.keygen("org-ec", "02", "p256");
    let text = openssl_ok(&[
        "pkey",
        "-pubin",
        "-noout",
        "-text",
        "-in",
        ec.to_str().unwrap(),
    ]);
    assert!(text.stdout_str().contains("prime256v1") || text.stdout_str().contains("P-256"));

    let subject =
        "CN=Nguyễn Văn Ánh,title=Chủ tịch,O=Ủy ban nhân dân tỉnh Hà Giang,L=Hà Giang,C=VN";
    for (sel, value, name, sig_alg) in [
        ("--id", "01", "rsa", "sha256WithRSAEncryption"),
        ("--label", "org-ec", "ec", "ecdsa-with-SHA256"),
    ] {
        let req = f.path(&format!("{name}.csr.pem"));
        f.on_token(
            "csr",
            &[
                sel,
                value,
                "--subject",
                subject,
                "--out",
                req.to_str().unwrap(),
            ],
        )
        .expect_success();
        let v = openssl_ok(&[
            "req",
            "-in",
            req.to_str().unwrap(),
            "-verify",
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus",
        ]);
        let all = format!("{}{}", v.stdout_str(), v.stderr_str());
        assert!(all.contains("verify OK"), "{name}: {all}");
        assert!(all.contains(sig_alg), "{name}: {all}");
        assert!(all.contains("title=Chủ tịch"), "{name}: {all}");
        assert!(all.contains("CN=Nguyễn Văn Ánh"), "{name}: {all}");
        // The request carries the key keygen printed.
        let from_req = openssl_ok(&["req", "-in", req.to_str().unwrap(), "-noout", "-pubkey"]);
        let expected = std::fs::read_to_string(f.path(&format!("org-{name}.pub.pem"))).unwrap();
        assert_eq!(from_req.stdout_str().trim(), expected.trim(), "{name}");
    }
}

#[test]
fn generated_keys_are_sensitive_and_not_extractable() {
    let f = Fixture::new("kyso-flags");
    f.keygen("k1", "0a0b", "rsa2048");
    f.keygen("k2", "0c", "p384");
    let out = f.on_token("keys", &[]).expect_success();
    let keys: serde_json::Value = serde_json::from_str(&out.stdout_str()).expect("JSON");
    let keys = keys.as_array().expect("array");
    for (id, ty) in [("0a0b", "rsa"), ("0c", "ec")] {
        let private = keys
            .iter()
            .find(|k| k["class"] == "private" && k["id"] == id)
            .unwrap_or_else(|| panic!("private key {id} in {keys:?}"));
        assert_eq!(private["key_type"], ty);
        assert_eq!(private["sensitive"], true, "{private}");
        assert_eq!(private["extractable"], false, "{private}");
        assert_eq!(private["never_extractable"], true, "{private}");
        assert_eq!(private["private"], true, "{private}");
        assert_eq!(private["token"], true, "{private}");
        assert_eq!(private["sign"], true, "{private}");
        assert!(
            keys.iter().any(|k| k["class"] == "public" && k["id"] == id),
            "public key {id}"
        );
    }
}

#[test]
fn second_keygen_with_the_same_id_or_label_is_refused() {
    let f = Fixture::new("kyso-dup");
    f.keygen("once", "01", "p256");
    let again = f.on_token(
        "keygen",
        &["--label", "other", "--id", "01", "--algorithm", "p256"],
    );
    assert!(!again.success(), "{again}");
    assert!(again.stderr_str().contains("already exists"), "{again}");
    let again = f.on_token(
        "keygen",
        &["--label", "once", "--id", "02", "--algorithm", "p256"],
    );
    assert!(!again.success(), "{again}");
    assert!(again.stderr_str().contains("already exists"), "{again}");
}

#[test]
fn wrong_pin_and_unknown_token_are_clear_errors() {
    let f = Fixture::new("kyso-errors");
    let bad = f.hsm.write_pin("bad-pin", "999999");
    let out = f.kyso(&[
        "keys",
        "--module",
        P11_KIT_CLIENT,
        "--token",
        "kyso-errors",
        "--pin-file",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr_str().contains("wrong PIN"), "{out}");
    assert!(
        !out.stderr_str().contains("999999"),
        "the PIN is never printed: {out}"
    );

    let out = f.kyso(&[
        "keys",
        "--module",
        P11_KIT_CLIENT,
        "--token",
        "no-such-token",
        "--pin-file",
        f.pin_file.to_str().unwrap(),
    ]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr_str()
            .contains("no token labelled \"no-such-token\""),
        "{out}"
    );
    assert!(
        out.stderr_str().contains("kyso-errors"),
        "lists the tokens present: {out}"
    );

    let out = f.kyso(&[
        "keys",
        "--module",
        "/nonexistent/pkcs11.so",
        "--token",
        "x",
        "--pin-file",
        f.pin_file.to_str().unwrap(),
    ]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr_str().contains("/nonexistent/pkcs11.so"), "{out}");
}

/// An HSM TOML configuration with one p11-kit slot and `keys` (name, id, public key file).
fn hsm_toml(f: &Fixture, keys: &[(&str, &str, &Path)]) -> PathBuf {
    let mut t = format!(
        "[retry]\ninitial_backoff_ms = 50\nmax_backoff_ms = 400\n\n\
         [[modules]]\nname = \"p11kit\"\npath = \"{P11_KIT_CLIENT}\"\n\n\
         [[slots]]\nname = \"a\"\nmodule = \"p11kit\"\ntoken_label = \"{}\"\npin_file = \"pin\"\nsessions = 2\n",
        f.token
    );
    for (name, id, public) in keys {
        t.push_str(&format!(
            "\n[[keys]]\nname = \"{name}\"\nid = \"{id}\"\nslots = [\"a\"]\ncertificate = \"{}\"\n",
            public.display()
        ));
    }
    let p = f.path("hsm.toml");
    std::fs::write(&p, t).unwrap();
    p
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(kyso_pki::crypto::DigestAlgorithm::Sha256.digest(data))
}

#[test]
fn sign_raw_signatures_verify_with_openssl() {
    let f = Fixture::new("kyso-sign");
    let rsa = f.keygen("org-rsa", "01", "rsa2048");
    let ec = f.keygen("org-ec", "02", "p256");
    let config = hsm_toml(&f, &[("org-rsa", "01", &rsa), ("org-ec", "02", &ec)]);
    let message = "Quyết định số 123/QĐ-UBND".as_bytes();
    let msg_path = f.path("message.txt");
    std::fs::write(&msg_path, message).unwrap();
    let digest = sha256_hex(message);
    for (key, mechanism, public, extra) in [
        ("org-rsa", "rsa-pkcs1-sha256", &rsa, &[][..]),
        (
            "org-rsa",
            "rsa-pss-sha256",
            &rsa,
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ][..],
        ),
        ("org-ec", "ecdsa", &ec, &[][..]),
    ] {
        let out = f
            .kyso(&[
                "sign-raw",
                "--config",
                config.to_str().unwrap(),
                "--key",
                key,
                "--mechanism",
                mechanism,
                "--digest-hex",
                &digest,
            ])
            .expect_success();
        let sig = hex::decode(out.stdout_str().trim()).expect("hex signature");
        let sig_path = f.path(&format!("{key}-{mechanism}.sig"));
        std::fs::write(&sig_path, sig).unwrap();
        let mut args = vec!["dgst", "-sha256", "-verify", public.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-signature",
            sig_path.to_str().unwrap(),
            msg_path.to_str().unwrap(),
        ]);
        let v = openssl(&args);
        assert!(
            v.success() && v.stdout_str().contains("Verified OK"),
            "{key} {mechanism}: {v}"
        );
    }

    // A digest of the wrong length and a mechanism of the wrong family are refused.
    let out = f.kyso(&[
        "sign-raw",
        "--config",
        config.to_str().unwrap(),
        "--key",
        "org-rsa",
        "--mechanism",
        "rsa-pkcs1-sha256",
        "--digest-hex",
        "00112233",
    ]);
    assert!(
        !out.success() && out.stderr_str().contains("the digest has 4 bytes"),
        "{out}"
    );
    let out = f.kyso(&[
        "sign-raw",
        "--config",
        config.to_str().unwrap(),
        "--key",
        "org-ec",
        "--mechanism",
        "rsa-pkcs1-sha256",
        "--digest-hex",
        &digest,
    ]);
    assert!(
        !out.success() && out.stderr_str().contains("cannot sign with"),
        "{out}"
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate_stops_the_start() {
    let f = Fixture::new("kyso-mismatch");
    f.keygen("org-rsa", "01", "rsa2048");
    let other = f.keygen("other-rsa", "03", "rsa2048");
    // Key 01 configured with key 03's public key.
    let config = hsm_toml(&f, &[("org-rsa", "01", &other)]);
    let out = f.kyso(&[
        "sign-raw",
        "--config",
        config.to_str().unwrap(),
        "--key",
        "org-rsa",
        "--digest-hex",
        &sha256_hex(b"x"),
    ]);
    assert!(!out.success(), "{out}");
    let err = out.stderr_str();
    assert!(
        err.contains("key \"org-rsa\" in slot \"a\" does not match"),
        "names key and slot: {out}"
    );

    // A missing key is named too.
    let config = hsm_toml(&f, &[("ghost", "77", &other)]);
    let out = f.kyso(&[
        "sign-raw",
        "--config",
        config.to_str().unwrap(),
        "--key",
        "ghost",
        "--digest-hex",
        &sha256_hex(b"x"),
    ]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr_str()
            .contains("key \"ghost\" not found in slot \"a\""),
        "{out}"
    );
}

#[test]
fn config_problems_are_all_reported() {
    let f = Fixture::new("kyso-config");
    let p = f.path("bad.toml");
    std::fs::write(
        &p,
        "[[modules]]\nname = \"m\"\npath = \"/x.so\"\n\n\
         [[slots]]\nname = \"a\"\nmodule = \"nope\"\ntoken_label = \"t\"\npin_file = \"missing-pin\"\n\n\
         [[keys]]\nname = \"k\"\nid = \"zz\"\nslots = [\"b\"]\ncertificate = \"missing.pem\"\n",
    )
    .unwrap();
    let out = f.kyso(&[
        "sign-raw",
        "--config",
        p.to_str().unwrap(),
        "--key",
        "k",
        "--digest-hex",
        &sha256_hex(b"x"),
    ]);
    assert!(!out.success(), "{out}");
    let err = out.stderr_str();
    for want in [
        "missing-pin",
        "no module named \"nope\"",
        "\"zz\" is not hex",
        "no slot named \"b\"",
        "missing.pem",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
}

/// Lines of `sign-raw --repeat`: (ok, unavailable, ms) per attempt, and the final health.
fn parse_repeat(stdout: &str) -> (Vec<(bool, bool, u64)>, serde_json::Value) {
    let mut attempts = Vec::new();
    let mut health = serde_json::Value::Null;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if let Some(h) = v.get("health") {
            health = h.clone();
        } else {
            attempts.push((
                v["ok"] == true,
                v["unavailable"] == true,
                v["ms"].as_u64().unwrap_or(0),
            ));
        }
    }
    (attempts, health)
}

#[test]
fn p11kit_server_restart_is_recovered_without_restarting_the_process() {
    let mut f = Fixture::new("kyso-recover");
    let rsa = f.keygen("org-rsa", "01", "rsa2048");
    let config = hsm_toml(&f, &[("org-rsa", "01", &rsa)]);
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args([
        "signer",
        "sign-raw",
        "--config",
        config.to_str().unwrap(),
        "--key",
        "org-rsa",
        "--digest-hex",
        &sha256_hex(b"recover"),
        "--repeat",
        "40",
        "--interval-ms",
        "100",
    ]);
    let (k, v) = f.server.client_env();
    cmd.env(k, v).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("kyso");
    std::thread::sleep(Duration::from_millis(1000));
    f.server.kill();
    std::thread::sleep(Duration::from_millis(1200));
    f.server.restart();
    let started = Instant::now();
    let out = child.wait_with_output().expect("kyso output");
    assert!(started.elapsed() < Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (attempts, health) = parse_repeat(&stdout);
    assert_eq!(attempts.len(), 40, "{stdout}\n{stderr}");
    assert!(attempts[0].0, "signs before the outage: {stdout}");
    let failed: Vec<_> = attempts.iter().filter(|a| !a.0).collect();
    assert!(!failed.is_empty(), "the outage was seen: {stdout}");
    for a in &failed {
        assert!(a.1, "failures are Unavailable: {stdout}");
        assert!(a.2 < 2000, "and fast: {stdout}");
    }
    assert!(
        attempts.last().unwrap().0,
        "signs after the restart: {stdout}\n{stderr}"
    );
    let slot = &health[0]["slots"][0];
    assert_eq!(slot["up"], true, "{health}");
    assert!(slot["outages"].as_u64().unwrap_or(0) >= 1, "{health}");
}

#[test]
fn ha_group_fails_over_without_client_errors() {
    // The same key in two tokens: slot "a" through p11-kit (killed below), slot "b" through
    // SoftHSM loaded directly in the child.
    let hsm = SoftHsm::new();
    hsm.init_token("kyso-ha-a", PIN, SO_PIN);
    hsm.init_token("kyso-ha-b", PIN, SO_PIN);
    let key = hsm.dir().join("org.p8.pem");
    let public = hsm.dir().join("org.pub.pem");
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl_ok(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    hsm.import_key("kyso-ha-a", PIN, &key, "org", "01");
    hsm.import_key("kyso-ha-b", PIN, &key, "org", "01");
    hsm.write_pin("pin", PIN);
    let mut server = P11KitServer::start(&hsm, "kyso-ha-a");
    let config = hsm.dir().join("ha.toml");
    std::fs::write(
        &config,
        format!(
            "[retry]\ninitial_backoff_ms = 50\nmax_backoff_ms = 400\n\n\
             [[modules]]\nname = \"p11kit\"\npath = \"{P11_KIT_CLIENT}\"\n\n\
             [[modules]]\nname = \"softhsm\"\npath = \"{SOFTHSM_MODULE}\"\n\n\
             [[slots]]\nname = \"a\"\nmodule = \"p11kit\"\ntoken_label = \"kyso-ha-a\"\npin_file = \"pin\"\n\n\
             [[slots]]\nname = \"b\"\nmodule = \"softhsm\"\ntoken_label = \"kyso-ha-b\"\npin_file = \"pin\"\n\n\
             [[keys]]\nname = \"org\"\nid = \"01\"\nslots = [\"a\", \"b\"]\ncertificate = \"org.pub.pem\"\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(workspace_bin("kyso"));
    cmd.args([
        "signer",
        "sign-raw",
        "--config",
        config.to_str().unwrap(),
        "--key",
        "org",
        "--digest-hex",
        &sha256_hex(b"ha"),
        "--repeat",
        "30",
        "--interval-ms",
        "100",
    ]);
    let (k, v) = server.client_env();
    cmd.env(k, v);
    let (k, v) = hsm.env();
    cmd.env(k, v).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("kyso");
    std::thread::sleep(Duration::from_millis(1000));
    server.kill();
    let out = child.wait_with_output().expect("kyso output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (attempts, health) = parse_repeat(&stdout);
    assert_eq!(attempts.len(), 30, "{stdout}\n{stderr}");
    assert!(
        attempts.iter().all(|a| a.0),
        "no client errors: {stdout}\n{stderr}"
    );
    assert!(out.status.success(), "{stderr}");
    let slots = health[0]["slots"].as_array().expect("slots");
    let a = slots.iter().find(|s| s["slot"] == "a").expect("slot a");
    let b = slots.iter().find(|s| s["slot"] == "b").expect("slot b");
    assert_eq!(a["up"], false, "{health}");
    assert!(a["last_error"].as_str().is_some(), "{health}");
    assert_eq!(b["up"], true, "{health}");
    assert_eq!(health[0]["servable"], true, "{health}");
}
