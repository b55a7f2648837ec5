//! Bodies of the query routes: the query request `POST /v1/query`, `/v1/query/count` and
//! `/v1/query/explain` take, and the count and plan replies (a query page is an
//! [`objects::Page`](super::objects::Page)).

use asterope_core::{Error, Filter, PlanAccess, Query, QueryPlan, Result, SortSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::filter::{filter_from_json, filter_to_json};

/// A query request: `{"cursor", "filter", "limit", "prefix", "sort"}`, every field optional.
/// Unknown fields are refused so that typos do not silently widen a query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Where to go on (the `next` of the previous page of the same query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The filter document (docs/QUERY.md); absent or `null` matches every object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: Option<serde_json::Value>,
    /// Objects per page at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub limit: Option<u64>,
    /// Only keys starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `field` (ascending) or `-field` (descending); keys break ties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^-?[^.\\u0000-\\u001f\\u007f-\\u009f]+(\\.[^.\\u0000-\\u001f\\u007f-\\u009f]+)*$"
    )]
    pub sort: Option<String>,
}

impl From<&Query> for QueryRequest {
    fn from(query: &Query) -> QueryRequest {
        QueryRequest {
            cursor: query.cursor.clone(),
            filter: Some(filter_to_json(&query.filter)),
            limit: query.limit.map(|n| n as u64),
            prefix: query.key_prefix.clone(),
            sort: query.sort.as_ref().map(ToString::to_string),
        }
    }
}

impl TryFrom<QueryRequest> for Query {
    type Error = Error;

    fn try_from(request: QueryRequest) -> Result<Query> {
        let filter = match request.filter {
            None => Filter::True,
            Some(filter) => filter_from_json(filter)?,
        };
        let limit = request
            .limit
            .map(|n| usize::try_from(n).map_err(|_| invalid("\"limit\" is too large".into())))
            .transpose()?;
        Ok(Query {
            filter,
            key_prefix: request.prefix,
            sort: request.sort.as_deref().map(SortSpec::parse).transpose()?,
            limit,
            cursor: request.cursor,
        })
    }
}

/// Parses a query request body already read as JSON.
pub fn query_from_json(json: serde_json::Value) -> Result<Query> {
    if !json.is_object() {
        return Err(invalid("the query request must be a JSON object".into()));
    }
    let request: QueryRequest =
        serde_json::from_value(json).map_err(|e| invalid(format!("the query request: {e}")))?;
    Query::try_from(request)
}

/// Writes a query request (also the text a query's fingerprint is computed over).
pub fn query_to_json(query: &Query) -> serde_json::Value {
    serde_json::to_value(QueryRequest::from(query)).unwrap_or_default()
}

fn invalid(reason: String) -> Error {
    Error::InvalidQuery { reason }
}

/// The reply of `POST /v1/query/count`: `{"count": N}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountReply {
    /// Objects the query matches.
    pub count: u64,
}

/// The reply of `POST /v1/query/explain`: `{"access", "detail", "index"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanReply {
    /// `index` or `scan`.
    pub access: PlanAccess,
    /// A human-readable account of the plan.
    pub detail: String,
    /// The index used, or `null`.
    pub index: Option<String>,
}

impl From<QueryPlan> for PlanReply {
    fn from(plan: QueryPlan) -> PlanReply {
        PlanReply {
            access: plan.access,
            detail: plan.detail,
            index: plan.index,
        }
    }
}

impl From<PlanReply> for QueryPlan {
    fn from(reply: PlanReply) -> QueryPlan {
        QueryPlan {
            access: reply.access,
            index: reply.index,
            detail: reply.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asterope_core::field;
    use serde_json::json;

    #[test]
    fn query_requests_round_trip_and_refuse_unknown_fields() {
        let query = Query::new(field("patient_id").eq("12345"))
            .with_key_prefix("studies/")
            .with_sort(SortSpec::descending_by("study_date"))
            .with_limit(10)
            .with_cursor("abc");
        assert_eq!(query_from_json(query_to_json(&query)).unwrap(), query);
        assert_eq!(
            query_from_json(json!({})).unwrap(),
            Query::new(Filter::True)
        );
        assert_eq!(
            query_from_json(json!({"filter": null})).unwrap(),
            Query::new(Filter::True)
        );
        for bad in [
            json!({"filtr": {}}),
            json!({"limit": -1}),
            json!({"limit": 1.5}),
            json!([1]),
            json!({"sort": 3}),
        ] {
            assert_eq!(query_from_json(bad).unwrap_err().code(), "invalid_query");
        }
    }

    #[test]
    fn a_query_request_is_written_in_alphabetical_field_order() {
        let query = Query::new(field("a").eq(1))
            .with_key_prefix("p")
            .with_sort(SortSpec::ascending_by("a"))
            .with_limit(2)
            .with_cursor("c");
        assert_eq!(
            query_to_json(&query).to_string(),
            r#"{"cursor":"c","filter":{"a":1},"limit":2,"prefix":"p","sort":"a"}"#
        );
    }
}
