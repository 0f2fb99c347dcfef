//! A4 for signers from outside the province (`CheckJurisdiction`): is a certificate the
//! registry does not know one issued for an organisation this registry manages, or one of an
//! organisation outside it?
//!
//! Authority is checked only for organisations this registry manages: a ministry's or
//! another province's signer cannot be in this book, and refusing it as "not authorised"
//! refused every document from outside. But "unknown here" must not become a way around A4:
//! an unregistered certificate issued for a managed organisation is still refused, fail
//! closed. So "managed" is taken as soon as ANY of these holds, each read from what the CA
//! vouches for (the verified certificate's subject) or from what only narrows (the sender's
//! code, which can add a match and never remove one):
//!
//! - a registered certificate has the same subject (a renewal or re-key not registered yet);
//! - a value of the subject (O, OU, CN, ...) is, as a whole name folded like the finds
//!   (case, accents, spaces), the name of an organisation in the registry;
//! - a value of the subject holds an organisation code that is, or is under, the code of an
//!   organisation in the registry;
//! - an `emailAddress` of the subject is in the mail domain of an organisation here (I1);
//! - the sender's organisation code is, or is under, the code of an organisation here.
//!
//! The registry manages every organisation in its book (any status: a dissolved one's
//! certificates are still not outsiders).

use kyso_proto::registry::v1 as pb;

use crate::book::search::search_key;
use crate::cert::normalise_fingerprint;
use crate::error::{Error, Result};
use crate::storage::Db;
use kyso_pki::orgcode::OrgCode;

/// At most this many bytes of subject: bad input is bounded.
const MAX_SUBJECT: usize = 4096;

/// A managed organisation found: id and name, and why.
struct Match {
    id: String,
    name: String,
    why: String,
    /// Found by exactly the code given (not one above it).
    exact: bool,
}

/// `CheckJurisdiction` over the database.
pub async fn check(
    db: &Db,
    r: &pb::CheckJurisdictionRequest,
) -> Result<pb::CheckJurisdictionResponse> {
    let fingerprint = normalise_fingerprint(&r.fingerprint, "fingerprint")?;
    let subject = r.subject.trim();
    if subject.is_empty() || subject.len() > MAX_SUBJECT {
        return Err(Error::field(
            "subject",
            format!("required: the certificate's subject (RFC 4514), at most {MAX_SUBJECT} bytes"),
        ));
    }
    let sender = match r.sender_code.trim() {
        "" => None,
        c => Some(OrgCode::parse(c).map_err(|e| Error::field("sender_code", e.to_string()))?),
    };
    let pool = db.pool();
    let registered: Option<String> =
        sqlx::query_scalar("SELECT id FROM certificates WHERE fingerprint = $1")
            .bind(&fingerprint)
            .fetch_optional(pool)
            .await?;
    if registered.is_some() {
        // Known: CheckAuthority decides (A3, A4, V3), never "outside".
        return Ok(pb::CheckJurisdictionResponse {
            registered: true,
            managed: true,
            matches: vec!["the certificate is registered here".into()],
            ..Default::default()
        });
    }
    let mut found: Vec<Match> = Vec::new();
    let same_subject: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.id, o.name FROM certificates c JOIN organisations o \
         ON o.id = c.organisation_id WHERE c.subject = $1 LIMIT 5",
    )
    .bind(subject)
    .fetch_all(pool)
    .await?;
    for (id, name) in same_subject {
        found.push(Match {
            why: format!("a certificate with the same subject is registered for {name}"),
            id,
            name,
            exact: false,
        });
    }
    for (kind, value) in attributes(subject) {
        let by_name: Vec<(String, String)> =
            sqlx::query_as("SELECT id, name FROM organisations WHERE search_key = $1 LIMIT 5")
                .bind(search_key(&value))
                .fetch_all(pool)
                .await?;
        for (id, name) in by_name {
            found.push(Match {
                why: format!("the certificate's {kind} is the name of {name}"),
                id,
                name,
                exact: false,
            });
        }
        for code in codes_in(&value) {
            if let Some(m) = by_code(db, code).await? {
                found.push(Match {
                    why: format!("the certificate's {kind} holds the code {code}: {}", m.why),
                    ..m
                });
            }
        }
        if kind.eq_ignore_ascii_case("emailAddress")
            && let Some((_, domain)) = value.rsplit_once('@')
        {
            let domain = domain.trim().to_ascii_lowercase();
            let by_domain: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT id, name, mail_domain FROM organisations \
                 WHERE mail_domain = $1 OR $1 LIKE '%.' || mail_domain LIMIT 5",
            )
            .bind(&domain)
            .fetch_all(pool)
            .await?;
            for (id, name, d) in by_domain {
                found.push(Match {
                    why: format!("the certificate's mail address is in {name}'s domain {d}"),
                    id,
                    name,
                    exact: false,
                });
            }
        }
    }
    let mut sender_name = String::new();
    if let Some(code) = sender
        && let Some(m) = by_code(db, code).await?
    {
        if m.exact {
            sender_name = m.name.clone();
        }
        found.push(Match {
            why: format!("the sender's code {code}: {}", m.why),
            ..m
        });
    }
    let first = found.first();
    Ok(pb::CheckJurisdictionResponse {
        registered: false,
        managed: !found.is_empty(),
        organisation_id: first.map(|m| m.id.clone()).unwrap_or_default(),
        organisation_name: first.map(|m| m.name.clone()).unwrap_or_default(),
        matches: found.into_iter().map(|m| m.why).collect(),
        sender_name,
    })
}

