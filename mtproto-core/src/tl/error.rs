//! The one error type of the TL layer.

use core::fmt;

/// Everything that can go wrong while reading or writing TL.
///
/// Every malformed input maps to one of these; nothing in the TL layer panics on hostile bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlError {
    /// The input ended before the value did.
    UnexpectedEnd {
        /// Bytes the next item needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A boxed value started with a constructor id this decoder does not know (for an enum: none of
    /// its variants). The session layer can pass such bodies to the caller untouched.
    UnknownConstructor {
        /// The constructor id that was read.
        id: u32,
    },
    /// A boxed value of a single-constructor type started with another constructor id.
    UnexpectedConstructor {
        /// The id the type requires.
        expected: u32,
        /// The id that was read.
        found: u32,
    },
    /// A length prefix (of an `Object` body or a vector) was negative.
    NegativeLength(i32),
    /// A vector claimed more elements than [`Limits::max_vector_len`](super::Limits) allows.
    VectorTooLong {
        /// The claimed element count.
        len: u32,
        /// The configured maximum.
        max: u32,
    },
    /// A vector claimed more elements than the remaining bytes can possibly hold (checked before
    /// anything is allocated).
    VectorExceedsInput {
        /// The claimed element count.
        len: u32,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Values nested deeper than [`Limits::max_depth`](super::Limits).
    TooDeep {
        /// The configured maximum.
        max: u32,
    },
    /// The input is larger than [`Limits::max_message_size`](super::Limits).
    MessageTooLarge {
        /// Input length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A `bytes`/`string` value is not in its canonical form: first byte 255, a long (0xfe) prefix
    /// for a length below 254, or non-zero padding (`mtproto_serialize.md`: padding is "0 to 3
    /// characters containing 0").
    NonCanonical,
    /// A `Bool` was neither `boolTrue` nor `boolFalse`.
    InvalidBool(u32),
    /// A `string` read as `&str` was not UTF-8.
    InvalidUtf8,
    /// A value is too large to be encoded (a byte string of 2^24 bytes or more, a vector or `Object`
    /// body longer than `i32::MAX`).
    ValueTooLarge,
    /// The output buffer is too small (size it with `Serialize::serialized_len`).
    BufferTooSmall {
        /// Bytes the next write needed.
        needed: usize,
        /// Bytes that were left in the buffer.
        available: usize,
    },
    /// A complete value was decoded but bytes were left over.
    TrailingBytes {
        /// How many bytes were left.
        remaining: usize,
    },
}

impl fmt::Display for TlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnexpectedEnd { needed, remaining } => {
                write!(f, "TL input ended: needed {needed} bytes, {remaining} left")
            }
            Self::UnknownConstructor { id } => write!(f, "unknown TL constructor {id:#010x}"),
            Self::UnexpectedConstructor { expected, found } => {
                write!(
                    f,
                    "expected TL constructor {expected:#010x}, found {found:#010x}"
                )
            }
            Self::NegativeLength(n) => write!(f, "negative TL length {n}"),
            Self::VectorTooLong { len, max } => {
                write!(f, "TL vector of {len} elements exceeds the limit of {max}")
            }
            Self::VectorExceedsInput { len, remaining } => write!(
                f,
                "TL vector of {len} elements cannot fit in the {remaining} bytes left"
            ),
            Self::TooDeep { max } => write!(f, "TL values nested deeper than {max}"),
            Self::MessageTooLarge { len, max } => {
                write!(f, "TL input of {len} bytes exceeds the limit of {max}")
            }
            Self::NonCanonical => f.write_str("non-canonical TL byte string"),
            Self::InvalidBool(id) => write!(f, "invalid TL Bool constructor {id:#010x}"),
            Self::InvalidUtf8 => f.write_str("TL string is not UTF-8"),
            Self::ValueTooLarge => f.write_str("value too large to encode in TL"),
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "TL output buffer too small: needed {needed} bytes, {available} left"
            ),
            Self::TrailingBytes { remaining } => {
                write!(f, "{remaining} bytes left after a complete TL value")
            }
        }
    }
}

impl core::error::Error for TlError {}
