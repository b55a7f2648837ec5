//! The pieces the OpenAPI document is assembled from: operations with their security and error
//! reply, parameters, JSON and blob replies, and the schemas of plain values.

use asterope_serialization::wire::headers::*;
use asterope_serialization::wire::ErrorReply;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, HeaderBuilder, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::ToSchema;

use super::{Access, Route, BEARER};

pub(super) fn route(method: HttpMethod, path: &'static str, operation: OperationBuilder) -> Route {
    Route {
        method,
        path,
        operation,
    }
}

/// An operation with its id, its summary, its security and the error reply every route may
/// give (`default`: any status of the error table, docs/PROTOCOL.md).
pub(super) fn operation(id: &str, summary: &str, access: Access) -> OperationBuilder {
    let mut operation = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response(
            "default",
            json_reply::<ErrorReply>("An error (no body on HEAD)."),
        );
    if access != Access::Public {
        operation = operation.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
    }
    if access == Access::Write {
        operation = operation.description(Some("Needs a read-write token."));
    }
    operation
}

pub(super) fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

pub(super) fn json_reply<T: ToSchema>(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(JSON, Content::new(Some(schema_ref::<T>())))
        .build()
}

pub(super) fn json_body(schema: RefOr<Schema>, description: &str) -> RequestBody {
    RequestBodyBuilder::new()
        .description(Some(description))
        .content(JSON, Content::new(Some(schema)))
        .required(Some(Required::True))
        .build()
}

/// The reply of a GET (`head`: HEAD) of an object: the bytes and the description in headers.
pub(super) fn blob_reply(description: &str, head: bool) -> Response {
    let mut reply = ResponseBuilder::new().description(description);
    for (name, text) in [
        (HEADER_SHA256, "SHA-256 of the whole object, hex."),
        (HEADER_VERSION, "Commit version."),
        (HEADER_SIZE, "Size of the whole object."),
        (HEADER_CREATED, "Creation time, RFC 3339."),
        (HEADER_UPDATED, "Last update time, RFC 3339."),
        (
            HEADER_META,
            "The metadata document as JSON (ASCII-escaped).",
        ),
    ] {
        let header = HeaderBuilder::new()
            .schema(string())
            .description(Some(text))
            .build();
        reply = reply.header(name, header);
    }
    if !head {
        reply = reply.content(OCTET_STREAM, Content::new(Some(binary())));
    }
    reply.build()
}

/// A parameter in `place` (required in a path, optional elsewhere).
pub(super) fn parameter(
    place: ParameterIn,
    name: &str,
    description: &str,
    schema: RefOr<Schema>,
) -> Parameter {
    let required = if place == ParameterIn::Path {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn path_param(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    parameter(ParameterIn::Path, name, description, schema)
}

pub(super) fn query_param(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    parameter(ParameterIn::Query, name, description, schema)
}

pub(super) fn header_param(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    parameter(ParameterIn::Header, name, description, schema)
}

pub(super) fn transaction_header() -> Parameter {
    header_param(
        HEADER_TRANSACTION,
        "Run inside this open transaction.",
        text(None),
    )
}

pub(super) fn if_version(description: &str) -> Parameter {
    header_param(HEADER_IF_VERSION, description, text(Some("^[0-9]{1,19}$")))
}

pub(super) fn string() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new().schema_type(Type::String).build(),
    ))
}

/// A non-empty string, matching `pattern` when given.
pub(super) fn text(pattern: Option<&str>) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .pattern(pattern)
            .build(),
    ))
}

/// A JSON object written as text (a header value).
pub(super) fn object_text() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type(JSON)
            .build(),
    ))
}

pub(super) fn object() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new().schema_type(Type::Object).build(),
    ))
}

pub(super) fn binary() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .build(),
    ))
}

pub(super) fn integer(minimum: u64, maximum: u64) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(minimum as f64))
            .maximum(Some(maximum as f64))
            .build(),
    ))
}
