//! The object routes: `PUT`, `GET`, `HEAD` and `DELETE /v1/objects/{key}` (blob and metadata
//! in headers, ranges, checksums as header or trailer), `GET`/`PUT /v1/metadata/{key}`, and the
//! listing `GET /v1/objects`. Each runs on the store or on the transaction the request names.

use std::sync::{Arc, OnceLock};

use asterope_core::protocol::parse_decimal;
use asterope_core::{
    Error, GetOptions, Key, ListOptions, ObjectInfo, ObjectOps, PutOptions, Result,
};
use asterope_serialization::wire::headers::*;
use asterope_serialization::wire::ObjectDescription;
use asterope_serialization::{metadata_from_header_json, metadata_to_header_json};
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::extract::read_small_body;
use super::reply::{error_response, internal, json_response, no_content, page_response};
use super::AppState;
use crate::body::{empty, parse_sha256, request_stream, streaming, ResponseBody};
use crate::request::{condition, form_pairs, header_str, list_limit, parse_range_header};

/// `PUT /v1/objects/{key}`: streams the body into the store.
pub(super) async fn put(
    state: &AppState,
    ops: &dyn ObjectOps,
    key: Key,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let headers = request.headers();
    let mut options = PutOptions {
        condition: condition(headers)?,
        ..PutOptions::default()
    };
    if let Some(meta) = headers.get(HEADER_META) {
        options.metadata = metadata_from_header_json(meta.as_bytes())?;
    }
    if let Some(sha) = headers.get(HEADER_SHA256) {
        options.sha256 = Some(parse_sha256(sha)?);
    }
    if let Some(length) = header_str(headers, CONTENT_LENGTH.as_str())? {
        options.size = Some(parse_decimal(length).ok_or_else(|| Error::InvalidArgument {
            reason: "content-length is not a number".into(),
        })?);
    }
    let trailer = Arc::new(OnceLock::new());
    options.sha256_after_body = Some(Arc::clone(&trailer));
    let body = request_stream(
        request.into_body(),
        trailer,
        state.body_idle_timeout,
        Arc::clone(&state.metrics),
    );
    // A place first, before any byte of the body is read: an upload holds two blocking threads
    // while it streams, and the runtime has threads for a bounded number of them.
    let _place = state
        .uploads
        .acquire()
        .await
        .map_err(|_| Error::internal("the upload places are closed"))?;
    let info = ops.put(&key, body, options).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &ObjectDescription::from(&info),
    ))
}

/// `GET` or `HEAD /v1/objects/{key}`: the object's headers, and for a GET its (ranged) bytes.
pub(super) async fn get(
    state: &AppState,
    ops: &dyn ObjectOps,
    key: Key,
    request: &Request<Incoming>,
    with_body: bool,
) -> Result<Response<ResponseBody>> {
    // Range handling is defined for GET only: a HEAD ignores the header (RFC 9110 §14.2).
    if !with_body {
        let info = ops.head(&key).await?;
        let builder = object_headers(Response::builder(), &info)?
            .header(CONTENT_LENGTH, info.size)
            .status(StatusCode::OK);
        return builder.body(empty()).map_err(internal);
    }
    // A client that verifies the download itself says so; everyone else (curl) gets a stream
    // that the server verifies and resets instead of ending cleanly if the bytes are corrupt.
    let client_verifies = match header_str(request.headers(), HEADER_VERIFY)? {
        None => false,
        Some("client") => true,
        Some(other) => {
            return Err(Error::InvalidArgument {
                reason: format!("{HEADER_VERIFY} {other:?} is not `client`"),
            })
        }
    };
    let range = header_str(request.headers(), RANGE.as_str())?
        .map(parse_range_header)
        .transpose();
    let ranged = matches!(range, Ok(Some(_)));
    let result = match range {
        Ok(range) => {
            let verify = !client_verifies;
            ops.get(&key, GetOptions { range, verify }).await
        }
        Err(error) => Err(error),
    };
    let result = match result {
        Err(error @ Error::InvalidRange { .. }) => {
            return range_not_satisfiable(ops, &key, &error).await
        }
        other => other?,
    };
    let mut builder = object_headers(Response::builder(), &result.info)?
        .header(CONTENT_LENGTH, result.range.end - result.range.start);
    builder = if ranged {
        builder.status(StatusCode::PARTIAL_CONTENT).header(
            CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                result.range.start,
                result.range.end.saturating_sub(1),
                result.info.size
            ),
        )
    } else {
        builder.status(StatusCode::OK)
    };
    builder
        .body(streaming(result.body, Arc::clone(&state.metrics)))
        .map_err(internal)
}

