//! End-to-end tests of `kyso registry` and `kyso bench authorize`: the registry
//! runs in-process on SQLite (a temp file), the real `kyso` binary talks to it.
//! Build the binary first: `cargo build -p kyso`.

use std::path::{Path, PathBuf};

use kyso_tests::TestPki;
use kyso_tests::hsm::workspace_bin;
use kyso_tests::registry::{DOMAIN, Registry, run_with_stdin};
use serde_json::{Value, json};

fn change(reason: &str) -> Value {
    json!({"actor": "subscriber-manager@sotttt.khanhhoa.gov.vn", "reason": reason})
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

struct Province {
    ubnd: String,
    chairman_title: String,
    chairman: String,
    clerk: String,
    chairman_cert: String,
    org_cert: String,
}

/// A province built from nothing with `kyso registry` only.
async fn build_province(r: &Registry) -> Province {
    let pki = TestPki::get();
    let sotttt = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("province set-up"),
                   "name": "Sở Thông tin và Truyền thông tỉnh Khánh Hòa",
                   "mail_domain": "sotttt.khanhhoa.gov.vn"}),
        )
        .await);
    let ubnd = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("province set-up"),
                   "name": "Ủy ban nhân dân tỉnh Khánh Hòa",
                   "managing_agency_id": sotttt,
                   "mail_domain": DOMAIN}),
        )
        .await);
    let chairman_title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Chủ tịch"}),
        )
        .await);
    let clerk_title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Văn thư"}),
        )
        .await);
    let chairman = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Nguyễn Văn An",
                   "email": "an.nv@khanhhoa.gov.vn", "organisation_id": ubnd,
                   "service_end": "2040-01-01T00:00:00Z"}),
        )
        .await);
    let clerk = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Lê Văn Cường",
                   "email": "cuong.lv@khanhhoa.gov.vn", "organisation_id": ubnd}),
        )
        .await);
    for (person, title) in [(&chairman, &chairman_title), (&clerk, &clerk_title)] {
        r.ok(
            &["create-appointment"],
            json!({"change": change("appointment"), "person_id": person, "title_id": title,
                   "organisation_id": ubnd, "valid_from": "2020-01-01T00:00:00Z",
                   "decision_ref": "12/QĐ-TTg"}),
        )
        .await;
    }
    r.ok(
        &["create-document-type"],
        json!({"change": change("document types"), "code": "QD", "name": "Quyết định",
               "classification": "NONE"}),
    )
    .await;
    r.ok(
        &["create-document-type"],
        json!({"change": change("document types"), "code": "MAT", "name": "Công văn mật",
               "classification": "CLASSIFICATION_SECRET"}),
    )
    .await;
    r.ok(
        &["grant-authority"],
        json!({"change": change("working rules"),
               "title_authorities": [
                   {"organisation_id": ubnd, "title_id": chairman_title, "document_type": "QD"}],
               "organisation_profiles": [
                   {"organisation_id": ubnd, "document_type": "QD", "profile": "PROFILE_ISSUE"}]}),
    )
    .await;
    let personal = pki.leaf_cert("personal-rsa");
    let chairman_cert = r
        .ok(
            &["register-certificate", "--cert", personal.to_str().unwrap()],
            json!({"change": change("issued"), "kind": "PERSONAL", "person_id": chairman}),
        )
        .await["certificate"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let org = pki.leaf_cert("org-rsa");
    let org_cert = r
        .ok(
            &["register-certificate", "--cert", org.to_str().unwrap()],
            json!({"change": change("issued"), "kind": "ORGANISATION", "organisation_id": ubnd}),
        )
        .await["certificate"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    r.ok(
        &["assign-custodian"],
        json!({"change": change("custodian of the seal"), "fingerprint": org_cert,
               "person_id": clerk, "decision_ref": "45/QĐ-UBND",
               "decision_date": "2025-01-01T00:00:00Z"}),
    )
    .await;
    Province {
        ubnd,
        chairman_title,
        chairman,
        clerk,
        chairman_cert,
        org_cert,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_builds_a_province_and_authorize_allows_the_chairmans_approval_A2_A3() {
    let mut r = Registry::start().await;
    let p = build_province(&r).await;
    let out = r
        .ok(
            &["authorize"],
            json!({"fingerprint": p.chairman_cert, "acting_person_id": p.chairman,
                   "organisation_id": p.ubnd, "document_type": "QD",
                   "profile": "APPROVAL", "mode": "OWN"}),
        )
        .await;
    assert_eq!(out["allowed"], json!(true), "{out}");
    assert_eq!(out["title"], json!("Chủ tịch"));
    assert_eq!(out["holder_name"], json!("Nguyễn Văn An"));
    // The seal, used by its custodian, for an allowed profile (A4, A5).
    let out = r
        .ok(
            &["authorize"],
            json!({"fingerprint": p.org_cert, "acting_person_id": p.clerk,
                   "organisation_id": p.ubnd, "document_type": "QD",
                   "profile": "ISSUE", "mode": "OWN"}),
        )
        .await;
    assert_eq!(out["allowed"], json!(true), "{out}");
    // The event log saw every change.
    let events = r.ok(&["list-events"], json!({"limit": 1000})).await;
    assert!(events["events"].as_array().unwrap().len() >= 14, "{events}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_authorize_refuses_a_classified_document_with_exit_1_A7() {
    let mut r = Registry::start().await;
    let p = build_province(&r).await;
    let (code, out, err) = r
        .kyso(
            &["authorize"],
            &json!({"fingerprint": p.chairman_cert, "acting_person_id": p.chairman,
                    "organisation_id": p.ubnd, "document_type": "MAT",
                    "profile": "APPROVAL", "mode": "OWN"}),
        )
        .await;
    assert_eq!(code, 1, "{out} {err}");
    assert_eq!(out["allowed"], json!(false));
    let rules: Vec<&str> = out["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(rules.contains(&"A7"), "{out}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_grant_over_classified_type_prints_rule_A7_and_exits_2() {
    let mut r = Registry::start().await;
    let p = build_province(&r).await;
    let (code, out, err) = r
        .kyso(
            &["grant-authority"],
            &json!({"change": change("try"), "title_authorities": [
                {"organisation_id": p.ubnd, "title_id": p.chairman_title, "document_type": "MAT"}]}),
        )
        .await;
    // InvalidArgument: the request itself is refused, with the rule ID in the details.
    assert_eq!(code, 2, "{out} {err}");
    assert_eq!(out["error"]["code"], json!("InvalidArgument"), "{out}");
    assert!(err.contains("A7"), "{err}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_new_certificate_outside_the_mail_domain_is_refused_with_exit_1_I1() {
    let mut r = Registry::start().await;
    let org = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": "UBND", "mail_domain": DOMAIN}),
        )
        .await);
    let person = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Nguyễn Văn An",
                   "email": "an@gmail.com", "organisation_id": org}),
        )
        .await);
    let cert = TestPki::get().leaf_cert("personal-rsa");
    let (code, out, err) = r
        .kyso(
            &["register-certificate", "--cert", cert.to_str().unwrap()],
            &json!({"change": change("issued"), "kind": "PERSONAL", "person_id": person}),
        )
        .await;
    assert_eq!(code, 1, "{out} {err}");
    assert_eq!(out["error"]["code"], json!("FailedPrecondition"));
    assert_eq!(out["error"]["rules"][0]["rule"], json!("I1"), "{out}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_unknown_field_is_an_input_error_naming_it() {
    let mut r = Registry::start().await;
    let (code, _, err) = r
        .kyso(
            &["create-title"],
            &json!({"change": {"actor": "a", "reason": "b", "why": "c"}, "name": "x"}),
        )
        .await;
    assert_eq!(code, 2);
    assert!(err.contains("change.why"), "{err}");
    let (code, _, err) = r
        .kyso(&["create-title"], &json!({"name": "x", "nmae": "y"}))
        .await;
    assert_eq!(code, 2);
    assert!(err.contains("nmae"), "{err}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_import_certificates_matches_holders_and_reports_duplicates_and_unmatched() {
    let mut r = Registry::start().await;
    let pki = TestPki::get();
    let org = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": kyso_tests::ORG_NAME,
                   "mail_domain": DOMAIN}),
        )
        .await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(pki.leaf_cert("personal-rsa"), dir.path().join("a.pem")).unwrap();
    std::fs::write(dir.path().join("b.der"), pki.leaf_der("personal-ec256")).unwrap();
    std::fs::copy(pki.leaf_cert("org-rsa"), dir.path().join("c.crt")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a certificate").unwrap();
    // b.der is registered already, for another person: a duplicate.
    let other = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Trần Thị Bình",
                   "email": "binh.tt@khanhhoa.gov.vn", "organisation_id": org}),
        )
        .await);
    r.ok(
        &[
            "register-certificate",
            "--cert",
            dir.path().join("b.der").to_str().unwrap(),
        ],
        json!({"change": change("issued"), "kind": "PERSONAL", "person_id": other}),
    )
    .await;
    let import = |holders: Option<PathBuf>| {
        let mut cmd = tokio::process::Command::new(workspace_bin("kyso"));
        cmd.args(["registry", "--server", &r.url(), "import-certificates"])
            .arg(dir.path());
        if let Some(h) = holders {
            cmd.arg("--holders").arg(h);
        }
        run_with_stdin(cmd, &Value::Null)
    };
    // Without a holders list the registry is asked by name: the seal (CN = the organisation,
    // no title) is found; the chairman is not in the registry yet, so a.pem is listed.
    let (code, out, err) = import(None).await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["imported"], json!(1), "{out}");
    assert_eq!(out["duplicates"], json!(1), "{out}");
    let unmatched = out["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "{out}");
    assert!(unmatched[0]["file"].as_str().unwrap().ends_with("a.pem"));
    assert!(
        unmatched[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no person in the registry named CN"),
        "{out}"
    );
    // With the holders' IDs: the chairman's certificate by CN, the seal by CN = organisation.
    let chairman = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": kyso_tests::PERSONAL_CN,
                   "email": kyso_tests::PERSONAL_EMAIL, "organisation_id": org}),
        )
        .await);
    let holders = dir.path().join("holders.json.txt");
    std::fs::write(
        &holders,
        json!({"people": [{"id": chairman, "full_name": kyso_tests::PERSONAL_CN,
                           "organisation_id": org}],
               "organisations": [{"id": org, "name": kyso_tests::ORG_NAME}]})
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = import(Some(holders.clone())).await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["imported"], json!(1), "{out}");
    assert_eq!(out["duplicates"], json!(2), "{out}");
    assert_eq!(out["unmatched"], json!([]), "{out}");
    let certs = out["certificates"].as_array().unwrap();
    assert_eq!(
        certs[0]["certificate"]["kind"],
        json!("CERTIFICATE_KIND_PERSONAL")
    );
    assert_eq!(certs[0]["certificate"]["person_id"], json!(chairman));
    assert_eq!(certs[0]["title"], json!(kyso_tests::PERSONAL_TITLE));
    // A second run finds everything registered.
    let (code, out, _) = import(Some(holders)).await;
    assert_eq!(code, 0);
    assert_eq!(out["duplicates"], json!(3), "{out}");
    r.stop().await;
}

