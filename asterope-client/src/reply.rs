//! Reading the server's replies: typed JSON bodies, errors rebuilt as the server's own
//! [`Error`] variants, and an object's description from the headers of a GET or HEAD.

use asterope_core::{Error, ErrorBody, Key, ObjectInfo, Result, Timestamp};
use asterope_serialization::metadata_from_header_json;
use asterope_serialization::wire::headers::{
    HEADER_CREATED, HEADER_ERROR_CODE, HEADER_META, HEADER_SHA256, HEADER_SIZE, HEADER_UPDATED,
    HEADER_VERSION,
};
use asterope_serialization::wire::{from_json_slice, ErrorReply};
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

/// Largest error or JSON reply read into memory.
const MAX_REPLY: usize = 16 << 20;

async fn read_bytes(response: Response<Incoming>) -> Result<Bytes> {
    Ok(Limited::new(response.into_body(), MAX_REPLY)
        .collect()
        .await
        .map_err(|e| Error::io("reading the reply", std::io::Error::other(e.to_string())))?
        .to_bytes())
}

/// A JSON reply body as its wire type (`what` names it in the error).
pub(crate) async fn read_json<T: DeserializeOwned>(
    response: Response<Incoming>,
    what: &str,
) -> Result<T> {
    from_json_slice(&read_bytes(response).await?, what)
}

/// Rebuilds the server's error from `{"error": {...}}`, or from the status and the error-code
/// header when there is no body (HEAD).
pub(crate) async fn read_error(response: Response<Incoming>, key: Option<&Key>) -> Error {
    let status = response.status();
    let code_header = response
        .headers()
        .get(HEADER_ERROR_CODE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = read_bytes(response)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ErrorReply>(&bytes).ok());
    if let Some(reply) = parsed {
        return Error::from(reply);
    }
    // A reply without our error body (from the HTTP/2 layer: a 431 when the header list, where
    // metadata travels, exceeds the server's limit) is mapped from its status.
    let reason = if status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
        format!("server replied {status}: the metadata header exceeds the server's limit")
    } else {
        format!("server replied {status}")
    };
    Error::from(ErrorBody {
        code: code_header.unwrap_or_else(|| ErrorBody::code_of_status(status.as_u16()).to_string()),
        message: reason.clone(),
        key: key.map(|k| k.to_string()),
        reason: Some(reason),
        ..ErrorBody::default()
    })
}

/// The value of a header the reply must carry.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Internal {
            reason: format!("the server's reply lacks header {name}"),
        })
}

/// The object's description carried by the headers of a GET or HEAD reply.
pub(crate) fn info_from_headers(key: &Key, headers: &HeaderMap) -> Result<ObjectInfo> {
    let number = |name: &str| {
        header(headers, name)?
            .parse::<u64>()
            .map_err(|_| Error::Internal {
                reason: format!("header {name} is not a number"),
            })
    };
    Ok(ObjectInfo {
        key: key.clone(),
        size: number(HEADER_SIZE)?,
        sha256: header(headers, HEADER_SHA256)?.parse()?,
        version: number(HEADER_VERSION)?,
        created: Timestamp::parse(header(headers, HEADER_CREATED)?)?,
        updated: Timestamp::parse(header(headers, HEADER_UPDATED)?)?,
        metadata: metadata_from_header_json(
            headers
                .get(HEADER_META)
                .ok_or_else(|| Error::Internal {
                    reason: format!("the server's reply lacks header {HEADER_META}"),
                })?
                .as_bytes(),
        )?,
    })
}
