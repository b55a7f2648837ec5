//! Building replies: JSON bodies (a page written item by item), error replies with their
//! status and code header, MessagePack re-encoding for clients that ask for it, and the
//! body-less reply to a HEAD.

use asterope_core::{Error, ObjectInfo};
use asterope_serialization::wire::headers::{HEADER_ERROR_CODE, JSON, MSGPACK};
use asterope_serialization::wire::{to_json_text, ErrorReply, Page};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body;
use serde::Serialize;

use crate::auth::BEARER_CHALLENGE;
use crate::body::{empty, full, ResponseBody};

/// Re-encodes a JSON reply as MessagePack for clients that asked for it.
pub(super) async fn to_msgpack(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t == JSON);
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return error_response(&Error::internal("reply body failed"));
    };
    let encoded = serde_json::from_slice::<serde_json::Value>(&collected.to_bytes())
        .ok()
        .and_then(|json| asterope_serialization::encode(&json).ok());
    match encoded {
        Some(bytes) => {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static(MSGPACK));
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, full(bytes))
        }
        None => error_response(&Error::internal("reply is not JSON")),
    }
}

/// The reply to a HEAD: the headers the GET would carry, its `content-length` included, and no
/// body, on every route and for errors too (a body after a HEAD is an HTTP/2 protocol error; HTTP/1.1 sends none).
pub(super) fn head_reply(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    if let Some(length) = body.size_hint().exact() {
        parts
            .headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(length));
    }
    Response::from_parts(parts, empty())
}

/// A [`Page`] reply, written item by item ([`Page::json_text`]).
pub(super) fn page_response(
    objects: Vec<ObjectInfo>,
    next: Option<String>,
) -> Response<ResponseBody> {
    json_text_response(StatusCode::OK, Page::json_text(objects, next.as_deref()))
}

/// A reply whose body is a wire type.
pub(super) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<ResponseBody> {
    json_text_response(status, to_json_text(body))
}

/// A reply whose body is JSON text already written.
pub(super) fn json_text_response(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// `{"error": {"code", "message", ...}}` with the error's status ([`Error::http_status`], the
/// one table of the protocol) and the code in a header.
pub(super) fn error_response(error: &Error) -> Response<ResponseBody> {
    let mut response = json_response(http_status(error), &ErrorReply::from(error));
    if let Ok(code) = HeaderValue::from_str(error.code()) {
        response.headers_mut().insert(HEADER_ERROR_CODE, code);
    }
    match error {
        Error::Unauthorized { .. } => {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BEARER_CHALLENGE),
            );
        }
        Error::MethodNotAllowed { allowed, .. } => {
            if let Ok(allowed) = HeaderValue::from_str(allowed) {
                response.headers_mut().insert(http::header::ALLOW, allowed);
            }
        }
        _ => {}
    }
    response
}

/// The HTTP status of an error.
fn http_status(error: &Error) -> StatusCode {
    // Every status of the table is a valid code; 500 only guards that invariant.
    StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(super) fn internal(e: http::Error) -> Error {
    Error::internal(format!("building a response: {e}"))
}

/// `204 No Content`, the reply to a delete.
pub(super) fn no_content() -> Result<Response<ResponseBody>, Error> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(empty())
        .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_status_is_a_valid_http_status() {
        let errors = [
            Error::Conflict { key: "k".into() },
            Error::TooManyTransactions { limit: 1 },
            Error::StorageFull {
                reason: "full".into(),
            },
            Error::Locked { path: "/d".into() },
        ];
        for error in errors {
            assert_eq!(http_status(&error).as_u16(), error.http_status());
            let reply = error_response(&error);
            assert_eq!(reply.status().as_u16(), error.http_status());
            assert_eq!(reply.headers()[HEADER_ERROR_CODE], error.code());
        }
    }
}
