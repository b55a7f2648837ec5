//! Interactive transactions over HTTP: a registry of open transactions with leases.
//!
//! `POST /v1/transactions` opens one and returns its id; requests carrying
//! `x-asterope-transaction: <id>` run inside it; `POST /v1/transactions/{id}/commit` commits and
//! `DELETE /v1/transactions/{id}` rolls back. A transaction unused for its lease is rolled back,
//! so a vanished client cannot pin a snapshot (and the space of its staged uploads) forever.
//!
//! An id is not a capability on its own: a transaction belongs to the credential that began it,
//! and to anyone else it does not exist (`not_found`, as an unknown id), so a read-only token
//! that learns an id can neither read the staged data nor keep the transaction alive. Each
//! credential may hold a bounded number of open transactions, and every transaction ends at its
//! maximum lifetime however often it is renewed: a busy client cannot pin a snapshot forever
//! either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asterope_core::{Error, Result, Transaction};
use sha2::{Digest, Sha256};

/// Who began a transaction: a digest of the credential presented, or everyone when the server
/// has no authentication (then there is nobody to tell apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Owner(Option<[u8; 32]>);

impl Owner {
    /// The owner a request speaks for: its credential (the `Authorization` value after the
    /// scheme) when authentication is on. Only the digest is kept, like the token list does.
    pub(crate) fn of(authenticated: bool, authorization: Option<&[u8]>) -> Owner {
        if !authenticated {
            return Owner(None);
        }
        let value = authorization.unwrap_or_default();
        let credential = match value.iter().position(|b| *b == b' ') {
            Some(space) => value.get(space + 1..).unwrap_or_default(),
            None => value,
        };
        Owner(Some(Sha256::digest(credential.trim_ascii()).into()))
    }
}

/// Limits of the transaction registry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// An open transaction unused for this long is rolled back.
    pub(crate) lease: Duration,
    /// A transaction ends this long after it began, however often it was renewed.
    pub(crate) max_lifetime: Duration,
    /// Open transactions one owner may hold.
    pub(crate) per_owner: usize,
}

/// One open transaction.
pub(crate) struct Entry {
    pub(crate) tx: tokio::sync::Mutex<Option<Box<dyn Transaction>>>,
    owner: Owner,
    /// The lease and lifetime both end no later than this.
    deadline: Instant,
    expires: Mutex<Instant>,
}

impl Entry {
    fn expires(&self) -> Instant {
        *self.expires.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").finish_non_exhaustive()
    }
}

/// Open transactions by id.
#[derive(Debug)]
pub(crate) struct Transactions {
    open: Mutex<HashMap<String, Arc<Entry>>>,
    limits: Limits,
}

impl Transactions {
    pub(crate) fn new(limits: Limits) -> Transactions {
        Transactions {
            open: Mutex::new(HashMap::new()),
            limits,
        }
    }

    pub(crate) fn lease(&self) -> Duration {
        self.limits.lease
    }

    pub(crate) fn max_lifetime(&self) -> Duration {
        self.limits.max_lifetime
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a transaction for `owner`; returns its id. An owner already holding its limit
    /// is refused with [`Error::TooManyTransactions`] (the refused transaction is dropped, which
    /// rolls it back).
    pub(crate) fn insert(&self, tx: Box<dyn Transaction>, owner: Owner) -> Result<String> {
        let now = Instant::now();
        let deadline = now + self.limits.max_lifetime;
        let id = uuid::Uuid::new_v4().to_string();
        let entry = Arc::new(Entry {
            tx: tokio::sync::Mutex::new(Some(tx)),
            owner,
            deadline,
            expires: Mutex::new((now + self.limits.lease).min(deadline)),
        });
        let mut open = self.map();
        let held = open
            .values()
            .filter(|e| e.owner == owner && e.deadline > now)
            .count();
        if held >= self.limits.per_owner {
            return Err(Error::TooManyTransactions {
                limit: u64::try_from(self.limits.per_owner).unwrap_or(u64::MAX),
            });
        }
        open.insert(id.clone(), entry);
        Ok(id)
    }

    /// Finds `owner`'s live transaction and renews its lease (never past its maximum lifetime).
    /// Another owner's transaction is reported unknown, exactly like an id never issued.
    pub(crate) fn get(&self, id: &str, owner: Owner) -> Result<Arc<Entry>> {
        let entry = self
            .map()
            .get(id)
            .filter(|e| e.owner == owner)
            .cloned()
            .ok_or_else(|| unknown(id))?;
        let now = Instant::now();
        if entry.deadline <= now {
            return Err(unknown(id));
        }
        *entry.expires.lock().unwrap_or_else(|e| e.into_inner()) =
            (now + self.limits.lease).min(entry.deadline);
        Ok(entry)
    }

    /// Removes `owner`'s transaction (commit or rollback).
    pub(crate) fn remove(&self, id: &str, owner: Owner) -> Result<Arc<Entry>> {
        let mut open = self.map();
        match open.get(id) {
            Some(entry) if entry.owner == owner && entry.deadline > Instant::now() => {
                open.remove(id).ok_or_else(|| unknown(id))
            }
            _ => Err(unknown(id)),
        }
    }

    /// Rolls back every transaction whose lease ran out, and every one past its maximum
    /// lifetime even if a request is using it (that request finishes on a transaction nobody
    /// can reach any more, which is dropped, so rolled back, when the request ends).
    pub(crate) fn reap(&self) {
        let now = Instant::now();
        self.map().retain(|_, entry| {
            // A transaction busy with a request right now is not idle.
            entry.deadline > now && (entry.expires() > now || entry.tx.try_lock().is_err())
        });
    }
}

fn unknown(id: &str) -> Error {
    Error::NotFound {
        key: format!("transaction {id}"),
    }
}
