//! "Now", passed in: the services read the time only through a [`Clock`], so tests can
//! run a service at any date.

use std::sync::Arc;

use time::OffsetDateTime;

/// The time source of a service.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The clock of production: the system time.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}
