//! The unencrypted message envelope (`mtproto_description.md`, "Unencrypted Message"),
//! `auth_key_id = 0`, used by the handshake and the session layer: `auth_key_id = 0 (int64) ‖
//! message_id (int64) ‖ message_data_length (int32) ‖ message_data`.
//!
//! The handshake state machines exchange bare TL bodies; a driver wraps them with [`wrap`] and
//! unwraps the peer's with [`unwrap`]. (The session layer may provide its own msg_id generator;
//! [`msg_id_from_time`] is the simple stateless rule.)

use alloc::vec::Vec;
use core::fmt;

use crate::time::UnixTime;

/// Length of the envelope header.
pub const HEADER_LEN: usize = 20;

/// Longest body an unencrypted message can carry: `message_data_length` is a TL `int32`.
/// (Handshake bodies are under 1 KiB.)
pub const MAX_BODY_LEN: usize = i32::MAX as usize;

/// A malformed unencrypted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlainError {
    /// Fewer than 20 bytes.
    TooShort,
    /// `auth_key_id` is not zero: this is an encrypted message.
    NotPlain,
    /// `message_data_length` disagrees with the bytes present (or is negative).
    BadLength,
    /// [`try_wrap`]: the body is longer than [`MAX_BODY_LEN`].
    TooLong,
}

impl fmt::Display for PlainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooShort => "unencrypted message shorter than its header",
            Self::NotPlain => "auth_key_id of an unencrypted message is not zero",
            Self::BadLength => "message_data_length does not match the message",
            Self::TooLong => "body too long for an unencrypted message",
        })
    }
}

impl core::error::Error for PlainError {}

/// A message id for a client message sent at `now`: `unixtime << 32` plus the fraction of the
/// second in the low 32 bits, rounded down to a multiple of 4 (client ids are divisible by 4).
///
/// The high half holds the unix time **modulo 2^32**, as the protocol's 32-bit times do: ids keep
/// advancing until 2106-02-07, then wrap (a `UnixTime` reaches at most the year 2554, so this is
/// the only lossy case, and it is deliberate rather than an overflow). From 2038-01-19 the id's
/// top bit is set and the returned `i64` (the TL `long` bit pattern) is negative.
pub fn msg_id_from_time(now: UnixTime) -> i64 {
    let secs = now.as_secs() & 0xFFFF_FFFF;
    // subsec_nanos < 10^9 < 2^30: the shifted value is below 2^62; the quotient is below 2^32.
    let frac = (u64::from(now.subsec_nanos()) << 32) / 1_000_000_000;
    let id = (secs << 32) | (frac & 0xFFFF_FFFC);
    id.cast_signed()
}

/// `message_data_length` for a body of `len` bytes.
fn data_length(len: usize) -> Result<[u8; 4], PlainError> {
    if len > MAX_BODY_LEN {
        return Err(PlainError::TooLong);
    }
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| PlainError::TooLong)
}

/// Wraps a TL body: `0 ‖ msg_id ‖ len ‖ body`, or [`PlainError::TooLong`] if `body` is longer
/// than [`MAX_BODY_LEN`].
pub fn try_wrap(msg_id: i64, body: &[u8]) -> Result<Vec<u8>, PlainError> {
    let len = data_length(body.len())?;
    // body.len() <= i32::MAX here, so the sum cannot overflow.
    let mut out = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&msg_id.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    Ok(out)
}

/// Wraps a TL body: `0 ‖ msg_id ‖ len ‖ body`.
///
/// Handshake bodies are far below [`MAX_BODY_LEN`]. For a longer body (which cannot be expressed)
/// the length field saturates at `i32::MAX`, so the peer rejects the message as malformed
/// instead of misframing it; use [`try_wrap`] to get an error instead.
pub fn wrap(msg_id: i64, body: &[u8]) -> Vec<u8> {
    let len = data_length(body.len()).unwrap_or(i32::MAX.to_le_bytes());
    let mut out = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&msg_id.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    out
}

