//! Reading the index's facts from the database: all of them at start-up (and after a bulk
//! change), or the part one committed change touched, then applied under the write lock.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::Unit;
use super::snapshot::{OrgRules, Snapshot};
use crate::authority::facts::{Appointment, Certificate, Custodian, Delegation, Title};
use crate::authority::sql::{
    APPOINTMENT_COLUMNS, CERT_COLUMNS, CUSTODIAN_COLUMNS, DELEGATION_COLUMNS, HISTORY_COLUMNS,
    appointment, certificate, custodian, delegation, status_change,
};
use crate::error::Result;
use crate::storage::{Db, col};

/// Rows read for one unit, applied to the snapshot under its write lock.
pub(super) enum Loaded {
    Nothing,
    /// The row an event names is gone: the caller reloads everything.
    Gone,
    Cert {
        id: String,
        cert: Option<Certificate>,
    },
    Person {
        id: String,
        name: Option<String>,
        appointments: Vec<Appointment>,
        delegations: Vec<Delegation>,
    },
    Org {
        id: String,
        name: Option<String>,
    },
    Titles(HashMap<String, Title>),
    DocTypes(HashMap<String, String>),
    Rules(HashMap<String, OrgRules>),
    Roles(crate::access::RoleMap),
    Appointments {
        person: String,
        appointments: Vec<Appointment>,
    },
    Custodians {
        cert_id: String,
        custodians: Vec<Custodian>,
    },
    Delegations {
        person: String,
        delegations: Vec<Delegation>,
    },
}

impl Loaded {
    pub(super) async fn read(conn: &mut AnyConnection, unit: Unit) -> Result<Self> {
        Ok(match unit {
            // Handled by the caller (a full reload).
            Unit::All | Unit::Nothing => Self::Nothing,
            Unit::Cert(id) => {
                let cert = load_certs(conn, Some(&id)).await?.pop();
                Self::Cert { id, cert }
            }
            Unit::Person(id) => Self::Person {
                name: load_names(conn, PEOPLE, Some(&id))
                    .await?
                    .pop()
                    .map(|(_, n)| n),
                appointments: load_appointments(conn, Some(&id))
                    .await?
                    .into_values()
                    .next()
                    .unwrap_or_default(),
                delegations: load_delegations(conn, Some(&id))
                    .await?
                    .into_values()
                    .next()
                    .unwrap_or_default(),
                id,
            },
            Unit::Org(id) => Self::Org {
                name: load_names(conn, ORGS, Some(&id))
                    .await?
                    .pop()
                    .map(|(_, n)| n),
                id,
            },
            Unit::Titles => Self::Titles(load_titles(conn).await?),
            Unit::DocTypes => Self::DocTypes(load_doc_types(conn).await?),
            Unit::Rules => Self::Rules(load_rules(conn).await?),
            Unit::Roles => Self::Roles(load_roles(conn).await?),
            Unit::Appointment(id) => {
                let person: Option<String> =
                    sqlx::query_scalar("SELECT person_id FROM appointments WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match person {
                    Some(person) => Self::Appointments {
                        appointments: load_appointments(conn, Some(&person))
                            .await?
                            .into_values()
                            .next()
                            .unwrap_or_default(),
                        person,
                    },
                    // Gone (deleted by a change): reload everything.
                    None => Self::Gone,
                }
            }
            Unit::Custodian(id) => {
                let cert: Option<String> =
                    sqlx::query_scalar("SELECT certificate_id FROM custodians WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match cert {
                    Some(cert_id) => Self::Custodians {
                        custodians: load_custodians(conn, Some(&cert_id))
                            .await?
                            .into_values()
                            .next()
                            .unwrap_or_default(),
                        cert_id,
                    },
                    None => Self::Gone,
                }
            }
            Unit::Delegation(id) => {
                let to: Option<String> =
                    sqlx::query_scalar("SELECT to_person_id FROM delegations WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match to {
                    Some(person) => Self::Delegations {
                        delegations: load_delegations(conn, Some(&person))
                            .await?
                            .into_values()
                            .next()
                            .unwrap_or_default(),
                        person,
                    },
                    None => Self::Gone,
                }
            }
        })
    }

