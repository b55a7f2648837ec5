//! The [`Client`]: requests out, [`Store`] semantics back.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use asterope_core::protocol::*;
use asterope_core::{
    ByteRange, ByteStream, CompactionReport, Condition, Error, ErrorBody, GetOptions, GetResult,
    IndexInfo, Key, ListOptions, ListPage, Metadata, ObjectInfo, ObjectOps, PutOptions, Query,
    QueryPage, QueryPlan, Result, Sha256Digest, Store, StoreStats, Timestamp, Transaction,
};
use asterope_serialization::{
    metadata_from_header_json, metadata_to_header_json, metadata_to_json, object_info_from_json,
    query_to_json, validate_metadata,
};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http2::SendRequest;
use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};

use crate::connection::{Endpoint, RequestBody};

/// Largest error or JSON reply read into memory.
const MAX_REPLY: usize = 16 << 20;

/// Configures a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    root_cert_pem: Option<PathBuf>,
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the CA certificate(s) in this PEM file for `https` URLs (instead of the public web
    /// roots).
    pub fn root_certificate(mut self, pem: impl Into<PathBuf>) -> Self {
        self.root_cert_pem = Some(pem.into());
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<Client> {
        let endpoint = Endpoint::parse(&self.url, self.root_cert_pem)?;
        let sender = endpoint.connect().await?;
        let authorization = self
            .token
            .map(|t| {
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| Error::InvalidArgument {
                    reason: "the token contains characters not allowed in a header".into(),
                })
            })
            .transpose()?;
        Ok(Client {
            transaction: None,
            inner: Arc::new(Inner {
                base: format!(
                    "{}://{}",
                    if endpoint.tls { "https" } else { "http" },
                    endpoint.authority()
                ),
                endpoint,
                authorization,
                sender: tokio::sync::Mutex::new(sender),
            }),
        })
    }
}

/// A connection to an Asterope server, implementing [`Store`]. Cheap to clone; clones share
/// the connection and multiplex their requests on it. A closed connection is reopened on the
/// next request.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Set on the client a [`ClientTransaction`] sends its requests with.
    transaction: Option<Arc<str>>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    base: String,
    authorization: Option<HeaderValue>,
    sender: tokio::sync::Mutex<SendRequest<RequestBody>>,
}

impl Client {
    /// Connects to `url` (`http://host:port` or `https://host:port`) without a token.
    pub async fn connect(url: &str) -> Result<Client> {
        Client::builder(url).connect().await
    }

    /// Starts configuring a client for `url`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            root_cert_pem: None,
        }
    }

    fn object_uri(&self, base: &str, key: &Key) -> String {
        format!(
            "{}{base}/{}",
            self.inner.base,
            utf8_percent_encode(key.as_str(), KEY_ESCAPES)
        )
    }

    fn index_uri(&self, field: &str) -> String {
        format!(
            "{}{INDEXES_PATH}/{}",
            self.inner.base,
            utf8_percent_encode(field, KEY_ESCAPES)
        )
    }

    async fn post_query(&self, path: &str, query: &Query) -> Result<serde_json::Value> {
        let body = Full::new(Bytes::from(query_to_json(query).to_string()))
            .map_err(|never| match never {})
            .boxed_unsync();
        let builder = self
            .request(Method::POST, format!("{}{path}", self.inner.base))
            .header(CONTENT_TYPE, "application/json");
        let response = self.call(build(builder, body)?, None).await?;
        read_json(response).await
    }

    fn request(&self, method: Method, uri: String) -> http::request::Builder {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(auth) = &self.inner.authorization {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        if let Some(id) = &self.transaction {
            builder = builder.header(HEADER_TRANSACTION, id.as_ref());
        }
        builder
    }

    async fn send(&self, request: Request<RequestBody>) -> Result<Response<Incoming>> {
        let mut sender = {
            let mut guard = self.inner.sender.lock().await;
            if guard.is_closed() {
                *guard = self.inner.endpoint.connect().await?;
            }
            guard.clone()
        };
        sender
            .ready()
            .await
            .map_err(|e| Error::io("waiting for the connection", std::io::Error::other(e)))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| Error::io("sending the request", std::io::Error::other(e)))
    }

    /// Sends a request and returns the response if it succeeded, else its error.
    async fn call(
        &self,
        request: Request<RequestBody>,
        key: Option<&Key>,
    ) -> Result<Response<Incoming>> {
        let response = self.send(request).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(read_error(response, key).await)
    }
}

