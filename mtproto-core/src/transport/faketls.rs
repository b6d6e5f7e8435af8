//! MTProxy fake TLS (`ee` secrets): the connection starts with a TLS 1.3-looking ClientHello whose
//! `random` field is HMAC-SHA256(secret, hello with a zeroed random) with its last 4 bytes XORed
//! with the little-endian Unix time; the proxy answers ServerHello + ChangeCipherSpec + one
//! application-data record, whose `random` is HMAC-SHA256(secret, client random ‖ answer with a
//! zeroed random). After that the obfuscated2 stream travels in application-data records.
//!
//! Followed (not copied): tdlib `td/mtproto/TlsInit.cpp` (hello layout, grease, digest and
//! timestamp XOR, answer check) and `td/mtproto/TcpTransport.cpp` (`do_write_tls`: a
//! ChangeCipherSpec before the first record); the answer layout follows the MTProxy
//! implementations (ServerHello with x25519 key share and TLS 1.3 supported_versions).
//! The x25519 key share is a real curve point in the prime-order subgroup, drawn as tdlib does
//! (a random x whose curve equation has a square root, doubled three times), so it does not stand
//! out to a DPI box that checks it.
//!
//! The ClientHello is data, not code: a [`ClientHelloTemplate`] (tdlib's op list: literal
//! bytes, random, zeros, the domain, GREASE, key share, length scopes, permutations, padding).
//! DPI systems match the hello's JA3/JA4 fingerprint, so the template is versioned and
//! replaceable: [`FakeTlsClient::with_template`] takes any template, [`FakeTlsClient::new`] the
//! default.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use hmac::{KeyInit, Mac};
use num_bigint_dig::BigUint;
use num_traits::One;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::framing::push_random;
use super::obfuscated::ObfuscatedCodec;
use super::secret::ProxySecret;
use super::{EncodeError, Framing, Status, TransportError, fill_to};
use crate::time::UnixTime;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Offset of the 32-byte `random` field in a hello record (5 record + 4 handshake + 2 version).
pub const RANDOM_OFFSET: usize = 11;
/// Length the default ClientHello is padded to (tdlib's, like common browsers).
pub const CLIENT_HELLO_LEN: usize = 517;
/// Largest TLS record we accept in a hello (2^14).
const MAX_HELLO_RECORD: usize = 16 * 1024;
/// The fixed bytes between the ServerHello record and the application-data record length.
const ANSWER_MIDDLE: [u8; 9] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03];
/// Offset, from the end of the ServerHello record, of the end of the application-data record's
/// 2-byte length.
const SECOND_RECORD_LEN_END: usize = ANSWER_MIDDLE.len() + 2;

fn hmac(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable.
        <HmacSha256 as KeyInit>::new(&Default::default())
    });
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// A byte builder with nested 2-byte big-endian length scopes (as TLS writes them).
struct Builder {
    v: Vec<u8>,
    scopes: Vec<usize>,
}

impl Builder {
    fn new() -> Self {
        Self {
            v: Vec::with_capacity(CLIENT_HELLO_LEN),
            scopes: Vec::new(),
        }
    }
    fn put(&mut self, b: &[u8]) -> &mut Self {
        self.v.extend_from_slice(b);
        self
    }
    fn begin(&mut self) -> &mut Self {
        self.scopes.push(self.v.len());
        self.v.extend_from_slice(&[0, 0]);
        self
    }
    fn end(&mut self) -> &mut Self {
        if let Some(at) = self.scopes.pop() {
            // Our hellos are a few KiB at most: the length always fits the 2-byte field.
            let len = self.v.len().saturating_sub(at.saturating_add(2));
            let len = u16::try_from(len).unwrap_or(u16::MAX);
            if let Some(slot) = self.v.get_mut(at..).and_then(|s| s.get_mut(..2)) {
                slot.copy_from_slice(&len.to_be_bytes());
            }
        }
        self
    }
    fn random<R: rand_core::CryptoRng + ?Sized>(&mut self, n: usize, rng: &mut R) -> &mut Self {
        push_random(&mut self.v, n, rng);
        self
    }
}

/// GREASE values (RFC 8701): 0x?a bytes, consecutive ones distinct (as tdlib's `Grease::init`).
fn grease<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> [u8; 7] {
    let mut g = [0u8; 7];
    rng.fill_bytes(&mut g);
    for b in g.iter_mut() {
        *b = (*b & 0xf0) | 0x0a;
    }
    // Pairs (0, 1), (2, 3), (4, 5): the second of each differs from the first.
    for pair in g.chunks_exact_mut(2) {
        if let [a, b] = pair
            && a == b
        {
            *b ^= 0x10;
        }
    }
    g
}

/// Arithmetic modulo p = 2^255 - 19 on `BigUint`s. Every value is reduced mod p (a non-zero
/// constant) before it is used again, and the only subtractions are 2^255 - 19, p - 1, p - 2 and
/// `x^2 mod p + p - 1`, none of which can go below zero: the lint is allowed for these few lines
/// of field arithmetic only (none of it sees wire bytes; x comes from the RNG).
#[allow(clippy::arithmetic_side_effects)]
mod field {
    use num_bigint_dig::BigUint;
    use num_traits::One;

    /// p = 2^255 - 19.
    pub(super) fn curve_p() -> BigUint {
        (BigUint::one() << 255usize) - BigUint::from(19u32)
    }

