//! Establishing the HTTP/2 connection: TCP, optional TLS with ALPN `h2`, the hyper handshake.

use std::path::PathBuf;
use std::sync::Arc;

use asterope_core::{Error, Result};
use asterope_serialization::MAX_HEADER_LIST_BYTES;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

/// Body of every request.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, Error>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) root_cert_pem: Option<PathBuf>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str, root_cert_pem: Option<PathBuf>) -> Result<Endpoint> {
        let invalid = |why: &str| Error::InvalidArgument {
            reason: format!("server URL {url:?}: {why}"),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        // The routes are at the server's root: a path, a query or credentials in the URL
        // would be silently dropped, so they are refused.
        if uri.path() != "/" || uri.query().is_some() {
            return Err(invalid(
                "a path or query is not supported; the routes are at the root (http://HOST:PORT)",
            ));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(invalid(
                "credentials in the URL are not used; give a bearer token instead",
            ));
        }
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 7878 });
        Ok(Endpoint {
            host,
            port,
            tls,
            root_cert_pem,
        })
    }

    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Opens a connection and returns its request sender; the connection runs on a task.
    pub(crate) async fn connect(&self) -> Result<SendRequest<RequestBody>> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Error::io(format!("connecting to {}", self.authority()), e))?;
        let _ = tcp.set_nodelay(true);
        if self.tls {
            let connector = tokio_rustls::TlsConnector::from(self.tls_config()?);
            let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                Error::InvalidArgument {
                    reason: format!("server name {:?}: {e}", self.host),
                }
            })?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| Error::io(format!("TLS handshake with {}", self.authority()), e))?;
            handshake(stream).await
        } else {
            handshake(tcp).await
        }
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.root_cert_pem {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| Error::InvalidArgument {
                        reason: format!("CA certificate {}: {e}", path.display()),
                    })?;
                    roots.add(cert).map_err(|e| Error::InvalidArgument {
                        reason: format!("CA certificate {}: {e}", path.display()),
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

async fn handshake<IO>(io: IO) -> Result<SendRequest<RequestBody>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .max_frame_size(1 << 20)
        .max_send_buf_size(1 << 20)
        // Replies carry metadata in a header: accept the largest the server may send.
        .max_header_list_size(u32::try_from(MAX_HEADER_LIST_BYTES).unwrap_or(u32::MAX))
        .keep_alive_interval(std::time::Duration::from_secs(20))
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| Error::io("HTTP/2 handshake", std::io::Error::other(e)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
