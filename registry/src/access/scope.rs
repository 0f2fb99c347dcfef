//! The check every change passes inside its own transaction, just before its event is
//! written (book/shared.rs): the caller's roles read again from the database (so a role
//! revoked on another replica stops writes at once), and for an agency administrator the
//! organisations the change touches inside its managing agency's subtree (I6).

use serde_json::Value;
use sqlx::AnyConnection;

use super::caller::{Actor, Source};
use super::role::Role;
use crate::error::{Error, Result};

/// What a change needs, found from its event (kind, entity id, data).
#[derive(Debug, PartialEq, Eq)]
enum Need {
    /// The whole province's settings, roles, anything unknown: provincial-admin.
    Province,
    /// A signer's record (usage, registers, R2).
    Record,
    /// Any administrator (the province's list of titles).
    Admin,
    /// These organisations within the subtree: `strict` ones strictly under the agency (an
    /// agency does not change its own organisation record: its own managing agency does).
    Orgs(Vec<(String, bool)>),
}

/// Checks that `by` may make the change `kind` of `entity` now; the role that allows it.
pub async fn check(
    conn: &mut AnyConnection,
    by: &Actor,
    kind: &str,
    entity: &str,
    data: &Value,
    now: i64,
) -> Result<Role> {
    if by.source != Source::Roles {
        // Bootstrap, development and local actors are provincial administrators by
        // configuration, not by a row of the roles table.
        return Ok(by.role);
    }
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT role, agency_id FROM roles WHERE fingerprint = $1 AND revoked_at IS NULL \
         AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
    )
    .bind(&by.fingerprint)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let grants: Vec<(Role, Option<String>)> = rows
        .into_iter()
        .filter_map(|(r, a)| Role::parse(&r).map(|r| (r, a)))
        .collect();
    // An audit anchor is the signer's own record (book/audit_anchors.rs): the signer role
    // only, not even the provincial administrator.
    if kind.starts_with("anchor.") {
        return match grants.iter().any(|(r, _)| *r == Role::Signer) {
            true => Ok(Role::Signer),
            false => Err(Error::PermissionDenied {
                caller: by.describe(),
                call: format!("{} ({kind} {entity})", by.call).trim().to_owned(),
                missing: "role signer".into(),
            }),
        };
    }
    if grants.iter().any(|(r, _)| *r == Role::ProvincialAdmin) {
        return Ok(Role::ProvincialAdmin);
    }
    let refuse = |missing: String| Error::PermissionDenied {
        caller: by.describe(),
        call: format!("{} ({kind} {entity})", by.call).trim().to_owned(),
        missing,
    };
    let agencies: Vec<&str> = grants
        .iter()
        .filter(|(r, _)| *r == Role::AgencyAdmin)
        .filter_map(|(_, a)| a.as_deref())
        .collect();
    match need(conn, kind, entity, data).await? {
        Need::Province => Err(refuse("role provincial-admin".into())),
        Need::Record => match grants.iter().any(|(r, _)| *r == Role::Signer) {
            true => Ok(Role::Signer),
            false => Err(refuse("role signer".into())),
        },
        Need::Admin => match agencies.is_empty() {
            false => Ok(Role::AgencyAdmin),
            true => Err(refuse("role agency-admin or provincial-admin".into())),
        },
        Need::Orgs(orgs) => {
            if agencies.is_empty() {
                return Err(refuse("role agency-admin or provincial-admin".into()));
            }
            for (org, strict) in &orgs {
                let mut inside = false;
                for agency in &agencies {
                    if in_subtree(conn, org, agency, *strict).await? {
                        inside = true;
                        break;
                    }
                }
                if !inside {
                    return Err(refuse(format!(
                        "I6: organisation {org} is outside the subtree of the managing \
                         agency {} this certificate administers",
                        agencies.join(", ")
                    )));
                }
            }
            Ok(Role::AgencyAdmin)
        }
    }
}

/// The need of a change, by the family of its kind; the organisations are read in the same
/// transaction, after the change, so a change that moves something is judged where it lands
/// (and, for an organisation moved between agencies, also where it came from).
async fn need(conn: &mut AnyConnection, kind: &str, entity: &str, data: &Value) -> Result<Need> {
    let family = kind.split('.').next().unwrap_or_default();
    let one = |sql: &'static str| async move {
        let org: Option<String> = sqlx::query_scalar(sql)
            .bind(entity)
            .fetch_optional(&mut *conn)
            .await?;
        // An entity that is not there cannot be placed: only the province may change it.
        Ok::<_, Error>(org.map_or(Need::Province, |o| Need::Orgs(vec![(o, false)])))
    };
    Ok(match family {
        "organisation" => {
            let mut orgs = vec![(entity.to_owned(), true)];
            let previous = &data["previous"]["managing_agency_id"];
            if let Some(p) = previous.as_str() {
                orgs.push((p.to_owned(), false));
            }
            Need::Orgs(orgs)
        }
        "person" => one("SELECT organisation_id FROM people WHERE id = $1").await?,
        "appointment" => one("SELECT organisation_id FROM appointments WHERE id = $1").await?,
        "certificate" => one("SELECT organisation_id FROM certificates WHERE id = $1").await?,
        "delegation" => one("SELECT organisation_id FROM delegations WHERE id = $1").await?,
        "custodian" => {
            one("SELECT c.organisation_id FROM custodians u \
                 JOIN certificates c ON c.id = u.certificate_id WHERE u.id = $1")
            .await?
        }
        "unlock" => {
            one("SELECT c.organisation_id FROM unlock_requests u \
                 JOIN certificates c ON c.id = u.certificate_id WHERE u.id = $1")
            .await?
        }
        "authority" => {
            let orgs: Vec<(String, bool)> = data["grants"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .filter_map(|g| g["organisation_id"].as_str())
                        .map(|o| (o.to_owned(), false))
                        .collect()
                })
                .unwrap_or_default();
            if orgs.is_empty() {
                Need::Province
            } else {
                Need::Orgs(orgs)
            }
        }
        "title" => Need::Admin,
        "usage" | "document" => Need::Record,
        // document types, holidays, roles, synthetic loads and any kind not listed here.
        _ => Need::Province,
    })
}

/// Whether `org` is `agency` (unless `strict`) or under it in the managing-agency hierarchy
/// (I6), transitively. The walk is bounded, so a cycle cannot hold the transaction.
async fn in_subtree(
    conn: &mut AnyConnection,
    org: &str,
    agency: &str,
    strict: bool,
) -> Result<bool> {
    if org == agency {
        return Ok(!strict);
    }
    let n: i64 = sqlx::query_scalar(
        "WITH RECURSIVE up (id, depth) AS ( \
           SELECT managing_agency_id, 1 FROM organisations WHERE id = $1 \
           UNION ALL \
           SELECT o.managing_agency_id, up.depth + 1 FROM organisations o \
           JOIN up ON o.id = up.id WHERE up.depth < 64 \
         ) SELECT COUNT(*) FROM up WHERE id = $2",
    )
    .bind(org)
    .bind(agency)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}
