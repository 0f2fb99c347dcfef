//! The health of keys and slots: which slots of a key's group are up, and for a down slot why,
//! since when, and whether it is still retried. What `ListKeys`, the metrics and the readiness
//! probe report.

use std::sync::atomic::Ordering;

use super::{Hsm, Inner, KeyRt, lock};

/// The health of one key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyHealth {
    /// The key.
    pub key: String,
    /// At least one slot is up.
    pub servable: bool,
    /// The slots of its group.
    pub slots: Vec<SlotHealth>,
}

/// The health of one slot.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SlotHealth {
    /// The slot.
    pub slot: String,
    /// Connected, logged in, keys found.
    pub up: bool,
    /// Requests waiting for or holding a session.
    pub in_flight: usize,
    /// Pool size.
    pub sessions: usize,
    /// The last error (why it is down).
    pub last_error: Option<String>,
    /// How long it has been down.
    pub down_for_ms: Option<u64>,
    /// Failed reconnection attempts since it went down.
    pub reconnect_failures: u32,
    /// No more automatic retries (wrong or locked PIN).
    pub retries_stopped: bool,
    /// Times the slot went down since start.
    pub outages: u64,
}

impl Hsm {
    /// Per key: its slots, up or down, and why.
    pub fn health(&self) -> Vec<KeyHealth> {
        self.inner
            .keys
            .iter()
            .map(|k| {
                let slots: Vec<SlotHealth> = k
                    .slots
                    .iter()
                    .map(|&si| self.inner.slot_health(si))
                    .collect();
                KeyHealth {
                    key: k.name.clone(),
                    servable: slots.iter().any(|s| s.up),
                    slots,
                }
            })
            .collect()
    }

    /// Every slot's health.
    pub fn slot_health(&self) -> Vec<SlotHealth> {
        (0..self.inner.slots.len())
            .map(|si| self.inner.slot_health(si))
            .collect()
    }

    /// Whether some slot holding `key` is up.
    pub fn key_servable(&self, key: &str) -> bool {
        self.inner
            .key_index
            .get(key)
            .is_some_and(|&ki| self.inner.key_servable(&self.inner.keys[ki]))
    }
}

impl Inner {
    pub(super) fn key_servable(&self, k: &KeyRt) -> bool {
        k.slots
            .iter()
            .any(|&si| self.slots[si].up.load(Ordering::Acquire))
    }

    pub(super) fn down_reason(&self, k: &KeyRt) -> String {
        let parts: Vec<String> = k
            .slots
            .iter()
            .map(|&si| {
                let st = lock(&self.slots[si].state);
                format!(
                    "slot {:?}: {}",
                    self.slots[si].name,
                    st.last_error.as_deref().unwrap_or("busy")
                )
            })
            .collect();
        parts.join("; ")
    }

    fn slot_health(&self, si: usize) -> SlotHealth {
        let slot = &self.slots[si];
        let st = lock(&slot.state);
        let up = st.conn.is_some();
        SlotHealth {
            slot: slot.name.clone(),
            up,
            in_flight: slot.in_flight.load(Ordering::Relaxed),
            sessions: slot.sessions,
            last_error: if up { None } else { st.last_error.clone() },
            down_for_ms: st
                .down_since
                .filter(|_| !up)
                .map(|t| t.elapsed().as_millis() as u64),
            reconnect_failures: st.backoff.failures(),
            retries_stopped: st.retries_stopped,
            outages: st.outages,
        }
    }
}
