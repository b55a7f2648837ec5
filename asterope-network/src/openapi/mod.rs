//! The OpenAPI 3.1 document of the protocol, served at `GET /v1/openapi.json`: every route with
//! its parameters, headers and status codes, and the schemas of the bodies, which are derived
//! from the [`wire`](asterope_serialization::wire) types themselves (so the document cannot
//! drift from what the server writes). docs/PROTOCOL.md keeps the prose (streaming, trailers,
//! ranges, consistency, limits).
//!
//! Like `/v1/health`, the document needs no token: it describes the protocol every server
//! speaks, nothing of the data behind it.

use std::sync::OnceLock;

use asterope_core::{IndexState, PlanAccess, MAX_LIST_LIMIT};
use asterope_serialization::wire::headers::*;
use asterope_serialization::wire::paths::{self, templates};
use asterope_serialization::wire::{
    CommitReply, CompactReply, CountReply, ErrorBody, ErrorReply, HealthReply, IndexDescription,
    IndexList, ObjectDescription, Page, PlanReply, QueryRequest, StatsReply, TransactionOpened,
};
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    Content, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, RefOr, Required,
    ResponseBuilder,
};

mod parts;

use parts::*;

/// Name of the bearer-token security scheme.
const BEARER: &str = "bearer";

/// A key: no NUL, at most 1024 characters (the limit is 1024 bytes of UTF-8).
const KEY_PATTERN: &str = "^[^\\u0000]{1,1024}$";
/// A dotted field path: non-empty segments without control characters.
const FIELD_PATTERN: &str =
    "^[^.\\u0000-\\u001f\\u007f-\\u009f]+(\\.[^.\\u0000-\\u001f\\u007f-\\u009f]+)*$";
/// A byte range the server reads.
const RANGE_PATTERN: &str = "^bytes=([0-9]{1,19}-[0-9]{0,19}|-[0-9]{1,19})$";
/// A SHA-256 in hex.
const SHA256_PATTERN: &str = "^[0-9a-fA-F]{64}$";

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (no token needed).
    Public,
    /// A read-only or read-write token.
    Read,
    /// A read-write token.
    Write,
}

/// One operation of the document: method, path template and what it takes and answers.
struct Route {
    method: HttpMethod,
    path: &'static str,
    operation: OperationBuilder,
}

/// The document as JSON text (built once).
pub(crate) fn document_json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_json().unwrap_or_default())
}

/// The OpenAPI document of the protocol.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut items: Vec<(&'static str, PathItem)> = Vec::new();
    for route in routes() {
        let operation = route.operation.build();
        match items.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, item)) => {
                item.merge_operations(PathItem::new(route.method, operation));
            }
            None => items.push((route.path, PathItem::new(route.method, operation))),
        }
    }
    for (path, item) in items {
        paths = paths.path(path, item);
    }
    let components = ComponentsBuilder::new()
        .schema_from::<ObjectDescription>()
        .schema_from::<Page>()
        .schema_from::<QueryRequest>()
        .schema_from::<CountReply>()
        .schema_from::<PlanReply>()
        .schema_from::<IndexDescription>()
        .schema_from::<IndexState>()
        .schema_from::<PlanAccess>()
        .schema_from::<IndexList>()
        .schema_from::<TransactionOpened>()
        .schema_from::<CommitReply>()
        .schema_from::<StatsReply>()
        .schema_from::<CompactReply>()
        .schema_from::<HealthReply>()
        .schema_from::<ErrorBody>()
        .schema_from::<ErrorReply>()
        .security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Asterope")
                .version("1")
                .description(Some(
                    "Large-binary object store with a metadata query service. The prose of the \
                     protocol (streaming, trailers, ranges, consistency, limits) is \
                     docs/PROTOCOL.md. Every JSON body may be MessagePack instead \
                     (`Content-Type` / `Accept: application/msgpack`).",
                )),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

/// Every route the server answers.
fn routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(object_routes());
    routes.extend(query_routes());
    routes.extend(index_routes());
    routes.extend(transaction_routes());
    routes.extend(admin_routes());
    routes
}