    /// y^2 = x^3 + 486662 x^2 + x (mod p), Curve25519's Montgomery equation.
    pub(super) fn curve_y2(x: &BigUint, p: &BigUint) -> BigUint {
        let a = BigUint::from(486_662u32);
        ((x * x % p * x) + (a * x % p * x) + x) % p
    }

    /// The x coordinate of [2]P from P's: (x^2 - 1)^2 / (4 y^2) (mod p).
    pub(super) fn double_x(x: &BigUint, p: &BigUint) -> BigUint {
        let den = (curve_y2(x, p) << 2usize) % p;
        let inv = den.modpow(&(p - BigUint::from(2u32)), p);
        let num = (x * x % p + p - BigUint::one()) % p;
        &num * &num % p * inv % p
    }

    /// (p - 1) / 2, the Euler-criterion exponent.
    pub(super) fn half(p: &BigUint) -> BigUint {
        (p - BigUint::one()) >> 1usize
    }

    /// Little-endian `bytes` reduced mod p.
    pub(super) fn from_le(bytes: &[u8], p: &BigUint) -> BigUint {
        BigUint::from_bytes_le(bytes) % p
    }
}

use field::{curve_p, curve_y2, double_x};

/// A random x25519 public key: a point of the prime-order subgroup, as tdlib's `TlsHelloStore`
/// draws them (random x with a square y^2, then three doublings x' = (x^2 - 1)^2 / (4 y^2)).
fn x25519_public_key<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> [u8; 32] {
    let p = curve_p();
    let one = BigUint::one();
    let half = field::half(&p);
    let mut key = [0u8; 32];
    for _ in 0..128 {
        rng.fill_bytes(&mut key);
        key[31] &= 0x7f;
        let mut x = field::from_le(&key, &p);
        if curve_y2(&x, &p).modpow(&half, &p) != one {
            continue;
        }
        for _ in 0..3 {
            x = double_x(&x, &p);
        }
        let le = x.to_bytes_le();
        key = [0u8; 32];
        if let Some(dst) = key.get_mut(..le.len().min(32)) {
            dst.copy_from_slice(le.get(..dst.len()).unwrap_or_default());
        }
        return key;
    }
    // Unreachable with a working RNG (half of all x qualify); keep the random bytes.
    key
}

/// Builds a ClientHello for `domain` from the default template
/// ([`ClientHelloTemplate::default`]), signed with `key` at `unix_secs`.
pub fn build_client_hello<R: rand_core::CryptoRng + ?Sized>(
    key: &[u8; 16],
    domain: &[u8],
    unix_secs: u32,
    rng: &mut R,
) -> Result<Vec<u8>, EncodeError> {
    ClientHelloTemplate::default().build(key, domain, unix_secs, rng)
}

/// One step of a [`ClientHelloTemplate`]: the op-list idea of tdlib's `TlsHelloStore`
/// (`td/mtproto/TlsInit.cpp`), where a hello is data rather than code.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloOp {
    /// Literal bytes.
    Bytes(Cow<'static, [u8]>),
    /// `n` random bytes from the caller's RNG.
    Random(usize),
    /// `n` zero bytes (the 32-byte `random` field is left zero: the digest goes there).
    Zero(usize),
    /// The SNI domain of the secret.
    Domain,
    /// GREASE value `i` (RFC 8701; `i < 7`) as two equal bytes `0x?a 0x?a`. The 7 values are
    /// drawn once per hello, before any other op, with values 0/1, 2/3 and 4/5 distinct.
    Grease(usize),
    /// A random x25519 public key: 32 bytes that are a point of the prime-order subgroup.
    Key,
    /// A random ML-KEM-768 encapsulation key as a post-quantum key share carries it (FIPS 203
    /// `ek = ByteEncode12(t) ‖ rho`, 1184 bytes): 768 coefficients uniform below q = 3329,
    /// packed 12 bits each, then 32 random bytes. It passes FIPS 203's encapsulation-key check,
    /// which random bytes would fail. `X25519MLKEM768` (group `0x11ec`) shares are this key
    /// followed by [`HelloOp::Key`].
    MlKem768Key,
    /// Opens a scope: a 2-byte big-endian length of everything up to the matching
    /// [`HelloOp::EndScope`] (TLS vectors and extension bodies).
    BeginScope,
    /// Closes the innermost open scope.
    EndScope,
    /// Blocks written in a random order (each block balanced in scopes), as browsers shuffle
    /// their extensions.
    Permutation(Vec<Vec<HelloOp>>),
    /// The TLS padding extension (type `0x0015`) bringing the hello to `len` bytes, or nothing
    /// when the hello is already within 4 bytes of it (the extension header alone is 4 bytes).
    PaddingTo(usize),
}

/// Why a [`ClientHelloTemplate`] is unusable.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloTemplateError {
    /// A [`HelloOp::EndScope`] without an open scope, or a scope left open (in the template or
    /// in one permutation block).
    UnbalancedScope,
    /// A [`HelloOp::Grease`] index of 7 or more.
    GreaseIndex(usize),
    /// The hello would exceed one TLS record (16 KiB), or a scope 65535 bytes.
    TooLong,
    /// The bytes are not a ClientHello record as the proxy reads it: `16 03 01` record header
    /// and length, handshake type 1 with its 3-byte length, version `03 03`, a zero 32-byte
    /// `random` at offset 11 and a 32-byte session id after it.
    NotAClientHello,
}

