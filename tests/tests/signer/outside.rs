//! Documents from outside the province (A4) and the trusted receipt time (W5), end to end on
//! the test cluster: a signer certificate issued by the test PKI for a ministry the registry
//! does not hold, pyHanko as the sender's signing tool, the real registry deciding.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::registry::v1 as reg;
use kyso_tests::cluster::{Cluster, change};
use kyso_tests::pdf_peers::{Peers, PyhankoSign, SampleKind};
use serde_json::{Value, json};

use crate::documents::register;
use crate::sign::{callers_config, make_tls, mtls_channel, status_rules};

/// The Ministry of Health: an organisation this registry does not hold.
pub(crate) const MINISTRY: &str = "/C=VN/L=Hà Nội/O=Bộ Y tế/CN=Bộ Y tế";

/// A leaf of the test PKI's issuing CA for `subject`, its key on disk (the sender signs with
/// pyHanko); the OCSP responder is told about it.
pub(crate) fn outside_leaf(c: &Cluster, name: &str, subject: &str) -> PyhankoSign {
    let key = c.pki.path(format!("leaves/{name}.key"));
    let csr = c.pki.path(format!("{name}.csr"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=csr",
        "-out",
        csr.to_str().unwrap(),
    ]);
    let cert = c.pki.issue_from_csr(name, &csr, subject);
    c.servers.ocsp.refresh();
    PyhankoSign {
        key,
        cert,
        chain: vec![c.pki.issuing_ca_pem()],
        ..PyhankoSign::leaf(&c.pki, "personal-ec256", "Signature1")
    }
}

/// The sample decision signed by `who`, written to the cluster's directory.
pub(crate) fn signed_sample(c: &Cluster, who: &PyhankoSign, file: &str) -> PathBuf {
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let signed = peers.pyhanko_sign(&sample.bytes, who);
    let path = c.dir.path().join(file);
    std::fs::write(&path, signed).unwrap();
    path
}

/// `kyso doc receive` of `file` for the People's Committee, with the sender's code.
fn receive(c: &Cluster, file: &Path, sender_code: &str) -> (i32, Value) {
    let out = Command::new(kyso_tests::hsm::workspace_bin("kyso"))
        .args(["doc", "receive", "--server"])
        .arg(format!("http://{}", c.addr))
        .arg(file)
        .arg("--out")
        .arg(c.dir.path().join("stamped.pdf"))
        .args(["--organisation", &c.province.ubnd])
        .args(["--document-type", "QD", "--seal-key", "seal"])
        .args(["--custodian", &c.province.clerk])
        .args(["--sender", "Bộ Y tế", "--sender-code", sender_code])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::String(format!(
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    )));
    (out.status.code().unwrap_or(-1), v)
}

/// A4: a document signed by a ministry's certificate (the test PKI's CA, an organisation the
/// registry does not hold) is received with "outside this registry: authority not checked",
/// the signer's subject and the sender's code shown, and the outcome kept in the register.
/// A certificate the registry does not know but issued for the People's Committee (its
/// subject's organisation is a managed one) is refused (A4), and so is the ministry's when
/// the sender's code says it comes from under a code this registry manages: fail closed.
/// A malformed sender code is refused before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_from_outside_are_received_with_authority_not_checked_A4() {
    let c = Cluster::start().await;
    let ministry = outside_leaf(&c, "moh", MINISTRY);
    let from_ministry = signed_sample(&c, &ministry, "moh.pdf");

    let (code, out) = receive(&c, &from_ministry, "000.00.00.G15");
    assert_eq!(code, 0, "received: {out}");
    assert_eq!(out["accepted"], true, "{out}");
    let sigs = out["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1, "{out}");
    assert_eq!(sigs[0]["authority"], "outside: not checked", "{out}");
    assert_eq!(sigs[0]["sender_code"], "000.00.00.G15", "{out}");
    let subject = sigs[0]["subject"].as_str().unwrap();
    assert!(subject.contains("O=Bộ Y tế"), "{out}");
    assert!(
        sigs[0]["message"]
            .as_str()
            .unwrap()
            .contains("outside this registry: authority not checked"),
        "{out}"
    );
    let entries = register(&c, reg::Direction::Incoming).await;
    let entry = entries.iter().find(|e| !e.refused).unwrap();
    assert_eq!(entry.signatures.len(), 1);
    assert_eq!(
        entry.signatures[0].outcome,
        reg::AuthorityOutcome::Outside as i32
    );
    assert_eq!(entry.signatures[0].subject, subject);

    // A certificate of the test PKI for the People's Committee (same organisation name as the
    // registry holds) that the registry does not know: refused, A4.
    let unknown = PyhankoSign::leaf(&c.pki, "personal-ec256", "Signature1");
    let from_unknown = signed_sample(&c, &unknown, "unknown.pdf");
    let (code, out) = receive(&c, &from_unknown, "");
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["accepted"], false, "{out}");
    assert_eq!(out["signatures"][0]["authority"], "refused", "{out}");
    assert_eq!(out["signatures"][0]["rule"], "A4", "{out}");
    let msg = out["signatures"][0]["message"].as_str().unwrap();
    assert!(msg.contains("not registered here"), "{out}");
    assert!(msg.contains("Ủy ban nhân dân tỉnh Khánh Hòa"), "{out}");
    assert_eq!(out["problems"][0]["rule"], "A4", "{out}");

    // The People's Committee's code set through the registry's admin RPC, shown by the CLI.
    c.registry
        .ok(
            &["update-organisation"],
            json!({"change": change("codes"), "organisation_id": c.province.ubnd,
                   "code": "000.00.00.H34"}),
        )
        .await;
    let found = c
        .registry
        .ok(&["find-organisations"], json!({"code": "000.00.00.H34"}))
        .await;
    assert_eq!(
        found["organisations"][0]["id"],
        json!(c.province.ubnd),
        "{found}"
    );
    assert_eq!(
        found["organisations"][0]["code"], "000.00.00.H34",
        "{found}"
    );
    // The ministry's certificate, but the sender's code is a unit under the People's
    // Committee: managed here, so an unknown certificate is refused (A4).
    let (code, out) = receive(&c, &from_ministry, "000.00.07.H34");
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["signatures"][0]["rule"], "A4", "{out}");
    assert!(
        out["signatures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("000.00.00.H34"),
        "{out}"
    );

    // A malformed sender code: refused, nothing entered.
    let before = register(&c, reg::Direction::Incoming).await.len();
    let (code, out) = receive(&c, &from_ministry, "H34.00.00.000");
    assert_ne!(code, 0, "{out}");
    assert!(out.to_string().contains("sender_code"), "{out}");
    assert_eq!(register(&c, reg::Direction::Incoming).await.len(), before);
}