    pub(super) fn apply(self, s: &mut Snapshot) {
        match self {
            Self::Nothing | Self::Gone => {}
            Self::Cert { id, cert } => {
                if let Some(fp) = s.cert_fp.remove(&id) {
                    s.certs.remove(&fp);
                }
                if let Some(c) = cert {
                    s.insert_cert(c);
                }
            }
            Self::Person {
                id,
                name,
                appointments,
                delegations,
            } => {
                set(&mut s.appointments, &id, appointments);
                set(&mut s.delegations, &id, delegations);
                match name {
                    Some(n) => s.people.insert(id, n),
                    None => s.people.remove(&id),
                };
            }
            Self::Org { id, name } => {
                match name {
                    Some(n) => s.orgs.insert(id, n),
                    None => s.orgs.remove(&id),
                };
            }
            Self::Titles(t) => s.titles = t,
            Self::DocTypes(d) => s.doc_types = d,
            Self::Rules(r) => s.rules = r,
            Self::Roles(r) => s.roles = r,
            Self::Appointments {
                person,
                appointments,
            } => set(&mut s.appointments, &person, appointments),
            Self::Custodians {
                cert_id,
                custodians,
            } => set(&mut s.custodians, &cert_id, custodians),
            Self::Delegations {
                person,
                delegations,
            } => set(&mut s.delegations, &person, delegations),
        }
    }
}

fn set<T>(map: &mut HashMap<String, Vec<T>>, key: &str, rows: Vec<T>) {
    if rows.is_empty() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), rows);
    }
}

/// The event log's head, then every table the index holds. A change committed while this
/// runs has a later sequence number, so the next catch-up applies it again (reloads are
/// idempotent).
pub(super) async fn load_all(db: &Db) -> Result<(i64, Snapshot)> {
    let mut conn = db.pool().acquire().await?;
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let mut s = Snapshot {
        titles: load_titles(&mut conn).await?,
        doc_types: load_doc_types(&mut conn).await?,
        rules: load_rules(&mut conn).await?,
        people: load_names(&mut conn, PEOPLE, None)
            .await?
            .into_iter()
            .collect(),
        orgs: load_names(&mut conn, ORGS, None)
            .await?
            .into_iter()
            .collect(),
        appointments: load_appointments(&mut conn, None).await?,
        custodians: load_custodians(&mut conn, None).await?,
        delegations: load_delegations(&mut conn, None).await?,
        roles: load_roles(&mut conn).await?,
        ..Snapshot::default()
    };
    for c in load_certs(&mut conn, None).await? {
        s.insert_cert(c);
    }
    Ok((seq, s))
}

const PEOPLE: (&str, &str) = ("people", "full_name");
const ORGS: (&str, &str) = ("organisations", "name");

/// (id, name) of people or organisations, all or one.
async fn load_names(
    conn: &mut AnyConnection,
    (table, column): (&str, &str),
    id: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut sql = format!("SELECT id, {column} AS name FROM {table}");
    if id.is_some() {
        sql.push_str(" WHERE id = $1");
    }
    let rows = bind_opt(sqlx::query(&sql), id).fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((col(r, "id")?, col(r, "name")?)))
        .collect()
}

fn bind_opt<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    v: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match v {
        Some(v) => q.bind(v),
        None => q,
    }
}

/// Certificates with their status history, all or one by id.
async fn load_certs(conn: &mut AnyConnection, id: Option<&str>) -> Result<Vec<Certificate>> {
    let (cert_where, hist_where) = match id {
        Some(_) => (" WHERE id = $1", " WHERE certificate_id = $1"),
        None => ("", ""),
    };
    let value = id;
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates{cert_where}");
    let rows = bind_opt(sqlx::query(&sql), value)
        .fetch_all(&mut *conn)
        .await?;
    let mut certs: HashMap<String, Certificate> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let c = certificate(r)?;
        certs.insert(c.id.clone(), c);
    }
    let sql = format!("SELECT {HISTORY_COLUMNS} FROM certificate_status_history{hist_where}");
    let rows = bind_opt(sqlx::query(&sql), value)
        .fetch_all(&mut *conn)
        .await?;
    for r in &rows {
        let id: String = col(r, "certificate_id")?;
        if let Some(c) = certs.get_mut(&id) {
            c.history.push(status_change(r)?);
        }
    }
    let mut out: Vec<Certificate> = certs.into_values().collect();
    for c in &mut out {
        c.history.sort_by_key(|s| (s.effective_at, s.ordinal));
    }
    Ok(out)
}

/// Titles ranked in the database's own order of names (its collation), as `ORDER BY t.name`.
async fn load_titles(conn: &mut AnyConnection) -> Result<HashMap<String, Title>> {
    let rows = sqlx::query("SELECT id, name FROM titles ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .enumerate()
        .map(|(rank, r)| {
            Ok((
                col(r, "id")?,
                Title {
                    name: col(r, "name")?,
                    rank,
                },
            ))
        })
        .collect()
}

async fn load_doc_types(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("SELECT code, classification FROM document_types")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((col(r, "code")?, col(r, "classification")?)))
        .collect()
}