fn empty_body() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

fn build(builder: http::request::Builder, body: RequestBody) -> Result<Request<RequestBody>> {
    builder
        .body(body)
        .map_err(|e| Error::internal(format!("building a request: {e}")))
}

async fn read_json(response: Response<Incoming>) -> Result<serde_json::Value> {
    let bytes = Limited::new(response.into_body(), MAX_REPLY)
        .collect()
        .await
        .map_err(|e| Error::io("reading the reply", std::io::Error::other(e.to_string())))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| Error::Internal {
        reason: format!("the server's reply is not JSON: {e}"),
    })
}

/// Rebuilds the server's error from `{"error": {...}}`, or from the status and the error-code
/// header when there is no body (HEAD).
async fn read_error(response: Response<Incoming>, key: Option<&Key>) -> Error {
    let status = response.status();
    let code_header = response
        .headers()
        .get(HEADER_ERROR_CODE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = read_json(response)
        .await
        .ok()
        .and_then(|json| serde_json::from_value::<ErrorBody>(json.get("error")?.clone()).ok());
    // A reply without our error body (from the HTTP/2 layer: a 431 when the header list, where
    // metadata travels, exceeds the server's limit) is mapped from its status.
    let reason = if status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
        format!("server replied {status}: the metadata header exceeds the server's limit")
    } else {
        format!("server replied {status}")
    };
    let body = parsed.unwrap_or_else(|| ErrorBody {
        code: code_header.unwrap_or_else(|| ErrorBody::code_of_status(status.as_u16()).to_string()),
        message: reason.clone(),
        key: key.map(|k| k.to_string()),
        reason: Some(reason),
        ..ErrorBody::default()
    });
    Error::from(body)
}

/// The `{"items": [...], "next": cursor|null}` reply of listings and queries.
fn page_from_json(json: &serde_json::Value) -> Result<(Vec<ObjectInfo>, Option<String>)> {
    let objects = json
        .get("items")
        .and_then(|items| items.as_array())
        .ok_or_else(|| Error::internal("reply lacks items"))?
        .iter()
        .map(object_info_from_json)
        .collect::<Result<Vec<_>>>()?;
    let next = json
        .get("next")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    Ok((objects, next))
}

fn index_info(json: &serde_json::Value) -> Result<IndexInfo> {
    let text = |name: &str| {
        json.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| Error::internal(format!("index description lacks {name}")))
    };
    Ok(IndexInfo {
        field: text("field")?,
        state: text("state")?.parse()?,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Internal {
            reason: format!("the server's reply lacks header {name}"),
        })
}

