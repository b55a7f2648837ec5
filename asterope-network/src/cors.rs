//! Cross-origin resource sharing, for browser applications served from other origins.
//!
//! Off unless origins are configured. A request whose `Origin` is allowed gets
//! `access-control-allow-origin` and the headers a script may read (`etag`, `content-range`,
//! the `x-asterope-*` reply headers); a preflight (`OPTIONS` with
//! `access-control-request-method`) from an allowed origin is answered `204` before
//! authentication, since browsers send preflights without the `authorization` header. An origin
//! listed by name is echoed and may send credentials; the wildcard `*` answers `*` and never
//! allows credentials (browsers refuse that combination, and echoing any origin with credentials
//! would let every site act as the user).

use asterope_core::{Error, Result};
use asterope_serialization::wire::headers::{
    HEADER_CREATED, HEADER_ERROR_CODE, HEADER_META, HEADER_SHA256, HEADER_SIZE, HEADER_TRANSACTION,
    HEADER_UPDATED, HEADER_VERSION,
};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::body::{empty, ResponseBody};
use crate::request::REQUEST_HEADERS;

/// Methods a cross-origin script may use.
const ALLOWED_METHODS: &str = "GET, HEAD, PUT, POST, DELETE";

/// Standard request headers a cross-origin script may send besides the `x-asterope-*` ones.
const ALLOWED_STANDARD_HEADERS: [&str; 3] = ["authorization", "content-type", "range"];

/// Reply headers a cross-origin script may read (beyond the CORS-safelisted ones).
const EXPOSED_HEADERS: [&str; 11] = [
    "etag",
    "content-range",
    "accept-ranges",
    HEADER_SHA256,
    HEADER_SIZE,
    HEADER_VERSION,
    HEADER_CREATED,
    HEADER_UPDATED,
    HEADER_META,
    HEADER_TRANSACTION,
    HEADER_ERROR_CODE,
];

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The origins allowed to call the server from a browser; empty (the default) disables CORS.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// Origins allowed by name (`scheme://host[:port]`, lower-case).
    named: Vec<String>,
    /// `*`: every origin, without credentials.
    any: bool,
}

impl Cors {
    /// Allows `origins`: each `*` or an origin `scheme://host[:port]` (no path, no trailing
    /// slash). Anything else is refused with `invalid_argument`.
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Result<Cors> {
        let mut cors = Cors::default();
        for origin in origins {
            let origin = origin.as_ref();
            if origin == "*" {
                cors.any = true;
                continue;
            }
            check_origin(origin)?;
            cors.named.push(origin.to_ascii_lowercase());
        }
        Ok(cors)
    }

    /// Whether any origin is allowed.
    pub fn is_enabled(&self) -> bool {
        self.any || !self.named.is_empty()
    }

    /// The allowed origin of a request, and whether it is allowed by name.
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<(HeaderValue, bool)> {
        let origin = origin?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        if self.named.contains(&text) {
            Some((origin.clone(), true))
        } else if self.any {
            Some((HeaderValue::from_static("*"), false))
        } else {
            None
        }
    }

    /// The answer to a preflight from an allowed origin; `None` for any other request.
    pub(crate) fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response<ResponseBody>> {
        if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let (origin, named) = self.allowed(headers.get(ORIGIN))?;
        let allowed_headers = ALLOWED_STANDARD_HEADERS
            .iter()
            .chain(REQUEST_HEADERS.iter())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let reply = response.headers_mut();
        allow(reply, origin, named);
        reply.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        if let Ok(value) = HeaderValue::from_str(&allowed_headers) {
            reply.insert(ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        reply.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        Some(response)
    }

    /// Adds the CORS headers to the reply to a request from `origin`, if it is allowed.
    pub(crate) fn decorate(
        &self,
        origin: Option<&HeaderValue>,
        response: &mut Response<ResponseBody>,
    ) {
        if !self.is_enabled() {
            return;
        }
        let reply = response.headers_mut();
        // The reply depends on the origin: caches must not serve one origin's to another.
        reply.append(VARY, HeaderValue::from_static("origin"));
        let Some((origin, named)) = self.allowed(origin) else {
            return;
        };
        allow(reply, origin, named);
        if let Ok(value) = HeaderValue::from_str(&EXPOSED_HEADERS.join(", ")) {
            reply.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value);
        }
    }
}

fn allow(reply: &mut HeaderMap, origin: HeaderValue, named: bool) {
    reply.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if named {
        reply.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// Refuses what a browser never sends as an `Origin`: a configured origin that could never
/// match would silently allow nothing.
fn check_origin(origin: &str) -> Result<()> {
    let invalid = |why: &str| Error::InvalidArgument {
        reason: format!("CORS origin {origin:?} {why}; expected * or scheme://host[:port]"),
    };
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or_else(|| invalid("has no scheme"))?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(invalid("has an invalid scheme"));
    }
    if rest.is_empty() {
        return Err(invalid("has no host"));
    }
    if rest.contains(['/', '?', '#', '@', '*']) || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("is not just a scheme, host and port"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_a_scheme_host_and_port() {
        assert!(Cors::new(&["https://app.example", "http://localhost:3000", "*"]).is_ok());
        for bad in [
            "app.example",
            "https://app.example/",
            "https://",
            "https://a/b",
            "https://*.x",
        ] {
            let err = Cors::new(&[bad]).unwrap_err();
            assert_eq!(err.code(), "invalid_argument", "{bad}");
        }
    }

    #[test]
    fn a_wildcard_never_allows_credentials() {
        let cors = Cors::new(&["*", "https://named.example"]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://other.example"));
        headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("PUT"),
        );
        let reply = cors.preflight(&Method::OPTIONS, &headers).unwrap();
        assert_eq!(reply.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!reply
            .headers()
            .contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
        headers.insert(ORIGIN, HeaderValue::from_static("https://named.example"));
        let reply = cors.preflight(&Method::OPTIONS, &headers).unwrap();
        assert_eq!(
            reply.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://named.example"
        );
        assert_eq!(reply.headers()[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    }
}