impl core::fmt::Display for HelloTemplateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HelloTemplateError::UnbalancedScope => f.write_str("unbalanced length scope"),
            HelloTemplateError::GreaseIndex(i) => write!(f, "GREASE index {i} is not below 7"),
            HelloTemplateError::TooLong => f.write_str("ClientHello too long"),
            HelloTemplateError::NotAClientHello => f.write_str("not a ClientHello layout"),
        }
    }
}

impl core::error::Error for HelloTemplateError {}

/// Number of GREASE values drawn per hello.
const GREASE_COUNT: usize = 7;
/// Largest hello a template may produce: one TLS record of 2^14 bytes and its header.
const MAX_TEMPLATE_HELLO: usize = MAX_HELLO_RECORD + 5;

/// A versioned, replaceable fake-TLS ClientHello: a named list of [`HelloOp`]s. DPI systems
/// match the hello's fingerprint (JA3/JA4), and tdlib keeps changing its own; a template is
/// data, so a new one can be shipped (or supplied by a user, [`ClientHelloTemplate::new`])
/// without touching the code, and [`FakeTlsClient::with_template`] uses it.
///
/// Any template works with any proxy that checks the digest over the whole record (ours,
/// MTProxy). Proxies, ours included, recognise a hello by its first four bytes `16 03 01 02`:
/// keep the record between 512 and 767 bytes (e.g. [`HelloOp::PaddingTo`] 517) to be detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHelloTemplate {
    name: Cow<'static, str>,
    ops: Vec<HelloOp>,
}

impl Default for ClientHelloTemplate {
    /// The current default: [`ClientHelloTemplate::v1`].
    fn default() -> Self {
        Self::v1()
    }
}

impl ClientHelloTemplate {
    /// Name of [`ClientHelloTemplate::v1`].
    pub const V1: &'static str = "mtproto-rs/v1";

    /// A template from its ops, checked: scopes balanced (in every permutation block too),
    /// GREASE indices below 7, and a trial build (with the longest domain) must give a
    /// ClientHello record of at most 16 KiB.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        ops: Vec<HelloOp>,
    ) -> Result<Self, HelloTemplateError> {
        check_ops(&ops)?;
        let t = Self {
            name: name.into(),
            ops,
        };
        // The trial build's bytes are thrown away; any byte source does.
        let longest = [b'a'; super::secret::MAX_DOMAIN_LEN];
        t.render(&longest, &mut TrialRng(0))?;
        Ok(t)
    }

    /// The hello this crate sent before templates existed, modelled on tdlib's: Chrome-like
    /// cipher suites and extensions in a fixed order, GREASE, an x25519 key share, padded to
    /// 517 bytes. Its bytes are pinned by a test against hellos recorded from that code.
    pub fn v1() -> Self {
        use HelloOp::{BeginScope as Begin, Domain, EndScope as End, Grease, Key, Random, Zero};
        let ops = alloc::vec![
            lit(&[0x16, 0x03, 0x01]),
            Begin, // record
            lit(&[0x01, 0x00]),
            Begin, // handshake: ClientHello, 3-byte length
            lit(&[0x03, 0x03]),
            Zero(32), // version, random (the digest)
            lit(&[0x20]),
            Random(32), // session id
            lit(&[0x00, 0x20]),
            Grease(0),
            lit(&[
                0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30,
                0xcc, 0xa9, 0xcc, 0xa8, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x9c, 0x00, 0x9d, 0x00, 0x2f,
                0x00, 0x35,
            ]),
            lit(&[0x01, 0x00]), // compression: null
            Begin,              // extensions
            Grease(2),
            lit(&[0x00, 0x00]),
            // server_name
            lit(&[0x00, 0x00]),
            Begin,
            Begin,
            lit(&[0x00]),
            Begin,
            Domain,
            End,
            End,
            End,
            lit(&[0x00, 0x17, 0x00, 0x00]), // extended_master_secret
            lit(&[0xff, 0x01, 0x00, 0x01, 0x00]), // renegotiation_info
            lit(&[0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08]), // supported_groups
            Grease(4),
            lit(&[0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]),
            lit(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]), // ec_point_formats
            lit(&[0x00, 0x23, 0x00, 0x00]),             // session_ticket
            lit(&[
                0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, b'h', b'2', 0x08, b'h', b't', b't', b'p',
                b'/', b'1', b'.', b'1',
            ]), // ALPN
            lit(&[0x00, 0x05, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00]), // status_request
            lit(&[
                0x00, 0x0d, 0x00, 0x12, 0x00, 0x10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03,
                0x08, 0x05, 0x05, 0x01, 0x08, 0x06, 0x06, 0x01,
            ]), // signature_algorithms
            lit(&[0x00, 0x12, 0x00, 0x00]),             // signed_certificate_timestamp
            lit(&[0x00, 0x33, 0x00, 0x2b, 0x00, 0x29]), // key_share
            Grease(4),
            lit(&[0x00, 0x01, 0x00, 0x00, 0x1d, 0x00, 0x20]),
            Key,
            lit(&[0x00, 0x2d, 0x00, 0x02, 0x01, 0x01]), // psk_key_exchange_modes
            lit(&[0x00, 0x2b, 0x00, 0x07, 0x06]),       // supported_versions
            Grease(6),
            lit(&[0x03, 0x04, 0x03, 0x03]),
            lit(&[0x00, 0x1b, 0x00, 0x03, 0x02, 0x00, 0x02]), // compress_certificate
            Grease(3),
            lit(&[0x00, 0x01, 0x00]),
            HelloOp::PaddingTo(CLIENT_HELLO_LEN),
            End,
            End,
            End,
        ];
        Self {
            name: Cow::Borrowed(Self::V1),
            ops,
        }
    }

    /// The template's name (its version).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ops.
    pub fn ops(&self) -> &[HelloOp] {
        &self.ops
    }

    /// Builds a ClientHello for `domain` (1..=182 bytes), signed with `key` at `unix_secs`:
    /// the `random` field is HMAC-SHA256(key, hello with a zero random) with its last 4 bytes
    /// XORed with the little-endian time.
    pub fn build<R: rand_core::CryptoRng + ?Sized>(
        &self,
        key: &[u8; 16],
        domain: &[u8],
        unix_secs: u32,
        rng: &mut R,
    ) -> Result<Vec<u8>, EncodeError> {
        if domain.is_empty() || domain.len() > super::secret::MAX_DOMAIN_LEN {
            return Err(EncodeError::BadDomain);
        }
        let mut hello = self
            .render(domain, rng)
            .map_err(EncodeError::BadHelloTemplate)?;
        let mut digest = hmac(key, &[&hello]);
        for (d, t) in digest[28..].iter_mut().zip(unix_secs.to_le_bytes()) {
            *d ^= t;
        }
        if let Some(r) = hello.get_mut(RANDOM_OFFSET..RANDOM_OFFSET + 32) {
            r.copy_from_slice(&digest);
        }
        Ok(hello)
    }

    /// Runs the ops (random field left zero) and checks the ClientHello layout.
    fn render<R: rand_core::CryptoRng + ?Sized>(
        &self,
        domain: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, HelloTemplateError> {
        let mut run = Render {
            b: Builder::new(),
            grease: grease(rng),
            domain,
        };
        run.ops(&self.ops, rng)?;
        if !run.b.scopes.is_empty() {
            return Err(HelloTemplateError::UnbalancedScope);
        }
        let hello = run.b.v;
        if !is_client_hello_layout(&hello) {
            return Err(HelloTemplateError::NotAClientHello);
        }
        Ok(hello)
    }
}

