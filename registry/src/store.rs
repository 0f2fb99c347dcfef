//! The registry over one database: the book (every change and lookup, book/) and the
//! authority decisions, `Authorize` and `CheckAuthority` (A1-A5, A7, V1, V3, N7), whose rules
//! live once in authority/rules.rs and read their facts from the in-memory index when it is
//! loaded, else from the database (authority/sql.rs, the reference the index is tested against).

use kyso_proto::registry::v1 as pb;

use crate::authority::{
    AuthorityCheck, AuthorizeQuery, CheckQuery, Decision, Index, SqlFacts, rules,
};
use crate::book::Book;
use crate::error::Result;
use crate::storage::Db;

/// The book and the decisions over the same database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    mail_domain: String,
    /// Where `Authorize` and `CheckAuthority` read their facts when loaded (authority/index);
    /// without it they read them from the database (authority/sql.rs).
    index: Option<std::sync::Arc<Index>>,
}

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
    /// authorization index, loaded now from the database.
    pub async fn with_index(self) -> Result<Self> {
        self.with_index_bounded(crate::authority::index::DEFAULT_STALENESS_BOUND)
            .await
    }

    /// [`Store::with_index`] with a staleness bound: past it without having caught up with
    /// the database, decisions and role lookups answer UNAVAILABLE.
    pub async fn with_index_bounded(mut self, bound: std::time::Duration) -> Result<Self> {
        let index = std::sync::Arc::new(Index::load_bounded(self.db.clone(), bound).await?);
        // Ends when the last clone of the store (and so the index) is dropped.
        tokio::spawn(Index::keep_fresh(std::sync::Arc::downgrade(&index)));
        self.index = Some(index);
        Ok(self)
    }

    /// The authorization index, when loaded.
    pub fn index(&self) -> Option<&Index> {
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

    /// The roles a client certificate holds at `now` (access/): from the index when loaded
    /// (a hash lookup), else from the database.
    pub async fn roles_of(&self, fingerprint: &str, now: i64) -> Result<crate::access::RoleSet> {
        if let Some(index) = &self.index {
            return index.roles_of(fingerprint, now).await;
        }
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT role FROM roles WHERE fingerprint = $1 AND revoked_at IS NULL \
             AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
        )
        .bind(fingerprint)
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .filter_map(|(r,)| crate::access::Role::parse(r))
            .fold(crate::access::RoleSet::default(), |s, r| s.with(r)))
    }

    /// Decides whether a signature may be made; collects every failed rule rather than
    /// stopping at the first, so the caller can fix everything at once.
    pub async fn authorize(&self, req: &pb::AuthorizeRequest, now: i64) -> Result<Decision> {
        let q = AuthorizeQuery::parse(req, now)?;
        match &self.index {
            Some(index) => index.authorize(&q).await,
            None => rules::authorize(&SqlFacts::new(&self.db), &q).await,
        }
    }

    /// `CheckAuthority`, for the verifier: as [`Store::authorize`].
    pub async fn check_authority(
        &self,
        req: &pb::CheckAuthorityRequest,
        now: i64,
    ) -> Result<AuthorityCheck> {
        let q = CheckQuery::parse(req, now)?;
        match &self.index {
            Some(index) => index.check_authority(&q).await,
            None => rules::check_authority(&SqlFacts::new(&self.db), &q).await,
        }
    }

    /// `CheckSeal` (issue 13): may the seal be applied as SCANNED_ISSUE, COPY or APPENDIX
    /// (D2, D3, A3, A6, P3, D5)? Read from the database (seal.rs).
    pub async fn check_seal(
        &self,
        req: &pb::CheckSealRequest,
        now: i64,
    ) -> Result<crate::seal::SealCheck> {
        let q = crate::seal::SealQuery::parse(req, now)?;
        crate::seal::check_seal(&self.db, &self.book(), &q).await
    }
}
