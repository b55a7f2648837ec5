//! `asterope verify`: streams objects whole, compares the SHA-256 of what arrived with the
//! recorded one, and prints one line per damaged object.

use asterope::{Error, GetOptions, Key, Result, Sha256Digest, Store};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::output::{print_body, print_error};

/// One damaged object, as `verify` prints it.
#[derive(Serialize)]
struct DamagedObject<'a> {
    /// The error's stable code.
    code: &'static str,
    /// The error's message.
    error: String,
    key: &'a str,
    /// The recorded SHA-256, when the object is still described: the content identity groups
    /// keys that share one damaged blob, and putting that content again (any key) repairs the
    /// blob for all of them.
    sha256: Option<String>,
}

/// Verifies `keys`; `embedded` says whether `db` is a data directory rather than a server.
pub(crate) async fn verify(db: &dyn Store, keys: &[Key], embedded: bool) -> Result<()> {
    let mut damaged = 0usize;
    for key in keys {
        if let Err(e) = verify_one(db, key).await {
            let described = db.head(key).await.ok();
            // An I/O error reading an object's bytes is damage too (an extent truncated or
            // unreadable), unless it is the connection to a server failing: a server that still
            // describes the object answered for its bytes.
            let damage = matches!(e.code(), "corrupt" | "not_found")
                || (e.code() == "io_error" && (embedded || described.is_some()));
            if !damage {
                return Err(e);
            }
            damaged += 1;
            print_body(&DamagedObject {
                code: e.code(),
                error: e.to_string(),
                key: key.as_str(),
                sha256: described.map(|info| info.sha256.to_hex()),
            });
        }
    }
    print_error(format!(
        "asterope: verified {} objects, {damaged} damaged",
        keys.len()
    ));
    if damaged > 0 {
        return Err(Error::Corrupt {
            key: format!("{damaged} of {} objects", keys.len()),
            reason: "stored bytes do not match their SHA-256".into(),
        });
    }
    Ok(())
}

/// Streams one whole object (its block checksums checked on the way) and compares the SHA-256 of
/// what arrived with the recorded one.
async fn verify_one(db: &dyn Store, key: &Key) -> Result<()> {
    let result = db.get(key, GetOptions::default()).await?;
    let mut body = result.body;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
    }
    let actual = Sha256Digest(hasher.finalize().into());
    if actual != result.info.sha256 {
        return Err(Error::Corrupt {
            key: key.to_string(),
            reason: format!(
                "stored bytes hash to {actual}, recorded sha256 is {}",
                result.info.sha256
            ),
        });
    }
    Ok(())
}