/// The organisation here whose code is `code` or one above it, most specific first.
async fn by_code(db: &Db, code: OrgCode) -> Result<Option<Match>> {
    for (i, c) in code.lineage().into_iter().enumerate() {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, name FROM organisations WHERE code = $1")
                .bind(c.to_string())
                .fetch_optional(db.pool())
                .await?;
        if let Some((id, name)) = row {
            let why = if i == 0 {
                format!("it is the code of {name}")
            } else {
                format!("it is under {name}'s code {c}")
            };
            return Ok(Some(Match {
                id,
                name,
                why,
                exact: i == 0,
            }));
        }
    }
    Ok(None)
}

/// The attribute values of an RFC 4514 name as `kyso_pki::name::rfc4514` renders it, with
/// their types: split at unescaped `,` and `+`, escapes undone. A value rendered as `#hex`
/// (not a string) is skipped: it names nothing to match.
fn attributes(name: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = name.chars();
    let push = |cur: &mut String, out: &mut Vec<(String, String)>| {
        if let Some((k, v)) = cur.split_once('=')
            && !v.starts_with('#')
        {
            out.push((k.trim().to_owned(), v.to_owned()));
        }
        cur.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    // `\00` is the only hex escape the renderer writes.
                    if n == '0' {
                        chars.next();
                    } else {
                        cur.push(n);
                    }
                }
            }
            ',' | '+' => push(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    push(&mut cur, &mut out);
    out
}

/// Organisation codes written inside a value (`MNS:000.00.12.H41`, `... - 000.00.00.G22`).
fn codes_in(value: &str) -> Vec<OrgCode> {
    value
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter(|t| t.len() == 13)
        .filter_map(|t| OrgCode::parse(t).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_values_of_a_rendered_name() {
        let a = attributes(r"CN=Sở Tư pháp\, Khánh Hòa,O=UBND+OU=MNS:000.00.12.H41,C=VN");
        assert_eq!(
            a,
            [
                ("CN".to_owned(), "Sở Tư pháp, Khánh Hòa".to_owned()),
                ("O".to_owned(), "UBND".to_owned()),
                ("OU".to_owned(), "MNS:000.00.12.H41".to_owned()),
                ("C".to_owned(), "VN".to_owned()),
            ]
        );
        assert_eq!(
            codes_in("MNS:000.00.12.H41")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["000.00.12.H41"]
        );
    }
}