fn lit(b: &'static [u8]) -> HelloOp {
    HelloOp::Bytes(Cow::Borrowed(b))
}

/// Scopes balanced in `ops` (and in each permutation block), GREASE indices in range.
fn check_ops(ops: &[HelloOp]) -> Result<(), HelloTemplateError> {
    let mut depth = 0usize;
    for op in ops {
        match op {
            HelloOp::BeginScope => depth = depth.saturating_add(1),
            HelloOp::EndScope => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(HelloTemplateError::UnbalancedScope)?;
            }
            HelloOp::Grease(i) if *i >= GREASE_COUNT => {
                return Err(HelloTemplateError::GreaseIndex(*i));
            }
            HelloOp::Permutation(blocks) => {
                for block in blocks {
                    check_ops(block)?;
                }
            }
            _ => {}
        }
    }
    if depth == 0 {
        Ok(())
    } else {
        Err(HelloTemplateError::UnbalancedScope)
    }
}

/// The fixed part of a ClientHello record that the digest and the proxy rely on (see
/// [`HelloTemplateError::NotAClientHello`]).
fn is_client_hello_layout(hello: &[u8]) -> bool {
    let hs_len = hello.len().saturating_sub(9);
    let [_, l2, l1, l0] = u32::try_from(hs_len).unwrap_or(u32::MAX).to_be_bytes();
    hello.get(..3) == Some(&[0x16, 0x03, 0x01])
        && record_len(hello) == Some(hello.len())
        && hello.get(5..11) == Some(&[0x01, l2, l1, l0, 0x03, 0x03])
        && hello
            .get(RANDOM_OFFSET..RANDOM_OFFSET + 32)
            .is_some_and(|r| r.iter().all(|&b| b == 0))
        && hello.get(43) == Some(&32)
        && hello.len() >= 76
}

/// A running template.
struct Render<'d> {
    b: Builder,
    grease: [u8; GREASE_COUNT],
    domain: &'d [u8],
}