/// A self-signed certificate with a UTF-8 subject, PEM, written to `dir/file`.
fn self_signed(dir: &Path, file: &str, subject: &str) {
    let key = dir.join(format!("{file}.key"));
    let out = dir.join(file);
    kyso_tests::openssl([
        "req".as_ref(),
        "-x509".as_ref(),
        "-utf8".as_ref(),
        "-newkey".as_ref(),
        "ec".as_ref(),
        "-pkeyopt".as_ref(),
        "ec_paramgen_curve:P-256".as_ref(),
        "-nodes".as_ref(),
        "-keyout".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        out.as_os_str(),
        "-subj".as_ref(),
        subject.as_ref(),
        "-days".as_ref(),
        "365".as_ref(),
    ] as [&std::ffi::OsStr; 16])
    .expect_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_import_certificates_guesses_holders_by_unicode_name_in_the_registry() {
    let mut r = Registry::start().await;
    let pki = TestPki::get();
    // Names differ from the subjects in case only (beyond ASCII: SQLite's LOWER() would not
    // fold them).
    let org = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": "ỦY BAN NHÂN DÂN TỈNH KHÁNH HÒA",
                   "mail_domain": DOMAIN}),
        )
        .await);
    let chairman = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "NGUYỄN VĂN AN",
                   "email": kyso_tests::PERSONAL_EMAIL, "organisation_id": org}),
        )
        .await);
    // Two people of the same name: a certificate naming them is ambiguous.
    for email in ["binh.tt@khanhhoa.gov.vn", "binh.tt2@khanhhoa.gov.vn"] {
        r.ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Trần Thị Bình",
                   "email": email, "organisation_id": org}),
        )
        .await;
    }
    // The lookups themselves.
    let found = r
        .ok(&["find-people"], json!({"name": "nguyen van an"}))
        .await;
    assert_eq!(found["people"][0]["id"], json!(chairman), "{found}");
    assert_eq!(found["people"][0]["exact"], json!(false), "{found}");
    let found = r
        .ok(
            &["find-organisations"],
            json!({"name": kyso_tests::ORG_NAME}),
        )
        .await;
    assert_eq!(
        found["organisations"],
        json!([{"id": org, "name": "ỦY BAN NHÂN DÂN TỈNH KHÁNH HÒA",
                "managing_agency_id": "", "exact": true, "code": ""}])
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(pki.leaf_cert("personal-rsa"), dir.path().join("a.pem")).unwrap();
    std::fs::copy(pki.leaf_cert("org-rsa"), dir.path().join("b.pem")).unwrap();
    let o = kyso_tests::ORG_NAME;
    self_signed(
        dir.path(),
        "c.pem",
        &format!("/C=VN/O={o}/title=Phó Chủ tịch/CN=Trần Thị Bình"),
    );
    self_signed(dir.path(), "d.pem", &format!("/C=VN/O={o}/CN=Hoàng Văn Em"));
    let mut cmd = tokio::process::Command::new(workspace_bin("kyso"));
    cmd.args(["registry", "--server", &r.url(), "import-certificates"])
        .arg(dir.path());
    let (code, out, err) = run_with_stdin(cmd, &Value::Null).await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["imported"], json!(2), "{out}");
    let certs = out["certificates"].as_array().unwrap();
    // a.pem: CN Nguyễn Văn An, title Chủ tịch, O the People's Committee.
    assert_eq!(
        certs[0]["certificate"]["kind"],
        json!("CERTIFICATE_KIND_PERSONAL")
    );
    assert_eq!(certs[0]["certificate"]["person_id"], json!(chairman));
    assert_eq!(certs[0]["certificate"]["organisation_id"], json!(org));
    assert_eq!(certs[0]["title"], json!(kyso_tests::PERSONAL_TITLE));
    // b.pem: CN = the organisation, no title: the seal.
    assert_eq!(
        certs[1]["certificate"]["kind"],
        json!("CERTIFICATE_KIND_ORGANISATION")
    );
    assert_eq!(certs[1]["certificate"]["organisation_id"], json!(org));
    // What could not be matched is listed with the reason.
    let unmatched = out["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 2, "{out}");
    assert!(unmatched[0]["file"].as_str().unwrap().ends_with("c.pem"));
    assert!(
        unmatched[0]["reason"]
            .as_str()
            .unwrap()
            .contains("2 people in the registry are named"),
        "{out}"
    );
    assert!(unmatched[1]["file"].as_str().unwrap().ends_with("d.pem"));
    assert!(
        unmatched[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no person in the registry named CN \"Hoàng Văn Em\""),
        "{out}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_report_per_managing_agency_as_json_and_csv_R2() {
    let mut r = Registry::start().await;
    // A name with a comma and a quote: the CSV quotes it.
    let name = "Sở Tư pháp, \"Khánh Hòa\"";
    let org = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": name, "mail_domain": DOMAIN}),
        )
        .await);
    let person = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Nguyễn Văn An",
                   "email": kyso_tests::PERSONAL_EMAIL, "organisation_id": org}),
        )
        .await);
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "a.pem", "/C=VN/CN=Nguyễn Văn An");
    let cert = r
        .ok(
            &[
                "register-certificate",
                "--cert",
                dir.path().join("a.pem").to_str().unwrap(),
            ],
            json!({"change": change("issued"), "kind": "PERSONAL", "person_id": person}),
        )
        .await;
    r.ok(
        &["change-certificate-status"],
        json!({"change": change("lost"), "fingerprint": cert["certificate"]["fingerprint"],
               "status": "REVOKED", "reason": "DEVICE_LOST"}),
    )
    .await;
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let from = rfc3339(now - time::Duration::days(365));
    let to = rfc3339(now + time::Duration::days(1));
    let report = |format: &'static str| {
        let (from, to) = (from.clone(), to.clone());
        let r = &r;
        async move {
            r.kyso(
                &[
                    "report",
                    "--from",
                    &from,
                    "--to",
                    &to,
                    "--granularity",
                    "half-year",
                    "--format",
                    format,
                ],
                &Value::Null,
            )
            .await
        }
    };
    let (code, out, err) = report("json").await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["signatures_counted"], json!(false));
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["managing_agency_id"], json!(org));
    assert_eq!(rows[0]["managing_agency_name"], json!(name));
    assert!(rows[0]["period"].as_str().unwrap().contains("-H"), "{out}");
    assert_eq!(
        (
            &rows[0]["issued"],
            &rows[0]["renewed"],
            &rows[0]["revoked"],
            &rows[0]["suspended"]
        ),
        (&json!(1), &json!(0), &json!(1), &json!(0))
    );

    let (code, out, err) = report("csv").await;
    assert_eq!(code, 0, "{out} {err}");
    let text = out.as_str().unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "period,period_start,period_end,managing_agency_id,managing_agency_name,\
         issued,renewed,revoked,suspended,signatures,sent,received,refused"
    );
    assert_eq!(
        lines[1],
        format!(
            "{},{},{},{org},\"Sở Tư pháp, \"\"Khánh Hòa\"\"\",1,0,1,0,0,0,0,0",
            rows[0]["period"].as_str().unwrap(),
            rows[0]["period_start"].as_str().unwrap(),
            rows[0]["period_end"].as_str().unwrap(),
        )
    );
    assert_eq!(lines[2], "");
    assert_eq!(lines.len(), 3);

    // A bad time is an input error, before the server is asked.
    let (code, _, err) = r
        .kyso(
            &[
                "report",
                "--from",
                "yesterday",
                "--to",
                &to,
                "--granularity",
                "year",
            ],
            &Value::Null,
        )
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from"), "{err}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_unlock_request_refusal_needs_the_reason_and_overdue_list_I5() {
    let mut r = Registry::start().await;
    let org = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("set-up"), "name": "UBND huyện Khánh Sơn",
                   "mail_domain": DOMAIN}),
        )
        .await);
    let person = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Nguyễn Văn An",
                   "email": kyso_tests::PERSONAL_EMAIL, "organisation_id": org}),
        )
        .await);
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "a.pem", "/C=VN/CN=Nguyễn Văn An");
    let fp = r
        .ok(
            &[
                "register-certificate",
                "--cert",
                dir.path().join("a.pem").to_str().unwrap(),
            ],
            json!({"change": change("issued"), "kind": "PERSONAL", "person_id": person}),
        )
        .await["certificate"]["fingerprint"]
        .clone();
    // The district manages itself (I6), so it files the request.
    let req = r
        .ok(
            &["request-unlock"],
            json!({"change": change("locked"), "fingerprint": fp, "requested_by": org,
                   "reason": "sai PIN 5 lần"}),
        )
        .await;
    assert_eq!(req["status"], json!("UNLOCK_STATUS_PENDING"), "{req}");
    let due = req["due_at"].as_str().unwrap();
    let after = time::OffsetDateTime::parse(due, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
        + 1;
    let list = r.ok(&["list-overdue-unlocks"], json!({"now": after})).await;
    assert_eq!(list["requests"][0]["id"], req["id"], "{list}");
    // A refusal without its written reason is refused, exit 2, rule I5.
    let (code, out, _) = r
        .kyso(
            &["resolve-unlock"],
            &json!({"change": change("no"), "id": req["id"], "outcome": "REFUSED"}),
        )
        .await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(out["error"]["rules"][0]["rule"], json!("I5"), "{out}");
    let done = r
        .ok(
            &["resolve-unlock"],
            json!({"change": change("unlocked"), "id": req["id"], "outcome": "DONE"}),
        )
        .await;
    assert_eq!(done["status"], json!("UNLOCK_STATUS_DONE"), "{done}");
    let list = r.ok(&["list-overdue-unlocks"], json!({"now": after})).await;
    assert_eq!(list["requests"], json!([]));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_authorize_seeds_a_province_and_reports_json() {
    let mut r = Registry::start().await;
    let mut cmd = tokio::process::Command::new(workspace_bin("kyso"));
    cmd.args([
        "bench",
        "authorize",
        "--server",
        &r.url(),
        "--organisations",
        "3",
        "--certificates",
        "6",
        "--streams",
        "2",
        "--duration-secs",
        "1",
        "--warmup-secs",
        "0",
    ]);
    let (code, out, err) = run_with_stdin(cmd, &Value::Null).await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["bench"], json!("authorize"));
    assert_eq!(out["errors"], json!(0), "{out}");
    assert_eq!(out["refused"], json!(0), "{out}");
    assert!(out["allowed"].as_u64().unwrap() > 0, "{out}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_ends_appointments_revokes_delegations_and_updates_records_A2_A3_I6() {
    let mut r = Registry::start().await;
    let p = build_province(&r).await;
    let authorize = json!({"fingerprint": p.chairman_cert, "acting_person_id": p.chairman,
                           "organisation_id": p.ubnd, "document_type": "QD",
                           "profile": "APPROVAL", "mode": "OWN"});
    assert_eq!(
        r.ok(&["authorize"], authorize.clone()).await["allowed"],
        json!(true)
    );
    // A second appointment of the Chairman, ended; an end before the start is refused (exit 2).
    let apt = id(&r
        .ok(
            &["create-appointment"],
            json!({"change": change("acting"), "person_id": p.chairman,
                   "title_id": p.chairman_title, "organisation_id": p.ubnd,
                   "valid_from": "2021-01-01T00:00:00Z", "decision_ref": "1/QĐ"}),
        )
        .await);
    let (code, out, _) = r
        .kyso(
            &["end-appointment"],
            &json!({"change": change("ended"), "appointment_id": apt,
                    "valid_to": "2020-06-01T00:00:00Z", "decision_ref": "2/QĐ"}),
        )
        .await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out["error"]["field_violations"][0]["field"],
        json!("valid_to"),
        "{out}"
    );
    assert_eq!(
        r.ok(
            &["end-appointment"],
            json!({"change": change("ended"), "appointment_id": apt,
                   "valid_to": "2022-01-01T00:00:00Z", "decision_ref": "2/QĐ"}),
        )
        .await,
        json!({})
    );
    // A delegation to the clerk, revoked by decision; revoking again is refused (exit 1, A2).
    let dlg = id(&r
        .ok(
            &["create-delegation"],
            json!({"change": change("TL."), "organisation_id": p.ubnd,
                   "from_person_id": p.chairman, "to_person_id": p.clerk, "mode": "TL",
                   "document_types": ["QD"], "decision_ref": "3/QĐ",
                   "valid_from": "2024-01-01T00:00:00Z", "valid_to": "2099-01-01T00:00:00Z"}),
        )
        .await);
    r.ok(
        &["revoke-delegation"],
        json!({"change": change("withdrawn"), "delegation_id": dlg, "decision_ref": "4/QĐ"}),
    )
    .await;
    let (code, out, _) = r
        .kyso(
            &["revoke-delegation"],
            &json!({"change": change("again"), "delegation_id": dlg, "decision_ref": "5/QĐ"}),
        )
        .await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["error"]["rules"][0]["rule"], json!("A2"), "{out}");
    // A district managed by the People's Committee; the Committee managed by the district
    // would be a cycle (exit 1, I6). Renaming and clearing with "" work.
    let district = id(&r
        .ok(
            &["create-organisation"],
            json!({"change": change("district"), "name": "UBND huyện Khánh Sơn",
                   "managing_agency_id": p.ubnd, "mail_domain": DOMAIN}),
        )
        .await);
    let (code, out, _) = r
        .kyso(
            &["update-organisation"],
            &json!({"change": change("cycle"), "organisation_id": p.ubnd,
                    "managing_agency_id": district}),
        )
        .await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["error"]["rules"][0]["rule"], json!("I6"), "{out}");
    r.ok(
        &["update-organisation"],
        json!({"change": change("renamed"), "organisation_id": district,
               "name": "UBND thị xã Khánh Sơn", "managing_agency_id": ""}),
    )
    .await;
    let found = r
        .ok(&["find-organisations"], json!({"name": "thi xa khanh son"}))
        .await;
    assert_eq!(found["organisations"][0]["id"], json!(district), "{found}");
    assert_eq!(
        found["organisations"][0]["managing_agency_id"],
        json!(""),
        "{found}"
    );
    // A person's mail address and end of service; a bad address names the field (exit 2).
    let (code, out, _) = r
        .kyso(
            &["update-person"],
            &json!({"change": change("mail"), "person_id": p.clerk, "email": "nope"}),
        )
        .await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out["error"]["field_violations"][0]["field"],
        json!("email"),
        "{out}"
    );
    r.ok(
        &["update-person"],
        json!({"change": change("mail"), "person_id": p.clerk,
               "email": "cuong.lv2@khanhhoa.gov.vn", "service_end": "2045-01-01T00:00:00Z"}),
    )
    .await;
    r.ok(
        &["update-person"],
        json!({"change": change("unknown"), "person_id": p.clerk, "clear_service_end": true}),
    )
    .await;
    // The Chairman's first appointment still gives authority; the event log saw it all.
    assert_eq!(
        r.ok(&["authorize"], authorize).await["allowed"],
        json!(true)
    );
    let events = r.ok(&["list-events"], json!({"limit": 1000})).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "appointment.ended",
        "delegation.revoked",
        "organisation.updated",
        "person.updated",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sets_and_lists_holidays_and_refuses_a_second_open_unlock_I5() {
    let mut r = Registry::start().await;
    let p = build_province(&r).await;
    let (code, out, _) = r
        .kyso(
            &["set-holidays"],
            &json!({"change": change("holidays"), "year": 2027, "dates": ["2026-09-02"]}),
        )
        .await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out["error"]["field_violations"][0]["field"],
        json!("dates"),
        "{out}"
    );
    let set = r
        .ok(
            &["set-holidays"],
            json!({"change": change("holidays"), "year": 2027,
                   "dates": ["2027-09-02", "2027-01-01", "2027-09-02"]}),
        )
        .await;
    assert_eq!(set, json!({"dates": ["2027-01-01", "2027-09-02"]}));
    assert_eq!(
        r.ok(&["list-holidays"], json!({"year": 2027})).await,
        json!({"dates": ["2027-01-01", "2027-09-02"]})
    );
    assert_eq!(
        r.ok(&["list-holidays"], json!({"year": 2026})).await,
        json!({"dates": []})
    );
    // The People's Committee is managed by the department; make it manage itself to file.
    r.ok(
        &["update-organisation"],
        json!({"change": change("self-managed"), "organisation_id": p.ubnd,
               "managing_agency_id": ""}),
    )
    .await;
    let request = json!({"change": change("locked"), "fingerprint": p.org_cert,
                         "requested_by": p.ubnd, "reason": "sai PIN 5 lần"});
    let first = r.ok(&["request-unlock"], request.clone()).await;
    let (code, out, _) = r.kyso(&["request-unlock"], &request).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["error"]["rules"][0]["rule"], json!("I5"), "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap()),
        "{out}"
    );
    r.stop().await;
}

