//! `kyso registry import-certificates`: registers every certificate file of a folder, the
//! holder guessed from the subject (a `--holders` list, or the registry searched by name).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use super::args::ImportArgs;
use super::calls::{dynamic, message_type};
use super::cert_der;
use super::output::{print_json, report_status, to_json};
use crate::{CliError, read_file};

/// What a subject says about its holder.
#[derive(Debug, Default)]
struct Subject {
    rfc4514: String,
    cn: Option<String>,
    title: Option<String>,
    o: Option<String>,
}

const OID_CN: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_O: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_TITLE: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.12");

fn subject_of(der_bytes: &[u8]) -> Result<Subject, String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der_bytes)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let name = &cert.tbs_certificate.subject;
    let mut s = Subject {
        rfc4514: kyso_pki::name::rfc4514(name),
        ..Subject::default()
    };
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let value = kyso_pki::name::directory_string(&atv.value);
            if atv.oid == OID_CN {
                s.cn = value;
            } else if atv.oid == OID_O {
                s.o = value;
            } else if atv.oid == OID_TITLE {
                s.title = value;
            }
        }
    }
    Ok(s)
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[derive(Debug)]
struct Holders {
    /// (normalised full name, id, organisation id)
    people: Vec<(String, String, String)>,
    /// (normalised name, id)
    organisations: Vec<(String, String)>,
}

