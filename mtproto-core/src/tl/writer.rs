//! [`Writer`]: TL output into a caller-owned buffer.

use core::fmt;

use super::{BOOL_FALSE_ID, BOOL_TRUE_ID, TlError, VECTOR_ID};

/// The largest length a TL `bytes`/`string` can carry (3-byte length field).
pub const MAX_BYTES_LEN: usize = (1 << 24) - 1;

/// Encoded size of a TL `bytes`/`string` value holding `len` bytes (prefix + data + padding).
/// Saturates (to a value no buffer can hold) for lengths near `usize::MAX`, which no slice has.
pub const fn bytes_len(len: usize) -> usize {
    // Length prefix (1 or 4 bytes) plus 3, then rounded down to a multiple of 4.
    let header_plus_3 = if len <= 253 { 4 } else { 7 };
    len.saturating_add(header_plus_3) & !3
}

/// Writes TL into a caller-provided `&mut [u8]`. It never allocates: size the buffer with
/// `Serialize::serialized_len` first. A write that does not fit fails with
/// [`TlError::BufferTooSmall`] and leaves the buffer contents past [`position`](Self::position)
/// unspecified.
///
/// `Debug` shows the position and capacity only, never the buffer (it may hold a plaintext
/// about to be encrypted).
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("position", &self.pos)
            .field("capacity", &self.buf.len())
            .finish()
    }
}

impl<'b> Writer<'b> {
    /// A writer starting at the beginning of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Space left in the buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Writes raw bytes (no length prefix, no padding).
    pub fn write_raw(&mut self, data: &[u8]) -> Result<(), TlError> {
        let available = self.remaining();
        let end = self.pos.saturating_add(data.len());
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(TlError::BufferTooSmall {
                needed: data.len(),
                available,
            })?;
        dst.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    /// Writes a little-endian `u32` (constructor id, `#` nat, flags).
    pub fn write_u32(&mut self, v: u32) -> Result<(), TlError> {
        self.write_raw(&v.to_le_bytes())
    }

    /// Writes a TL `int`.
    pub fn write_i32(&mut self, v: i32) -> Result<(), TlError> {
        self.write_raw(&v.to_le_bytes())
    }

    /// Writes a TL `long`.
    pub fn write_i64(&mut self, v: i64) -> Result<(), TlError> {
        self.write_raw(&v.to_le_bytes())
    }

    /// Writes a TL `double`.
    pub fn write_f64(&mut self, v: f64) -> Result<(), TlError> {
        self.write_raw(&v.to_le_bytes())
    }

    /// Writes a boxed TL `Bool`.
    pub fn write_bool(&mut self, v: bool) -> Result<(), TlError> {
        self.write_u32(if v { BOOL_TRUE_ID } else { BOOL_FALSE_ID })
    }

    /// Writes a TL `int128`.
    pub fn write_int128(&mut self, v: &[u8; 16]) -> Result<(), TlError> {
        self.write_raw(v)
    }

    /// Writes a TL `int256`.
    pub fn write_int256(&mut self, v: &[u8; 32]) -> Result<(), TlError> {
        self.write_raw(v)
    }

    /// Writes a TL `bytes`/`string`: length prefix, data, zero padding to a multiple of 4.
    /// Fails with [`TlError::ValueTooLarge`] above [`MAX_BYTES_LEN`].
    pub fn write_bytes(&mut self, data: &[u8]) -> Result<(), TlError> {
        let len = data.len();
        if len > MAX_BYTES_LEN {
            return Err(TlError::ValueTooLarge);
        }
        let total = bytes_len(len);
        if total > self.remaining() {
            return Err(TlError::BufferTooSmall {
                needed: total,
                available: self.remaining(),
            });
        }
        let header = match u8::try_from(len) {
            Ok(short) if short <= 253 => {
                self.write_raw(&[short])?;
                1
            }
            _ => {
                // len <= MAX_BYTES_LEN (checked above): the 3 low bytes hold it.
                let l = u32::try_from(len).map_err(|_| TlError::ValueTooLarge)?;
                let [l0, l1, l2, _] = l.to_le_bytes();
                self.write_raw(&[254, l0, l1, l2])?;
                4
            }
        };
        self.write_raw(data)?;
        let pad = total.saturating_sub(header).saturating_sub(len);
        self.write_raw([0u8; 3].get(..pad).unwrap_or(&[]))
    }

    /// Writes a vector's element count (`#` nat); for a boxed `Vector` also its constructor id.
    pub fn write_vector_header(&mut self, len: usize, boxed: bool) -> Result<(), TlError> {
        let n = i32::try_from(len).map_err(|_| TlError::ValueTooLarge)?;
        if boxed {
            self.write_u32(VECTOR_ID)?;
        }
        self.write_i32(n)
    }
}
