//! Helpers shared by the integration tests (each test binary uses a subset).
#![allow(dead_code)]

use mtproto::core::transport::Frame;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Decodes a hex string (as the spec pages print byte dumps). Panics on odd length or a bad digit.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Decodes a hex string given in pieces (long dumps split over lines).
pub fn hex_parts(parts: &[&str]) -> Vec<u8> {
    hex(&parts.concat())
}

/// A seeded CSPRNG: the same seed gives the same bytes.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A transport event, owned (frames borrow the decoder's buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A payload and whether the client asked for a quick ack.
    Payload(Vec<u8>, bool),
    /// A quick-ack token.
    Ack(u32),
    /// A transport error code.
    Err(i32),
}

/// Copies a decoded frame out of the decoder.
pub fn own(f: Frame<'_>) -> Ev {
    match f {
        Frame::Payload { data, quick_ack } => Ev::Payload(data.to_vec(), quick_ack),
        Frame::QuickAck(t) => Ev::Ack(t.get()),
        Frame::TransportError(c) => Ev::Err(c),
    }
}

/// `bytes` in the shape of an encrypted MTProto message (non-zero auth_key_id, the 24-byte
/// header, then whole 16-byte AES blocks): what the padded intermediate framing carries. Its
/// decoder tells the 0..=15 padding bytes from the payload by this layout, so tests of that
/// framing send such payloads and expect them back exactly. Truncates, or pads with zeros.
pub fn encrypted_shape(bytes: &[u8]) -> Vec<u8> {
    let mut p = bytes.to_vec();
    let len = 24 + p.len().saturating_sub(24) / 16 * 16;
    p.resize(len, 0);
    p[0] |= 1;
    p
}
