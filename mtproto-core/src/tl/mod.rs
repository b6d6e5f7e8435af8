//! TL binary serialization and the MTProto schema types. Knows nothing of sessions.
//!
//! - [`Reader`] decodes from a borrowed `&'a [u8]` without copying payloads: `bytes`/`string` are
//!   `&'a [u8]`, `int128`/`int256` are `&'a [u8; 16]`/`&'a [u8; 32]`, and an `Object` field
//!   (`rpc_result.result`, `message.body`) is the raw `&'a [u8]` body, passed on untouched.
//!   It enforces [`Limits`] (nesting depth, vector length checked against the remaining input
//!   *before* allocating, total input size): hostile input gets a [`TlError`], never a panic.
//! - [`Writer`] encodes into a caller buffer; every [`Serialize`] type reports its exact
//!   [`serialized_len`](Serialize::serialized_len) first, and [`Serialize::to_vec`] does both.
//! - [`schema`] holds every constructor and function of the MTProto schema (`mtproto-core/tl/*.tl`,
//!   generated into `schema.rs` by `tests/tl_schema.rs`): structs in [`schema::types`],
//!   multi-constructor boxed types as enums in [`schema::enums`], RPC functions in
//!   [`schema::functions`], and [`schema::Object`] / [`schema::Function`] decode any boxed value by
//!   its constructor id.
//! - [`Serialize`], [`Deserialize`], [`Identifiable`] and [`RemoteCall`] are open: implement them
//!   for your own API types (e.g. `invokeWithLayer`), or wrap pre-serialized bytes in [`Raw`].
//!
//! # Using the handshake types
//!
//! ```
//! use mtproto_core::tl::schema::{enums, functions, types};
//! use mtproto_core::tl::{Deserialize, Serialize, TlError};
//!
//! # fn main() -> Result<(), TlError> {
//! // Client: req_pq_multi, then the server's resPQ.
//! let nonce = [7u8; 16];
//! let query = functions::ReqPqMulti { nonce: &nonce }.to_vec()?;
//! assert_eq!(query.len(), 20);
//!
//! let server_nonce = [9u8; 16];
//! let res_pq = types::ResPq {
//!     nonce: &nonce,
//!     server_nonce: &server_nonce,
//!     pq: &[0x17, 0xED, 0x48, 0x94, 0x1A, 0x08, 0xF9, 0x81],
//!     server_public_key_fingerprints: vec![-3414540481677951611],
//! }
//! .to_vec()?;
//! // Decoding borrows from the input; `from_bytes` rejects trailing bytes.
//! let answer = types::ResPq::from_bytes(&res_pq)?;
//! assert_eq!(answer.nonce, &nonce);
//!
//! // Multi-constructor answers decode into enums, dispatching on the constructor id.
//! let ok = types::DhGenOk { nonce: &nonce, server_nonce: &server_nonce, new_nonce_hash1: &[1; 16] };
//! match enums::SetClientDhParamsAnswer::from_bytes(&ok.to_vec()?)? {
//!     enums::SetClientDhParamsAnswer::DhGenOk(x) => assert_eq!(x.new_nonce_hash1, &[1; 16]),
//!     _ => unreachable!(),
//! }
//! // Inner data that gets encrypted is plain TL too (`p_q_inner_data_dc`, `client_DH_inner_data`),
//! // and the RSA key fingerprint input is the *bare* `rsa_public_key`:
//! let key = types::RsaPublicKey { n: &[0xC1, 0x50], e: &[1, 0, 1] };
//! let mut buf = [0u8; 8];
//! let mut w = mtproto_core::tl::Writer::new(&mut buf);
//! key.serialize_bare(&mut w)?;
//! assert_eq!(w.written(), &[2, 0xC1, 0x50, 0, 3, 1, 0, 1]);
//! # Ok(()) }
//! ```
//!
//! No panics from the wire: indexing, unchecked arithmetic and lossy casts are denied in
//! this module (tests excepted), the generated [`schema`] included.

mod error;
mod reader;
#[rustfmt::skip]
pub mod schema;
mod writer;

use alloc::vec::Vec;

pub use error::TlError;
pub use reader::{Limits, PREALLOC_PER_INPUT_BYTE, Reader};
pub use writer::{MAX_BYTES_LEN, Writer, bytes_len};

/// Constructor id of `vector {t:Type} # [ t ] = Vector t` (`mtproto_serialize.md`).
pub const VECTOR_ID: u32 = 0x1cb5_c415;
/// Constructor id of `boolTrue = Bool`.
pub const BOOL_TRUE_ID: u32 = 0x9972_75b5;
/// Constructor id of `boolFalse = Bool`.
pub const BOOL_FALSE_ID: u32 = 0xbc79_9737;

/// A value that can be written as TL.
///
/// `serialized_len` must return exactly the number of bytes `serialize` writes, so callers can size
/// buffers up front.
pub trait Serialize {
    /// The exact encoded size in bytes.
    fn serialized_len(&self) -> usize;

    /// Writes the encoding. Fails only if the buffer is too small or a value cannot be encoded
    /// (e.g. a byte string of 2^24 bytes or more).
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError>;

    /// Writes the encoding at the start of `buf` and returns its length.
    fn serialize_into(&self, buf: &mut [u8]) -> Result<usize, TlError> {
        let mut w = Writer::new(buf);
        self.serialize(&mut w)?;
        Ok(w.position())
    }

