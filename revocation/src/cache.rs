//! Bounded, coalescing caches of revocation answers, judged against `now`.
//!
//! Each key (an OCSP CertID, a CRL URL) holds a [`Slot`]: the last usable
//! answer, when to fetch again, and the failure of the last attempt if it
//! failed. Fetches go through moka's `entry().or_insert_with_if`, the same
//! coalescing machinery as `try_get_with`: however many requests find a key
//! missing or due for refresh at once, one runs the fetch and the others
//! wait for its result. `or_try_insert_with` alone would not do: it only
//! coalesces on *absent* keys, while an expired answer must stay in place
//! (to be served stale inside the grace) until its replacement is known; and
//! errors are stored in the slot rather than returned, so that a failure is
//! shared by the whole burst instead of being retried by each waiter.
//!
//! Freshness is never read from the clock: every decision compares the
//! caller's `now` with the times in the answer. moka's own (wall clock)
//! expiry only reclaims memory once an answer is useless even as stale.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use crate::metrics::PkiMetrics;
use kyso_pki::time::{OffsetDateTime, rfc3339};

/// What the cache needs to know of a cached answer.
pub(crate) trait Answer: Send + Sync + 'static {
    /// The source's nextUpdate, if it gives one.
    fn next_update(&self) -> Option<OffsetDateTime>;
    /// Approximate memory footprint in bytes.
    fn weight(&self) -> usize;
}

/// Lifetimes applied to answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub max_ttl: time::Duration,
    pub min_ttl: time::Duration,
    pub stale_grace: time::Duration,
    pub negative_ttl: time::Duration,
}

/// An answer as fetched.
#[derive(Debug)]
pub(crate) struct Fetched<T> {
    pub value: Arc<T>,
    /// Sequence number of the fetch that produced it.
    seq: u64,
    /// nextUpdate; without one (OCSP allows it), `min_ttl` after the fetch.
    pub valid_until: OffsetDateTime,
}

/// The state of one key.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    /// The last usable answer, kept through failed refreshes for the grace.
    data: Option<Fetched<T>>,
    /// Why the attempt that produced this slot failed, if it did.
    failure: Option<String>,
    /// Fetch again from this `now` on.
    refresh_at: OffsetDateTime,
    /// Wall-clock time moka keeps the slot.
    retain: Duration,
}

impl<T: Answer> Slot<T> {
    fn fetched(value: T, seq: u64, now: OffsetDateTime, timing: &Timing) -> Self {
        let value = Arc::new(value);
        let valid_until = value.next_update().unwrap_or(now + timing.min_ttl);
        // Refetch at nextUpdate, but no later than max_ttl (a CRL published
        // weekly still gets refreshed hourly) and no sooner than min_ttl (a CA
        // that publishes late is not asked again on every request).
        let refresh_at = valid_until
            .min(now + timing.max_ttl)
            .max(now + timing.min_ttl);
        let keep_until = (valid_until + timing.stale_grace).max(refresh_at);
        Self {
            retain: to_std(keep_until - now),
            data: Some(Fetched {
                value,
                seq,
                valid_until,
            }),
            failure: None,
            refresh_at,
        }
    }

    fn failed(
        previous: Option<&Self>,
        failure: String,
        now: OffsetDateTime,
        timing: &Timing,
    ) -> Self {
        let data = previous.and_then(|p| {
            p.data.as_ref().map(|d| Fetched {
                value: Arc::clone(&d.value),
                seq: d.seq,
                valid_until: d.valid_until,
            })
        });
        let refresh_at = now + timing.negative_ttl;
        let keep_until = data.as_ref().map_or(refresh_at, |d| {
            (d.valid_until + timing.stale_grace).max(refresh_at)
        });
        Self {
            retain: to_std(keep_until - now),
            data,
            failure: Some(failure),
            refresh_at,
        }
    }

    /// Approximate footprint, for the byte-bounded cache.
    pub(crate) fn weight(&self) -> u32 {
        let w = 128 + self.data.as_ref().map_or(0, |d| d.value.weight());
        u32::try_from(w).unwrap_or(u32::MAX)
    }
}

fn to_std(d: time::Duration) -> Duration {
    // moka rejects nothing, but a zero lifetime would drop an answer that is
    // still due to be judged by a caller waiting on it.
    Duration::try_from(d)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

/// moka expiry: each slot carries its own lifetime.
pub(crate) struct SlotExpiry;

impl<K, T> Expiry<K, Arc<Slot<T>>> for SlotExpiry {
    fn expire_after_create(&self, _: &K, v: &Arc<Slot<T>>, _: Instant) -> Option<Duration> {
        Some(v.retain)
    }

    fn expire_after_update(
        &self,
        _: &K,
        v: &Arc<Slot<T>>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.retain)
    }
}