fn object_routes() -> Vec<Route> {
    let key = || {
        path_param(
            "key",
            "The key (1 to 1024 bytes of UTF-8, no NUL), percent-encoded (`/` may stay as it is).",
            text(Some(KEY_PATTERN)),
        )
    };
    let list = |id| {
        operation(id, "List objects in key order", Access::Read)
            .parameter(query_param(
                "prefix",
                "Only keys starting with this (empty: every key).",
                string(),
            ))
            .parameter(query_param(
                "cursor",
                "The `next` of the previous page.",
                text(None),
            ))
            .parameter(query_param(
                "limit",
                "Objects per page at most.",
                integer(1, MAX_LIST_LIMIT as u64),
            ))
            .parameter(transaction_header())
            .response(
                "200",
                json_reply::<Page>("One page of object descriptions."),
            )
    };
    let get = |id, summary, head: bool| {
        let mut operation = operation(id, summary, Access::Read)
            .parameter(key())
            .parameter(transaction_header());
        if !head {
            operation = operation
                .parameter(header_param(
                    "range",
                    "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-N`.",
                    text(Some(RANGE_PATTERN)),
                ))
                .parameter(header_param(
                    HEADER_VERIFY,
                    "`client`: the client verifies the SHA-256 itself.",
                    text(Some("^client$")),
                ));
        }
        operation
            .response("200", blob_reply("The object's bytes.", head))
            .response("206", blob_reply("The requested range.", head))
    };
    let put = operation("putObject", "Store a blob and its metadata", Access::Write)
        .parameter(key())
        .parameter(header_param(
            HEADER_META,
            "The metadata document as JSON.",
            object_text(),
        ))
        .parameter(header_param(
            HEADER_SHA256,
            "SHA-256 of the body, hex (or a trailer).",
            text(Some(SHA256_PATTERN)),
        ))
        .parameter(if_version("Write only if the version is this."))
        .parameter(transaction_header())
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(OCTET_STREAM, Content::new(Some(binary())))
                .required(Some(Required::True))
                .build(),
        ))
        .response("201", json_reply::<ObjectDescription>("Stored."));
    let delete = operation("deleteObject", "Delete an object", Access::Write)
        .parameter(key())
        .parameter(if_version("Delete only if the version is this."))
        .parameter(transaction_header())
        .response(
            "204",
            ResponseBuilder::new().description("Deleted.").build(),
        );
    let metadata = |id, summary, access| {
        operation(id, summary, access)
            .parameter(key())
            .parameter(transaction_header())
            .response(
                "200",
                json_reply::<ObjectDescription>("The object's description."),
            )
    };
    let set_metadata = metadata("putMetadata", "Replace an object's metadata", Access::Write)
        .parameter(if_version("Replace only if the version is this."))
        .request_body(Some(json_body(
            RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::Object).build(),
            )),
            "The new metadata document.",
        )));
    vec![
        route(HttpMethod::Get, paths::OBJECTS_PATH, list("listObjects")),
        route(
            HttpMethod::Head,
            paths::OBJECTS_PATH,
            list("listObjectsHead"),
        ),
        route(
            HttpMethod::Get,
            templates::OBJECT,
            get("getObject", "Read a blob or a range", false),
        ),
        route(
            HttpMethod::Head,
            templates::OBJECT,
            get("headObject", "An object's description, in headers", true),
        ),
        route(HttpMethod::Put, templates::OBJECT, put),
        route(HttpMethod::Delete, templates::OBJECT, delete),
        route(
            HttpMethod::Get,
            templates::METADATA,
            metadata("getMetadata", "An object's description", Access::Read),
        ),
        route(
            HttpMethod::Head,
            templates::METADATA,
            metadata(
                "headMetadata",
                "An object's description (headers only)",
                Access::Read,
            ),
        ),
        route(HttpMethod::Put, templates::METADATA, set_metadata),
    ]
}

fn query_routes() -> Vec<Route> {
    let query = |id, summary| {
        operation(id, summary, Access::Read)
            .parameter(transaction_header())
            .request_body(Some(json_body(schema_ref::<QueryRequest>(), "The query.")))
    };
    vec![
        route(
            HttpMethod::Post,
            paths::QUERY_PATH,
            query("query", "One page of a metadata query")
                .response("200", json_reply::<Page>("One page of matching objects.")),
        ),
        route(
            HttpMethod::Post,
            paths::QUERY_COUNT_PATH,
            query("countQuery", "How many objects a query matches")
                .response("200", json_reply::<CountReply>("The count.")),
        ),
        route(
            HttpMethod::Post,
            paths::QUERY_EXPLAIN_PATH,
            query("explainQuery", "How a query would run")
                .response("200", json_reply::<PlanReply>("The plan.")),
        ),
    ]
}

