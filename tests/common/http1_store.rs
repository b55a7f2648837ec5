//! A minimal test-only [`Store`] speaking HTTP/1.1 (hyper's HTTP/1 client, one connection per
//! request), for the object and query routes: put, get, head, delete, update_metadata, list,
//! query, count and explain. It builds requests and reads replies only as the protocol
//! documents them, so the conformance suite holds the server's HTTP/1.1 side to the same
//! behaviour as the embedded database and the HTTP/2 client.
//!
//! An upload of unknown size goes as a chunked body with its SHA-256 in a trailer (declared by
//! `trailer:`); one of known size with `content-length`. A source stream that fails or does not
//! deliver the announced size aborts the request, as the HTTP/2 client does. A whole-object
//! read is verified here against its SHA-256 (`x-asterope-verify: client`).
//!
//! Everything else on [`Store`] (indexes, transactions, stats, compaction) fails with an
//! `invalid_argument` error whose reason starts with `unsupported:` (see [`UNSUPPORTED`]).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use asterope::{
    ByteRange, ByteStream, CompactionReport, Condition, Error, ErrorBody, GetOptions, GetResult,
    IndexInfo, Key, ListOptions, ListPage, Metadata, ObjectInfo, ObjectOps, PutOptions, Query,
    QueryPage, QueryPlan, Result, Sha256Digest, Store, StoreStats, Timestamp, Transaction,
};
use asterope_serialization::wire::headers::*;
use asterope_serialization::wire::paths::*;
use asterope_serialization::wire::ObjectDescription;
use asterope_serialization::{
    metadata_from_header_json, metadata_to_header_json, metadata_to_json, query_to_json,
};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HOST, RANGE, TRAILER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};

/// The start of the reason of every operation this store does not implement.
pub const UNSUPPORTED: &str = "unsupported:";

type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Error>;

/// A [`Store`] over HTTP/1.1 for the object and query routes.
#[derive(Clone, Debug)]
pub struct Http1Store {
    addr: SocketAddr,
}

impl Http1Store {
    pub fn new(addr: SocketAddr) -> Http1Store {
        Http1Store { addr }
    }

    fn object_path(base: &str, key: &Key) -> String {
        format!("{base}/{}", utf8_percent_encode(key.as_str(), KEY_ESCAPES))
    }

    /// Sends one request on a new HTTP/1.1 connection; replies other than 2xx become the
    /// error they carry.
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: RequestBody,
        key: Option<&Key>,
    ) -> Result<Response<Incoming>> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string())
            .body(body)
            .map_err(|e| Error::internal(format!("building a request: {e}")))?;
        request.headers_mut().extend(headers);
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| Error::io("connecting", e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| Error::io("handshake", std::io::Error::other(e)))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::io("sending the request", std::io::Error::other(e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(read_error(response, key).await)
    }

    async fn post_query(&self, path: &str, query: &Query) -> Result<serde_json::Value> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = full(query_to_json(query).to_string());
        read_json(self.call(Method::POST, path, headers, body, None).await?).await
    }
}

fn full(text: String) -> RequestBody {
    http_body_util::Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> RequestBody {
    full(String::new())
}

fn unsupported(operation: &str) -> Error {
    Error::InvalidArgument {
        reason: format!(
            "{UNSUPPORTED} the HTTP/1.1 test store speaks only the object and query routes, \
             not {operation}"
        ),
    }
}

async fn read_json(response: Response<Incoming>) -> Result<serde_json::Value> {
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::io("reading the reply", std::io::Error::other(e)))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::internal(format!("the reply is not JSON: {e}")))
}

/// The error of a reply: its `{"error": {...}}` body, else its status and error-code header.
async fn read_error(response: Response<Incoming>, key: Option<&Key>) -> Error {
    let status = response.status();
    let code = response
        .headers()
        .get(HEADER_ERROR_CODE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_json(response)
        .await
        .ok()
        .and_then(|json| serde_json::from_value::<ErrorBody>(json.get("error")?.clone()).ok());
    Error::from(body.unwrap_or_else(|| ErrorBody {
        code: code.unwrap_or_else(|| ErrorBody::code_of_status(status.as_u16()).to_string()),
        message: format!("server replied {status}"),
        key: key.map(|k| k.to_string()),
        ..ErrorBody::default()
    }))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::internal(format!("the reply lacks header {name}")))
}

fn number(headers: &HeaderMap, name: &str) -> Result<u64> {
    header(headers, name)?
        .parse()
        .map_err(|_| Error::internal(format!("header {name} is not a number")))
}

