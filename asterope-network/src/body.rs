//! Adapters between HTTP bodies and Asterope chunk streams.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use asterope_core::{ByteStream, Error, Sha256Digest};
use asterope_serialization::wire::headers::HEADER_SHA256;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};

use crate::metrics::Metrics;

/// Body of every response.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Streams a blob out. An error mid-stream (e.g. `corrupt`) resets the HTTP/2 stream, or closes
/// the HTTP/1.1 connection before the body's declared length or terminating chunk, so the
/// client never sees a clean end.
pub(crate) fn streaming(body: ByteStream, metrics: Arc<Metrics>) -> ResponseBody {
    let frames = body.map(move |chunk| {
        chunk.map(|data| {
            metrics
                .bytes_sent
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            Frame::data(data)
        })
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

/// Turns a request body into a chunk stream. A `x-asterope-sha256` trailer is stored in
/// `trailer_sha256`; a body that stalls for `idle_timeout` or breaks off ends with
/// [`Error::Truncated`].
pub(crate) fn request_stream(
    incoming: Incoming,
    trailer_sha256: Arc<OnceLock<Sha256Digest>>,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
) -> ByteStream {
    let frames = Box::pin(BodyStream::new(incoming));
    stream::unfold(Some(frames), move |state| {
        let trailer_sha256 = Arc::clone(&trailer_sha256);
        let metrics = Arc::clone(&metrics);
        async move {
            let mut frames = state?;
            loop {
                let next = match tokio::time::timeout(idle_timeout, frames.next()).await {
                    Err(_) => Err(Error::Truncated {
                        reason: format!("no request data for {idle_timeout:?}; upload abandoned"),
                    }),
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => Err(Error::Truncated {
                        reason: format!("the request body broke off: {e}"),
                    }),
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => {
                            metrics
                                .bytes_received
                                .fetch_add(data.len() as u64, Ordering::Relaxed);
                            return Some((Ok(data), Some(frames)));
                        }
                        Err(frame) => {
                            let Ok(trailers) = frame.into_trailers() else {
                                continue;
                            };
                            if trailers.get_all(HEADER_SHA256).iter().nth(1).is_some() {
                                return Some((
                                    Err(Error::InvalidArgument {
                                        reason: format!(
                                            "trailer {HEADER_SHA256} appears more than once"
                                        ),
                                    }),
                                    None,
                                ));
                            }
                            match trailers.get(HEADER_SHA256).map(parse_sha256) {
                                Some(Ok(digest)) => {
                                    let _ = trailer_sha256.set(digest);
                                    continue;
                                }
                                Some(Err(e)) => Err(e),
                                None => continue,
                            }
                        }
                    },
                };
                return Some((next, None));
            }
        }
    })
    .boxed()
}

pub(crate) fn parse_sha256(value: &http::HeaderValue) -> Result<Sha256Digest, Error> {
    value
        .to_str()
        .map_err(|_| Error::InvalidArgument {
            reason: format!("{HEADER_SHA256} is not ASCII"),
        })?
        .parse()
}
