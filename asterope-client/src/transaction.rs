//! Transactions over the network: a [`ClientTransaction`] is a client whose requests carry the
//! transaction's id; commit and rollback address the transaction by path.

use asterope_core::{
    ByteStream, Condition, GetOptions, GetResult, Key, ListOptions, ListPage, Metadata, ObjectInfo,
    ObjectOps, PutOptions, Query, QueryPage, QueryPlan, Result, Transaction,
};
use asterope_serialization::wire::paths::{commit_path, transaction_path};
use asterope_serialization::wire::CommitReply;
use http::Method;

use crate::client::Client;

/// A transaction held open on the server, addressed by id. Dropping it without committing
/// rolls it back (asynchronously; the server's lease is the backstop).
#[derive(Debug)]
pub(crate) struct ClientTransaction {
    /// Sends its requests inside the transaction.
    client: Client,
    /// Sends commit and rollback (outside it: they address the transaction by path).
    plain: Client,
    id: String,
    snapshot: u64,
    finished: bool,
}

impl ClientTransaction {
    pub(crate) fn new(plain: &Client, id: String, snapshot: u64) -> ClientTransaction {
        ClientTransaction {
            client: plain.inside(&id),
            plain: plain.clone(),
            id,
            snapshot,
            finished: false,
        }
    }
}

/// The transaction's operations are the client's, sent with the transaction's header.
#[async_trait::async_trait]
impl ObjectOps for ClientTransaction {
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.client.get(key, options).await
    }
    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        self.client.head(key).await
    }
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        self.client.put(key, body, options).await
    }
    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        self.client.update_metadata(key, metadata, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        self.client.delete(key, condition).await
    }
    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        self.client.list(options).await
    }
    async fn query(&self, query: &Query) -> Result<QueryPage> {
        self.client.query(query).await
    }
    async fn count(&self, query: &Query) -> Result<u64> {
        self.client.count(query).await
    }
    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        self.client.explain(query).await
    }
}

#[async_trait::async_trait]
impl Transaction for ClientTransaction {
    fn snapshot_version(&self) -> u64 {
        self.snapshot
    }
    async fn commit(mut self: Box<Self>) -> Result<u64> {
        self.finished = true;
        let path = commit_path(&self.id);
        let reply: CommitReply = self.plain.call_json(Method::POST, &path, "commit").await?;
        Ok(reply.version)
    }
    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.finished = true;
        let path = transaction_path(&self.id);
        self.plain.call_empty(Method::DELETE, &path).await
    }
}

impl Drop for ClientTransaction {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let plain = self.plain.clone();
        let path = transaction_path(&self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = plain.call_empty(Method::DELETE, &path).await;
            });
        }
    }
}
