//! The query routes: `POST /v1/query` (one page), `/v1/query/count` and `/v1/query/explain`,
//! on the store or inside the transaction the request names. The work grows with the data, so
//! it runs in the blocking pool once the request body has arrived.

use asterope_core::{ObjectOps, Result};
use asterope_serialization::wire::{CountReply, PlanReply};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::extract::read_query;
use super::reply::{json_response, page_response};
use super::AppState;
use crate::body::ResponseBody;

/// `POST /v1/query`: one page of the objects the query selects.
pub(super) async fn query(
    state: &AppState,
    ops: &dyn ObjectOps,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let query = read_query(request, state.body_idle_timeout).await?;
    let reply = async {
        let page = ops.query(&query).await?;
        Ok(page_response(page.objects, page.next))
    };
    state.blocking.call(reply).await?
}

/// `POST /v1/query/count`: `{"count": N}`.
pub(super) async fn count(
    state: &AppState,
    ops: &dyn ObjectOps,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let query = read_query(request, state.body_idle_timeout).await?;
    let count = state.blocking.call(ops.count(&query)).await??;
    Ok(json_response(StatusCode::OK, &CountReply { count }))
}

/// `POST /v1/query/explain`: [`PlanReply`].
pub(super) async fn explain(
    state: &AppState,
    ops: &dyn ObjectOps,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let query = read_query(request, state.body_idle_timeout).await?;
    let plan = state.blocking.call(ops.explain(&query)).await??;
    Ok(json_response(StatusCode::OK, &PlanReply::from(plan)))
}
