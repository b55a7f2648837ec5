//! Blob bodies on the wire: the upload body (the caller's chunks, then the SHA-256 of what was
//! sent as a trailer) and the download body (verified against the recorded SHA-256 at its end).

use std::sync::{Arc, Mutex};

use asterope_core::{ByteStream, Error, Key, Sha256Digest};
use asterope_serialization::wire::headers::HEADER_SHA256;
use futures::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};

use crate::connection::RequestBody;

/// The upload body: the caller's chunks as DATA frames, then the SHA-256 of everything sent as
/// a trailer. A failing source stream, or one that does not deliver the announced size, is
/// remembered in `failure` and resets the request, so the server stores nothing.
pub(crate) fn upload_body(
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
pub(crate) fn download_body(
    incoming: Incoming,
    key: Key,
    expected: Option<Sha256Digest>,
) -> ByteStream {
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
