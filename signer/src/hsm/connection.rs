//! A slot's connection: the module's context, one long-lived logged-in session (it keeps the
//! login and the key handles valid), each key found and checked against its certificate's
//! public key (the key binding: a mismatch is a loud error naming key and slot), and the pool
//! of idle signing sessions, returned or disposed of (a session of a finalised module is
//! forgotten, not closed: its handle may be reused).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use cryptoki::context::Pkcs11;
use cryptoki::session::Session;

use super::policy::{FailureKind, classify};
use super::token::{check_key_matches, find_private_key, find_slot, load_module, login, p11};
use super::{Conn, HsmError, Inner, lock};

impl Inner {
    /// Connects slot `si` with its module's current context.
    pub(super) fn try_connect(&self, si: usize) -> Result<(), HsmError> {
        let slot = &self.slots[si];
        let module = &self.modules[slot.module];
        let (ctx, generation) = {
            let guard = lock(&module.ctx);
            (guard.clone(), module.generation.load(Ordering::Acquire))
        };
        let Some(ctx) = ctx else {
            return Err(HsmError::Module {
                module: module.name.clone(),
                path: module.path.clone(),
                reason: "not initialised".to_owned(),
            });
        };
        let conn = self.connect(si, ctx, generation)?;
        {
            let mut st = lock(&slot.state);
            st.conn = Some(conn);
            st.epoch += 1;
            st.last_error = None;
            st.down_since = None;
            st.backoff.reset();
            slot.up.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn connect(&self, si: usize, ctx: Pkcs11, generation: u64) -> Result<Conn, HsmError> {
        let slot = &self.slots[si];
        let slot_id = find_slot(&ctx, &slot.name, &slot.token_label)?;
        let session = ctx
            .open_ro_session(slot_id)
            .map_err(|e| p11(&slot.name, "C_OpenSession", &e))?;
        login(&session, &slot.pin, &slot.name)?;
        let mut handles = HashMap::new();
        for &ki in &slot.keys {
            let k = &self.keys[ki];
            let h = find_private_key(&session, &k.selector, &k.name, &slot.name)?;
            check_key_matches(&session, h, k.kind, &k.spki).map_err(|reason| {
                HsmError::KeyMismatch {
                    key: k.name.clone(),
                    slot: slot.name.clone(),
                    reason,
                }
            })?;
            handles.insert(ki, h);
        }
        tracing::info!(slot = %slot.name, token = %slot.token_label, keys = handles.len(), "HSM slot up");
        Ok(Conn {
            ctx,
            module_generation: generation,
            slot: slot_id,
            login: session,
            idle: Vec::new(),
            handles,
        })
    }

    /// Finalises the module and initialises it again (a new client instance for p11-kit).
    pub(super) fn reinit_module(&self, mi: usize) -> Result<(), HsmError> {
        let module = &self.modules[mi];
        let mut guard = lock(&module.ctx);
        module.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(old) = guard.take()
            && let Err(e) = old.finalize()
        {
            tracing::debug!(module = %module.name, error = %e, "C_Finalize of a failed module");
        }
        let ctx = load_module(&module.name, &module.path)?;
        *guard = Some(ctx);
        tracing::info!(module = %module.name, "PKCS#11 module initialised again");
        Ok(())
    }

    /// Puts a session back in its slot's pool, or disposes of it if the slot reconnected since.
    pub(super) fn return_session(&self, si: usize, epoch: u64, generation: u64, session: Session) {
        let slot = &self.slots[si];
        let leftover = {
            let mut st = lock(&slot.state);
            let current = st.epoch == epoch;
            match st.conn.as_mut() {
                Some(conn) if current => {
                    conn.idle.push(session);
                    None
                }
                _ => Some(session),
            }
        };
        if let Some(s) = leftover {
            self.dispose_session(slot.module, generation, s);
        }
    }

    /// Closes a session, unless its module was finalised since it was opened: then its handle
    /// may belong to a new session, and it is forgotten instead.
    fn dispose_session(&self, module: usize, generation: u64, session: Session) {
        if self.modules[module].generation.load(Ordering::Acquire) == generation {
            drop(session);
        } else {
            std::mem::forget(session);
        }
    }

    pub(super) fn dispose_conn(&self, module: usize, conn: Conn) {
        let Conn {
            login,
            idle,
            module_generation,
            ..
        } = conn;
        // When the device or the connection is gone, closing would only fail (noisily): the
        // sessions died with it.
        let gone = match login.get_session_info() {
            Ok(_) => false,
            Err(e) => classify(&e) == FailureKind::Device,
        };
        if gone {
            for s in idle {
                std::mem::forget(s);
            }
            std::mem::forget(login);
            return;
        }
        for s in idle {
            self.dispose_session(module, module_generation, s);
        }
        // The login session last: closing it logs the token out.
        self.dispose_session(module, module_generation, login);
    }
}
