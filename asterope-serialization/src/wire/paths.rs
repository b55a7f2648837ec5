//! Route paths: the fixed ones as constants, the ones naming a key, a field or a transaction as
//! builders that percent-encode the name, and the OpenAPI templates of every route.

use percent_encoding::utf8_percent_encode;

/// Object routes: `/v1/objects/{percent-encoded key}`; listing is `GET /v1/objects`.
pub const OBJECTS_PATH: &str = "/v1/objects";
/// Metadata-only routes: `/v1/metadata/{percent-encoded key}`.
pub const METADATA_PATH: &str = "/v1/metadata";
/// One page of a metadata query (`POST`).
pub const QUERY_PATH: &str = "/v1/query";
/// How many objects a query matches (`POST`).
pub const QUERY_COUNT_PATH: &str = "/v1/query/count";
/// How a query would run (`POST`).
pub const QUERY_EXPLAIN_PATH: &str = "/v1/query/explain";
/// Secondary indexes: `GET /v1/indexes`, `PUT|DELETE /v1/indexes/{field}`.
pub const INDEXES_PATH: &str = "/v1/indexes";
/// Transactions: `POST /v1/transactions`, `POST /v1/transactions/{id}/commit`,
/// `DELETE /v1/transactions/{id}`.
pub const TRANSACTIONS_PATH: &str = "/v1/transactions";
/// The last segment of a commit route.
pub const COMMIT_SUFFIX: &str = "/commit";
/// Object and space accounting: `GET /v1/stats`.
pub const STATS_PATH: &str = "/v1/stats";
/// Runs a compaction pass (`POST`).
pub const COMPACT_PATH: &str = "/v1/compact";
/// Liveness route (never needs a token).
pub const HEALTH_PATH: &str = "/v1/health";
/// Prometheus metrics route.
pub const METRICS_PATH: &str = "/metrics";
/// The OpenAPI document of the protocol (never needs a token).
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// OpenAPI path templates of the routes that name something.
pub mod templates {
    /// An object.
    pub const OBJECT: &str = "/v1/objects/{key}";
    /// An object's metadata.
    pub const METADATA: &str = "/v1/metadata/{key}";
    /// An index.
    pub const INDEX: &str = "/v1/indexes/{field}";
    /// An open transaction.
    pub const TRANSACTION: &str = "/v1/transactions/{id}";
    /// Committing a transaction.
    pub const COMMIT: &str = "/v1/transactions/{id}/commit";
}

/// Characters escaped when a key becomes a path segment: everything but unreserved characters
/// and `/`.
pub const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// `/v1/objects/{key}`.
pub fn object_path(key: &str) -> String {
    format!("{OBJECTS_PATH}/{}", utf8_percent_encode(key, KEY_ESCAPES))
}

/// `/v1/metadata/{key}`.
pub fn metadata_path(key: &str) -> String {
    format!("{METADATA_PATH}/{}", utf8_percent_encode(key, KEY_ESCAPES))
}

/// `/v1/indexes/{field}`.
pub fn index_path(field: &str) -> String {
    format!("{INDEXES_PATH}/{}", utf8_percent_encode(field, KEY_ESCAPES))
}

/// `/v1/transactions/{id}`.
pub fn transaction_path(id: &str) -> String {
    format!(
        "{TRANSACTIONS_PATH}/{}",
        utf8_percent_encode(id, KEY_ESCAPES)
    )
}

/// `/v1/transactions/{id}/commit`.
pub fn commit_path(id: &str) -> String {
    format!("{}{COMMIT_SUFFIX}", transaction_path(id))
}

/// `/v1/objects?prefix=P[&limit=N][&cursor=C]`; a limit of 0 (the library's "default page
/// size") is said by leaving it out.
pub fn list_path(prefix: &str, limit: usize, cursor: Option<&str>) -> String {
    let encode = |s: &str| utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut path = format!("{OBJECTS_PATH}?prefix={}", encode(prefix));
    if limit > 0 {
        path.push_str(&format!("&limit={limit}"));
    }
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={}", encode(cursor)));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_escape_names_but_keep_slashes() {
        assert_eq!(object_path("a b/c"), "/v1/objects/a%20b/c");
        assert_eq!(metadata_path("k"), "/v1/metadata/k");
        assert_eq!(index_path("s.n"), "/v1/indexes/s.n");
        assert_eq!(commit_path("x"), "/v1/transactions/x/commit");
        assert_eq!(list_path("a/", 0, None), "/v1/objects?prefix=a%2F");
        assert_eq!(
            list_path("", 5, Some("c=")),
            "/v1/objects?prefix=&limit=5&cursor=c%3D"
        );
    }
}
