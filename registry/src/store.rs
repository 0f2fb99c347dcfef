//! The authority decisions on the database, `Authorize` and `CheckAuthority` (A1-A7, V1,
//! V3, N7): the reference the in-memory index (index.rs) is tested against. The rest of the
//! registry's operations are the book's (book/).

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;
use sqlx::AnyConnection;

use crate::book::Book;
use crate::book::shared::{ORG_EXISTS, PERSON_EXISTS, must_exist, need};
use crate::cert;
use crate::convert::ts;
use crate::error::{Error, Result};
use crate::policy::show;
use crate::storage::{Db, col};

/// The authority decisions over the database, and the book over the same database ([`Store::book`]).
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    mail_domain: String,
    /// Where `Authorize` and `CheckAuthority` answer from when loaded (index.rs); without
    /// it they query the database (the reference the index is tested against).
    index: Option<std::sync::Arc<crate::index::Index>>,
}

/// One failed rule of a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// DOMAIN.md rule ID.
    pub rule: &'static str,
    /// For a person to read.
    pub reason: String,
}

/// The answer to `Authorize`.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    /// Every failed rule; empty means allowed.
    pub refusals: Vec<Refusal>,
    /// The certificate holder's name (person or organisation).
    pub holder_name: String,
    /// The title the signature is made under.
    pub title: String,
    /// The delegator, for KT./TL./TUQ.
    pub on_behalf_of: String,
}

/// The answer to `CheckAuthority`.
#[derive(Clone, Debug, Default)]
pub struct AuthorityCheck {
    /// Every failed rule; empty means the holder had authority.
    pub refusals: Vec<Refusal>,
    /// Personal or organisation.
    pub kind: i32,
    /// Holder's name.
    pub holder_name: String,
    /// The title that carried the authority.
    pub title: String,
    /// The certificate's organisation.
    pub organisation_name: String,
    /// Status at the time asked.
    pub status: i32,
}

/// What a decision reads of a certificate.
#[derive(Clone, Debug, sqlx::FromRow)]
struct CertRow {
    id: String,
    kind: String,
    person_id: Option<String>,
    organisation_id: String,
    not_before: i64,
    not_after: i64,
}

const CERT_COLUMNS: &str = "id, kind, person_id, organisation_id, not_before, not_after";

// ----- enum names as stored -------------------------------------------------------------------

pub(crate) fn mode_name(m: spb::SigningMode) -> Option<&'static str> {
    use spb::SigningMode as M;
    match m {
        M::Kt => Some("kt"),
        M::Tl => Some("tl"),
        M::Tuq => Some("tuq"),
        M::Own | M::Unspecified => None,
    }
}

/// The proto value of a stored status name.
pub(crate) fn status_value(s: &str) -> pb::CertificateStatus {
    match s {
        "active" => pb::CertificateStatus::Active,
        "suspended" => pb::CertificateStatus::Suspended,
        "revoked" => pb::CertificateStatus::Revoked,
        _ => pb::CertificateStatus::Unspecified,
    }
}

pub(crate) fn kind_value(s: &str) -> pb::CertificateKind {
    match s {
        "personal" => pb::CertificateKind::Personal,
        "organisation" => pb::CertificateKind::Organisation,
        _ => pb::CertificateKind::Unspecified,
    }
}

/// A document type's classification, or NotFound.
async fn doc_classification(
    conn: &mut AnyConnection,
    field: &'static str,
    code: &str,
) -> Result<String> {
    sqlx::query_scalar("SELECT classification FROM document_types WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("document type", field, code))
}

async fn cert_by_fingerprint(
    conn: &mut AnyConnection,
    field: &'static str,
    fp: &str,
) -> Result<CertRow> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1");
    sqlx::query_as(&sql)
        .bind(fp)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("certificate", field, fp))
}

/// The status at time `t` (N7, V3): the last change effective at or before
/// `t`; None before the certificate's first entry.
async fn status_at(
    conn: &mut AnyConnection,
    cert_id: &str,
    t: i64,
) -> Result<Option<(String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT status, reason FROM certificate_status_history \
         WHERE certificate_id = $1 AND effective_at <= $2 \
         ORDER BY effective_at DESC, ordinal DESC LIMIT 1",
    )
    .bind(cert_id)
    .bind(t)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => Ok(Some((col(&r, "status")?, col(&r, "reason")?))),
        None => Ok(None),
    }
}

/// V1, N2 (a, c), N7: valid at `t` = inside its validity and active then.
async fn validity_refusals(
    conn: &mut AnyConnection,
    c: &CertRow,
    t: i64,
    out: &mut Vec<Refusal>,
) -> Result<pb::CertificateStatus> {
    let status = status_at(conn, &c.id, t).await?;
    let status = status.as_ref().map(|(s, r)| (s.as_str(), r.as_deref()));
    Ok(validity_verdict(c.not_before, c.not_after, status, t, out))
}