fn info_from_headers(key: &Key, headers: &HeaderMap) -> Result<ObjectInfo> {
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

fn condition_header(
    builder: http::request::Builder,
    condition: Condition,
) -> http::request::Builder {
    match condition.if_version {
        Some(version) => builder.header(HEADER_IF_VERSION, version),
        None => builder,
    }
}

/// The upload body: the caller's chunks as DATA frames, then the SHA-256 of everything sent as
/// a trailer. A failing source stream, or one that does not deliver the announced size, is
/// remembered in `failure` and resets the request, so the server stores nothing.
fn upload_body(
    body: ByteStream,
    expected_size: Option<u64>,
    failure: Arc<Mutex<Option<Error>>>,
) -> RequestBody {
    struct Upload {
        body: ByteStream,
        hasher: Sha256,
        sent: u64,
    }
    let start = Some(Upload {
        body,
        hasher: Sha256::new(),
        sent: 0,
    });
    let frames = stream::unfold(start, move |state| {
        let failure = Arc::clone(&failure);
        async move {
            let mut upload = state?;
            let fail = |error: Error| {
                let reported = Error::Truncated {
                    reason: format!("the upload failed: {error}"),
                };
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                Some((Err(reported), None))
            };
            match upload.body.next().await {
                Some(Ok(chunk)) => {
                    upload.sent += chunk.len() as u64;
                    if let Some(expected) = expected_size.filter(|&e| upload.sent > e) {
                        return fail(Error::Truncated {
                            reason: format!("received more than the announced {expected} bytes"),
                        });
                    }
                    upload.hasher.update(&chunk);
                    Some((Ok(Frame::data(chunk)), Some(upload)))
                }
                Some(Err(e)) => fail(e),
                None => {
                    if let Some(expected) = expected_size.filter(|&e| upload.sent != e) {
                        return fail(Error::Truncated {
                            reason: format!(
                                "received {} of the announced {expected} bytes",
                                upload.sent
                            ),
                        });
                    }
                    let digest = Sha256Digest(upload.hasher.finalize().into());
                    let mut trailers = HeaderMap::new();
                    let value = HeaderValue::from_str(&digest.to_hex()).ok()?;
                    trailers.insert(HEADER_SHA256, value);
                    Some((Ok(Frame::trailers(trailers)), None))
                }
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

/// The download body, verified against `expected` when given.
fn download_body(incoming: Incoming, key: Key, expected: Option<Sha256Digest>) -> ByteStream {
    let frames = Box::pin(BodyStream::new(incoming));
    let state = (frames, expected.map(|e| (Sha256::new(), e)), false);
    stream::unfold(state, move |(mut frames, mut verify, done)| {
        let key = key.clone();
        async move {
            if done {
                return None;
            }
            loop {
                match frames.next().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            if let Some((hasher, _)) = &mut verify {
                                hasher.update(&data);
                            }
                            return Some((Ok(data), (frames, verify, false)));
                        }
                    }
                    Some(Err(e)) => {
                        let error = Error::io(
                            format!("receiving {key}"),
                            std::io::Error::other(e.to_string()),
                        );
                        return Some((Err(error), (frames, None, true)));
                    }
                    None => {
                        let (hasher, expected) = verify.take()?;
                        let actual = Sha256Digest(hasher.finalize().into());
                        if actual == expected {
                            return None;
                        }
                        let error = Error::Corrupt {
                            key: key.to_string(),
                            reason: format!(
                                "received bytes hash to {actual}, recorded sha256 is {expected}"
                            ),
                        };
                        return Some((Err(error), (frames, None, true)));
                    }
                }
            }
        }
    })
    .boxed()
}

#[async_trait::async_trait]
impl ObjectOps for Client {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        // Refused here, before any byte of the body is read or sent.
        validate_metadata(&options.metadata)?;
        let meta = HeaderValue::try_from(metadata_to_header_json(&options.metadata))
            .map_err(|_| Error::internal("escaped metadata JSON is not a valid header"))?;
        let mut builder = self
            .request(Method::PUT, self.object_uri(OBJECTS_PATH, key))
            .header(HEADER_META, meta)
            .header(CONTENT_TYPE, "application/octet-stream");
        if let Some(size) = options.size {
            builder = builder.header(CONTENT_LENGTH, size);
        }
        if let Some(sha) = options.sha256 {
            builder = builder.header(HEADER_SHA256, sha.to_hex());
        }
        builder = condition_header(builder, options.condition);
        let failure = Arc::new(Mutex::new(None));
        let request = build(
            builder,
            upload_body(body, options.size, Arc::clone(&failure)),
        )?;
        let outcome = self.call(request, Some(key)).await;
        if let Some(source_error) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(source_error);
        }
        object_info_from_json(&read_json(outcome?).await?)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let mut builder = self.request(Method::GET, self.object_uri(OBJECTS_PATH, key));
        // The client can hash only a whole object; for a range the server keeps checking the
        // blocks' CRC-32. Without verification neither checks.
        let client_verifies = options.verify && options.range.is_none();
        if !(options.verify && options.range.is_some()) {
            builder = builder.header(HEADER_VERIFY, "client");
        }
        if let Some(range) = options.range {
            let spec = match range {
                ByteRange::Inclusive { first, last } => format!("bytes={first}-{last}"),
                ByteRange::From(first) => format!("bytes={first}-"),
                ByteRange::Suffix(n) => format!("bytes=-{n}"),
            };
            builder = builder.header(RANGE, spec);
        }
        let response = self.call(build(builder, empty_body())?, Some(key)).await?;
        let info = info_from_headers(key, response.headers())?;
        let length = header(response.headers(), CONTENT_LENGTH.as_str())?
            .parse::<u64>()
            .map_err(|_| Error::internal("content-length is not a number"))?;
        let range = if response.status() == StatusCode::PARTIAL_CONTENT {
            let start = header(response.headers(), CONTENT_RANGE.as_str())?
                .strip_prefix("bytes ")
                .and_then(|r| r.split_once('-'))
                .and_then(|(start, _)| start.parse::<u64>().ok())
                .ok_or_else(|| Error::internal("malformed content-range"))?;
            start..start + length
        } else {
            0..length
        };
        let expected = client_verifies.then_some(info.sha256);
        let body = download_body(response.into_body(), key.clone(), expected);
        Ok(GetResult { info, range, body })
    }

    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let request = build(
            self.request(Method::HEAD, self.object_uri(OBJECTS_PATH, key)),
            empty_body(),
        )?;
        let response = self.call(request, Some(key)).await?;
        info_from_headers(key, response.headers())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        let builder = condition_header(
            self.request(Method::DELETE, self.object_uri(OBJECTS_PATH, key)),
            condition,
        );
        self.call(build(builder, empty_body())?, Some(key)).await?;
        Ok(())
    }

    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        validate_metadata(&metadata)?;
        let json = metadata_to_json(&metadata).to_string();
        let builder = condition_header(
            self.request(Method::PUT, self.object_uri(METADATA_PATH, key))
                .header(CONTENT_TYPE, "application/json"),
            condition,
        );
        let body = Full::new(Bytes::from(json))
            .map_err(|never| match never {})
            .boxed_unsync();
        let response = self.call(build(builder, body)?, Some(key)).await?;
        object_info_from_json(&read_json(response).await?)
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let json = self.post_query(QUERY_PATH, query).await?;
        let (objects, next) = page_from_json(&json)?;
        Ok(QueryPage { objects, next })
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let json = self.post_query("/v1/query/count", query).await?;
        json.get("count")
            .and_then(|c| c.as_u64())
            .ok_or_else(|| Error::internal("count reply lacks count"))
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        let json = self.post_query("/v1/query/explain", query).await?;
        let text = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let access = text("access")
            .ok_or_else(|| Error::internal("explain reply lacks access"))?
            .parse()?;
        Ok(QueryPlan {
            access,
            index: text("index"),
            detail: text("detail").unwrap_or_default(),
        })
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let encode =
            |s: &str| utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut uri = format!(
            "{}{OBJECTS_PATH}?prefix={}",
            self.inner.base,
            encode(&options.prefix)
        );
        // 0 is the library's "default page size", which the protocol says by leaving it out.
        if options.limit > 0 {
            uri.push_str(&format!("&limit={}", options.limit));
        }
        if let Some(cursor) = &options.cursor {
            uri.push_str(&format!("&cursor={}", encode(cursor)));
        }
        let response = self
            .call(build(self.request(Method::GET, uri), empty_body())?, None)
            .await?;
        let (objects, next) = page_from_json(&read_json(response).await?)?;
        Ok(ListPage { objects, next })
    }
}

