//! Deterministic test data and streams, generated at run time: shared by the integration
//! tests and by the operations fuzz target (which includes this file by path).

use asterope::{ByteStream, Result, Sha256Digest};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

/// `len` pseudo-random bytes determined by `seed` (xorshift64*), generated at run time.
pub fn pattern(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(data).into())
}

/// Splits `data` into a stream of `chunk`-sized pieces.
pub fn chunked(data: Bytes, chunk: usize) -> ByteStream {
    let pieces: Vec<Result<Bytes>> = (0..data.len())
        .step_by(chunk.max(1))
        .map(|at| Ok(data.slice(at..(at + chunk).min(data.len()))))
        .collect();
    stream::iter(pieces).boxed()
}

/// One mebibyte.
pub const MIB: usize = 1 << 20;