/// The status history and the sender's view through `kyso registry` (N6, W4): an outgoing
/// document sent to two counterparties, one accepts (03): the other is left; an unknown code
/// (07) is an input error naming N6 (exit 2); the book by key identifier prints the DER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_records_status_history_and_lists_the_unconfirmed_N6_W4() {
    let mut r = Registry::start().await;
    let p = build_province(&r).await;
    let entry = r
        .ok(
            &["register-document"],
            json!({"change": change("vào sổ"), "organisation_id": p.ubnd,
                   "direction": "OUTGOING", "document_type": "QD",
                   "number_and_symbol": "7/QĐ-UBND", "sha256": "ab".repeat(32)}),
        )
        .await;
    let status = |to: &str, direction: &str, code: &str| {
        json!({"change": change("trục liên thông"), "organisation_id": p.ubnd,
               "register_entry_id": entry["id"], "counterparty_code": to,
               "direction": direction, "code": code})
    };
    for to in ["000.00.01.H34", "000.00.02.H34"] {
        let s = r
            .ok(&["record-document-status"], status(to, "SENT", ""))
            .await;
        assert_eq!(s["direction"], json!("STATUS_DIRECTION_SENT"), "{s}");
    }
    r.ok(
        &["record-document-status"],
        status("000.00.01.H34", "RECEIVED", "03"),
    )
    .await;
    let (code, out, err) = r
        .kyso(
            &["record-document-status"],
            &status("000.00.02.H34", "RECEIVED", "07"),
        )
        .await;
    assert_eq!(code, 2, "{out} {err}");
    assert!(err.contains("N6"), "{err}");
    let left = r
        .ok(&["list-unconfirmed"], json!({"organisation_id": p.ubnd}))
        .await;
    let documents = left["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 1, "{left}");
    assert_eq!(documents[0]["counterparty_code"], json!("000.00.02.H34"));
    assert_eq!(documents[0]["entry"]["id"], entry["id"]);
    let history = r
        .ok(
            &["list-document-status"],
            json!({"organisation_id": p.ubnd, "register_entry_id": entry["id"]}),
        )
        .await;
    assert_eq!(
        history["statuses"].as_array().unwrap().len(),
        3,
        "{history}"
    );
    let registered = r
        .ok(&["get-certificate"], json!({"fingerprint": p.org_cert}))
        .await;
    let ski = {
        let pki = TestPki::get();
        let out = pki.openssl([
            "x509",
            "-in",
            pki.leaf_cert("org-rsa").to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines().nth(1).unwrap_or_default().trim().to_owned()
    };
    let found = r
        .ok(
            &["find-certificates"],
            json!({"subject_key_identifier": ski}),
        )
        .await;
    assert_eq!(
        found["der"],
        json!([registered["certificate"]["der"]]),
        "{found}"
    );
    r.stop().await;
}
