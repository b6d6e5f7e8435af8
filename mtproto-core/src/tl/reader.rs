//! [`Reader`]: a bounded, zero-copy cursor over TL input.

use alloc::vec::Vec;
use core::fmt;

use super::{BOOL_FALSE_ID, BOOL_TRUE_ID, Deserialize, TlError, VECTOR_ID};

/// Hard limits applied while decoding hostile input. The defaults are safe for MTProto traffic;
/// every field can be tightened (or loosened) per [`Reader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of composite values (each constructor and each vector is one level).
    pub max_depth: u32,
    /// Maximum element count of a single vector. Independently of this, a vector's count is checked
    /// against the bytes actually remaining (every element needs at least its minimal encoded size)
    /// before anything is allocated.
    pub max_vector_len: u32,
    /// Maximum size of the whole input given to [`Reader::with_limits`].
    pub max_message_size: usize,
}

impl Limits {
    /// The defaults: depth 32, vectors of at most 2^20 elements, messages of at most 16 MiB.
    ///
    /// MTProto itself needs far less: containers carry at most 1024 messages and `msg_resend_req`
    /// at most 8192 ids (`mtproto_service_messages*.md`).
    pub const DEFAULT: Self = Self {
        max_depth: 32,
        max_vector_len: 1 << 20,
        max_message_size: 16 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A cursor over TL input that never copies payloads: `bytes`/`string` come back as `&'a [u8]`,
/// `int128`/`int256` as `&'a [u8; 16]`/`&'a [u8; 32]`, all borrowed from the input.
///
/// After an error the position is unspecified; drop the reader (decoding is all-or-nothing).
///
/// Vectors are pre-allocated from their claimed count only within a budget of
/// [`PREALLOC_PER_INPUT_BYTE`] heap bytes per input byte, shared by all vectors the reader
/// decodes; past it a vector grows as elements actually decode. So a hostile count never makes
/// the reader reserve more than a small multiple of the input, whatever `size_of::<T>()` is and
/// however deeply vectors nest.
///
/// `Debug` shows lengths and limits only, never the input (which may be decrypted secrets,
/// e.g. the RSA_PAD plaintext holding `new_nonce`).
#[derive(Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
    depth: u32,
    limits: Limits,
    /// Heap bytes still available for up-front vector capacity.
    prealloc_budget: usize,
}

/// Up-front vector capacity a [`Reader`] may reserve, in heap bytes per input byte (over the
/// whole input, all vectors together). 2 matches the densest MTProto type: a bare `message` is
/// 16 wire bytes and 32 bytes in memory, so a full `msg_container` is still allocated exactly
/// once; anything denser than that grows by doubling once its elements are really there.
pub const PREALLOC_PER_INPUT_BYTE: usize = 2;

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("position", &self.consumed)
            .field("remaining", &self.rest.len())
            .field("depth", &self.depth)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Rounds `n` up to a multiple of 4 (`None` on overflow).
const fn pad4(n: usize) -> Option<usize> {
    match n.checked_add(3) {
        Some(v) => Some(v & !3),
        None => None,
    }
}

impl<'a> Reader<'a> {
    /// A reader with [`Limits::DEFAULT`]. Fails if `input` exceeds the maximum message size.
    pub fn new(input: &'a [u8]) -> Result<Self, TlError> {
        Self::with_limits(input, Limits::DEFAULT)
    }

