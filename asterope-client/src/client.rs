//! The [`Client`]: requests out, [`Store`] semantics back.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use asterope_core::{
    ByteRange, ByteStream, CompactionReport, Condition, Error, GetOptions, GetResult, IndexInfo,
    Key, ListOptions, ListPage, Metadata, ObjectInfo, ObjectOps, PutOptions, Query, QueryPage,
    QueryPlan, Result, Store, StoreStats, Transaction,
};
use asterope_serialization::wire::headers::{
    HEADER_IF_VERSION, HEADER_META, HEADER_SHA256, HEADER_TRANSACTION, HEADER_VERIFY, JSON,
    OCTET_STREAM,
};
use asterope_serialization::wire::paths::{
    index_path, list_path, metadata_path, object_path, COMPACT_PATH, INDEXES_PATH,
    QUERY_COUNT_PATH, QUERY_EXPLAIN_PATH, QUERY_PATH, STATS_PATH, TRANSACTIONS_PATH,
};
use asterope_serialization::wire::{
    to_json_text, CompactReply, CountReply, IndexDescription, IndexList, ObjectDescription, Page,
    PlanReply, QueryRequest, StatsReply, TransactionOpened,
};
use asterope_serialization::{metadata_to_header_json, metadata_to_json, validate_metadata};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use serde::de::DeserializeOwned;

use crate::connection::{Endpoint, RequestBody};
use crate::reply::{header, info_from_headers, read_error, read_json};
use crate::streams::{download_body, upload_body};
use crate::transaction::ClientTransaction;

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

    /// This client's connection, sending its requests inside the transaction `id`.
    pub(crate) fn inside(&self, id: &str) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            transaction: Some(Arc::from(id)),
        }
    }

    /// A request for `path` (a route path of the wire contract, with its query string).
    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        let uri = format!("{}{path}", self.inner.base);
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

    /// Sends a request without a body and reads its JSON reply (`what` names it).
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        what: &str,
    ) -> Result<T> {
        let request = build(self.request(method, path), empty_body())?;
        read_json(self.call(request, None).await?, what).await
    }

    /// Sends a request without a body whose reply has none either.
    pub(crate) async fn call_empty(&self, method: Method, path: &str) -> Result<()> {
        let request = build(self.request(method, path), empty_body())?;
        self.call(request, None).await.map(drop)
    }

    async fn post_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
        what: &str,
    ) -> Result<T> {
        let body = json_body(to_json_text(&QueryRequest::from(query)));
        let builder = self.request(Method::POST, path).header(CONTENT_TYPE, JSON);
        let response = self.call(build(builder, body)?, None).await?;
        read_json(response, what).await
    }
}

fn empty_body() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

fn json_body(text: String) -> RequestBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn build(builder: http::request::Builder, body: RequestBody) -> Result<Request<RequestBody>> {
    builder
        .body(body)
        .map_err(|e| Error::internal(format!("building a request: {e}")))
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

async fn read_description(response: Response<Incoming>) -> Result<ObjectInfo> {
    ObjectInfo::try_from(read_json::<ObjectDescription>(response, "object description").await?)
}

#[async_trait::async_trait]
impl ObjectOps for Client {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        // Refused here, before any byte of the body is read or sent.
        validate_metadata(&options.metadata)?;
        let meta = HeaderValue::try_from(metadata_to_header_json(&options.metadata))
            .map_err(|_| Error::internal("escaped metadata JSON is not a valid header"))?;
        let mut builder = self
            .request(Method::PUT, &object_path(key.as_str()))
            .header(HEADER_META, meta)
            .header(CONTENT_TYPE, OCTET_STREAM);
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
        read_description(outcome?).await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let mut builder = self.request(Method::GET, &object_path(key.as_str()));
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
            self.request(Method::HEAD, &object_path(key.as_str())),
            empty_body(),
        )?;
        let response = self.call(request, Some(key)).await?;
        info_from_headers(key, response.headers())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        let builder = condition_header(
            self.request(Method::DELETE, &object_path(key.as_str())),
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
        let builder = condition_header(
            self.request(Method::PUT, &metadata_path(key.as_str()))
                .header(CONTENT_TYPE, JSON),
            condition,
        );
        let body = json_body(metadata_to_json(&metadata).to_string());
        let response = self.call(build(builder, body)?, Some(key)).await?;
        read_description(response).await
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let page: Page = self.post_query(QUERY_PATH, query, "query page").await?;
        let (objects, next) = page.into_objects()?;
        Ok(QueryPage { objects, next })
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let reply: CountReply = self.post_query(QUERY_COUNT_PATH, query, "count").await?;
        Ok(reply.count)
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        let reply: PlanReply = self.post_query(QUERY_EXPLAIN_PATH, query, "plan").await?;
        Ok(reply.into())
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let path = list_path(&options.prefix, options.limit, options.cursor.as_deref());
        let page: Page = self.call_json(Method::GET, &path, "listing").await?;
        let (objects, next) = page.into_objects()?;
        Ok(ListPage { objects, next })
    }
}

#[async_trait::async_trait]
impl Store for Client {
    async fn create_index(&self, field: &str) -> Result<IndexInfo> {
        let path = index_path(field);
        let reply: IndexDescription = self.call_json(Method::PUT, &path, "index").await?;
        Ok(reply.into())
    }

    async fn drop_index(&self, field: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &index_path(field)).await
    }

    async fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        let reply: IndexList = self
            .call_json(Method::GET, INDEXES_PATH, "index list")
            .await?;
        Ok(reply.indexes.into_iter().map(IndexInfo::from).collect())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let opened: TransactionOpened = self
            .call_json(Method::POST, TRANSACTIONS_PATH, "transaction")
            .await?;
        Ok(Box::new(ClientTransaction::new(
            self,
            opened.id,
            opened.snapshot,
        )))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let reply: StatsReply = self.call_json(Method::GET, STATS_PATH, "stats").await?;
        Ok(reply.into())
    }

    async fn compact(&self) -> Result<CompactionReport> {
        let reply: CompactReply = self
            .call_json(Method::POST, COMPACT_PATH, "compaction report")
            .await?;
        Ok(reply.into())
    }
}