#[async_trait::async_trait]
impl Store for Client {
    async fn create_index(&self, field: &str) -> Result<IndexInfo> {
        let uri = self.index_uri(field);
        let response = self
            .call(build(self.request(Method::PUT, uri), empty_body())?, None)
            .await?;
        index_info(&read_json(response).await?)
    }

    async fn drop_index(&self, field: &str) -> Result<()> {
        let uri = self.index_uri(field);
        self.call(
            build(self.request(Method::DELETE, uri), empty_body())?,
            None,
        )
        .await?;
        Ok(())
    }

    async fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        let uri = format!("{}{INDEXES_PATH}", self.inner.base);
        let response = self
            .call(build(self.request(Method::GET, uri), empty_body())?, None)
            .await?;
        read_json(response)
            .await?
            .get("indexes")
            .and_then(|i| i.as_array())
            .ok_or_else(|| Error::internal("index listing lacks indexes"))?
            .iter()
            .map(index_info)
            .collect()
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let uri = format!("{}{TRANSACTIONS_PATH}", self.inner.base);
        let response = self
            .call(build(self.request(Method::POST, uri), empty_body())?, None)
            .await?;
        let json = read_json(response).await?;
        let id = json.get("id").and_then(|v| v.as_str());
        let snapshot = json.get("snapshot").and_then(|v| v.as_u64());
        let (Some(id), Some(snapshot)) = (id, snapshot) else {
            return Err(Error::internal("transaction reply lacks id or snapshot"));
        };
        let mut client = self.clone();
        client.transaction = Some(Arc::from(id));
        Ok(Box::new(ClientTransaction {
            client,
            id: id.to_string(),
            snapshot,
            finished: false,
        }))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let uri = format!("{}{STATS_PATH}", self.inner.base);
        let response = self
            .call(build(self.request(Method::GET, uri), empty_body())?, None)
            .await?;
        from_json(read_json(response).await?, "stats")
    }

    async fn compact(&self) -> Result<CompactionReport> {
        let uri = format!("{}{COMPACT_PATH}", self.inner.base);
        let response = self
            .call(build(self.request(Method::POST, uri), empty_body())?, None)
            .await?;
        from_json(read_json(response).await?, "compaction report")
    }
}

