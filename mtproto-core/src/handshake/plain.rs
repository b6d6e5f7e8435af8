//! Unencrypted messages (`mtproto_description.md`, "Unencrypted Message"), the envelope of every
//! handshake message: `auth_key_id = 0 (int64) ‖ message_id (int64) ‖ message_data_length (int32)
//! ‖ message_data`.
//!
//! The handshake state machines exchange bare TL bodies; a driver wraps them with [`wrap`] and
//! unwraps the peer's with [`unwrap`]. (The session layer may provide its own msg_id generator;
//! [`msg_id_from_time`] is the simple stateless rule.)

use alloc::vec::Vec;
use core::fmt;

use crate::time::UnixTime;

/// Length of the envelope header.
pub const HEADER_LEN: usize = 20;

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
}

impl fmt::Display for PlainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooShort => "unencrypted message shorter than its header",
            Self::NotPlain => "auth_key_id of an unencrypted message is not zero",
            Self::BadLength => "message_data_length does not match the message",
        })
    }
}

impl core::error::Error for PlainError {}

/// A message id for a client message sent at `now`: `unixtime << 32` plus the fraction of the
/// second in the low 32 bits, rounded down to a multiple of 4 (client ids are divisible by 4).
pub fn msg_id_from_time(now: UnixTime) -> i64 {
    let secs = now.as_secs();
    let frac = (u64::from(now.subsec_nanos()) << 32) / 1_000_000_000;
    let id = (secs << 32) | (frac & 0xFFFF_FFFC);
    id as i64
}

/// Wraps a TL body: `0 ‖ msg_id ‖ len ‖ body`.
pub fn wrap(msg_id: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&msg_id.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
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
    let len = u32::from_le_bytes(len.try_into().map_err(|_| PlainError::TooShort)?);
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
