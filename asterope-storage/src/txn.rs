//! Interactive transactions with snapshot isolation.
//!
//! A transaction reads at the snapshot taken when it began, overlaid with its own staged writes.
//! Staged blob bytes are written to reserved space at once (so a large upload inside a
//! transaction streams like any other) but stay invisible until commit; rollback or drop
//! retires the space (free once no reader still streams the staged bytes). Commit applies every write under one commit version, atomically, after checking
//! that no written key has a version newer than the snapshot (first committer wins).

use std::collections::BTreeMap;
use std::sync::Arc;

use asterope_core::{
    ByteStream, Condition, Error, GetOptions, GetResult, Key, ListOptions, ListPage, Metadata,
    ObjectInfo, ObjectOps, PutOptions, Query, QueryPage, QueryPlan, Result, Timestamp, Transaction,
};
use asterope_serialization::validate_metadata;

use crate::blob::BlobLayout;
use crate::commit::{commit, Intent, Write};
use crate::engine::Engine;
use crate::mvcc::{read_at, Snapshot};
use crate::objects::{get_at, list_page, list_query, with_query, write_put};
use crate::query::Overlay;
use crate::record::ObjectRecord;

/// A transaction of the embedded database.
#[derive(Debug)]
pub(crate) struct DbTransaction {
    engine: Arc<Engine>,
    snapshot: Snapshot,
    staged: tokio::sync::Mutex<BTreeMap<Key, Intent>>,
}

impl DbTransaction {
    pub(crate) fn new(engine: Arc<Engine>) -> DbTransaction {
        let snapshot = engine.snapshot();
        DbTransaction {
            engine,
            snapshot,
            staged: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The state of `key` as this transaction sees it.
    fn visible(&self, key: &Key, staged: &BTreeMap<Key, Intent>) -> Result<Option<ObjectRecord>> {
        let base = read_at(&self.engine.meta, key, self.snapshot.version)?;
        Ok(match staged.get(key) {
            None => base,
            Some(intent) => staged_state(base, &intent.write),
        })
    }

    fn overlay(&self, staged: &BTreeMap<Key, Intent>) -> Result<Overlay> {
        staged
            .keys()
            .map(|key| Ok((key.clone(), self.visible(key, staged)?)))
            .collect()
    }

    /// Stages a put and returns the object as the transaction now sees it.
    async fn stage_put(&self, key: &Key, intent: Intent) -> Result<ObjectInfo> {
        let mut staged = self.staged.lock().await;
        // Replacing an earlier staged put drops its reservation: its space is retired, free
        // once no reader still streams the staged bytes.
        staged.insert(key.clone(), intent);
        self.staged_info(key, &staged)
    }

    /// The object `key` as this transaction sees it (`version` 0 when staged).
    fn staged_info(&self, key: &Key, staged: &BTreeMap<Key, Intent>) -> Result<ObjectInfo> {
        self.visible(key, staged)?
            .map(|r| r.info(key.clone()))
            .ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })
    }
}

/// A staged write applied to the snapshot's state of a key.
fn staged_state(base: Option<ObjectRecord>, write: &Write) -> Option<ObjectRecord> {
    let now = Timestamp::now();
    match write {
        Write::Put {
            size,
            sha256,
            metadata,
            ..
        } => Some(ObjectRecord {
            version: 0,
            size: *size,
            sha256: *sha256,
            created: base.as_ref().map_or(now, |r| r.created),
            updated: now,
            metadata: metadata.clone(),
            blob: None,
        }),
        Write::Metadata(metadata) => base.map(|record| ObjectRecord {
            metadata: metadata.clone(),
            updated: now,
            ..record
        }),
        Write::Delete => None,
    }
}

#[async_trait::async_trait]
impl ObjectOps for DbTransaction {
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let staged = self.staged.lock().await;
        let record = self.visible(key, &staged)?;
        // Staged bytes stay valid while the stream lives: the stream's read pin is taken while
        // the staged write is held here, and a dropped reservation is retired behind it.
        let staged_layout = match staged.get(key) {
            Some(Intent {
                write:
                    Write::Put {
                        reservation,
                        block_crcs,
                        ..
                    },
                ..
            }) => Some(BlobLayout {
                runs: reservation.runs().to_vec(),
                block_crcs: block_crcs.clone(),
            }),
            _ => None,
        };
        get_at(&self.engine, key, record, staged_layout, options)
    }

    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let staged = self.staged.lock().await;
        self.staged_info(key, &staged)
    }

    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        validate_metadata(&options.metadata)?;
        let condition = options.condition;
        let write = write_put(&self.engine, body, &options).await?;
        self.stage_put(key, Intent { write, condition }).await
    }

    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        validate_metadata(&metadata)?;
        let mut staged = self.staged.lock().await;
        if self.visible(key, &staged)?.is_none() {
            return Err(Error::NotFound {
                key: key.to_string(),
            });
        }
        // Metadata over a staged put keeps the staged blob.
        let write = match staged.remove(key) {
            Some(Intent {
                write:
                    Write::Put {
                        reservation,
                        size,
                        sha256,
                        block_crcs,
                        twin,
                        ..
                    },
                condition: earlier,
            }) => {
                let write = Write::Put {
                    reservation,
                    size,
                    sha256,
                    block_crcs,
                    metadata,
                    twin,
                };
                staged.insert(
                    key.clone(),
                    Intent {
                        write,
                        condition: earlier,
                    },
                );
                return self.staged_info(key, &staged);
            }
            _ => Write::Metadata(metadata),
        };
        staged.insert(key.clone(), Intent { write, condition });
        self.staged_info(key, &staged)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        let mut staged = self.staged.lock().await;
        if self.visible(key, &staged)?.is_none() {
            return Err(Error::NotFound {
                key: key.to_string(),
            });
        }
        let base_exists = read_at(&self.engine.meta, key, self.snapshot.version)?.is_some();
        if base_exists {
            staged.insert(
                key.clone(),
                Intent {
                    write: Write::Delete,
                    condition,
                },
            );
        } else {
            // Deleting an object this transaction created: nothing to commit for the key.
            staged.remove(key);
        }
        Ok(())
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let query = list_query(&options)?;
        let staged = self.staged.lock().await;
        let overlay = self.overlay(&staged)?;
        let page = with_query(&self.engine, self.snapshot.version, Some(&overlay), |q| {
            list_page(q, &query)
        })?;
        Ok(page.into_list_page())
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let staged = self.staged.lock().await;
        let overlay = self.overlay(&staged)?;
        let page = with_query(&self.engine, self.snapshot.version, Some(&overlay), |q| {
            q.page(query)
        })?;
        Ok(page.into_query_page())
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let staged = self.staged.lock().await;
        let overlay = self.overlay(&staged)?;
        with_query(&self.engine, self.snapshot.version, Some(&overlay), |q| {
            q.count(query)
        })
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        with_query(&self.engine, self.snapshot.version, None, |q| {
            Ok(q.explain(query))
        })
    }
}

#[async_trait::async_trait]
impl Transaction for DbTransaction {
    fn snapshot_version(&self) -> u64 {
        self.snapshot.version
    }

    async fn commit(self: Box<Self>) -> Result<u64> {
        let staged = std::mem::take(&mut *self.staged.lock().await);
        if staged.is_empty() {
            return Ok(self.snapshot.version);
        }
        let (version, _) = commit(&self.engine, Some(self.snapshot.version), staged).await?;
        Ok(version)
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