/// A transaction held open on the server, addressed by id. Dropping it without committing
/// rolls it back (asynchronously; the server's lease is the backstop).
#[derive(Debug)]
struct ClientTransaction {
    client: Client,
    id: String,
    snapshot: u64,
    finished: bool,
}

impl ClientTransaction {
    fn end_uri(&self, suffix: &str) -> String {
        format!(
            "{}{TRANSACTIONS_PATH}/{}{suffix}",
            self.client.inner.base, self.id
        )
    }

    /// A request outside the transaction (commit and rollback address it by path).
    fn plain(&self) -> Client {
        Client {
            inner: Arc::clone(&self.client.inner),
            transaction: None,
        }
    }
}

/// The transaction's operations are the client's, sent with the transaction's header.
#[async_trait::async_trait]
impl ObjectOps for ClientTransaction {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        self.client.put(key, body, options).await
    }
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.client.get(key, options).await
    }
    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        self.client.head(key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        self.client.delete(key, condition).await
    }
    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        self.client.update_metadata(key, metadata, condition).await
    }
    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        self.client.list(options).await
    }
    async fn query(&self, query: &Query) -> Result<QueryPage> {
        self.client.query(query).await
    }
    async fn count(&self, query: &Query) -> Result<u64> {
        self.client.count(query).await
    }
    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        self.client.explain(query).await
    }
}

#[async_trait::async_trait]
impl Transaction for ClientTransaction {
    fn snapshot_version(&self) -> u64 {
        self.snapshot
    }
    async fn commit(mut self: Box<Self>) -> Result<u64> {
        self.finished = true;
        let plain = self.plain();
        let request = build(
            plain.request(Method::POST, self.end_uri("/commit")),
            empty_body(),
        )?;
        let json = read_json(plain.call(request, None).await?).await?;
        json.get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::internal("commit reply lacks version"))
    }
    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.finished = true;
        let plain = self.plain();
        let request = build(
            plain.request(Method::DELETE, self.end_uri("")),
            empty_body(),
        )?;
        plain.call(request, None).await.map(drop)
    }
}

impl Drop for ClientTransaction {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let plain = self.plain();
        let uri = self.end_uri("");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(request) = build(plain.request(Method::DELETE, uri), empty_body()) {
                    let _ = plain.call(request, None).await;
                }
            });
        }
    }
}

/// Decodes a JSON reply into its typed form.
fn from_json<T: serde::de::DeserializeOwned>(json: serde_json::Value, what: &str) -> Result<T> {
    serde_json::from_value(json)
        .map_err(|e| Error::internal(format!("malformed {what} reply: {e}")))
}