fn stamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: 0,
    }
}

/// W5: a signature revoked between the receipt time a caller claims and now. The document
/// system (not the exchange) backdates the receipt: before, that time was the reference and
/// the revoked signature passed; now it is reported as claimed and the signature is judged at
/// the service's clock: refused (V1, revoked). The exchange system (`exchange = true`,
/// identified by its client certificate) may give its own time within the bound, and it is
/// the reference; an hour away it is refused with W5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_time_is_the_service_clock_unless_the_exchange_gives_it_W5() {
    let tls = make_tls(&["dms", "dms-other", "axis"]);
    let d = tls.path();
    let c = Cluster::start_with(&format!(
        "{}\n[[callers]]\nname = \"exchange\"\nfingerprint = \"{}\"\nexchange = true\n",
        callers_config(&tls),
        tls.fingerprint("axis")
    ))
    .await;

    let ministry = outside_leaf(&c, "moh", MINISTRY);
    let signed_at = time::OffsetDateTime::now_utc();
    let file = signed_sample(&c, &ministry, "moh.pdf");
    let pdf = std::fs::read(&file).unwrap();
    // Revoked after the signature (second-granular times: well after).
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.pki.revoke("moh", "keyCompromise");
    c.servers.ocsp.refresh();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let request = |received_at: time::OffsetDateTime| dpb::ReceiveIncomingRequest {
        pdf: pdf.clone(),
        organisation_id: c.province.ubnd.clone(),
        seal_key: "seal".into(),
        custodian_person_id: c.province.clerk.clone(),
        sender: "Bộ Y tế".into(),
        document_type: "QD".into(),
        received_at: Some(stamp(received_at)),
        sender_code: "000.00.00.G15".into(),
        ..Default::default()
    };
    let client = |name: &'static str| {
        let addr = c.addr;
        async move { DocumentsClient::new(mtls_channel(addr, d, Some(name)).await.unwrap()) }
    };

    // The document system's backdated time: claimed, not used; judged now: revoked.
    let claimed = signed_at + time::Duration::seconds(1);
    let r = client("dms")
        .await
        .receive_incoming(request(claimed))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.accepted, "{r:?}");
    assert_eq!(r.claimed_received_at, Some(stamp(claimed)));
    let reference = r.reference_time.unwrap().seconds;
    assert!(
        reference >= signed_at.unix_timestamp() + 4,
        "judged at the service's clock: {reference}"
    );
    assert!(r.problems.iter().any(|p| p.rule == "V1"), "{r:?}");
    assert_eq!(
        r.signatures[0].outcome,
        reg::AuthorityOutcome::Refused as i32
    );

    // The exchange an hour away from the clock: refused, W5.
    let mut axis = client("axis").await;
    let err = axis
        .receive_incoming(request(
            time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        ))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "W5", "{err:?}");
    assert!(err.message().contains("W5"), "{err:?}");

    // The exchange's own receipt time, inside the bound: the reference time. The signature
    // was not yet revoked then, and the ministry is outside: accepted, authority not checked.
    let r = axis
        .receive_incoming(request(claimed))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.reference_time, Some(stamp(claimed)), "{r:?}");
    assert_eq!(r.claimed_received_at, None);
    assert!(r.accepted, "{:?}", r.problems);
    assert_eq!(
        r.signatures[0].outcome,
        reg::AuthorityOutcome::Outside as i32
    );
    let entries = register(&c, reg::Direction::Incoming).await;
    let accepted = entries.iter().find(|e| !e.refused).unwrap();
    assert_eq!(accepted.at, Some(stamp(claimed)));
}