async fn load_rules(conn: &mut AnyConnection) -> Result<HashMap<String, OrgRules>> {
    let mut rules: HashMap<String, OrgRules> = HashMap::new();
    let rows =
        sqlx::query("SELECT organisation_id, title_id, document_type FROM title_authorities")
            .fetch_all(&mut *conn)
            .await?;
    for r in &rows {
        rules
            .entry(col(r, "organisation_id")?)
            .or_default()
            .titles
            .entry(col(r, "title_id")?)
            .or_default()
            .insert(col(r, "document_type")?);
    }
    let rows =
        sqlx::query("SELECT organisation_id, document_type, profile FROM organisation_profiles")
            .fetch_all(&mut *conn)
            .await?;
    for r in &rows {
        rules
            .entry(col(r, "organisation_id")?)
            .or_default()
            .profiles
            .entry(col(r, "document_type")?)
            .or_default()
            .push(col(r, "profile")?);
    }
    Ok(rules)
}

/// Appointments by person, all or one person's.
async fn load_appointments(
    conn: &mut AnyConnection,
    person: Option<&str>,
) -> Result<HashMap<String, Vec<Appointment>>> {
    let mut sql = format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments");
    if person.is_some() {
        sql.push_str(" WHERE person_id = $1");
    }
    let rows = bind_opt(sqlx::query(&sql), person).fetch_all(conn).await?;
    let mut out: HashMap<String, Vec<Appointment>> = HashMap::new();
    for r in &rows {
        out.entry(col(r, "person_id")?)
            .or_default()
            .push(appointment(r)?);
    }
    Ok(out)
}

/// Custodians by certificate id, all or one certificate's.
async fn load_custodians(
    conn: &mut AnyConnection,
    cert_id: Option<&str>,
) -> Result<HashMap<String, Vec<Custodian>>> {
    let mut sql = format!("SELECT {CUSTODIAN_COLUMNS} FROM custodians");
    if cert_id.is_some() {
        sql.push_str(" WHERE certificate_id = $1");
    }
    let rows = bind_opt(sqlx::query(&sql), cert_id).fetch_all(conn).await?;
    let mut out: HashMap<String, Vec<Custodian>> = HashMap::new();
    for r in &rows {
        out.entry(col(r, "certificate_id")?)
            .or_default()
            .push(custodian(r)?);
    }
    Ok(out)
}

/// Delegations by delegate, all or one delegate's, in the order they were made.
async fn load_delegations(
    conn: &mut AnyConnection,
    to: Option<&str>,
) -> Result<HashMap<String, Vec<Delegation>>> {
    let filter = if to.is_some() {
        " WHERE d.to_person_id = $1"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {DELEGATION_COLUMNS} FROM delegations d{filter} ORDER BY d.created_at, d.id"
    );
    let rows = bind_opt(sqlx::query(&sql), to)
        .fetch_all(&mut *conn)
        .await?;
    let sql = format!(
        "SELECT dd.delegation_id AS delegation_id, dd.document_type AS document_type \
         FROM delegation_document_types dd JOIN delegations d ON d.id = dd.delegation_id{filter}"
    );
    let doc_rows = bind_opt(sqlx::query(&sql), to)
        .fetch_all(&mut *conn)
        .await?;
    let mut docs: HashMap<String, Vec<String>> = HashMap::new();
    for r in &doc_rows {
        docs.entry(col(r, "delegation_id")?)
            .or_default()
            .push(col(r, "document_type")?);
    }
    let mut out: HashMap<String, Vec<Delegation>> = HashMap::new();
    for r in &rows {
        let id: String = col(r, "id")?;
        out.entry(col(r, "to_person_id")?)
            .or_default()
            .push(Delegation {
                document_types: docs.remove(&id).unwrap_or_default(),
                ..delegation(r)?
            });
    }
    Ok(out)
}

/// The grants not revoked, by certificate fingerprint (a small table: read whole).
async fn load_roles(conn: &mut AnyConnection) -> Result<crate::access::RoleMap> {
    use crate::access::{Grant, Role};
    /// fingerprint, role, agency_id, valid_from, valid_to
    type Row = (String, String, Option<String>, i64, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT fingerprint, role, agency_id, valid_from, valid_to FROM roles \
         WHERE revoked_at IS NULL ORDER BY granted_at, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut map = crate::access::RoleMap::new();
    for (fingerprint, role, agency_id, valid_from, valid_to) in rows {
        // The table's CHECK allows only known names; skip rather than fail on a newer one.
        let Some(role) = Role::parse(&role) else {
            continue;
        };
        map.entry(fingerprint).or_default().push(Grant {
            role,
            agency_id,
            valid_from,
            valid_to,
        });
    }
    Ok(map)
}
