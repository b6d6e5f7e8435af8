//! MTProxy secrets (`mtproto_mtproto-transports.md`, "Transport obfuscation"; `api/links`
//! MTProxy links): a 16-byte key, optionally prefixed by `dd` (random padding: use the padded
//! intermediate framing) or `ee` followed by a domain (fake TLS), written in hex or base64url.

use alloc::vec::Vec;
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Longest fake-TLS domain accepted (tdlib's `ProxySecret::MAX_DOMAIN_LENGTH`).
pub const MAX_DOMAIN_LEN: usize = 182;

/// What a secret asks the client to do.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretKind {
    /// A bare 16-byte secret: obfuscated2 with any framing.
    Plain,
    /// A 17-byte secret (`dd` prefix, or any other extra byte): obfuscated2 with the padded
    /// intermediate framing ("clients should default to the padded intermediate transport
    /// whenever an additional byte in the secret is encountered").
    Padded,
    /// `ee` + key + domain: fake TLS towards `domain`, then obfuscated2, padded intermediate.
    FakeTls {
        /// The SNI domain to imitate (not secret).
        domain: Vec<u8>,
    },
}

impl fmt::Debug for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretKind::Plain => f.write_str("Plain"),
            SecretKind::Padded => f.write_str("Padded"),
            SecretKind::FakeTls { domain } => f
                .debug_struct("FakeTls")
                .field(
                    "domain",
                    &core::str::from_utf8(domain).unwrap_or("<non-utf8>"),
                )
                .finish(),
        }
    }
}

/// An MTProxy secret. The 16 key bytes never appear in `Debug` and are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySecret {
    key: [u8; 16],
    prefix: Option<u8>,
    kind: SecretKind,
}

impl Drop for ProxySecret {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl ZeroizeOnDrop for ProxySecret {}

impl fmt::Debug for ProxySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySecret")
            .field("kind", &self.kind)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a secret could not be parsed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretParseError {
    /// Neither valid hex nor valid base64url.
    Encoding,
    /// The decoded length fits no secret form (16, 17, or `ee` + 16 + domain).
    Length(usize),
    /// An `ee` secret without a domain, or with one that is too long.
    Domain,
}

impl fmt::Display for SecretParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretParseError::Encoding => f.write_str("secret is neither hex nor base64url"),
            SecretParseError::Length(n) => write!(f, "secret of {n} bytes has no known form"),
            SecretParseError::Domain => f.write_str("fake-TLS secret has an invalid domain"),
        }
    }
}

impl core::error::Error for SecretParseError {}

impl ProxySecret {
    /// A bare 16-byte secret.
    pub fn plain(key: [u8; 16]) -> Self {
        Self {
            key,
            prefix: None,
            kind: SecretKind::Plain,
        }
    }

    /// A `dd` secret (padded intermediate).
    pub fn padded(key: [u8; 16]) -> Self {
        Self {
            key,
            prefix: Some(0xdd),
            kind: SecretKind::Padded,
        }
    }

    /// An `ee` fake-TLS secret for `domain` (1..=182 bytes).
    pub fn fake_tls(key: [u8; 16], domain: &[u8]) -> Result<Self, SecretParseError> {
        if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN {
            return Err(SecretParseError::Domain);
        }
        Ok(Self {
            key,
            prefix: Some(0xee),
            kind: SecretKind::FakeTls {
                domain: domain.to_vec(),
            },
        })
    }

