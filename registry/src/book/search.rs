//! Finding people and organisations by name: a stored search key folded the same way on
//! both backends, whole-name matches first.

use super::Book;
use super::model::{OrganisationMatch, PersonMatch};
use crate::error::Result;

/// At most this many matches of a find.
const FIND_LIMIT: usize = 100;

/// The stored search key of a name: NFD, combining marks removed, đ/Đ as d, Unicode
/// lowercase, whitespace collapsed ("Nguyễn  Văn An" -> "nguyen van an"). SQLite's LOWER()
/// folds ASCII only, so the key is made here for both backends.
pub fn search_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let folded: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whole-name equality, case-insensitive but keeping the marks ("Lê" is not "Le").
fn same_name(a: &str, b: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let key = |s: &str| {
        s.nfc()
            .flat_map(char::to_lowercase)
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    key(a) == key(b)
}

/// A LIKE pattern for "contains `key`", `!` escaping the wildcards.
fn like_pattern(key: &str) -> String {
    let mut p = String::from("%");
    for c in key.chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Book {
    /// Gives rows written before migration 0002 their search key (made in Rust: SQLite's
    /// LOWER() folds ASCII only).
    pub async fn backfill_search_keys(&self) -> Result<()> {
        for (table, name_col) in [("people", "full_name"), ("organisations", "name")] {
            let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT id, {name_col} FROM {table} WHERE search_key IS NULL"
            ))
            .fetch_all(self.db.pool())
            .await?;
            for (id, name) in rows {
                sqlx::query(&format!("UPDATE {table} SET search_key = $1 WHERE id = $2"))
                    .bind(search_key(&name))
                    .bind(&id)
                    .execute(self.db.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// People whose name contains `name` (case- and accent-insensitive), optionally only
    /// those working in one organisation (`organisation_id`, "" for any); whole-name
    /// matches first.
    pub async fn find_people(&self, name: &str, organisation_id: &str) -> Result<Vec<PersonMatch>> {
        let pattern = like_pattern(&search_key(name));
        let mut out: Vec<PersonMatch> = sqlx::query_as(
            "SELECT id, full_name, email, organisation_id FROM people \
             WHERE search_key LIKE $1 ESCAPE '!' AND ($2 = '' OR organisation_id = $2) \
             ORDER BY full_name, id LIMIT 1000",
        )
        .bind(&pattern)
        .bind(organisation_id.trim())
        .fetch_all(self.db.pool())
        .await?;
        for m in &mut out {
            m.exact = same_name(&m.full_name, name);
        }
        out.sort_by_key(|m| !m.exact);
        out.truncate(FIND_LIMIT);
        Ok(out)
    }

    /// Organisations whose name contains `name` (case- and accent-insensitive); whole-name
    /// matches first.
    pub async fn find_organisations(&self, name: &str) -> Result<Vec<OrganisationMatch>> {
        let pattern = like_pattern(&search_key(name));
        let mut out: Vec<OrganisationMatch> = sqlx::query_as(
            "SELECT id, name, managing_agency_id, code FROM organisations \
             WHERE search_key LIKE $1 ESCAPE '!' ORDER BY name, id LIMIT 1000",
        )
        .bind(&pattern)
        .fetch_all(self.db.pool())
        .await?;
        for m in &mut out {
            m.exact = same_name(&m.name, name);
        }
        out.sort_by_key(|m| !m.exact);
        out.truncate(FIND_LIMIT);
        Ok(out)
    }

    /// The organisation with an organisation code (Decision 20/2020), if any.
    pub async fn find_organisation_by_code(&self, code: &str) -> Result<Vec<OrganisationMatch>> {
        let code = kyso_pki::orgcode::OrgCode::parse(code)
            .map_err(|e| crate::error::Error::field("code", e.to_string()))?
            .to_string();
        let mut out: Vec<OrganisationMatch> = sqlx::query_as(
            "SELECT id, name, managing_agency_id, code FROM organisations WHERE code = $1",
        )
        .bind(&code)
        .fetch_all(self.db.pool())
        .await?;
        for m in &mut out {
            m.exact = true;
        }
        Ok(out)
    }

    /// The organisation with a registry ID, if any (the document flow reads its name and
    /// code for an edXML envelope's `From`, N6).
    pub async fn find_organisation_by_id(&self, id: &str) -> Result<Vec<OrganisationMatch>> {
        let mut out: Vec<OrganisationMatch> = sqlx::query_as(
            "SELECT id, name, managing_agency_id, code FROM organisations WHERE id = $1",
        )
        .bind(id.trim())
        .fetch_all(self.db.pool())
        .await?;
        for m in &mut out {
            m.exact = true;
        }
        Ok(out)
    }
}