/// V1, N2 (a, c), N7 without the database: the certificate's validity and its `status`
/// at `t` (from the history); shared by the SQL path and the index.
pub(crate) fn validity_verdict(
    not_before: i64,
    not_after: i64,
    status: Option<(&str, Option<&str>)>,
    t: i64,
    out: &mut Vec<Refusal>,
) -> pb::CertificateStatus {
    if t < not_before {
        out.push(Refusal {
            rule: "V1",
            reason: format!("the certificate is not valid before {}", show(not_before)),
        });
    }
    if t > not_after {
        out.push(Refusal {
            rule: "V1",
            reason: format!("the certificate expired at {}", show(not_after)),
        });
    }
    let value = match &status {
        Some((s, _)) => status_value(s),
        None => pb::CertificateStatus::Unspecified,
    };
    match status {
        Some(("active", _)) => {}
        Some(("suspended", _)) => out.push(Refusal {
            rule: "N7",
            reason: format!("the certificate is suspended at {}", show(t)),
        }),
        Some((_, reason)) => out.push(Refusal {
            rule: "V3",
            reason: format!(
                "the certificate is revoked at {} ({})",
                show(t),
                reason.unwrap_or_default()
            ),
        }),
        None if t >= not_before && t <= not_after => out.push(Refusal {
            rule: "V1",
            reason: "the certificate has no status at that time".into(),
        }),
        None => {}
    }
    value
}

/// A7: classified document types are never signed.
pub(crate) fn classified_refusal(doc: &str, classification: &str, out: &mut Vec<Refusal>) {
    if classification != "none" {
        out.push(Refusal {
            rule: "A7",
            reason: format!(
                "document type {doc} is classified ({classification}); these certificates never sign classified documents"
            ),
        });
    }
}

/// Titles the person holds in the organisation at `t`: (title_id, name).
async fn titles_held(
    conn: &mut AnyConnection,
    person: &str,
    org: &str,
    t: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT a.title_id AS title_id, t.name AS name FROM appointments a \
         JOIN titles t ON t.id = a.title_id \
         WHERE a.person_id = $1 AND a.organisation_id = $2 AND a.valid_from <= $3 \
         AND (a.valid_to IS NULL OR a.valid_to > $3) ORDER BY t.name",
    )
    .bind(person)
    .bind(org)
    .bind(t)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "title_id")?, col(r, "name")?)))
        .collect()
}

/// The title under which the person may sign `doc` as APPROVAL in `org` at `t` (A2, A3).
async fn authorised_title(
    conn: &mut AnyConnection,
    person: &str,
    org: &str,
    doc: &str,
    t: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT t.name FROM appointments a \
         JOIN title_authorities ta ON ta.organisation_id = a.organisation_id \
           AND ta.title_id = a.title_id AND ta.document_type = $3 \
         JOIN titles t ON t.id = a.title_id \
         WHERE a.person_id = $1 AND a.organisation_id = $2 AND a.valid_from <= $4 \
         AND (a.valid_to IS NULL OR a.valid_to > $4) ORDER BY t.name LIMIT 1",
    )
    .bind(person)
    .bind(org)
    .bind(doc)
    .bind(t)
    .fetch_optional(conn)
    .await?)
}

/// The current custodian of an organisation certificate at `t` (A5).
async fn custodian_at(conn: &mut AnyConnection, cert_id: &str, t: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT person_id FROM custodians WHERE certificate_id = $1 AND valid_from <= $2 \
         AND (valid_to IS NULL OR valid_to > $2) ORDER BY valid_from DESC LIMIT 1",
    )
    .bind(cert_id)
    .bind(t)
    .fetch_optional(conn)
    .await?)
}

async fn name_of(conn: &mut AnyConnection, sql: &'static str, id: &str) -> Result<String> {
    Ok(sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .unwrap_or_default())
}

const PERSON_NAME: &str = "SELECT full_name FROM people WHERE id = $1";
const ORG_NAME: &str = "SELECT name FROM organisations WHERE id = $1";

impl Store {
    /// A store over a connected database; `mail_domain` is checked by the config (I1).
    pub fn new(db: Db, mail_domain: String) -> Self {
        Self {
            db,
            mail_domain,
            index: None,
        }
    }

    /// The same store answering `Authorize` and `CheckAuthority` from the in-memory
    /// authorization index, loaded now from the database (index.rs).
    pub async fn with_index(mut self) -> Result<Self> {
        let index = crate::index::Index::load(self.db.clone()).await?;
        self.index = Some(std::sync::Arc::new(index));
        Ok(self)
    }