fn object_headers(
    builder: http::response::Builder,
    info: &ObjectInfo,
) -> Result<http::response::Builder> {
    let meta = metadata_to_header_json(&info.metadata);
    Ok(builder
        .header(CONTENT_TYPE, OCTET_STREAM)
        .header(ACCEPT_RANGES, "bytes")
        .header(ETAG, format!("\"{}\"", info.sha256))
        .header(HEADER_SHA256, info.sha256.to_hex())
        .header(HEADER_VERSION, info.version)
        .header(HEADER_SIZE, info.size)
        .header(HEADER_CREATED, info.created.to_rfc3339())
        .header(HEADER_UPDATED, info.updated.to_rfc3339())
        .header(HEADER_META, meta))
}

/// The `416` reply to a range the object cannot satisfy (or a `Range` that cannot be parsed):
/// it says the object's size in `content-range: bytes */SIZE` (RFC 9110 §14.4). A missing
/// object is `404` instead.
async fn range_not_satisfiable(
    ops: &dyn ObjectOps,
    key: &Key,
    error: &Error,
) -> Result<Response<ResponseBody>> {
    let info = ops.head(key).await?;
    let mut response = error_response(error);
    let content_range = HeaderValue::try_from(format!("bytes */{}", info.size))
        .map_err(|e| Error::internal(format!("building content-range: {e}")))?;
    response.headers_mut().insert(CONTENT_RANGE, content_range);
    Ok(response)
}

/// `DELETE /v1/objects/{key}`.
pub(super) async fn delete(
    ops: &dyn ObjectOps,
    key: Key,
    request: &Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    ops.delete(&key, condition(request.headers())?).await?;
    no_content()
}

/// `GET /v1/metadata/{key}`: the object's description as JSON.
pub(super) async fn head_metadata(ops: &dyn ObjectOps, key: Key) -> Result<Response<ResponseBody>> {
    let info = ops.head(&key).await?;
    Ok(json_response(
        StatusCode::OK,
        &ObjectDescription::from(&info),
    ))
}

/// `PUT /v1/metadata/{key}`: replaces the metadata document, keeping the blob.
pub(super) async fn update_metadata(
    state: &AppState,
    ops: &dyn ObjectOps,
    key: Key,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let condition = condition(request.headers())?;
    let invalid = |reason| Error::InvalidMetadata { reason };
    let json = read_small_body(request, state.body_idle_timeout, invalid).await?;
    let metadata = asterope_serialization::metadata_from_json(json)?;
    let info = ops.update_metadata(&key, metadata, condition).await?;
    Ok(json_response(
        StatusCode::OK,
        &ObjectDescription::from(&info),
    ))
}

/// `GET /v1/objects?prefix=&cursor=&limit=`: one page of the key-ordered listing.
pub(super) async fn list(
    state: &AppState,
    ops: &dyn ObjectOps,
    request: &Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let mut options = ListOptions::default();
    for (name, value) in form_pairs(request.uri().query().unwrap_or(""))? {
        match name.as_str() {
            "prefix" => options.prefix = value,
            "cursor" => options.cursor = Some(value),
            "limit" => options.limit = list_limit(&value)?,
            other => {
                return Err(Error::InvalidArgument {
                    reason: format!("unknown list parameter {other:?}"),
                })
            }
        }
    }
    let reply = async {
        let page = ops.list(options).await?;
        Ok(page_response(page.objects, page.next))
    };
    state.blocking.call(reply).await?
}
