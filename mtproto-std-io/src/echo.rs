//! The built-in test method of `mtproto serve`, an application-level RPC (not part of MTProto):
//!
//! ```text
//! test.echoed#c0de0002 data:bytes = test.Echoed;
//! ---functions---
//! test.echo#c0de0001 data:bytes = test.Echoed;
//! ```
//!
//! The server answers `test.echo` with `test.echoed` carrying the same bytes. Any other
//! function (except `ping`, which the session layer answers) gets
//! `rpc_error 400 METHOD_NOT_IMPLEMENTED`.

use mtproto_core::tl::{Reader, TlError, Writer};

/// Constructor id of the `test.echo` function.
pub const ECHO_ID: u32 = 0xc0de_0001;
/// Constructor id of its `test.echoed` result.
pub const ECHOED_ID: u32 = 0xc0de_0002;
/// The error the server answers unknown methods with.
pub const NOT_IMPLEMENTED: (i32, &str) = (400, "METHOD_NOT_IMPLEMENTED");

fn encode(id: u32, data: &[u8]) -> Result<Vec<u8>, TlError> {
    // 4 (id) + length prefix (1 or 4) + data + padding to 4.
    let mut buf = vec![0u8; data.len().saturating_add(12)];
    let n = {
        let mut w = Writer::new(&mut buf);
        w.write_u32(id)?;
        w.write_bytes(data)?;
        w.position()
    };
    buf.truncate(n);
    Ok(buf)
}

fn decode(id: u32, body: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(body).ok()?;
    if r.read_u32().ok()? != id {
        return None;
    }
    let data = r.read_bytes().ok()?;
    r.finish().ok()?;
    Some(data)
}

/// A `test.echo` request carrying `data`.
pub fn request(data: &[u8]) -> Result<Vec<u8>, TlError> {
    encode(ECHO_ID, data)
}

/// The `data` of a `test.echo` request, `None` if `body` is not one.
pub fn parse_request(body: &[u8]) -> Option<&[u8]> {
    decode(ECHO_ID, body)
}

/// The `test.echoed` answer carrying `data`.
pub fn answer(data: &[u8]) -> Result<Vec<u8>, TlError> {
    encode(ECHOED_ID, data)
}

/// The `data` of a `test.echoed` answer, `None` if `body` is not one.
pub fn parse_answer(body: &[u8]) -> Option<&[u8]> {
    decode(ECHOED_ID, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_is_tl_bytes_after_the_id() {
        // Short form: one length byte, data, padding to 4 (`mtproto_serialize.md`, "bytes").
        assert_eq!(
            request(b"abc").unwrap(),
            [1, 0, 0xde, 0xc0, 3, b'a', b'b', b'c']
        );
        // Long form from 254 bytes: 0xfe + 3-byte length.
        let long = request(&[7u8; 300]).unwrap();
        assert_eq!(&long[..8], &[1, 0, 0xde, 0xc0, 0xfe, 0x2c, 0x01, 0x00]);
        assert_eq!(long.len(), 4 + 4 + 300);
        assert_eq!(parse_request(&long).unwrap(), &[7u8; 300][..]);
        assert!(parse_answer(&long).is_none());
        let a = answer(b"").unwrap();
        assert_eq!(a, [2, 0, 0xde, 0xc0, 0, 0, 0, 0]);
        assert_eq!(parse_answer(&a).unwrap(), b"");
    }
}