    /// The authorization index, when loaded.
    pub fn index(&self) -> Option<&crate::index::Index> {
        self.index.as_deref()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The book over the same database (book/): every change goes through it.
    pub fn book(&self) -> Book {
        Book::new(self.db.clone(), self.mail_domain.clone())
    }

    // ----- decisions --------------------------------------------------------------------------

    /// Decides whether a signature may be made; collects every failed rule
    /// rather than stopping at the first, so the caller can fix everything at once.
    pub async fn authorize(&self, req: &pb::AuthorizeRequest, now: i64) -> Result<Decision> {
        let fp = cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?;
        let acting = need("acting_person_id", &req.acting_person_id)?;
        let org = need("organisation_id", &req.organisation_id)?;
        let doc = need("document_type", &req.document_type)?;
        let profile = match spb::Profile::try_from(req.profile) {
            Ok(spb::Profile::Unspecified) | Err(_) => {
                return Err(Error::field("profile", "required"));
            }
            Ok(p) => p,
        };
        let mode = spb::SigningMode::try_from(req.mode)
            .map_err(|_| Error::field("mode", "unknown signing mode"))?;
        let t = ts("at", &req.at)?.unwrap_or(now);
        if let Some(index) = &self.index {
            return index
                .authorize(&fp, &acting, &org, &doc, profile, mode, t)
                .await;
        }

        let mut conn = self.db.pool().acquire().await?;
        let c = cert_by_fingerprint(&mut conn, "fingerprint", &fp).await?;
        must_exist(
            &mut conn,
            PERSON_EXISTS,
            "person",
            "acting_person_id",
            &acting,
        )
        .await?;
        must_exist(
            &mut conn,
            ORG_EXISTS,
            "organisation",
            "organisation_id",
            &org,
        )
        .await?;
        let class = doc_classification(&mut conn, "document_type", &doc).await?;

        let mut d = Decision::default();
        validity_refusals(&mut conn, &c, t, &mut d.refusals).await?;
        classified_refusal(&doc, &class, &mut d.refusals);

        if c.kind == "personal" {
            let holder = c.person_id.clone().unwrap_or_default();
            d.holder_name = name_of(&mut conn, PERSON_NAME, &holder).await?;
            // A1: used only by its holder.
            if holder != acting {
                d.refusals.push(Refusal {
                    rule: "A1",
                    reason: "a personal certificate is used only by its holder".into(),
                });
            }
            match profile {
                spb::Profile::Approval | spb::Profile::Comment => {}
                other => d.refusals.push(Refusal {
                    rule: "A4",
                    reason: format!(
                        "{} is a use of the organisation certificate (the seal, D1), not of a personal one",
                        other.as_str_name()
                    ),
                }),
            }
            let held = titles_held(&mut conn, &acting, &org, t).await?;
            if held.is_empty() {
                d.refusals.push(Refusal {
                    rule: "A3",
                    reason: "the signer holds no title in this organisation at that time".into(),
                });
            } else if let Some(m) = mode_name(mode) {
                // A2: signing on behalf, under a delegation in force, from
                // someone who has the authority, with the delegate's own certificate.
                let rows = sqlx::query(
                    "SELECT d.from_person_id AS from_person_id, p.full_name AS full_name \
                     FROM delegations d \
                     JOIN delegation_document_types dd ON dd.delegation_id = d.id \
                       AND dd.document_type = $3 \
                     JOIN people p ON p.id = d.from_person_id \
                     WHERE d.to_person_id = $1 AND d.organisation_id = $2 AND d.mode = $4 \
                     AND d.valid_from <= $5 AND d.valid_to > $5",
                )
                .bind(&acting)
                .bind(&org)
                .bind(&doc)
                .bind(m)
                .bind(t)
                .fetch_all(&mut *conn)
                .await?;
                let mut found = false;
                for r in &rows {
                    let from: String = col(r, "from_person_id")?;
                    if authorised_title(&mut conn, &from, &org, &doc, t)
                        .await?
                        .is_some()
                    {
                        d.on_behalf_of = col(r, "full_name")?;
                        found = true;
                        break;
                    }
                }
                d.title = held.first().map(|(_, n)| n.clone()).unwrap_or_default();
                if !found {
                    d.refusals.push(Refusal {
                        rule: "A2",
                        reason: format!(
                            "no {} delegation in force for document type {doc} from someone with the authority to sign it",
                            m.to_uppercase()
                        ),
                    });
                }
            } else if profile == spb::Profile::Approval {
                match authorised_title(&mut conn, &acting, &org, &doc, t).await? {
                    Some(title) => d.title = title,
                    None => d.refusals.push(Refusal {
                        rule: "A3",
                        reason: format!(
                            "none of the signer's titles ({}) may sign document type {doc} in this organisation",
                            held.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }),
                }
            } else {
                d.title = held.first().map(|(_, n)| n.clone()).unwrap_or_default();
            }
        } else {
            d.holder_name = name_of(&mut conn, ORG_NAME, &c.organisation_id).await?;
            // A5: only the current custodian uses the organisation key.
            match custodian_at(&mut conn, &c.id, t).await? {
                Some(p) if p == acting => {}
                Some(_) => d.refusals.push(Refusal {
                    rule: "A5",
                    reason: "only the assigned custodian may use the organisation certificate"
                        .into(),
                }),
                None => d.refusals.push(Refusal {
                    rule: "A5",
                    reason: "the organisation certificate has no custodian assigned by decision"
                        .into(),
                }),
            }
            if mode_name(mode).is_some() {
                d.refusals.push(Refusal {
                    rule: "A2",
                    reason: "signing on behalf uses the delegate's own personal certificate".into(),
                });
            }
            if c.organisation_id != org {
                d.refusals.push(Refusal {
                    rule: "A4",
                    reason: "an organisation certificate signs only for its own organisation"
                        .into(),
                });
            }
            let allowed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM organisation_profiles WHERE organisation_id = $1 \
                 AND document_type = $2 AND profile = $3",
            )
            .bind(&c.organisation_id)
            .bind(&doc)
            .bind(profile.as_str_name())
            .fetch_one(&mut *conn)
            .await?;
            if allowed == 0 {
                d.refusals.push(Refusal {
                    rule: "A4",
                    reason: format!(
                        "the organisation certificate is not allowed {} for document type {doc}",
                        profile.as_str_name()
                    ),
                });
            }
        }
        Ok(d)
    }

    /// For the verifier: did this certificate's holder have authority to
    /// sign the document type at `t` (status, A7, A2/A3 for a person, A4 for
    /// an organisation)?
    pub async fn check_authority(
        &self,
        req: &pb::CheckAuthorityRequest,
        now: i64,
    ) -> Result<AuthorityCheck> {
        let fp = cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?;
        let doc = need("document_type", &req.document_type)?;
        let t = ts("at", &req.at)?.unwrap_or(now);
        if let Some(index) = &self.index {
            return index.check_authority(&fp, &doc, t).await;
        }
        let mut conn = self.db.pool().acquire().await?;
        let c = cert_by_fingerprint(&mut conn, "fingerprint", &fp).await?;
        let class = doc_classification(&mut conn, "document_type", &doc).await?;
        let mut out = AuthorityCheck {
            kind: kind_value(&c.kind) as i32,
            organisation_name: name_of(&mut conn, ORG_NAME, &c.organisation_id).await?,
            ..AuthorityCheck::default()
        };
        out.status = validity_refusals(&mut conn, &c, t, &mut out.refusals).await? as i32;
        classified_refusal(&doc, &class, &mut out.refusals);
        if let Some(person) = &c.person_id {
            out.holder_name = name_of(&mut conn, PERSON_NAME, person).await?;
            match authorised_title(&mut conn, person, &c.organisation_id, &doc, t).await? {
                Some(title) => out.title = title,
                None => {
                    // Signing on behalf counts too (A2).
                    let delegated: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM delegations d \
                         JOIN delegation_document_types dd ON dd.delegation_id = d.id \
                           AND dd.document_type = $3 \
                         WHERE d.to_person_id = $1 AND d.organisation_id = $2 \
                         AND d.valid_from <= $4 AND d.valid_to > $4",
                    )
                    .bind(person)
                    .bind(&c.organisation_id)
                    .bind(&doc)
                    .bind(t)
                    .fetch_one(&mut *conn)
                    .await?;
                    if delegated == 0 {
                        out.refusals.push(Refusal {
                            rule: "A3",
                            reason: format!(
                                "the holder had no title with authority for {doc}, nor a delegation for it, at {}",
                                show(t)
                            ),
                        });
                    }
                }
            }
        } else {
            out.holder_name = out.organisation_name.clone();
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM organisation_profiles WHERE organisation_id = $1 \
                 AND document_type = $2",
            )
            .bind(&c.organisation_id)
            .bind(&doc)
            .fetch_one(&mut *conn)
            .await?;
            if n == 0 {
                out.refusals.push(Refusal {
                    rule: "A4",
                    reason: format!("the organisation certificate has no use for {doc}"),
                });
            }
        }
        Ok(out)
    }
}
