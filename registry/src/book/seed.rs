//! A synthetic province for the authorize benchmark (`kyso bench authorize`): organisations
//! granting one title one document type, and people appointed to it, each with a personal
//! certificate. [`province`] writes it straight into the database in one write transaction
//! with bulk inserts (the registry's own lock and event log, one `bench.seeded` event for
//! all of it): the same rows the API would write, 100 000 certificates in about a minute.
//! The names and the certificates are made here too, so seeding through the API (the
//! benchmark's other way) makes the same province.

use std::str::FromStr;
use std::time::Duration;

use der::Encode;
use der::asn1::BitString;
use der::oid::ObjectIdentifier;
use serde_json::json;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Validity;

use super::model::Change;
use super::search::search_key;
use crate::cert;
use crate::error::{Error, Result};
use crate::storage::{Db, Event, WriteTx, new_id};

/// The size and names of a province.
#[derive(Clone, Debug)]
pub struct ProvinceSpec {
    /// Makes the names and serials of this run unique.
    pub nonce: u64,
    /// Organisations.
    pub organisations: usize,
    /// Personal certificates, each with its person and appointment.
    pub certificates: usize,
    /// The registry's mail domain (I1): organisations' domains and people's mail accounts
    /// are made in it.
    pub mail_domain: String,
}

impl ProvinceSpec {
    /// The one title every signer holds.
    pub fn title_name(&self) -> String {
        format!("Bench Chairman {}", self.nonce)
    }

    /// The one document type every signer may approve.
    pub fn document_type(&self) -> String {
        format!("B{}", self.nonce)
    }

    /// The name of the document type.
    pub fn document_type_name(&self) -> &'static str {
        "Bench decision"
    }

    /// Organisation `i`: its name and mail domain.
    pub fn organisation(&self, i: usize) -> (String, String) {
        (
            format!("Bench organisation {}-{i}", self.nonce),
            format!("o{i}.{}", self.mail_domain),
        )
    }

    /// Person `i`: their name and mail address.
    pub fn person(&self, i: usize) -> (String, String) {
        (
            format!("Bench Person {}-{i}", self.nonce),
            format!("p{}x{i}@{}", self.nonce, self.mail_domain),
        )
    }

    /// The decision appointing person `i`.
    pub fn decision_ref(&self, i: usize) -> String {
        format!("{i}/QD-BENCH")
    }

    /// The organisation person `i` works in, of `orgs` (round robin).
    pub fn organisation_of<'a>(&self, i: usize, orgs: &'a [String]) -> Option<&'a String> {
        orgs.get(i.checked_rem(orgs.len())?)
    }

    /// Person `i`'s certificate: syntactically valid, with a fresh serial and key, valid for
    /// two years from now; the registry indexes certificates and does not check their
    /// signature.
    pub fn certificate(&self, i: usize) -> Result<Vec<u8>> {
        let (cn, _) = self.person(i);
        synthetic_certificate(self.nonce, i, &cn)
    }
}

/// One seeded signer: who may sign the province's document type with which certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The certificate's fingerprint.
    pub fingerprint: String,
    /// The holder.
    pub person: String,
    /// Their organisation.
    pub organisation: String,
}

/// What [`province`] wrote.
#[derive(Clone, Debug)]
pub struct Province {
    /// The title.
    pub title_id: String,
    /// The document type's code.
    pub document_type: String,
    /// Every signer.
    pub signers: Vec<Signer>,
}

fn synthetic(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Synthetic(format!("{what}: {e}"))
}

/// A syntactically valid certificate for `cn` with a serial made of `nonce` and `i` and a
/// random key.
pub fn synthetic_certificate(nonce: u64, i: usize, cn: &str) -> Result<Vec<u8>> {
    let rsa_sha256 = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
        parameters: None,
    };
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| synthetic("key", "no randomness"))?;
    let mut serial = vec![0x01];
    serial.extend_from_slice(&nonce.to_be_bytes());
    serial.extend_from_slice(&(i as u64).to_be_bytes());
    let tbs = x509_cert::TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(|e| synthetic("serial", e))?,
        signature: rsa_sha256.clone(),
        issuer: Name::from_str("CN=kyso bench CA,O=kyso").map_err(|e| synthetic("issuer", e))?,
        validity: Validity::from_now(Duration::from_secs(2 * 365 * 86_400))
            .map_err(|e| synthetic("validity", e))?,
        subject: Name::from_str(&format!("CN={cn},O=kyso bench"))
            .map_err(|e| synthetic("subject", e))?,
        subject_public_key_info: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.3.101.112"),
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(&key).map_err(|e| synthetic("key", e))?,
        },
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let cert = x509_cert::Certificate {
        tbs_certificate: tbs,
        signature_algorithm: rsa_sha256,
        signature: BitString::from_bytes(&[0u8; 256]).map_err(|e| synthetic("signature", e))?,
    };
    cert.to_der().map_err(|e| synthetic("DER", e))
}

/// One value of a bulk insert.
enum Value {
    S(String),
    I(i64),
}