    /// From the decoded bytes: 16 bytes (plain), 17 bytes (padded; `dd` or any other first byte),
    /// or `ee` + 16 + domain (fake TLS).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretParseError> {
        let key_at = |at: usize| -> Result<[u8; 16], SecretParseError> {
            bytes
                .get(at..)
                .and_then(|k| k.get(..16))
                .and_then(|k| k.try_into().ok())
                .ok_or(SecretParseError::Length(bytes.len()))
        };
        match (bytes.len(), bytes.first()) {
            (16, _) => Ok(Self::plain(key_at(0)?)),
            (17, Some(&0xee)) => Err(SecretParseError::Domain),
            (17, Some(&p)) => Ok(Self {
                key: key_at(1)?,
                prefix: Some(p),
                kind: SecretKind::Padded,
            }),
            (n, Some(&0xee)) if n > 17 => {
                Self::fake_tls(key_at(1)?, bytes.get(17..).unwrap_or_default())
            }
            (n, _) => Err(SecretParseError::Length(n)),
        }
    }

    /// Parses a secret as found in `tg://proxy?...&secret=` links: hex first, then base64url
    /// (the standard alphabet's `+` and `/` and `=` padding are accepted too).
    pub fn parse(text: &str) -> Result<Self, SecretParseError> {
        let text = text.trim();
        let mut bytes = match decode_hex(text) {
            Some(b) => b,
            None => decode_base64(text).ok_or(SecretParseError::Encoding)?,
        };
        let r = Self::from_bytes(&bytes);
        bytes.zeroize();
        r
    }

    /// The 16 key bytes hashed into the obfuscation keys and used as the fake-TLS HMAC key.
    pub fn key(&self) -> &[u8; 16] {
        &self.key
    }

    /// The kind of secret.
    pub fn kind(&self) -> &SecretKind {
        &self.kind
    }

    /// The fake-TLS domain, if any.
    pub fn domain(&self) -> Option<&[u8]> {
        match &self.kind {
            SecretKind::FakeTls { domain } => Some(domain),
            _ => None,
        }
    }

    /// Whether the secret requires the padded intermediate framing (any prefixed secret).
    pub fn forces_padded(&self) -> bool {
        self.prefix.is_some()
    }

    /// Whether this is a fake-TLS (`ee`) secret.
    pub fn is_fake_tls(&self) -> bool {
        matches!(self.kind, SecretKind::FakeTls { .. })
    }

    /// The secret's byte form (prefix, key, domain): the inverse of [`ProxySecret::from_bytes`].
    /// It holds the key, so it is wiped when dropped (allocated once at its final size, so no
    /// unwiped copy is left behind by a reallocation).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(
            self.domain().map_or(0, <[u8]>::len).saturating_add(17),
        ));
        v.extend(self.prefix);
        v.extend_from_slice(&self.key);
        v.extend_from_slice(self.domain().unwrap_or_default());
        v
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok()),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| match p {
            &[h, l] => Some(nib(h)? << 4 | nib(l)?),
            _ => None,
        })
        .collect()
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c.checked_sub(b'A')?,
            b'a'..=b'z' => c.checked_sub(b'a')?.checked_add(26)?,
            b'0'..=b'9' => c.checked_sub(b'0')?.checked_add(52)?,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        }))
    }
    let b = s.trim_end_matches('=').as_bytes();
    if b.is_empty() || b.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len().saturating_mul(3) / 4);
    for chunk in b.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | val(c)?;
        }
        // A final chunk of 2 or 3 characters carries 1 or 2 bytes: (bytes, left shift to align
        // them to 24 bits, mask of the unused low bits). A 1-character chunk was rejected above.
        let (bytes, shift, unused) = match chunk.len() {
            4 => (3, 0, 0),
            3 => (2, 6, 0xff),
            2 => (1, 12, 0xffff),
            _ => return None,
        };
        let acc = acc.checked_shl(shift)?;
        // Unused low bits must be zero (canonical encoding).
        if acc & unused != 0 {
            return None;
        }
        out.extend_from_slice(
            acc.to_be_bytes()
                .get(1..)
                .and_then(|b| b.get(..bytes))
                .unwrap_or_default(),
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_reference() {
        assert_eq!(decode_base64("TWFu").as_deref(), Some(&b"Man"[..]));
        assert_eq!(decode_base64("TWE").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(decode_base64("TWE=").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(decode_base64("TQ").as_deref(), Some(&b"M"[..]));
        assert_eq!(decode_base64("_-8").as_deref(), Some(&[0xff, 0xef][..]));
        assert_eq!(decode_base64("TR"), None, "non-canonical trailing bits");
        assert_eq!(decode_base64("T"), None);
        assert_eq!(decode_base64("T*=="), None);
    }
}