    /// A reader with explicit limits. Fails if `input` exceeds `limits.max_message_size`.
    pub fn with_limits(input: &'a [u8], limits: Limits) -> Result<Self, TlError> {
        if input.len() > limits.max_message_size {
            return Err(TlError::MessageTooLarge {
                len: input.len(),
                max: limits.max_message_size,
            });
        }
        Ok(Self {
            rest: input,
            consumed: 0,
            depth: 0,
            limits,
            prealloc_budget: input.len().saturating_mul(PREALLOC_PER_INPUT_BYTE),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.consumed
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The unconsumed input, without consuming it.
    pub fn remaining_bytes(&self) -> &'a [u8] {
        self.rest
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Succeeds only if all input has been consumed.
    pub fn finish(&self) -> Result<(), TlError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(TlError::TrailingBytes {
                remaining: self.rest.len(),
            })
        }
    }

    /// Consumes exactly `n` raw bytes.
    pub fn read_raw(&mut self, n: usize) -> Result<&'a [u8], TlError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(TlError::UnexpectedEnd {
                needed: n,
                remaining: self.rest.len(),
            })?;
        self.rest = tail;
        self.consumed = self.consumed.saturating_add(n);
        Ok(head)
    }

    /// Consumes everything that is left (used for a trailing `Object`, e.g. `rpc_result.result`).
    pub fn read_rest(&mut self) -> &'a [u8] {
        let all = self.rest;
        self.consumed = self.consumed.saturating_add(all.len());
        self.rest = &[];
        all
    }

    fn read_array<const N: usize>(&mut self) -> Result<&'a [u8; N], TlError> {
        let raw = self.read_raw(N)?;
        // `read_raw` returned exactly N bytes, so this conversion cannot fail.
        raw.try_into().map_err(|_| TlError::UnexpectedEnd {
            needed: N,
            remaining: raw.len(),
        })
    }

    /// Reads the next 4 bytes as a little-endian `u32` without consuming them (a constructor id).
    pub fn peek_u32(&self) -> Result<u32, TlError> {
        let head = self.rest.first_chunk::<4>().ok_or(TlError::UnexpectedEnd {
            needed: 4,
            remaining: self.rest.len(),
        })?;
        Ok(u32::from_le_bytes(*head))
    }

    /// Reads a little-endian `u32` (a constructor id, a `#` nat, or flags).
    pub fn read_u32(&mut self) -> Result<u32, TlError> {
        Ok(u32::from_le_bytes(*self.read_array::<4>()?))
    }

    /// Reads a TL `int`.
    pub fn read_i32(&mut self) -> Result<i32, TlError> {
        Ok(i32::from_le_bytes(*self.read_array::<4>()?))
    }

    /// Reads a TL `long`.
    pub fn read_i64(&mut self) -> Result<i64, TlError> {
        Ok(i64::from_le_bytes(*self.read_array::<8>()?))
    }

    /// Reads a TL `double`.
    pub fn read_f64(&mut self) -> Result<f64, TlError> {
        Ok(f64::from_le_bytes(*self.read_array::<8>()?))
    }

    /// Reads a boxed TL `Bool` (`boolTrue#997275b5` / `boolFalse#bc799737`).
    pub fn read_bool(&mut self) -> Result<bool, TlError> {
        match self.read_u32()? {
            BOOL_TRUE_ID => Ok(true),
            BOOL_FALSE_ID => Ok(false),
            other => Err(TlError::InvalidBool(other)),
        }
    }

    /// Reads a TL `int128`, borrowed.
    pub fn read_int128(&mut self) -> Result<&'a [u8; 16], TlError> {
        self.read_array::<16>()
    }

    /// Reads a TL `int256`, borrowed.
    pub fn read_int256(&mut self) -> Result<&'a [u8; 32], TlError> {
        self.read_array::<32>()
    }

    /// Consumes a constructor id and checks it is `expected`.
    pub fn expect_constructor(&mut self, expected: u32) -> Result<(), TlError> {
        let found = self.peek_u32()?;
        if found != expected {
            return Err(TlError::UnexpectedConstructor { expected, found });
        }
        self.read_u32().map(|_| ())
    }

    /// Reads a TL `bytes` (or `string`) value, borrowed: a 1-byte length (0..=253) or `0xfe` and a
    /// 3-byte little-endian length (>= 254), the data, then zero padding to a multiple of 4
    /// (`mtproto_serialize.md`). Only the canonical form is accepted.
    pub fn read_bytes(&mut self) -> Result<&'a [u8], TlError> {
        let first = *self.rest.first().ok_or(TlError::UnexpectedEnd {
            needed: 1,
            remaining: 0,
        })?;
        let (header, len) = match first {
            0..=253 => (1usize, usize::from(first)),
            254 => {
                let h = self.rest.first_chunk::<4>().ok_or(TlError::UnexpectedEnd {
                    needed: 4,
                    remaining: self.rest.len(),
                })?;
                let len = u32::from_le_bytes([h[1], h[2], h[3], 0]) as usize;
                if len < 254 {
                    return Err(TlError::NonCanonical);
                }
                (4, len)
            }
            _ => return Err(TlError::NonCanonical),
        };
        let body_end = header.saturating_add(len);
        let total = pad4(body_end).ok_or(TlError::ValueTooLarge)?;
        if total > self.rest.len() {
            return Err(TlError::UnexpectedEnd {
                needed: total,
                remaining: self.rest.len(),
            });
        }
        let all = self.read_raw(total)?;
        let data = all.get(header..body_end).ok_or(TlError::NonCanonical)?;
        let padding = all.get(body_end..).ok_or(TlError::NonCanonical)?;
        if padding.iter().any(|&b| b != 0) {
            return Err(TlError::NonCanonical);
        }
        Ok(data)
    }

    /// Reads a TL `string` as UTF-8 text, borrowed.
    pub fn read_str(&mut self) -> Result<&'a str, TlError> {
        core::str::from_utf8(self.read_bytes()?).map_err(|_| TlError::InvalidUtf8)
    }

    /// Reads a vector's element count (for a bare `vector`; a boxed `Vector` first needs
    /// [`expect_constructor`](Self::expect_constructor)`(VECTOR_ID)`), and checks it against
    /// [`Limits::max_vector_len`] and against the bytes remaining, assuming every element needs at
    /// least `min_elem_len` bytes (values below 1 count as 1). Call this before allocating.
    pub fn read_vector_len(&mut self, min_elem_len: usize) -> Result<usize, TlError> {
        let len = self.read_u32()?;
        if len > self.limits.max_vector_len {
            return Err(TlError::VectorTooLong {
                len,
                max: self.limits.max_vector_len,
            });
        }
        let n = len as usize;
        let fits = n
            .checked_mul(min_elem_len.max(1))
            .is_some_and(|need| need <= self.rest.len());
        if !fits {
            return Err(TlError::VectorExceedsInput {
                len,
                remaining: self.rest.len(),
            });
        }
        Ok(n)
    }

    /// How many of `n` claimed elements of `T` may be reserved up front: all of them if they fit
    /// the remaining pre-allocation budget, else as many as do (the vector then grows as its
    /// elements decode). Charges the budget.
    fn take_prealloc<T>(&mut self, n: usize) -> usize {
        let size = core::mem::size_of::<T>();
        // Zero-sized elements never allocate (`checked_div` is `None` for them).
        let Some(fit) = self.prealloc_budget.checked_div(size) else {
            return n;
        };
        let cap = n.min(fit);
        self.prealloc_budget = self
            .prealloc_budget
            .saturating_sub(cap.saturating_mul(size));
        cap
    }

    /// Reads a bare `vector` whose elements are decoded by `elem`; each element must take at least
    /// `min_elem_len` bytes. Counts as one nesting level.
    pub fn read_bare_vector_with<T>(
        &mut self,
        min_elem_len: usize,
        mut elem: impl FnMut(&mut Self) -> Result<T, TlError>,
    ) -> Result<Vec<T>, TlError> {
        self.nested(|r| {
            let n = r.read_vector_len(min_elem_len)?;
            let mut out = Vec::with_capacity(r.take_prealloc::<T>(n));
            for _ in 0..n {
                out.push(elem(r)?);
            }
            Ok(out)
        })
    }

    /// Reads a boxed `Vector` (`vector#1cb5c415`) whose elements are decoded by `elem`.
    pub fn read_vector_with<T>(
        &mut self,
        min_elem_len: usize,
        elem: impl FnMut(&mut Self) -> Result<T, TlError>,
    ) -> Result<Vec<T>, TlError> {
        self.expect_constructor(VECTOR_ID)?;
        self.read_bare_vector_with(min_elem_len, elem)
    }

    /// Reads a boxed `Vector<T>` of any [`Deserialize`] element type.
    pub fn read_vector<T: Deserialize<'a>>(&mut self) -> Result<Vec<T>, TlError> {
        self.read_vector_with(T::MIN_SERIALIZED_LEN, T::deserialize)
    }

    /// Runs `f` one nesting level deeper, failing with [`TlError::TooDeep`] past
    /// [`Limits::max_depth`]. Decoders of composite values wrap their body in this.
    pub fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, TlError>,
    ) -> Result<T, TlError> {
        if self.depth >= self.limits.max_depth {
            return Err(TlError::TooDeep {
                max: self.limits.max_depth,
            });
        }
        self.depth = self.depth.saturating_add(1);
        let out = f(self);
        self.depth = self.depth.saturating_sub(1);
        out
    }
}