/// Multi-row INSERTs of `columns` into `table`, a few hundred rows per statement.
async fn insert_rows(
    tx: &mut WriteTx,
    table: &'static str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    let per = 400;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per).collect();
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for v in chunk.into_iter().flatten() {
            q = match v {
                Value::S(s) => q.bind(s),
                Value::I(i) => q.bind(i),
            };
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes the province of `spec` into the database at `now` in one write transaction, with
/// one `bench.seeded` event made by `change`.
pub async fn province(db: &Db, spec: &ProvinceSpec, change: &Change, now: i64) -> Result<Province> {
    use Value::{I, S};
    let title = new_id("tit");
    let doc = spec.document_type();
    let orgs: Vec<String> = (0..spec.organisations).map(|_| new_id("org")).collect();
    let mut tx = db.begin_write().await?;
    insert_rows(
        &mut tx,
        "titles",
        &["id", "name"],
        vec![vec![S(title.clone()), S(spec.title_name())]],
    )
    .await?;
    insert_rows(
        &mut tx,
        "document_types",
        &["code", "name", "classification"],
        vec![vec![
            S(doc.clone()),
            S(spec.document_type_name().into()),
            S("none".into()),
        ]],
    )
    .await?;
    let rows = orgs
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (name, domain) = spec.organisation(i);
            vec![
                S(id.clone()),
                S(search_key(&name)),
                S(name),
                S(domain),
                S("active".into()),
                I(now),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "organisations",
        &[
            "id",
            "search_key",
            "name",
            "mail_domain",
            "status",
            "created_at",
        ],
        rows,
    )
    .await?;
    let rows = orgs
        .iter()
        .map(|o| vec![S(o.clone()), S(title.clone()), S(doc.clone())])
        .collect();
    insert_rows(
        &mut tx,
        "title_authorities",
        &["organisation_id", "title_id", "document_type"],
        rows,
    )
    .await?;
    let mut people = Vec::with_capacity(spec.certificates);
    let mut appointments = Vec::with_capacity(spec.certificates);
    let mut certs = Vec::with_capacity(spec.certificates);
    let mut history = Vec::with_capacity(spec.certificates);
    let mut signers = Vec::with_capacity(spec.certificates);
    for i in 0..spec.certificates {
        let org = spec
            .organisation_of(i, &orgs)
            .cloned()
            .ok_or_else(|| synthetic("organisations", "a province needs at least one"))?;
        let person = new_id("per");
        let (name, email) = spec.person(i);
        let der = spec.certificate(i)?;
        let parsed = cert::parse(&der, "der")?;
        let cert = new_id("crt");
        people.push(vec![
            S(person.clone()),
            S(search_key(&name)),
            S(name),
            S(email),
            S(org.clone()),
            I(now),
        ]);
        appointments.push(vec![
            S(new_id("apt")),
            S(person.clone()),
            S(title.clone()),
            S(org.clone()),
            I(0),
            S(spec.decision_ref(i)),
        ]);
        history.push(vec![
            S(new_id("sth")),
            S(cert.clone()),
            S("active".into()),
            I(parsed.not_before),
            I(1),
            I(now),
        ]);
        certs.push(vec![
            S(cert),
            S(parsed.fingerprint.clone()),
            S(hex::encode(&der)),
            S(parsed.serial),
            S(parsed.issuer),
            S(parsed.subject),
            S("personal".into()),
            S(person.clone()),
            S(org.clone()),
            I(parsed.not_before),
            I(parsed.not_after),
            I(0),
            S("active".into()),
            I(now),
            S(parsed.subject_key_identifier),
        ]);
        signers.push(Signer {
            fingerprint: parsed.fingerprint,
            person,
            organisation: org,
        });
    }
    insert_rows(
        &mut tx,
        "people",
        &[
            "id",
            "search_key",
            "full_name",
            "email",
            "organisation_id",
            "created_at",
        ],
        people,
    )
    .await?;
    insert_rows(
        &mut tx,
        "appointments",
        &[
            "id",
            "person_id",
            "title_id",
            "organisation_id",
            "valid_from",
            "decision_ref",
        ],
        appointments,
    )
    .await?;
    insert_rows(
        &mut tx,
        "certificates",
        &[
            "id",
            "fingerprint",
            "der_hex",
            "serial",
            "issuer",
            "subject",
            "kind",
            "person_id",
            "organisation_id",
            "not_before",
            "not_after",
            "renewal_count",
            "status",
            "registered_at",
            "subject_key_identifier",
        ],
        certs,
    )
    .await?;
    insert_rows(
        &mut tx,
        "certificate_status_history",
        &[
            "id",
            "certificate_id",
            "status",
            "effective_at",
            "ordinal",
            "recorded_at",
        ],
        history,
    )
    .await?;
    db.commit(
        tx,
        Event {
            at: now,
            actor: change.by.as_ref().map_or("local tool", |b| b.name.as_str()),
            actor_fingerprint: "",
            actor_role: "provincial-admin",
            note: &change.note,
            reason: &change.reason,
            kind: "bench.seeded",
            entity_id: "",
            change: json!({"nonce": spec.nonce, "organisations": spec.organisations,
                "certificates": spec.certificates, "title_id": title, "document_type": doc}),
        },
    )
    .await?;
    Ok(Province {
        title_id: title,
        document_type: doc,
        signers,
    })
}