fn index_routes() -> Vec<Route> {
    let field = || {
        path_param(
            "field",
            "The dotted field path, percent-encoded.",
            text(Some(FIELD_PATTERN)),
        )
    };
    let list = |id| {
        operation(id, "Secondary indexes and their state", Access::Read)
            .response("200", json_reply::<IndexList>("Every index."))
    };
    vec![
        route(HttpMethod::Get, paths::INDEXES_PATH, list("listIndexes")),
        route(
            HttpMethod::Head,
            paths::INDEXES_PATH,
            list("listIndexesHead"),
        ),
        route(
            HttpMethod::Put,
            templates::INDEX,
            operation("createIndex", "Create an index on a field", Access::Write)
                .parameter(field())
                .response(
                    "200",
                    json_reply::<IndexDescription>("The index (maybe building)."),
                ),
        ),
        route(
            HttpMethod::Delete,
            templates::INDEX,
            operation("dropIndex", "Drop an index", Access::Write)
                .parameter(field())
                .response(
                    "204",
                    ResponseBuilder::new().description("Dropped.").build(),
                ),
        ),
    ]
}

fn transaction_routes() -> Vec<Route> {
    let id = || path_param("id", "The transaction's id.", text(None));
    vec![
        route(
            HttpMethod::Post,
            paths::TRANSACTIONS_PATH,
            operation("beginTransaction", "Open a transaction", Access::Write)
                .response("201", json_reply::<TransactionOpened>("Opened.")),
        ),
        route(
            HttpMethod::Post,
            templates::COMMIT,
            operation("commitTransaction", "Commit a transaction", Access::Write)
                .parameter(id())
                .response("200", json_reply::<CommitReply>("Committed.")),
        ),
        route(
            HttpMethod::Delete,
            templates::TRANSACTION,
            operation(
                "rollbackTransaction",
                "Roll a transaction back",
                Access::Write,
            )
            .parameter(id())
            .response(
                "204",
                ResponseBuilder::new().description("Rolled back.").build(),
            ),
        ),
    ]
}

fn admin_routes() -> Vec<Route> {
    let stats = |id| {
        operation(id, "Object and space accounting", Access::Read)
            .response("200", json_reply::<StatsReply>("The accounting."))
    };
    let health = |id| {
        operation(id, "Liveness", Access::Public)
            .response("200", json_reply::<HealthReply>("Alive."))
    };
    let metrics = |id| {
        operation(id, "Prometheus metrics", Access::Read).response(
            "200",
            ResponseBuilder::new()
                .description("Metrics in the Prometheus text format.")
                .content("text/plain", Content::new(Some(string())))
                .build(),
        )
    };
    let openapi = |id| {
        operation(id, "This document", Access::Public).response(
            "200",
            ResponseBuilder::new()
                .description("The OpenAPI document.")
                .content(JSON, Content::new(Some(object())))
                .build(),
        )
    };
    vec![
        route(HttpMethod::Get, paths::STATS_PATH, stats("stats")),
        route(HttpMethod::Head, paths::STATS_PATH, stats("statsHead")),
        route(
            HttpMethod::Post,
            paths::COMPACT_PATH,
            operation("compact", "Run a compaction pass now", Access::Write)
                .response("200", json_reply::<CompactReply>("What the pass did.")),
        ),
        route(HttpMethod::Get, paths::HEALTH_PATH, health("health")),
        route(HttpMethod::Head, paths::HEALTH_PATH, health("healthHead")),
        route(HttpMethod::Get, paths::METRICS_PATH, metrics("metrics")),
        route(
            HttpMethod::Head,
            paths::METRICS_PATH,
            metrics("metricsHead"),
        ),
        route(HttpMethod::Get, paths::OPENAPI_PATH, openapi("openapi")),
        route(
            HttpMethod::Head,
            paths::OPENAPI_PATH,
            openapi("openapiHead"),
        ),
    ]
}

/// The (method, path template) pairs of the document, for tests.
#[cfg(test)]
pub(crate) fn operations() -> Vec<(String, String)> {
    routes()
        .into_iter()
        .map(|route| {
            let method = serde_json::to_value(&route.method)
                .ok()
                .and_then(|m| m.as_str().map(str::to_uppercase))
                .unwrap_or_default();
            (method, route.path.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_schema_it_refers_to() {
        let json: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let text = document_json();
        let schemas = json["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referred to but missing"
            );
        }
        let ids: Vec<_> = text.split("\"operationId\":\"").skip(1).collect();
        let mut unique: Vec<_> = ids.iter().map(|s| s.split('"').next().unwrap()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "operation ids are unique");
    }
}