impl Render<'_> {
    /// Room for `n` more bytes within [`MAX_TEMPLATE_HELLO`].
    fn room(&self, n: usize) -> Result<(), HelloTemplateError> {
        match self.b.v.len().checked_add(n) {
            Some(total) if total <= MAX_TEMPLATE_HELLO => Ok(()),
            _ => Err(HelloTemplateError::TooLong),
        }
    }

    fn ops<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        ops: &[HelloOp],
        rng: &mut R,
    ) -> Result<(), HelloTemplateError> {
        for op in ops {
            match op {
                HelloOp::Bytes(b) => {
                    self.room(b.len())?;
                    self.b.put(b);
                }
                HelloOp::Random(n) => {
                    self.room(*n)?;
                    self.b.random(*n, rng);
                }
                HelloOp::Zero(n) => {
                    self.room(*n)?;
                    self.b.v.resize(self.b.v.len().saturating_add(*n), 0);
                }
                HelloOp::Domain => {
                    self.room(self.domain.len())?;
                    self.b.put(self.domain);
                }
                HelloOp::Grease(i) => {
                    let g = *self
                        .grease
                        .get(*i)
                        .ok_or(HelloTemplateError::GreaseIndex(*i))?;
                    self.room(2)?;
                    self.b.put(&[g, g]);
                }
                HelloOp::Key => {
                    self.room(32)?;
                    self.b.put(&x25519_public_key(rng));
                }
                HelloOp::MlKem768Key => {
                    self.room(ML_KEM_768_EK_LEN)?;
                    push_ml_kem_768_key(&mut self.b.v, rng);
                }
                HelloOp::BeginScope => {
                    self.room(2)?;
                    self.b.begin();
                }
                HelloOp::EndScope => {
                    let at = self
                        .b
                        .scopes
                        .last()
                        .copied()
                        .ok_or(HelloTemplateError::UnbalancedScope)?;
                    let len = self.b.v.len().saturating_sub(at.saturating_add(2));
                    if u16::try_from(len).is_err() {
                        return Err(HelloTemplateError::TooLong);
                    }
                    self.b.end();
                }
                HelloOp::Permutation(blocks) => {
                    let mut order: Vec<&Vec<HelloOp>> = blocks.iter().collect();
                    shuffle(&mut order, rng);
                    for block in order {
                        self.ops(block, rng)?;
                    }
                }
                HelloOp::PaddingTo(len) => {
                    // The extension's own 4-byte header counts towards `len`.
                    let pad = len.saturating_sub(4).saturating_sub(self.b.v.len());
                    if pad > 0 {
                        self.room(pad.saturating_add(4))?;
                        self.b.put(&[0x00, 0x15]).begin();
                        self.b.v.resize(self.b.v.len().saturating_add(pad), 0);
                        self.b.end();
                    }
                }
            }
        }
        Ok(())
    }
}

/// Length of an ML-KEM-768 encapsulation key: 3 x 256 coefficients of 12 bits, and rho.
const ML_KEM_768_EK_LEN: usize = 3 * 384 + 32;

/// Appends a random ML-KEM-768 encapsulation key (see [`HelloOp::MlKem768Key`]).
fn push_ml_kem_768_key<R: rand_core::CryptoRng + ?Sized>(out: &mut Vec<u8>, rng: &mut R) {
    const Q: u16 = 3329;
    // A coefficient uniform below q: 12 random bits, redrawn when >= q (about 1 in 5).
    let mut coefficient = || loop {
        let [lo, hi, ..] = rng.next_u32().to_le_bytes();
        let c = u16::from_le_bytes([lo, hi & 0x0f]);
        if c < Q {
            return c;
        }
    };
    for _ in 0..3 * 128 {
        // ByteEncode12 of two coefficients: 24 bits, little-endian.
        let (a, b) = (coefficient(), coefficient());
        let [a0, a1] = a.to_le_bytes();
        let [b0, b1] = b.to_le_bytes();
        out.extend_from_slice(&[a0, a1 | (b0 << 4), (b0 >> 4) | (b1 << 4)]);
    }
    push_random(out, 32, rng);
}

/// Fisher-Yates with the caller's RNG.
fn shuffle<T, R: rand_core::CryptoRng + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let bound = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        let j = rng
            .next_u64()
            .checked_rem(bound)
            .and_then(|j| usize::try_from(j).ok())
            .unwrap_or(0); // j <= i
        items.swap(i, j);
    }
}

/// The byte source of [`ClientHelloTemplate::new`]'s trial build, whose output is discarded:
/// nothing it produces is sent or kept (a counter through SplitMix64).
struct TrialRng(u64);