/// The object described by the `x-asterope-*` headers of a GET or HEAD reply.
fn info_from_headers(key: &Key, headers: &HeaderMap) -> Result<ObjectInfo> {
    Ok(ObjectInfo {
        key: key.clone(),
        size: number(headers, HEADER_SIZE)?,
        sha256: header(headers, HEADER_SHA256)?.parse()?,
        version: number(headers, HEADER_VERSION)?,
        created: Timestamp::parse(header(headers, HEADER_CREATED)?)?,
        updated: Timestamp::parse(header(headers, HEADER_UPDATED)?)?,
        metadata: metadata_from_header_json(header(headers, HEADER_META)?.as_bytes())?,
    })
}

fn condition_headers(condition: Condition) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(version) = condition.if_version {
        headers.insert(HEADER_IF_VERSION, HeaderValue::from(version));
    }
    headers
}

/// An object description as the server writes it.
fn object_info_from_json(json: &serde_json::Value) -> Result<ObjectInfo> {
    let description: ObjectDescription = serde_json::from_value(json.clone())
        .map_err(|e| Error::internal(format!("malformed object description: {e}")))?;
    ObjectInfo::try_from(description)
}

/// `{"items": [...], "next": cursor|null}`.
fn page_from_json(json: &serde_json::Value) -> Result<(Vec<ObjectInfo>, Option<String>)> {
    let objects = json
        .get("items")
        .and_then(|items| items.as_array())
        .ok_or_else(|| Error::internal("the page lacks items"))?
        .iter()
        .map(object_info_from_json)
        .collect::<Result<Vec<_>>>()?;
    let next = json
        .get("next")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    Ok((objects, next))
}