/// The `--holders` file; absent or null is empty, any other field is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldersFile {
    people: Option<Vec<HolderPerson>>,
    organisations: Option<Vec<HolderOrganisation>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderPerson {
    id: Option<String>,
    full_name: Option<String>,
    organisation_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderOrganisation {
    id: Option<String>,
    name: Option<String>,
}

fn load_holders(path: &Path) -> Result<Holders, CliError> {
    let file: HoldersFile = serde_json::from_slice(&read_file(path)?)
        .map_err(|e| CliError::Usage(format!("--holders {}: {e}", path.display())))?;
    let people = file.people.unwrap_or_default().into_iter().map(|p| {
        (
            norm(&p.full_name.unwrap_or_default()),
            p.id.unwrap_or_default(),
            p.organisation_id.unwrap_or_default(),
        )
    });
    let organisations = file
        .organisations
        .unwrap_or_default()
        .into_iter()
        .map(|o| (norm(&o.name.unwrap_or_default()), o.id.unwrap_or_default()));
    Ok(Holders {
        people: people.collect(),
        organisations: organisations.collect(),
    })
}

/// A guessed holder: kind, person ID, organisation ID; or why there is none.
type Guess = Result<(pb::CertificateKind, String, String), String>;

/// The holder from a --holders list: CN is a person's full name (O then names the
/// organisation), or an organisation's name when the subject has no title.
fn from_holders(h: &Holders, subject: &Subject) -> Guess {
    let cn = subject.cn.as_deref().map(norm);
    let o = subject.o.as_deref().map(norm);
    let org_match = o
        .as_ref()
        .and_then(|o| h.organisations.iter().find(|(n, _)| n == o))
        .map(|(_, id)| id.clone());
    let person = cn
        .as_ref()
        .and_then(|cn| h.people.iter().find(|(n, _, _)| n == cn));
    let org_holder = cn
        .as_ref()
        .and_then(|cn| h.organisations.iter().find(|(n, _)| n == cn))
        .map(|(_, id)| id.clone());
    match (person, org_holder) {
        (Some((_, pid, home)), _) => Ok((
            pb::CertificateKind::Personal,
            pid.clone(),
            org_match.unwrap_or_else(|| home.clone()),
        )),
        (None, Some(oid)) if subject.title.is_none() => {
            Ok((pb::CertificateKind::Organisation, String::new(), oid))
        }
        _ => Err(format!(
            "no known person named CN {:?}, and no known organisation named by the CN (O is {:?})",
            subject.cn.as_deref().unwrap_or(""),
            subject.o.as_deref().unwrap_or("")
        )),
    }
}

/// The one match to use: the only whole-name match, else the only match; none when there
/// is no match or more than one (ambiguous).
fn pick<T>(found: Vec<T>, exact: impl Fn(&T) -> bool) -> Result<T, usize> {
    let n = found.len();
    let (mut whole, mut rest): (Vec<T>, Vec<T>) = found.into_iter().partition(|x| exact(x));
    match (whole.len(), rest.len()) {
        (1, _) => Ok(whole.remove(0)),
        (0, 1) => Ok(rest.remove(0)),
        _ => Err(n),
    }
}

/// The holder looked up in the registry by name (FindOrganisations, FindPeople): O names the
/// organisation, CN the person (within O's organisation first), or else an organisation
/// when the subject has no title (2.5.4.12).
async fn from_registry(
    c: &mut RegistryClient<Channel>,
    subject: &Subject,
) -> Result<Guess, tonic::Status> {
    let Some(cn) = subject.cn.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Ok(Err("the subject has no CN to match a holder by".into()));
    };
    let mut org = None;
    if let Some(o) = subject.o.as_deref().filter(|s| !s.trim().is_empty()) {
        let found = c
            .find_organisations(pb::FindOrganisationsRequest {
                name: o.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .organisations;
        org = pick(found, |m| m.exact).ok();
    }
    let org_id = org.as_ref().map(|o| o.id.clone()).unwrap_or_default();
    let mut people = c
        .find_people(pb::FindPeopleRequest {
            name: cn.into(),
            organisation_id: org_id.clone(),
        })
        .await?
        .into_inner()
        .people;
    if people.is_empty() && !org_id.is_empty() {
        people = c
            .find_people(pb::FindPeopleRequest {
                name: cn.into(),
                organisation_id: String::new(),
            })
            .await?
            .into_inner()
            .people;
    }
    // A person matches by the whole name only (a part of a name is not a holder).
    let people: Vec<pb::PersonMatch> = people
        .into_iter()
        .filter(|p| norm_key(&p.full_name) == norm_key(cn))
        .collect();
    match pick(people, |p| p.exact) {
        Ok(p) => {
            let org = if org_id.is_empty() {
                p.organisation_id
            } else {
                org_id
            };
            return Ok(Ok((pb::CertificateKind::Personal, p.id, org)));
        }
        Err(n) if n > 1 => {
            return Ok(Err(format!(
                "{n} people in the registry are named CN {cn:?}; give --holders"
            )));
        }
        Err(_) => {}
    }
    if subject.title.is_none() {
        let found: Vec<pb::OrganisationMatch> = c
            .find_organisations(pb::FindOrganisationsRequest {
                name: cn.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .organisations
            .into_iter()
            .filter(|o| norm_key(&o.name) == norm_key(cn))
            .collect();
        match pick(found, |o| o.exact) {
            Ok(o) => return Ok(Ok((pb::CertificateKind::Organisation, String::new(), o.id))),
            Err(n) if n > 1 => {
                return Ok(Err(format!(
                    "{n} organisations in the registry are named CN {cn:?}; give --holders"
                )));
            }
            Err(_) => {}
        }
    }
    Ok(Err(format!(
        "no person in the registry named CN {cn:?}{}, and no organisation by that name{}",
        subject
            .o
            .as_deref()
            .map(|o| format!(" (O {o:?})"))
            .unwrap_or_default(),
        subject
            .title
            .as_deref()
            .map(|t| format!(" (title {t:?}: a personal certificate)"))
            .unwrap_or_default(),
    )))
}

/// A name compared without case, accents (đ as d) or extra spaces, as the registry's
/// search key does.
fn norm_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let folded: String = s
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| if c == 'đ' || c == 'Đ' { 'd' } else { c })
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Registers the folder's certificates and prints what was imported, what was there
/// already, what matched no holder and what the registry refused (exit 1).
pub async fn import(channel: Channel, a: &ImportArgs) -> Result<ExitCode, CliError> {
    let c = &mut RegistryClient::new(channel);
    let response_type = message_type("RegisterCertificateResponse")?;
    let holders = match &a.holders {
        Some(p) => Some(load_holders(p)?),
        None => None,
    };
    let entries = std::fs::read_dir(&a.dir).map_err(|source| CliError::File {
        path: a.dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .map(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "pem" | "cer" | "der" | "crt"
                    )
                })
                .unwrap_or(false)
        })
        .collect();
    files.sort();

    let mut imported = Vec::new();
    let mut duplicates = Vec::new();
    let mut unmatched = Vec::new();
    let mut failed = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let der_bytes = match read_file(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| cert_der(&b))
        {
            Ok(d) => d,
            Err(reason) => {
                unmatched.push(json!({"file": file, "subject": Value::Null, "reason": reason}));
                continue;
            }
        };
        let subject = match subject_of(&der_bytes) {
            Ok(s) => s,
            Err(reason) => {
                unmatched.push(json!({"file": file, "subject": Value::Null, "reason": reason}));
                continue;
            }
        };
        let fp =
            hex_lower(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der_bytes).as_ref());
        match c
            .get_certificate(pb::GetCertificateRequest {
                by: Some(pb::get_certificate_request::By::Fingerprint(fp.clone())),
            })
            .await
        {
            Ok(_) => {
                duplicates.push(json!({"file": file, "fingerprint": fp}));
                continue;
            }
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Ok(report_status(&s)),
        }
        let guessed = match &holders {
            Some(h) => from_holders(h, &subject),
            None => match from_registry(c, &subject).await {
                Ok(g) => g,
                Err(s) => return Ok(report_status(&s)),
            },
        };
        let (kind, person_id, organisation_id) = match guessed {
            Ok(g) => g,
            Err(reason) => {
                unmatched.push(json!({
                    "file": file,
                    "subject": subject.rfc4514,
                    "reason": reason,
                }));
                continue;
            }
        };
        let req = pb::RegisterCertificateRequest {
            change: Some(pb::Change {
                actor: a.actor.clone(),
                reason: a.reason.clone(),
            }),
            der: der_bytes,
            kind: kind as i32,
            person_id,
            organisation_id,
            renewal_of: String::new(),
        };
        match c.register_certificate(req).await {
            Ok(r) => {
                let answer = to_json(&dynamic(response_type.clone(), r.get_ref())?)?;
                imported.push(json!({
                    "file": file,
                    "subject": subject.rfc4514,
                    "title": subject.title,
                    "certificate": answer["certificate"],
                }));
            }
            Err(s) if s.code() == Code::AlreadyExists => {
                duplicates.push(json!({"file": file, "fingerprint": fp}));
            }
            Err(s) => {
                let rules: Vec<String> = s
                    .get_details_precondition_failure()
                    .map(|p| p.violations.iter().map(|v| v.r#type.clone()).collect())
                    .unwrap_or_default();
                failed.push(json!({
                    "file": file,
                    "subject": subject.rfc4514,
                    "code": format!("{:?}", s.code()),
                    "message": s.message(),
                    "rules": rules,
                }));
            }
        }
    }
    let ok = failed.is_empty();
    print_json(&json!({
        "imported": imported.len(),
        "duplicates": duplicates.len(),
        "unmatched": unmatched,
        "refused": failed,
        "certificates": imported,
        "duplicate_files": duplicates,
    }));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Lowercase hex.
pub fn hex_lower(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}
