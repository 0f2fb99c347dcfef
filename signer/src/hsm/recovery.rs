//! Slots going down and coming back: a device error marks the slot down and wakes the recovery
//! thread, which retries it with exponential backoff (finalising and initialising the module
//! again when all its slots are down, which p11-kit's client needs after its server came back)
//! and stops retrying on a wrong or locked PIN; and the shutdown that stops it all.

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Inner, lock};

impl Inner {
    /// Marks the slot down (if it is still at `epoch`) and wakes the recovery thread.
    pub(super) fn mark_down(&self, si: usize, epoch: u64, reason: &str) {
        let slot = &self.slots[si];
        {
            let mut st = lock(&slot.state);
            if st.epoch != epoch || st.conn.is_none() {
                return;
            }
            let conn = st.conn.take();
            st.dead = conn;
            st.epoch += 1;
            st.last_error = Some(reason.to_owned());
            st.down_since = Some(Instant::now());
            st.outages += 1;
            st.backoff.reset();
            st.next_attempt = Instant::now();
            slot.up.store(false, Ordering::Release);
        }
        tracing::error!(slot = %slot.name, error = %reason, "HSM slot down; failing over and retrying in the background");
        self.wake.notify_all();
    }

    /// One recovery attempt of a down slot.
    fn recover(&self, si: usize) {
        let slot = &self.slots[si];
        let dead = lock(&slot.state).dead.take();
        if let Some(conn) = dead {
            self.dispose_conn(slot.module, conn);
        }
        let mut result = self.try_connect(si);
        if result.is_err() {
            let module_down = self
                .slots
                .iter()
                .filter(|s| s.module == slot.module)
                .all(|s| !s.up.load(Ordering::Acquire));
            if module_down {
                result = self
                    .reinit_module(slot.module)
                    .and_then(|()| self.try_connect(si));
            }
        }
        match result {
            Ok(()) => {
                tracing::warn!(slot = %slot.name, "HSM slot recovered");
            }
            Err(e) => {
                let mut st = lock(&slot.state);
                let delay = st.backoff.next_delay();
                st.next_attempt = Instant::now() + delay;
                st.last_error = Some(e.to_string());
                if e.stops_retries() {
                    st.retries_stopped = true;
                    tracing::error!(slot = %slot.name, error = %e, "HSM slot: no more retries (fix the PIN and restart)");
                } else {
                    tracing::warn!(slot = %slot.name, error = %e, retry_in_ms = delay.as_millis() as u64, "HSM slot still down");
                }
            }
        }
    }

    pub(super) fn recovery_loop(&self) {
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            let mut next: Option<Instant> = None;
            for (si, slot) in self.slots.iter().enumerate() {
                if slot.up.load(Ordering::Acquire) {
                    continue;
                }
                let st = lock(&slot.state);
                if st.retries_stopped || st.conn.is_some() {
                    continue;
                }
                if st.next_attempt <= now {
                    due.push(si);
                } else {
                    next = Some(next.map_or(st.next_attempt, |n| n.min(st.next_attempt)));
                }
            }
            if !due.is_empty() {
                for si in due {
                    if *lock(&self.shutdown) {
                        return;
                    }
                    self.recover(si);
                }
                // The attempts moved the deadlines: look again.
                continue;
            }
            let guard = lock(&self.shutdown);
            if *guard {
                return;
            }
            let wait = next
                .map(|n| n.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            let (guard, _) = self
                .wake
                .wait_timeout(guard, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *guard {
                return;
            }
        }
    }

    pub(super) fn close(&self, recovery: Option<JoinHandle<()>>) {
        {
            let mut guard = lock(&self.shutdown);
            if *guard && recovery.is_none() {
                return;
            }
            *guard = true;
        }
        self.wake.notify_all();
        if let Some(h) = recovery {
            let _ = h.join();
        }
        for slot in &self.slots {
            slot.permits.close();
            slot.up.store(false, Ordering::Release);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.active_calls.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let idle = self.active_calls.load(Ordering::Acquire) == 0;
        for slot in &self.slots {
            let (conn, dead) = {
                let mut st = lock(&slot.state);
                st.epoch += 1;
                st.last_error = Some("shut down".to_owned());
                (st.conn.take(), st.dead.take())
            };
            for c in [conn, dead].into_iter().flatten() {
                self.dispose_conn(slot.module, c);
            }
        }
        if idle {
            for m in &self.modules {
                m.generation.fetch_add(1, Ordering::AcqRel);
                if let Some(ctx) = lock(&m.ctx).take() {
                    let _ = ctx.finalize();
                }
            }
        }
    }
}
