//! `gzip_packed` bodies (`mtproto_service_messages.md`, "Packed Object"): a gzip member (RFC 1952)
//! around a raw DEFLATE stream, inflated with `miniz_oxide` under a hard output cap so that a
//! decompression bomb is an error, never an allocation.

use alloc::vec::Vec;
use core::fmt;

/// Why a `gzip_packed` payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GzipError {
    /// Not a gzip member: bad magic, method, flags or truncated header/trailer.
    BadHeader,
    /// The DEFLATE stream is corrupt.
    Corrupt,
    /// Inflating would exceed the cap (a decompression bomb, or simply too large).
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The CRC32 or length in the trailer does not match the inflated data.
    BadTrailer,
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GzipError::BadHeader => f.write_str("gzip_packed: not a gzip member"),
            GzipError::Corrupt => f.write_str("gzip_packed: corrupt deflate stream"),
            GzipError::TooLarge { limit } => {
                write!(f, "gzip_packed: inflates to more than {limit} bytes")
            }
            GzipError::BadTrailer => f.write_str("gzip_packed: CRC32 or length mismatch"),
        }
    }
}

impl core::error::Error for GzipError {}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// Length of the gzip header at the start of `data`.
fn header_len(data: &[u8]) -> Result<usize, GzipError> {
    let [0x1f, 0x8b, 8, flags, ..] = *data else {
        return Err(GzipError::BadHeader);
    };
    if flags & 0xe0 != 0 {
        return Err(GzipError::BadHeader);
    }
    let mut at = 10usize;
    let skip_zstr = |at: usize| -> Result<usize, GzipError> {
        let rest = data.get(at..).ok_or(GzipError::BadHeader)?;
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(GzipError::BadHeader)?;
        at.checked_add(nul)
            .and_then(|x| x.checked_add(1))
            .ok_or(GzipError::BadHeader)
    };
    if flags & FEXTRA != 0 {
        let xlen = data
            .get(at..)
            .and_then(|r| r.first_chunk::<2>())
            .map(|b| usize::from(u16::from_le_bytes(*b)))
            .ok_or(GzipError::BadHeader)?;
        at = at.saturating_add(2).saturating_add(xlen);
    }
    if flags & FNAME != 0 {
        at = skip_zstr(at)?;
    }
    if flags & FCOMMENT != 0 {
        at = skip_zstr(at)?;
    }
    if flags & FHCRC != 0 {
        at = at.saturating_add(2);
    }
    if at > data.len() {
        return Err(GzipError::BadHeader);
    }
    Ok(at)
}

/// Inflates one gzip member, refusing to produce more than `limit` bytes.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let start = header_len(data)?;
    let end = data.len().checked_sub(8).ok_or(GzipError::BadHeader)?;
    let stream = data.get(start..end).ok_or(GzipError::BadHeader)?;
    let trailer = data.get(end..).ok_or(GzipError::BadHeader)?;
    let out =
        miniz_oxide::inflate::decompress_to_vec_with_limit(stream, limit).map_err(|e| {
            match e.status {
                miniz_oxide::inflate::TINFLStatus::HasMoreOutput => GzipError::TooLarge { limit },
                _ => GzipError::Corrupt,
            }
        })?;
    let (crc, isize) = trailer.split_at_checked(4).ok_or(GzipError::BadHeader)?;
    let crc = <[u8; 4]>::try_from(crc).map_err(|_| GzipError::BadHeader)?;
    let isize = <[u8; 4]>::try_from(isize).map_err(|_| GzipError::BadHeader)?;
    // ISIZE is the length modulo 2^32.
    let len32 = mod_2_32(out.len());
    if u32::from_le_bytes(crc) != crc32fast::hash(&out) || u32::from_le_bytes(isize) != len32 {
        return Err(GzipError::BadTrailer);
    }
    Ok(out)
}

/// `n mod 2^32`, as gzip's ISIZE field stores lengths.
fn mod_2_32(n: usize) -> u32 {
    u32::try_from(n & 0xffff_ffff).unwrap_or(0)
}

/// Compresses `data` into one gzip member (no optional header fields).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let body = miniz_oxide::deflate::compress_to_vec(data, 6);
    let mut out = Vec::with_capacity(body.len().saturating_add(18));
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&mod_2_32(data.len()).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gzip.compress(b"hello hello hello hello", mtime=0)` from Python 3.11 (an independent
    /// encoder: no FNAME, OS byte 3).
    const PY_GZIP: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0x57, 0xc8, 0x40, 0x27, 0x01, 0xe3, 0x51, 0x3d, 0x8d, 0x17, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn inflates_what_python_wrote() {
        assert_eq!(inflate(PY_GZIP, 1024).unwrap(), b"hello hello hello hello");
    }

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        assert_eq!(inflate(&deflate(&data), data.len()).unwrap(), data);
        assert_eq!(
            inflate(&deflate(&data), data.len() - 1),
            Err(GzipError::TooLarge {
                limit: data.len() - 1
            })
        );
    }

    #[test]
    fn a_bomb_is_refused_without_inflating_it() {
        let bomb = deflate(&alloc::vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            inflate(&bomb, 1 << 20),
            Err(GzipError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn damaged_members_are_typed_errors() {
        let good = deflate(b"some data some data");
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(inflate(&bad_crc, 100), Err(GzipError::BadTrailer));
        assert_eq!(inflate(&good[..5], 100), Err(GzipError::BadHeader));
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert_eq!(inflate(&bad_magic, 100), Err(GzipError::BadHeader));
        for cut in 0..good.len() {
            let _ = inflate(&good[..cut], 100); // never panics
        }
    }
}
