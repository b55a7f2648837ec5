//! The [`Store`] operations of a [`Database`]: each one a read at a fresh snapshot, or one
//! commit.
//!
//! Invariants kept here:
//! - Every operation reads at one snapshot, taken when it starts: it never sees part of a
//!   commit.
//! - Every write is one commit ([`crate::commit`]): a single key's put, metadata update or
//!   delete is atomic and durable when it returns.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use asterope_core::{
    ByteStream, CompactionReport, Condition, Error, GetOptions, GetResult, IndexInfo, Key,
    ListOptions, ListPage, Metadata, ObjectInfo, ObjectOps, PutOptions, Query, QueryPage,
    QueryPlan, Result, Store, StoreStats, Transaction,
};
use asterope_serialization::validate_metadata;

use crate::commit::{commit, Intent, Write};
use crate::database::Database;
use crate::mvcc::{decode_version_footprint, read_at};
use crate::objects::{get_at, list_page, list_query, with_query, write_put};
use crate::txn::DbTransaction;

/// Commits one intent; the object written.
async fn commit_one(db: &Database, key: &Key, intent: Intent) -> Result<ObjectInfo> {
    let mut intents = BTreeMap::new();
    intents.insert(key.clone(), intent);
    let (_, mut infos) = commit(&db.engine, None, intents).await?;
    infos.pop().ok_or_else(|| Error::NotFound {
        key: key.to_string(),
    })
}

#[async_trait::async_trait]
impl ObjectOps for Database {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        validate_metadata(&options.metadata)?;
        // Refuse early what would be refused at commit, before the body is consumed.
        if options.condition.if_version.is_some() {
            let snapshot = self.engine.snapshot();
            let current =
                read_at(&self.engine.meta, key, snapshot.version)?.map_or(0, |r| r.version);
            options.condition.check(key, current)?;
        }
        let condition = options.condition;
        let write = write_put(&self.engine, body, &options).await?;
        commit_one(self, key, Intent { write, condition }).await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let snapshot = self.engine.snapshot();
        let record = read_at(&self.engine.meta, key, snapshot.version)?;
        get_at(&self.engine, key, record, None, options)
    }

    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let snapshot = self.engine.snapshot();
        let record =
            read_at(&self.engine.meta, key, snapshot.version)?.ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })?;
        Ok(record.info(key.clone()))
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        let intent = Intent {
            write: Write::Delete,
            condition,
        };
        let mut intents = BTreeMap::new();
        intents.insert(key.clone(), intent);
        commit(&self.engine, None, intents).await.map(drop)
    }

    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        validate_metadata(&metadata)?;
        let intent = Intent {
            write: Write::Metadata(metadata),
            condition,
        };
        commit_one(self, key, intent).await
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let query = list_query(&options)?;
        let snapshot = self.engine.snapshot();
        let page = with_query(&self.engine, snapshot.version, None, |q| {
            list_page(q, &query)
        })?;
        Ok(page.into_list_page())
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let snapshot = self.engine.snapshot();
        let page = with_query(&self.engine, snapshot.version, None, |q| q.page(query))?;
        Ok(page.into_query_page())
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let snapshot = self.engine.snapshot();
        with_query(&self.engine, snapshot.version, None, |q| q.count(query))
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        let snapshot = self.engine.snapshot();
        with_query(&self.engine, snapshot.version, None, |q| {
            Ok(q.explain(query))
        })
    }
}

#[async_trait::async_trait]
impl Store for Database {
    async fn create_index(&self, field: &str) -> Result<IndexInfo> {
        crate::index_catalog::create_index(&self.engine, field)
    }

    async fn drop_index(&self, field: &str) -> Result<()> {
        crate::index_catalog::drop_index(&self.engine, field)
    }

    async fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        Ok(self
            .engine
            .indexes()
            .iter()
            .map(|(field, index)| crate::index_catalog::index_info(field, index))
            .collect())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(DbTransaction::new(Arc::clone(&self.engine))))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let engine = Arc::clone(&self.engine);
        let snapshot = self.engine.snapshot();
        let (objects, logical_bytes, distinct_bytes) = tokio::task::spawn_blocking(move || {
            let (mut objects, mut logical, mut distinct) = (0u64, 0u64, 0u64);
            let mut seen = HashSet::new();
            let versions = crate::mvcc::scan_at(&engine.meta, Bound::Unbounded, snapshot.version);
            for item in versions {
                let (key, _, encoded) = item?;
                let Some(footprint) = decode_version_footprint(key.as_bytes(), &encoded)? else {
                    continue;
                };
                objects += 1;
                logical += footprint.size;
                if footprint.blob.is_some_and(|blob| seen.insert(blob)) {
                    distinct += footprint.size;
                }
            }
            Ok::<_, Error>((objects, logical, distinct))
        })
        .await
        .map_err(|e| Error::internal(format!("stats task failed: {e}")))??;
        let space = self.space_stats();
        Ok(StoreStats {
            objects,
            logical_bytes,
            physical_bytes: space.extent_bytes - space.free_bytes,
            free_bytes: space.free_bytes,
            disk_bytes: self.engine.space.disk_bytes()?,
            dedup_saved_bytes: logical_bytes.saturating_sub(distinct_bytes),
            extents: space.extents as u64,
            garbage_bytes: space.pending_reclaim_bytes,
        })
    }

    async fn compact(&self) -> Result<CompactionReport> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || crate::compact::compact(&engine, u64::MAX))
            .await
            .map_err(|e| Error::internal(format!("compaction task failed: {e}")))?
    }
}
