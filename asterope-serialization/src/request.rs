//! The JSON form of a query request, shared by the server, the client and the CLI:
//! `{"filter": {...}, "prefix": "...", "sort": "field" | "-field", "limit": N, "cursor": "..."}`.

use asterope_core::{Error, Filter, Query, Result, SortSpec};
use serde_json::{json, Map, Value as Json};

use crate::filter::{filter_from_json, filter_to_json};

/// Parses a query request. Unknown fields are refused so that typos do not silently widen a
/// query.
pub fn query_from_json(json: Json) -> Result<Query> {
    let Json::Object(mut fields) = json else {
        return Err(invalid("the query request must be a JSON object"));
    };
    let filter = match fields.remove("filter") {
        None | Some(Json::Null) => Filter::True,
        Some(filter) => filter_from_json(filter)?,
    };
    let text = |fields: &mut Map<String, Json>, name: &str| -> Result<Option<String>> {
        match fields.remove(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(&format!("{name:?} must be a string"))),
        }
    };
    let key_prefix = text(&mut fields, "prefix")?;
    let sort = text(&mut fields, "sort")?
        .map(|s| SortSpec::parse(&s))
        .transpose()?;
    let cursor = text(&mut fields, "cursor")?;
    let limit = match fields.remove("limit") {
        None | Some(Json::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| invalid("\"limit\" must be a non-negative integer"))?,
        ),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(invalid(&format!("unknown query field {unknown:?}")));
    }
    Ok(Query {
        filter,
        key_prefix,
        sort,
        limit,
        cursor,
    })
}

/// Writes a query request.
pub fn query_to_json(query: &Query) -> Json {
    let mut out = Map::new();
    out.insert("filter".into(), filter_to_json(&query.filter));
    if let Some(prefix) = &query.key_prefix {
        out.insert("prefix".into(), json!(prefix));
    }
    if let Some(sort) = &query.sort {
        out.insert("sort".into(), json!(sort.to_string()));
    }
    if let Some(limit) = query.limit {
        out.insert("limit".into(), json!(limit));
    }
    if let Some(cursor) = &query.cursor {
        out.insert("cursor".into(), json!(cursor));
    }
    Json::Object(out)
}

fn invalid(reason: &str) -> Error {
    Error::InvalidQuery {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asterope_core::field;

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
        for bad in [
            json!({"filtr": {}}),
            json!({"limit": -1}),
            json!([1]),
            json!({"sort": 3}),
        ] {
            assert_eq!(query_from_json(bad).unwrap_err().code(), "invalid_query");
        }
    }
}
