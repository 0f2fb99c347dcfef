//! The holder's one-time-code credential through the running [`Hsm`]: a read-write session on
//! a slot of the personal key's group, for the few PKCS#11 calls of one authorisation (find
//! the seed, one `C_Sign` HMAC in the usual case, read and write the attempt counter). Not on
//! the signing path: a signature itself makes no extra HSM call.
//!
//! The slot is the first of the key's group that is up (the group's order in the config), so
//! that every replica reads and writes the same counter while that slot is up; tokens of an
//! HA group that replicate their objects (a network HSM cluster) share it in any case.

use std::sync::atomic::Ordering;

use cryptoki::session::Session;

use super::token::{KeySelector, p11};
use super::{Hsm, HsmError, lock};

impl Hsm {
    /// Runs `f` in a blocking task on a new read-write session (logged in through the slot's
    /// login session) of the first up slot of `key`'s group, with the key's selector.
    pub async fn with_credential<R, F>(&self, key: &str, f: F) -> Result<R, HsmError>
    where
        R: Send + 'static,
        F: FnOnce(&Session, &KeySelector) -> R + Send + 'static,
    {
        let inner = &self.inner;
        let (_, k) = inner.key(key)?;
        let picked = k.slots.iter().find_map(|&si| {
            let slot = &inner.slots[si];
            if !slot.up.load(Ordering::Acquire) {
                return None;
            }
            let st = lock(&slot.state);
            st.conn
                .as_ref()
                .map(|c| (si, c.ctx.clone(), c.slot, slot.name.clone()))
        });
        let Some((_si, ctx, slot_id, slot_name)) = picked else {
            return Err(HsmError::Unavailable {
                key: key.to_owned(),
                reason: inner.down_reason(k),
            });
        };
        let selector = k.selector.clone();
        tokio::task::spawn_blocking(move || {
            let session = ctx
                .open_rw_session(slot_id)
                .map_err(|e| p11(&slot_name, "C_OpenSession", &e))?;
            Ok(f(&session, &selector))
        })
        .await
        .map_err(|e| HsmError::Internal(format!("credential task: {e}")))?
    }
}
