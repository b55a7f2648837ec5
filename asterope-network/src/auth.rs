//! Bearer-token authentication: read-write and read-only tokens, compared in constant time.

use asterope_core::{Error, Result};
use sha2::{Digest, Sha256};

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GET, HEAD, listing, metrics.
    ReadOnly,
    /// Everything.
    ReadWrite,
}

/// The tokens a server accepts. Empty: no authentication.
///
/// Tokens are kept as SHA-256 digests and compared digest against digest over every configured
/// token, so neither the length nor the matching prefix of a secret leaks through timing.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    tokens: Vec<([u8; 32], Access)>,
}

impl Tokens {
    /// Adds a token.
    pub fn add(&mut self, token: &str, access: Access) {
        self.tokens.push((Sha256::digest(token).into(), access));
    }

    /// Parses a tokens file: one `rw TOKEN` or `ro TOKEN` per line; `#` starts a comment.
    pub fn parse_file(text: &str) -> Result<Tokens> {
        let mut tokens = Tokens::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kind, token) =
                line.split_once(char::is_whitespace)
                    .ok_or_else(|| Error::InvalidArgument {
                        reason: format!(
                            "tokens file line {}: expected `rw TOKEN` or `ro TOKEN`",
                            n + 1
                        ),
                    })?;
            let access = match kind {
                "rw" => Access::ReadWrite,
                "ro" => Access::ReadOnly,
                other => {
                    return Err(Error::InvalidArgument {
                        reason: format!("tokens file line {}: unknown access {other:?}", n + 1),
                    })
                }
            };
            tokens.add(token.trim(), access);
        }
        Ok(tokens)
    }

    /// Whether authentication is on.
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Checks an `Authorization` header value for an operation needing `needed`.
    pub(crate) fn authorize(&self, header: Option<&[u8]>, needed: Access) -> Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        let presented = header
            .and_then(bearer_token)
            .ok_or_else(|| Error::Unauthorized {
                reason: "missing `Authorization: Bearer <token>` header".into(),
            })?;
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut granted = None;
        for (known, access) in &self.tokens {
            let diff = known
                .iter()
                .zip(&digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                granted = Some(*access);
            }
        }
        match (granted, needed) {
            (None, _) => Err(Error::Unauthorized {
                reason: "the token is not valid".into(),
            }),
            (Some(Access::ReadOnly), Access::ReadWrite) => Err(Error::Forbidden {
                reason: "this token is read-only".into(),
            }),
            (Some(_), _) => Ok(()),
        }
    }
}

/// The `WWW-Authenticate` challenge of a `401` reply (RFC 7235 §4.1, RFC 6750 §3).
pub(crate) const BEARER_CHALLENGE: &str = "Bearer realm=\"asterope\"";

/// The token of `Bearer <token>`: the scheme is case-insensitive and may be followed by several
/// spaces (RFC 7235 §2.1); any other scheme gives `None`.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let space = header.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = header.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_what_they_should() {
        let mut tokens = Tokens::default();
        assert!(tokens.authorize(None, Access::ReadWrite).is_ok());
        tokens.add("secret", Access::ReadWrite);
        tokens.add("reader", Access::ReadOnly);
        let check = |h: &str, a| {
            tokens
                .authorize(Some(h.as_bytes()), a)
                .map_err(|e| e.code())
        };
        assert_eq!(check("Bearer secret", Access::ReadWrite), Ok(()));
        assert_eq!(check("bearer secret", Access::ReadWrite), Ok(()));
        assert_eq!(check("BEARER  secret", Access::ReadWrite), Ok(()));
        assert_eq!(check("Bearersecret", Access::ReadOnly), Err("unauthorized"));
        assert_eq!(check("Bearer ", Access::ReadOnly), Err("unauthorized"));
        assert_eq!(check("Basic secret", Access::ReadOnly), Err("unauthorized"));
        assert_eq!(check("Bearer reader", Access::ReadOnly), Ok(()));
        assert_eq!(check("Bearer reader", Access::ReadWrite), Err("forbidden"));
        assert_eq!(check("Bearer wrong", Access::ReadOnly), Err("unauthorized"));
        assert_eq!(check("secret", Access::ReadOnly), Err("unauthorized"));
        assert_eq!(
            tokens.authorize(None, Access::ReadOnly).unwrap_err().code(),
            "unauthorized"
        );
    }

    #[test]
    fn tokens_file_parses() {
        let tokens = Tokens::parse_file("# comment\nrw abc\n\nro def\n").unwrap();
        assert!(tokens
            .authorize(Some(b"Bearer def"), Access::ReadOnly)
            .is_ok());
        assert!(Tokens::parse_file("xx abc").is_err());
        assert!(Tokens::parse_file("rw").is_err());
    }
}
