//! Interactive transactions over HTTP: a registry of open transactions with leases, and the
//! operations a request runs either directly on the database or inside a transaction.
//!
//! `POST /v1/transactions` opens one and returns its id; requests carrying
//! `x-asterope-transaction: <id>` run inside it; `POST /v1/transactions/{id}/commit` commits and
//! `DELETE /v1/transactions/{id}` rolls back. A transaction unused for its lease is rolled back,
//! so a vanished client cannot pin a snapshot (and the space of its staged uploads) forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asterope_core::{
    ByteStream, Condition, Error, GetOptions, GetResult, Key, ListOptions, ListPage, Metadata,
    ObjectInfo, PutOptions, Query, QueryPage, QueryPlan, Result, Store, Transaction,
};
use asterope_storage::Database;

/// One open transaction.
pub(crate) struct Entry {
    pub(crate) tx: tokio::sync::Mutex<Option<Box<dyn Transaction>>>,
    expires: Mutex<Instant>,
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
    lease: Duration,
}

impl Transactions {
    pub(crate) fn new(lease: Duration) -> Transactions {
        Transactions {
            open: Mutex::new(HashMap::new()),
            lease,
        }
    }

    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a transaction; returns its id.
    pub(crate) fn insert(&self, tx: Box<dyn Transaction>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let entry = Arc::new(Entry {
            tx: tokio::sync::Mutex::new(Some(tx)),
            expires: Mutex::new(Instant::now() + self.lease),
        });
        self.map().insert(id.clone(), entry);
        id
    }

    /// Finds a transaction and renews its lease.
    pub(crate) fn get(&self, id: &str) -> Result<Arc<Entry>> {
        let entry = self.map().get(id).cloned().ok_or_else(|| unknown(id))?;
        *entry.expires.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + self.lease;
        Ok(entry)
    }

    /// Removes a transaction (commit or rollback).
    pub(crate) fn remove(&self, id: &str) -> Result<Arc<Entry>> {
        self.map().remove(id).ok_or_else(|| unknown(id))
    }

    /// Rolls back every transaction whose lease ran out.
    pub(crate) fn reap(&self) {
        let now = Instant::now();
        self.map().retain(|_, entry| {
            let expires = *entry.expires.lock().unwrap_or_else(|e| e.into_inner());
            // A transaction busy with a request right now is not idle.
            expires > now || entry.tx.try_lock().is_err()
        });
    }
}

fn unknown(id: &str) -> Error {
    Error::NotFound {
        key: format!("transaction {id}"),
    }
}

/// What a request does to objects, directly or inside a transaction.
#[async_trait::async_trait]
pub(crate) trait Ops: Send + Sync {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo>;
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult>;
    async fn head(&self, key: &Key) -> Result<ObjectInfo>;
    async fn delete(&self, key: &Key, condition: Condition) -> Result<()>;
    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo>;
    async fn list(&self, options: ListOptions) -> Result<ListPage>;
    async fn query(&self, query: &Query) -> Result<QueryPage>;
    async fn count(&self, query: &Query) -> Result<u64>;
    async fn explain(&self, query: &Query) -> Result<QueryPlan>;
}

#[async_trait::async_trait]
impl Ops for Database {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        Store::put(self, key, body, options).await
    }
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        Store::get(self, key, options).await
    }
    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        Store::head(self, key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        Store::delete(self, key, condition).await
    }
    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        Store::update_metadata(self, key, metadata, condition).await
    }
    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        Store::list(self, options).await
    }
    async fn query(&self, query: &Query) -> Result<QueryPage> {
        Store::query(self, query).await
    }
    async fn count(&self, query: &Query) -> Result<u64> {
        Store::count(self, query).await
    }
    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        Store::explain(self, query).await
    }
}

/// Inside a transaction, writes are staged: their replies describe the staged state (version 0).
#[async_trait::async_trait]
impl Ops for Box<dyn Transaction> {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        Transaction::put(self.as_ref(), key, body, options).await?;
        Transaction::head(self.as_ref(), key).await
    }
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        Transaction::get(self.as_ref(), key, options).await
    }
    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        Transaction::head(self.as_ref(), key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        Transaction::delete(self.as_ref(), key, condition).await
    }
    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        Transaction::update_metadata(self.as_ref(), key, metadata, condition).await?;
        Transaction::head(self.as_ref(), key).await
    }
    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        Transaction::list(self.as_ref(), options).await
    }
    async fn query(&self, query: &Query) -> Result<QueryPage> {
        Transaction::query(self.as_ref(), query).await
    }
    async fn count(&self, query: &Query) -> Result<u64> {
        Transaction::count(self.as_ref(), query).await
    }
    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        Transaction::explain(self.as_ref(), query).await
    }
}