/// Splits an unencrypted message into `(msg_id, body)`.
pub fn unwrap(msg: &[u8]) -> Result<(i64, &[u8]), PlainError> {
    let (key_id, rest) = msg.split_at_checked(8).ok_or(PlainError::TooShort)?;
    let (msg_id, rest) = rest.split_at_checked(8).ok_or(PlainError::TooShort)?;
    let (len, body) = rest.split_at_checked(4).ok_or(PlainError::TooShort)?;
    if key_id.iter().any(|&b| b != 0) {
        return Err(PlainError::NotPlain);
    }
    // An `int32`: a negative length (top bit set) never matches.
    let len = i32::from_le_bytes(len.try_into().map_err(|_| PlainError::TooShort)?);
    if usize::try_from(len).ok() != Some(body.len()) {
        return Err(PlainError::BadLength);
    }
    let msg_id = i64::from_le_bytes(msg_id.try_into().map_err(|_| PlainError::TooShort)?);
    Ok((msg_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_req_pq_multi_envelope() {
        // mtproto_samples-auth_key.md step 1: msg_id 60970500EBE57767, length 20.
        let body = [
            0xF1, 0x8E, 0x7E, 0xBE, 0x79, 0xF0, 0xAF, 0xB5, 0x02, 0x52, 0xE5, 0xFC, 0x96, 0x92,
            0x4B, 0xFC, 0xEC, 0xDA, 0x4F, 0x05,
        ];
        let msg_id = i64::from_le_bytes([0x60, 0x97, 0x05, 0x00, 0xEB, 0xE5, 0x77, 0x67]);
        let msg = wrap(msg_id, &body);
        let expected_head = [
            0u8, 0, 0, 0, 0, 0, 0, 0, 0x60, 0x97, 0x05, 0x00, 0xEB, 0xE5, 0x77, 0x67, 0x14, 0, 0, 0,
        ];
        assert_eq!(&msg[..20], &expected_head);
        assert_eq!(unwrap(&msg), Ok((msg_id, &body[..])));
        // The sample's msg_id encodes unixtime 0x6777E5EB in the high half.
        assert_eq!((msg_id as u64) >> 32, 0x6777_E5EB);
    }

    #[test]
    fn msg_id_follows_the_clock() {
        let t = UnixTime::from_nanos(1_735_910_891 * 1_000_000_000 + 500_000_000);
        let id = msg_id_from_time(t) as u64;
        assert_eq!(id >> 32, 1_735_910_891);
        assert_eq!(id & 0xFFFF_FFFF, 0x8000_0000);
        assert_eq!(id % 4, 0);
    }

    #[test]
    fn msg_id_time_wraps_modulo_2_pow_32() {
        // 2038-01-19 03:14:08 = 2^31 s: top bit set, a negative i64.
        let id = msg_id_from_time(UnixTime::from_secs(1 << 31));
        assert_eq!(id as u64, 1 << 63);
        assert!(id < 0);
        // 2^32 + 5 seconds (year 2106): the high half is 5, the seconds modulo 2^32.
        let t = UnixTime::from_nanos(((1u64 << 32) + 5) * 1_000_000_000 + 250_000_000);
        assert_eq!(msg_id_from_time(t) as u64, (5 << 32) | 0x4000_0000);
        // The largest UnixTime (year 2554) still gives an id, no overflow.
        let max = UnixTime::from_nanos(u64::MAX);
        let secs = u64::MAX / 1_000_000_000;
        assert_eq!((msg_id_from_time(max) as u64) >> 32, secs % (1 << 32));
    }

    #[test]
    fn length_field_is_a_non_negative_int32() {
        assert_eq!(data_length(0), Ok([0; 4]));
        assert_eq!(data_length(MAX_BODY_LEN), Ok([0xFF, 0xFF, 0xFF, 0x7F]));
        assert_eq!(data_length(MAX_BODY_LEN + 1), Err(PlainError::TooLong));
        assert_eq!(data_length(usize::MAX), Err(PlainError::TooLong));
        assert_eq!(try_wrap(8, b"abcd"), Ok(wrap(8, b"abcd")));
        // A length with the top bit set is negative: rejected even if the bytes "fit".
        let mut m = wrap(4, b"abcd");
        m[19] = 0x80;
        assert_eq!(unwrap(&m), Err(PlainError::BadLength));
    }

    #[test]
    fn rejects_malformed_envelopes() {
        assert_eq!(unwrap(&[0; 19]), Err(PlainError::TooShort));
        let mut m = wrap(4, b"abcd");
        assert_eq!(unwrap(&m[..23]), Err(PlainError::BadLength));
        m[0] = 1;
        assert_eq!(unwrap(&m), Err(PlainError::NotPlain));
        let mut m = wrap(4, b"abcd");
        m[16] = 0xFF;
        assert_eq!(unwrap(&m), Err(PlainError::BadLength));
    }
}