impl TrialRng {
    fn step(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl rand_core::TryRng for TrialRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let [a, b, c, d, ..] = self.step().to_le_bytes();
        Ok(u32::from_le_bytes([a, b, c, d]))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.step())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let w = self.step().to_le_bytes();
            chunk.copy_from_slice(w.get(..chunk.len()).unwrap_or_default());
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TrialRng {}

/// What a valid ClientHello told the server.
#[derive(Clone)]
pub struct ClientHelloInfo {
    /// Index of the matching secret in the list given to [`check_client_hello`].
    pub secret_index: usize,
    /// The client's Unix time (seconds) recovered from the digest.
    pub timestamp: u32,
    client_random: [u8; 32],
    session_id: [u8; 32],
}

impl core::fmt::Debug for ClientHelloInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHelloInfo")
            .field("secret_index", &self.secret_index)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// Total length of the TLS record starting `buf` (5 + its length field), once 5 bytes are in.
pub(crate) fn record_len(buf: &[u8]) -> Option<usize> {
    match buf.get(..5)? {
        &[_, _, _, h, l] => Some(5 + usize::from(u16::from_be_bytes([h, l]))),
        _ => None,
    }
}

/// Server: checks a complete ClientHello record against the `ee` secrets in `secrets` and the
/// clock: the digest must match one secret and the client time be within `window_secs` of `now`.
/// (Replay of a valid hello within the window is not detected here: a server wanting that keeps
/// the seen `random` values.)
pub fn check_client_hello(
    hello: &[u8],
    secrets: &[ProxySecret],
    now: UnixTime,
    window_secs: u64,
) -> Result<ClientHelloInfo, TransportError> {
    let bad = TransportError::BadTlsRecord;
    if hello.get(..3) != Some(&[0x16, 0x03, 0x01]) || record_len(hello) != Some(hello.len()) {
        return Err(bad);
    }
    // Handshake: type ClientHello, 3-byte length covering the rest, legacy version 3.3.
    // hello.len() <= 5 + 0xffff (record_len), so hs_len fits the 3-byte field.
    let hs_len = hello.len().saturating_sub(9);
    let [_, l2, l1, l0] = u32::try_from(hs_len).unwrap_or(u32::MAX).to_be_bytes();
    let hs_hdr = [0x01, l2, l1, l0];
    if hello.get(5..9) != Some(&hs_hdr[..]) || hello.get(9..11) != Some(&[3, 3]) {
        return Err(bad);
    }
    let random: [u8; 32] = hello
        .get(RANDOM_OFFSET..RANDOM_OFFSET + 32)
        .and_then(|r| r.try_into().ok())
        .ok_or(bad)?;
    if hello.get(43) != Some(&32) {
        return Err(bad);
    }
    let session_id: [u8; 32] = hello
        .get(44..76)
        .and_then(|r| r.try_into().ok())
        .ok_or(bad)?;
    let (head, tail) = (
        hello.get(..RANDOM_OFFSET).ok_or(bad)?,
        hello.get(RANDOM_OFFSET + 32..).ok_or(bad)?,
    );
    let mut result = Err(TransportError::BadTlsDigest);
    for (i, s) in secrets.iter().enumerate() {
        if !s.is_fake_tls() {
            continue;
        }
        let digest = hmac(s.key(), &[head, &[0; 32], tail]);
        if !bool::from(digest[..28].ct_eq(&random[..28])) {
            continue;
        }
        let mut t = [0u8; 4];
        let (d, r) = (digest.last_chunk::<4>(), random.last_chunk::<4>());
        for ((b, d), r) in t
            .iter_mut()
            .zip(d.into_iter().flatten())
            .zip(r.into_iter().flatten())
        {
            *b = d ^ r;
        }
        let timestamp = u32::from_le_bytes(t);
        if now.as_secs().abs_diff(u64::from(timestamp)) > window_secs {
            result = Err(TransportError::TlsTimestampOutOfWindow);
            continue;
        }
        return Ok(ClientHelloInfo {
            secret_index: i,
            timestamp,
            client_random: random,
            session_id,
        });
    }
    result
}

/// Server: the answer to a valid ClientHello: ServerHello (echoing the session id, x25519 key
/// share, TLS 1.3), ChangeCipherSpec and an application-data record of 1024..4096 random bytes
/// imitating the encrypted certificate, signed with the secret.
pub fn build_server_hello<R: rand_core::CryptoRng + ?Sized>(
    secret: &ProxySecret,
    info: &ClientHelloInfo,
    rng: &mut R,
) -> Vec<u8> {
    let mut b = Builder::new();
    b.put(&[0x16, 0x03, 0x03]).begin();
    b.put(&[0x02, 0x00]).begin(); // ServerHello
    b.put(&[0x03, 0x03]).put(&[0; 32]);
    b.put(&[0x20]).put(&info.session_id);
    b.put(&[0x13, 0x01, 0x00]); // TLS_AES_128_GCM_SHA256, no compression
    b.begin(); // extensions
    b.put(&[0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20])
        .random(32, rng);
    b.put(&[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
    b.end().end().end();
    b.put(&ANSWER_MIDDLE).begin();
    // 1024..=4095 bytes.
    let fake_len = usize::try_from(rng.next_u32() % 3072).map_or(1024, |r| r.saturating_add(1024));
    b.random(fake_len, rng).end();
    let mut answer = b.v;
    let digest = hmac(secret.key(), &[&info.client_random, &answer]);
    if let Some(r) = answer.get_mut(RANDOM_OFFSET..RANDOM_OFFSET + 32) {
        r.copy_from_slice(&digest);
    }
    answer
}

/// Client side of the fake-TLS handshake. [`FakeTlsClient::new`] writes the ClientHello;
/// feed the proxy's answer to [`FakeTlsClient::decode`]; once it completes,
/// [`FakeTlsClient::into_codec`] gives the obfuscated codec (padded intermediate, in TLS records).
#[derive(Clone)]
pub struct FakeTlsClient {
    secret: ProxySecret,
    client_random: [u8; 32],
    buf: Vec<u8>,
    done: bool,
    poisoned: Option<TransportError>,
}

impl core::fmt::Debug for FakeTlsClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FakeTlsClient")
            .field("done", &self.done)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeTlsClient {
    fn drop(&mut self) {
        self.client_random.zeroize();
    }
}

impl FakeTlsClient {
    /// Starts the handshake for an `ee` secret: appends the ClientHello of the default
    /// template to `out`. `now` is the client's idea of the server's time (the proxy checks it
    /// within a window).
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        secret: &ProxySecret,
        now: UnixTime,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<Self, EncodeError> {
        Self::with_template(secret, &ClientHelloTemplate::default(), now, rng, out)
    }

    /// [`FakeTlsClient::new`] with another ClientHello template.
    pub fn with_template<R: rand_core::CryptoRng + ?Sized>(
        secret: &ProxySecret,
        template: &ClientHelloTemplate,
        now: UnixTime,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<Self, EncodeError> {
        let domain = secret.domain().ok_or(EncodeError::BadDomain)?;
        // The timestamp field is the low 32 bits of Unix time (tdlib's int32; wraps in 2106).
        let [.., t3, t2, t1, t0] = now.as_secs().to_be_bytes();
        let unix_secs = u32::from_be_bytes([t3, t2, t1, t0]);
        let hello = template.build(secret.key(), domain, unix_secs, rng)?;
        let mut client_random = [0u8; 32];
        client_random.copy_from_slice(
            hello
                .get(RANDOM_OFFSET..RANDOM_OFFSET + 32)
                .unwrap_or(&[0; 32]),
        );
        out.extend_from_slice(&hello);
        Ok(Self {
            secret: secret.clone(),
            client_random,
            buf: Vec::new(),
            done: false,
            poisoned: None,
        })
    }

    /// Whether the proxy's answer was verified.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the proxy's answer. Consumes exactly the answer's bytes; what follows belongs to the
    /// codec from [`FakeTlsClient::into_codec`]. Completes once the answer is verified.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<()>), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        if self.done {
            return Ok((0, Status::Complete(())));
        }
        let r = self.decode_inner(input);
        if let Err(e) = r {
            self.poisoned = Some(e);
            self.buf.clear();
        }
        r
    }

    fn decode_inner(&mut self, input: &[u8]) -> Result<(usize, Status<()>), TransportError> {
        let bad = TransportError::BadTlsRecord;
        let mut consumed = 0usize;
        loop {
            // How many bytes the answer needs to be, as far as we can tell yet.
            let need = match record_len(&self.buf) {
                None => 5,
                Some(first) if first > MAX_HELLO_RECORD + 5 => return Err(bad),
                Some(first) => {
                    let second_hdr = first.checked_add(SECOND_RECORD_LEN_END).ok_or(bad)?;
                    match self.buf.get(first..second_hdr) {
                        None => second_hdr,
                        Some(mid) => match mid {
                            [m @ .., h, l] if m == ANSWER_MIDDLE => {
                                let l = usize::from(u16::from_be_bytes([*h, *l]));
                                if l > MAX_HELLO_RECORD {
                                    return Err(bad);
                                }
                                second_hdr.checked_add(l).ok_or(bad)?
                            }
                            _ => return Err(bad),
                        },
                    }
                }
            };
            if self.buf.get(..3).is_some_and(|p| p != [0x16, 0x03, 0x03]) {
                return Err(bad);
            }
            if self.buf.len() >= need {
                break;
            }
            if fill_to(&mut self.buf, need, input, &mut consumed).is_empty() {
                return Ok((consumed, Status::Partial));
            }
        }
        let got: [u8; 32] = self
            .buf
            .get(RANDOM_OFFSET..RANDOM_OFFSET + 32)
            .and_then(|r| r.try_into().ok())
            .ok_or(bad)?;
        let (head, tail) = (
            self.buf.get(..RANDOM_OFFSET).ok_or(bad)?,
            self.buf.get(RANDOM_OFFSET + 32..).ok_or(bad)?,
        );
        let want = hmac(
            self.secret.key(),
            &[&self.client_random, head, &[0; 32], tail],
        );
        if !bool::from(want.ct_eq(&got)) {
            return Err(TransportError::BadServerHelloDigest);
        }
        self.done = true;
        self.buf = Vec::new();
        Ok((consumed, Status::Complete(())))
    }

    /// The obfuscated codec for the rest of the connection (padded intermediate inside TLS
    /// records). Fails with [`EncodeError::NeedsFakeTlsHandshake`] before the answer is verified.
    pub fn into_codec<R: rand_core::CryptoRng + ?Sized>(
        self,
        dc_id: Option<i16>,
        rng: &mut R,
    ) -> Result<ObfuscatedCodec, EncodeError> {
        if !self.done {
            return Err(EncodeError::NeedsFakeTlsHandshake);
        }
        ObfuscatedCodec::client_inner(
            Framing::PaddedIntermediate,
            dc_id,
            Some(&self.secret),
            true,
            rng,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};
    use sha2::{Digest, Sha256};

    /// HMAC-SHA256 from its definition (RFC 2104), independent of the `hmac` crate.
    fn ref_hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&ipad)
            .chain_update(msg)
            .finalize();
        Sha256::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize()
            .into()
    }

    #[test]
    fn hmac_matches_python_and_reference() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        // python: hmac.new(bytes(range(16)), b'hello world', hashlib.sha256).hexdigest()
        let want = "e359465e4aff75d8e31c60fea3234e5c5234aa9033383a1369a072d36730e9ea";
        let got: alloc::string::String = hmac(&key, &[b"hello ", b"world"])
            .iter()
            .map(|b| alloc::format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            ref_hmac(&key, b"hello world"),
            hmac(&key, &[b"hello world"])
        );
    }