/// The upload body: the source's chunks, then (for a chunked body) the SHA-256 trailer. A
/// source that fails or delivers other than `size` bytes is recorded in `failure` and aborts
/// the request.
fn upload_body(
    body: ByteStream,
    size: Option<u64>,
    failure: Arc<Mutex<Option<Error>>>,
) -> RequestBody {
    let start = Some((body, Sha256::new(), 0u64));
    let frames = stream::unfold(start, move |state| {
        let failure = Arc::clone(&failure);
        async move {
            let (mut body, mut hasher, mut sent) = state?;
            let fail = |error: Error| {
                let reported = Error::Truncated {
                    reason: format!("the upload failed: {error}"),
                };
                *failure.lock().unwrap() = Some(error);
                Some((Err(reported), None))
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    sent += chunk.len() as u64;
                    if size.is_some_and(|size| sent > size) {
                        return fail(Error::Truncated {
                            reason: "more bytes than announced".into(),
                        });
                    }
                    hasher.update(&chunk);
                    Some((Ok(Frame::data(chunk)), Some((body, hasher, sent))))
                }
                Some(Err(error)) => fail(error),
                None => match size {
                    Some(size) if size != sent => fail(Error::Truncated {
                        reason: format!("{sent} of the announced {size} bytes"),
                    }),
                    Some(_) => None,
                    None => {
                        let digest = Sha256Digest(hasher.finalize().into());
                        let mut trailers = HeaderMap::new();
                        let value = HeaderValue::from_str(&digest.to_hex()).ok()?;
                        trailers.insert(HEADER_SHA256, value);
                        Some((Ok(Frame::trailers(trailers)), None))
                    }
                },
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

/// The download body; checked against `expected` at its end when given.
fn download_body(incoming: Incoming, key: Key, expected: Option<Sha256Digest>) -> ByteStream {
    let frames = Box::pin(BodyStream::new(incoming));
    let start = Some((frames, Sha256::new()));
    stream::unfold(start, move |state| {
        let key = key.clone();
        async move {
            let (mut frames, mut hasher) = state?;
            loop {
                match frames.next().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            hasher.update(&data);
                            return Some((Ok(data), Some((frames, hasher))));
                        }
                    }
                    Some(Err(e)) => {
                        let error = Error::io(format!("receiving {key}"), std::io::Error::other(e));
                        return Some((Err(error), None));
                    }
                    None => {
                        let actual = Sha256Digest(hasher.finalize().into());
                        return match expected {
                            Some(expected) if expected != actual => {
                                let error = Error::Corrupt {
                                    key: key.to_string(),
                                    reason: format!("received bytes hash to {actual}"),
                                };
                                Some((Err(error), None))
                            }
                            _ => None,
                        };
                    }
                }
            }
        }
    })
    .boxed()
}

#[async_trait::async_trait]
impl ObjectOps for Http1Store {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        let mut headers = condition_headers(options.condition);
        let meta = HeaderValue::try_from(metadata_to_header_json(&options.metadata))
            .map_err(|_| Error::internal("metadata is not a valid header"))?;
        headers.insert(HEADER_META, meta);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        match options.size {
            Some(size) => {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
            }
            None => {
                headers.insert(TRAILER, HeaderValue::from_static(HEADER_SHA256));
            }
        }
        if let Some(sha) = options.sha256 {
            let value =
                HeaderValue::from_str(&sha.to_hex()).map_err(|e| Error::internal(e.to_string()))?;
            headers.insert(HEADER_SHA256, value);
        }
        let failure = Arc::new(Mutex::new(None));
        let body = upload_body(body, options.size, Arc::clone(&failure));
        let path = Self::object_path(OBJECTS_PATH, key);
        let outcome = self
            .call(Method::PUT, &path, headers, body, Some(key))
            .await;
        if let Some(source_error) = failure.lock().unwrap().take() {
            return Err(source_error);
        }
        object_info_from_json(&read_json(outcome?).await?)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let mut headers = HeaderMap::new();
        // A whole object is verified here; a range by the server's block checksums.
        let verifies_here = options.verify && options.range.is_none();
        if !(options.verify && options.range.is_some()) {
            headers.insert(HEADER_VERIFY, HeaderValue::from_static("client"));
        }
        if let Some(range) = options.range {
            let spec = match range {
                ByteRange::Inclusive { first, last } => format!("bytes={first}-{last}"),
                ByteRange::From(first) => format!("bytes={first}-"),
                ByteRange::Suffix(n) => format!("bytes=-{n}"),
            };
            headers.insert(
                RANGE,
                HeaderValue::from_str(&spec).map_err(|e| Error::internal(e.to_string()))?,
            );
        }
        let path = Self::object_path(OBJECTS_PATH, key);
        let response = self
            .call(Method::GET, &path, headers, empty(), Some(key))
            .await?;
        let info = info_from_headers(key, response.headers())?;
        let length = number(response.headers(), CONTENT_LENGTH.as_str())?;
        let start = if response.status() == StatusCode::PARTIAL_CONTENT {
            header(response.headers(), CONTENT_RANGE.as_str())?
                .strip_prefix("bytes ")
                .and_then(|r| r.split_once('-'))
                .and_then(|(start, _)| start.parse::<u64>().ok())
                .ok_or_else(|| Error::internal("malformed content-range"))?
        } else {
            0
        };
        let expected = verifies_here.then_some(info.sha256);
        let body = download_body(response.into_body(), key.clone(), expected);
        Ok(GetResult {
            info,
            range: start..start + length,
            body,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let path = Self::object_path(OBJECTS_PATH, key);
        let response = self
            .call(Method::HEAD, &path, HeaderMap::new(), empty(), Some(key))
            .await?;
        info_from_headers(key, response.headers())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        let path = Self::object_path(OBJECTS_PATH, key);
        let headers = condition_headers(condition);
        self.call(Method::DELETE, &path, headers, empty(), Some(key))
            .await
            .map(drop)
    }

    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        let mut headers = condition_headers(condition);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = full(metadata_to_json(&metadata).to_string());
        let path = Self::object_path(METADATA_PATH, key);
        let response = self
            .call(Method::PUT, &path, headers, body, Some(key))
            .await?;
        object_info_from_json(&read_json(response).await?)
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let encode =
            |s: &str| utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut path = format!("{OBJECTS_PATH}?prefix={}", encode(&options.prefix));
        if options.limit > 0 {
            path.push_str(&format!("&limit={}", options.limit));
        }
        if let Some(cursor) = &options.cursor {
            path.push_str(&format!("&cursor={}", encode(cursor)));
        }
        let response = self
            .call(Method::GET, &path, HeaderMap::new(), empty(), None)
            .await?;
        let (objects, next) = page_from_json(&read_json(response).await?)?;
        Ok(ListPage { objects, next })
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let (objects, next) = page_from_json(&self.post_query(QUERY_PATH, query).await?)?;
        Ok(QueryPage { objects, next })
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let json = self.post_query("/v1/query/count", query).await?;
        json.get("count")
            .and_then(|c| c.as_u64())
            .ok_or_else(|| Error::internal("the count reply lacks count"))
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        let json = self.post_query("/v1/query/explain", query).await?;
        let text = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
        Ok(QueryPlan {
            access: text("access")
                .and_then(|access| access.parse().ok())
                .ok_or_else(|| Error::internal("the plan reply lacks a known access path"))?,
            index: text("index"),
            detail: text("detail").unwrap_or_default(),
        })
    }
}

#[async_trait::async_trait]
impl Store for Http1Store {
    async fn create_index(&self, _field: &str) -> Result<IndexInfo> {
        Err(unsupported("create_index"))
    }
    async fn drop_index(&self, _field: &str) -> Result<()> {
        Err(unsupported("drop_index"))
    }
    async fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        Err(unsupported("list_indexes"))
    }
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Err(unsupported("begin"))
    }
    async fn stats(&self) -> Result<StoreStats> {
        Err(unsupported("stats"))
    }
    async fn compact(&self) -> Result<CompactionReport> {
        Err(unsupported("compact"))
    }
}