    /// Encodes into a new, exactly sized `Vec`. A length no allocation can hold (sizes saturate
    /// rather than wrap) is [`TlError::ValueTooLarge`], not a capacity-overflow panic.
    fn to_vec(&self) -> Result<Vec<u8>, TlError> {
        let len = self.serialized_len();
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| TlError::ValueTooLarge)?;
        out.resize(len, 0);
        let n = self.serialize_into(&mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

/// A value that can be read from TL input, borrowing from it for `'a`.
pub trait Deserialize<'a>: Sized {
    /// The smallest possible encoding in bytes (used to bound vector lengths against the remaining
    /// input before allocating). Must not over-estimate.
    const MIN_SERIALIZED_LEN: usize = 4;

    /// Reads one value from `r`.
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError>;

    /// Decodes a whole buffer with [`Limits::DEFAULT`]; bytes left over are an error.
    fn from_bytes(input: &'a [u8]) -> Result<Self, TlError> {
        let mut r = Reader::new(input)?;
        let v = Self::deserialize(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// A type with a single constructor id (boxed encodings start with it).
pub trait Identifiable {
    /// The constructor id: CRC32 of the normalized TL declaration.
    const CONSTRUCTOR_ID: u32;
}

/// An RPC function: serializing it yields the query; the answer decodes as `Return`.
pub trait RemoteCall: Serialize {
    /// The answer type.
    type Return<'r>: Deserialize<'r>;
}

/// Pre-serialized TL passed through verbatim: serializes as its bytes, deserializes as all remaining
/// input (like an `Object` in last position). Use it to send a query built elsewhere, e.g. inside
/// your own `invokeWithLayer`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(pub &'a [u8]);

impl core::fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Raw(<{} bytes>)", self.0.len())
    }
}

impl Serialize for Raw<'_> {
    fn serialized_len(&self) -> usize {
        self.0.len()
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_raw(self.0)
    }
}

impl<'a> Deserialize<'a> for Raw<'a> {
    const MIN_SERIALIZED_LEN: usize = 0;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        Ok(Raw(r.read_rest()))
    }
}

/// Whether bit `bit` of a TL `#` flags word is set: a conditional field `flags.N?T` is present iff
/// `flag(flags, N)`, and a `flags.N?true` field is just that bit (it occupies no bytes).
pub const fn flag(flags: u32, bit: u32) -> bool {
    bit < 32 && flags & (1 << bit) != 0
}

impl<T: Serialize + ?Sized> Serialize for &T {
    fn serialized_len(&self) -> usize {
        (**self).serialized_len()
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        (**self).serialize(w)
    }
}

macro_rules! fixed_primitive {
    ($t:ty, $len:expr, $write:ident, $read:ident) => {
        impl Serialize for $t {
            fn serialized_len(&self) -> usize {
                $len
            }
            fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
                w.$write(*self)
            }
        }
        impl<'a> Deserialize<'a> for $t {
            const MIN_SERIALIZED_LEN: usize = $len;
            fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
                r.$read()
            }
        }
    };
}

fixed_primitive!(i32, 4, write_i32, read_i32);
fixed_primitive!(i64, 8, write_i64, read_i64);
fixed_primitive!(f64, 8, write_f64, read_f64);
fixed_primitive!(bool, 4, write_bool, read_bool);

impl Serialize for [u8; 16] {
    fn serialized_len(&self) -> usize {
        16
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_int128(self)
    }
}

impl<'a> Deserialize<'a> for &'a [u8; 16] {
    const MIN_SERIALIZED_LEN: usize = 16;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.read_int128()
    }
}

impl Serialize for [u8; 32] {
    fn serialized_len(&self) -> usize {
        32
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_int256(self)
    }
}

impl<'a> Deserialize<'a> for &'a [u8; 32] {
    const MIN_SERIALIZED_LEN: usize = 32;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.read_int256()
    }
}

/// TL `bytes`.
impl Serialize for [u8] {
    fn serialized_len(&self) -> usize {
        bytes_len(self.len())
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_bytes(self)
    }
}

/// TL `bytes`, borrowed.
impl<'a> Deserialize<'a> for &'a [u8] {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.read_bytes()
    }
}

/// TL `string`.
impl Serialize for str {
    fn serialized_len(&self) -> usize {
        bytes_len(self.len())
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_bytes(self.as_bytes())
    }
}

/// TL `string`, borrowed and checked to be UTF-8.
impl<'a> Deserialize<'a> for &'a str {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.read_str()
    }
}

/// A boxed `Vector<T>`.
impl<T: Serialize> Serialize for Vec<T> {
    fn serialized_len(&self) -> usize {
        self.iter()
            .fold(8usize, |acc, x| acc.saturating_add(x.serialized_len()))
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_vector_header(self.len(), true)?;
        self.iter().try_for_each(|x| x.serialize(w))
    }
}

/// A boxed `Vector<T>`, its length checked against the input before allocating.
impl<'a, T: Deserialize<'a>> Deserialize<'a> for Vec<T> {
    const MIN_SERIALIZED_LEN: usize = 8;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.read_vector()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims an encoding of half the address space (no real value can; this stands in for a
    /// size computation that would overflow).
    struct Huge;

    impl Serialize for Huge {
        fn serialized_len(&self) -> usize {
            usize::MAX / 2
        }
        fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
            w.write_raw(&[0; 4])
        }
    }

    #[test]
    fn oversized_lengths_saturate_and_to_vec_refuses_them() {
        let v = alloc::vec![Huge, Huge, Huge];
        // 8 + 3 * (usize::MAX / 2) would wrap to a small number.
        assert_eq!(v.serialized_len(), usize::MAX);
        assert_eq!(v.to_vec(), Err(TlError::ValueTooLarge));
        assert_eq!(Huge.to_vec(), Err(TlError::ValueTooLarge));
        assert_eq!(writer::bytes_len(usize::MAX), usize::MAX & !3);
        assert_eq!(writer::bytes_len(253), 256);
        assert_eq!(writer::bytes_len(254), 260);
    }
}