/// An answer as served to one request.
#[derive(Debug)]
pub(crate) struct Served<T> {
    pub value: Arc<T>,
    /// Found in the cache rather than fetched during this request.
    pub from_cache: bool,
    /// Past its nextUpdate, inside the grace.
    pub stale: bool,
    /// Why a refresh failed, when an older answer is served instead.
    pub note: Option<String>,
}

/// One cache (OCSP or CRL) with its coalescing and its metrics.
pub(crate) struct SlotCache<K, T> {
    label: &'static str,
    cache: Cache<K, Arc<Slot<T>>>,
    seq: AtomicU64,
    timing: Timing,
    metrics: PkiMetrics,
}

impl<K, T> std::fmt::Debug for SlotCache<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotCache")
            .field("label", &self.label)
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl<K, T> SlotCache<K, T>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Answer,
{
    /// `cache` must have been built with [`SlotExpiry`].
    pub(crate) fn new(
        label: &'static str,
        cache: Cache<K, Arc<Slot<T>>>,
        timing: Timing,
        metrics: PkiMetrics,
    ) -> Self {
        Self {
            label,
            cache,
            seq: AtomicU64::new(0),
            timing,
            metrics,
        }
    }

    /// The answer for `key` at `now`, fetched by `fetch` when the cached one
    /// is missing or due for refresh. At most one `fetch` per key runs at a
    /// time; concurrent callers share its result, success or failure.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: K,
        now: OffsetDateTime,
        fetch: F,
    ) -> Result<Served<T>, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        // Answers fetched after this point were fetched for this request
        // (by it or by the request it waited on).
        let started = self.seq.load(Ordering::SeqCst);
        let init = async {
            let previous = self.cache.get(&key).await;
            let fetched = fetch().await;
            // Numbered at completion: requests that started before it (and
            // waited on it) see an answer fetched for them, not a cached one.
            let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            let slot = match fetched {
                Ok(v) => Slot::fetched(v, seq, now, &self.timing),
                Err(e) => Slot::failed(previous.as_deref(), e, now, &self.timing),
            };
            Arc::new(slot)
        };
        let slot = self
            .cache
            .entry(key.clone())
            .or_insert_with_if(init, |slot| now >= slot.refresh_at)
            .await
            .into_value();
        self.metrics
            .cache_entries
            .with_label_values(&[self.label])
            .set(i64::try_from(self.cache.entry_count()).unwrap_or(i64::MAX));
        let served = self.judge(&slot, now, started);
        let result = match &served {
            Ok(s) if s.stale => "stale",
            Ok(s) if s.from_cache => "hit",
            _ => "miss",
        };
        self.metrics
            .cache_requests
            .with_label_values(&[self.label, result])
            .inc();
        served
    }

    fn judge(
        &self,
        slot: &Slot<T>,
        now: OffsetDateTime,
        started: u64,
    ) -> Result<Served<T>, String> {
        let Some(d) = &slot.data else {
            return Err(slot
                .failure
                .clone()
                .unwrap_or_else(|| "no answer".to_owned()));
        };
        let note = slot
            .failure
            .as_ref()
            .map(|e| format!("refresh failed: {e}"));
        let served = |stale| Served {
            value: Arc::clone(&d.value),
            from_cache: d.seq <= started,
            stale,
            note: note.clone(),
        };
        if now < d.valid_until {
            return Ok(served(false));
        }
        if now - d.valid_until <= self.timing.stale_grace && self.timing.stale_grace.is_positive() {
            return Ok(served(true));
        }
        let expired = format!(
            "the answer expired at {} (nextUpdate) and no newer one is available",
            rfc3339(d.valid_until)
        );
        Err(match &slot.failure {
            Some(e) => format!("{e}; {expired}"),
            None => expired,
        })
    }

    /// Entries held (approximate: moka counts lazily).
    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Sum of the weights held (bytes for the CRL cache, entries for OCSP).
    pub(crate) fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Applies moka's pending inserts and evictions to the counts.
    pub(crate) async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// Drops every entry.
    pub(crate) fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// The metric label of this cache.
    pub(crate) fn label(&self) -> &'static str {
        self.label
    }
}
