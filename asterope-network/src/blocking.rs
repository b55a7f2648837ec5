//! Request work that blocks (listings, queries, counts, plans, index changes, and encoding
//! their replies): CPU- and disk-bound, and growing with the data. Run on the async workers it
//! would stall every other request on them (`/v1/health` included) for as long as it takes,
//! and unbounded, a few big pages at once would multiply their memory. So it takes a place in a
//! small pool first and runs where blocking is allowed. Callers read request bodies before
//! taking a place, so a slow client holds none.

use asterope_core::{Error, Result};

/// A bound on request work that blocks: how many at once, and off the async workers.
#[derive(Debug)]
pub(crate) struct BlockingPool {
    permits: tokio::sync::Semaphore,
}

impl BlockingPool {
    pub(crate) fn new(size: usize) -> BlockingPool {
        BlockingPool {
            permits: tokio::sync::Semaphore::new(size.max(1)),
        }
    }

    /// Runs `work` once a place is free (waiting for one does not occupy an async worker). On
    /// the multi-threaded runtime the worker thread hands its other tasks over and blocks in
    /// `work`; on a single-threaded runtime (tests) `work` simply runs.
    pub(crate) async fn call<F: std::future::Future>(&self, work: F) -> Result<F::Output> {
        let _place = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::internal("the request pool is closed"))?;
        let runtime = tokio::runtime::Handle::current();
        Ok(match runtime.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| runtime.block_on(work))
            }
            _ => work.await,
        })
    }
}
