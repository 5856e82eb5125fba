//! Property of the chunked decoder.
//!
//! 1. Arbitrary bytes: no panic, never more consumed than given, and the
//!    same answer (body, bytes consumed, completion or error) whether the
//!    input comes whole or one byte per call.
//! 2. Round trip: the input, cut into chunks at boundaries its own bytes
//!    choose, then encoded, decodes to itself, and the decoder stops at the
//!    end of the body, leaving pipelined bytes alone.
#![allow(dead_code)]

use pushwire::wire::chunked::{
    encode_chunk, encode_last, ChunkedDecoder, ChunkedError, ChunkedLimits,
};

/// Small limits, so the fuzzer reaches them.
pub const LIMITS: ChunkedLimits = ChunkedLimits {
    max_ext_bytes: 64,
    max_trailer_bytes: 256,
};
pub const MAX_BODY: usize = 4096;

pub fn check(data: &[u8]) {
    let whole = decode_whole(data, MAX_BODY);
    if let Ok((_, consumed, _)) = &whole {
        assert!(*consumed <= data.len());
    }
    assert_eq!(
        whole,
        decode_bytewise(data, MAX_BODY),
        "whole vs byte-by-byte"
    );

    let wire = encode(data);
    let mut pipelined = wire.clone();
    pipelined.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let decoded = Ok((data.to_vec(), wire.len(), true));
    assert_eq!(decode_whole(&pipelined, usize::MAX), decoded);
    assert_eq!(decode_bytewise(&pipelined, usize::MAX), decoded);
}

/// Encodes `data` as a chunked body; each chunk's length (1 to 32) is
/// taken from its first byte.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut rest = data;
    while let Some(&first) = rest.first() {
        let n = (usize::from(first) % 32 + 1).min(rest.len());
        encode_chunk(&mut wire, &rest[..n]);
        rest = &rest[n..];
    }
    encode_last(&mut wire);
    wire
}

/// (body, bytes consumed, done) or the error.
pub type Outcome = Result<(Vec<u8>, usize, bool), ChunkedError>;

pub fn decode_whole(input: &[u8], max_body: usize) -> Outcome {
    let mut out = Vec::new();
    let progress = ChunkedDecoder::new(LIMITS).decode(input, &mut out, max_body)?;
    Ok((out, progress.consumed, progress.done))
}

pub fn decode_bytewise(input: &[u8], max_body: usize) -> Outcome {
    let mut decoder = ChunkedDecoder::new(LIMITS);
    let mut out = Vec::new();
    let mut consumed = 0;
    for b in input {
        let progress = decoder.decode(std::slice::from_ref(b), &mut out, max_body)?;
        assert!(progress.consumed <= 1);
        consumed += progress.consumed;
        if progress.done {
            return Ok((out, consumed, true));
        }
        // A streaming decoder takes every byte until the body ends.
        assert_eq!(progress.consumed, 1);
    }
    Ok((out, consumed, false))
}
