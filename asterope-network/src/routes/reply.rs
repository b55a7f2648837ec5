//! Building replies: JSON bodies (a page written item by item), error replies with their
//! status and code header, MessagePack re-encoding for clients that ask for it, and the
//! body-less reply to a HEAD.

use asterope_core::protocol::HEADER_ERROR_CODE;
use asterope_core::{Error, ErrorBody, ObjectInfo};
use asterope_serialization::object_info_to_json;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body;
use serde_json::json;

use super::MSGPACK;
use crate::auth::BEARER_CHALLENGE;
use crate::body::{empty, full, ResponseBody};
use crate::status::http_status;

/// Re-encodes a JSON reply as MessagePack for clients that asked for it.
pub(super) async fn to_msgpack(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t == "application/json");
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

/// `{"items": [...], "next": cursor|null}`, written item by item: each item's JSON tree exists
/// only while it is written, and its object is dropped once written (a page held as one JSON
/// tree, then copied into a second, costs many times its text).
pub(super) fn page_response(
    objects: Vec<ObjectInfo>,
    next: Option<String>,
) -> Response<ResponseBody> {
    let mut text = String::from("{\"items\":[");
    for (i, info) in objects.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&object_info_to_json(&info).to_string());
    }
    text.push_str("],\"next\":");
    text.push_str(&serde_json::Value::from(next).to_string());
    text.push('}');
    json_text_response(StatusCode::OK, text)
}

pub(super) fn json_response(
    status: StatusCode,
    value: &serde_json::Value,
) -> Response<ResponseBody> {
    json_text_response(status, value.to_string())
}

fn json_text_response(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"error": {"code", "message", ...}}` with the mapped status and the code in a header.
pub(super) fn error_response(error: &Error) -> Response<ResponseBody> {
    let body = ErrorBody::from(error);
    let json = serde_json::to_value(&body).unwrap_or_else(|_| json!({"code": body.code}));
    let mut response = json_response(http_status(error), &json!({ "error": json }));
    if let Ok(code) = HeaderValue::from_str(error.code()) {
        response.headers_mut().insert(HEADER_ERROR_CODE, code);
    }
    if let Error::Unauthorized { .. } = error {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BEARER_CHALLENGE),
        );
    }
    response
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