    #[test]
    fn client_hello_digest_and_layout() {
        let key = [0x5a; 16];
        let ts = 0x6a0b_1c2d_u32;
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let hello = build_client_hello(&key, b"example.org", ts, &mut rng).unwrap();
        assert_eq!(hello.len(), CLIENT_HELLO_LEN);
        // Record length 512, handshake length 508.
        assert_eq!(
            hello[..9],
            [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]
        );
        // Extensions length covers the rest: 11 + 32 random + 33 session id + 34 suites + 2.
        let ext_at = 5 + 4 + 2 + 32 + 33 + 34 + 2;
        let ext_len = u16::from_be_bytes([hello[ext_at], hello[ext_at + 1]]) as usize;
        assert_eq!(ext_at + 2 + ext_len, hello.len());
        // random = HMAC(key, hello with zero random), last 4 bytes XOR the LE timestamp.
        let mut zeroed = hello.clone();
        zeroed[RANDOM_OFFSET..RANDOM_OFFSET + 32].fill(0);
        let mac = ref_hmac(&key, &zeroed);
        assert_eq!(hello[RANDOM_OFFSET..RANDOM_OFFSET + 28], mac[..28]);
        let t: Vec<u8> = mac[28..]
            .iter()
            .zip(&hello[RANDOM_OFFSET + 28..RANDOM_OFFSET + 32])
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(t, ts.to_le_bytes());
        // Grease bytes look like 0x?a.
        assert_eq!(hello[78] & 0x0f, 0x0a);
        assert_eq!(hello[78], hello[79]);
        assert!(build_client_hello(&key, b"", ts, &mut rng).is_err());
    }

