//! TLS configuration: a certificate chain and key from PEM files, ALPN `h2` and `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use asterope_core::{Error, Result};

/// Builds a rustls server configuration offering HTTP/2 (ALPN `h2`, preferred) and HTTP/1.1.
pub fn load_tls_config(cert_pem: &Path, key_pem: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
    };
    let certs = rustls_pemfile::certs(&mut read(cert_pem)?.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert_pem, e))?;
    if certs.is_empty() {
        return Err(invalid(cert_pem, "no certificate found"));
    }
    let key = rustls_pemfile::private_key(&mut read(key_pem)?.as_slice())
        .map_err(|e| invalid(key_pem, e))?
        .ok_or_else(|| invalid(key_pem, "no private key found"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(cert_pem, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        reason: format!("TLS material {}: {e}", path.display()),
    }
}