    #[test]
    fn key_share_is_on_the_curve() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let p = curve_p();
        for _ in 0..16 {
            let k = x25519_public_key(&mut rng);
            assert!(k[31] & 0x80 == 0);
            // Straightforward reference: y^2 = x^3 + 486662 x^2 + x has a square root mod p
            // (Euler's criterion).
            let x = BigUint::from_bytes_le(&k);
            assert!(x < p);
            let y2 = (&x * &x * &x + BigUint::from(486_662u32) * &x * &x + &x) % &p;
            let e = (&p - BigUint::one()) / BigUint::from(2u32);
            assert_eq!(y2.modpow(&e, &p), BigUint::one());
        }
        // Doubling the base point (x = 9) gives the published x([2]B) of Curve25519.
        let two_b = double_x(&BigUint::from(9u32), &p);
        let want = BigUint::parse_bytes(
            b"14847277145635483483963372537557091634710985132825781088887140890597596352251",
            10,
        );
        assert_eq!(Some(two_b), want);
    }

    /// FIPS 203 ByteDecode12, bit by bit as the standard writes it (bit i of the byte string is
    /// bit i mod 8 of byte i / 8; coefficient j is bits 12j..12j+12, least significant first).
    fn byte_decode_12(bytes: &[u8]) -> Vec<u16> {
        let bit = |i: usize| u16::from((bytes[i / 8] >> (i % 8)) & 1);
        (0..bytes.len() * 8 / 12)
            .map(|j| (0..12).map(|k| bit(12 * j + k) << k).sum())
            .collect()
    }

    #[test]
    fn ml_kem_768_key_passes_the_fips_203_modulus_check() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let mut all = Vec::new();
        for _ in 0..8 {
            let mut ek = Vec::new();
            push_ml_kem_768_key(&mut ek, &mut rng);
            assert_eq!(ek.len(), 1184);
            let t = byte_decode_12(&ek[..1152]);
            assert_eq!(t.len(), 768);
            // The encapsulation key check (FIPS 203, 7.2): every coefficient below q = 3329.
            assert!(t.iter().all(|&c| c < 3329));
            all.extend(t);
        }
        // Uniform below q: the whole range is used, top bits included.
        assert!(all.iter().any(|&c| c >= 3300) && all.iter().any(|&c| c < 30));
        let mean = all.iter().map(|&c| f64::from(c)).sum::<f64>() / all.len() as f64;
        assert!((1600.0..1730.0).contains(&mean), "{mean}");
        // Random bytes would fail the check (a 12-bit value is >= q with probability 0.19).
        let mut random = [0u8; 1152];
        rng.fill_bytes(&mut random);
        assert!(byte_decode_12(&random).iter().any(|&c| c >= 3329));
    }

    #[test]
    fn server_hello_digest_and_layout() {
        let secret = ProxySecret::fake_tls([0x33; 16], b"example.org").unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let hello = build_client_hello(secret.key(), b"example.org", 1000, &mut rng).unwrap();
        let info = check_client_hello(
            &hello,
            core::slice::from_ref(&secret),
            UnixTime::from_secs(1000),
            0,
        )
        .unwrap();
        let answer = build_server_hello(&secret, &info, &mut rng);
        let first = record_len(&answer).unwrap();
        assert_eq!(answer[..3], [0x16, 0x03, 0x03]);
        // ServerHello echoes the session id.
        assert_eq!(answer[43], 32);
        assert_eq!(answer[44..76], hello[44..76]);
        assert_eq!(answer[first..first + 9], ANSWER_MIDDLE);
        let l = u16::from_be_bytes([answer[first + 9], answer[first + 10]]) as usize;
        assert_eq!(first + 11 + l, answer.len());
        assert!((1024..4096).contains(&l));
        let mut zeroed = answer.clone();
        zeroed[RANDOM_OFFSET..RANDOM_OFFSET + 32].fill(0);
        let msg = [&hello[RANDOM_OFFSET..RANDOM_OFFSET + 32], &zeroed[..]].concat();
        assert_eq!(
            answer[RANDOM_OFFSET..RANDOM_OFFSET + 32],
            ref_hmac(secret.key(), &msg)
        );
    }
}
