//! Server RSA keys: fingerprints, the configurable key set, RSA_PAD (`mtproto_auth_key.md` 4.1)
//! and, for the server role, RSA_PAD decoding (plus the legacy SHA-1 padding behind an option).

use alloc::vec::Vec;
use core::fmt;

use num_bigint_dig::BigUint;
use num_integer::Integer;
use num_traits::One;
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::bn;
use super::dh::hex_array;
use crate::crypto::{ct_eq, ige, sha1, sha256};
use crate::tl::Writer;
use crate::tl::schema::types;

/// Longest `data` RSA_PAD accepts ("One has to check that data is not longer than 144 bytes").
pub const RSA_PAD_MAX_DATA: usize = 144;
/// Attempts at drawing a `temp_key` whose `key_aes_encrypted` is below the modulus. Each attempt
/// fails with probability < 1/2 for a 2048-bit modulus, so 64 failures mean a broken RNG.
const RSA_PAD_MAX_TRIES: usize = 64;
/// Attempts at drawing an RSA blinding factor invertible mod `n`. A random value shares a factor
/// with `n = p * q` with probability about 2^-1023: a second attempt is already never needed.
const BLIND_MAX_TRIES: usize = 8;

/// An RSA operation or key that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RsaError {
    /// The modulus is not exactly 2048 bits (RSA_PAD needs a 256-byte modulus).
    ModulusSize,
    /// The public exponent is even, below 3, or not below the modulus.
    BadExponent,
    /// The private key components are inconsistent (p * q != n).
    InconsistentPrivateKey,
    /// RSA_PAD input longer than 144 bytes.
    DataTooLong,
    /// No `temp_key` gave a value below the modulus (the RNG is broken).
    PadRetriesExhausted,
    /// The ciphertext is not 256 bytes or not below the modulus.
    BadCiphertext,
    /// The RSA_PAD SHA-256 check failed after decryption (wrong key or tampered data).
    PadHashMismatch,
    /// Legacy padding: the decrypted block does not start with a zero byte.
    LegacyFormat,
    /// The PEM/DER text is not an RSA public key we can read.
    BadPem,
    /// No blinding factor invertible modulo `n` could be drawn (the RNG is broken).
    Blinding,
}

impl fmt::Display for RsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ModulusSize => "RSA modulus is not 2048 bits",
            Self::BadExponent => "RSA public exponent is invalid",
            Self::InconsistentPrivateKey => "RSA private key components are inconsistent",
            Self::DataTooLong => "RSA_PAD data is longer than 144 bytes",
            Self::PadRetriesExhausted => "RSA_PAD found no temp_key below the modulus",
            Self::BadCiphertext => "RSA ciphertext is not a 256-byte value below the modulus",
            Self::PadHashMismatch => "RSA_PAD hash check failed",
            Self::LegacyFormat => "legacy RSA padding is malformed",
            Self::BadPem => "not a PEM/DER RSA public key",
            Self::Blinding => "no invertible RSA blinding factor (broken RNG)",
        })
    }
}

impl core::error::Error for RsaError {}

/// `v` as exactly 256 big-endian bytes; `None` if it does not fit. The intermediate byte vector
/// is wiped (decrypted RSA blocks go through here).
fn to_256(v: &BigUint) -> Option<[u8; 256]> {
    let mut b = v.to_bytes_be();
    let mut out = [0u8; 256];
    let fits = out
        .len()
        .checked_sub(b.len())
        .and_then(|off| out.get_mut(off..))
        .map(|dst| dst.copy_from_slice(&b))
        .is_some();
    b.zeroize();
    fits.then_some(out)
}

/// A server RSA public key `(n, e)` with its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: BigUint,
    e: BigUint,
    fingerprint: i64,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish_non_exhaustive()
    }
}

const TELEGRAM_PROD_N: [u8; 256] = hex_array::<256>(
    b"E8BB3305C0B52C6CF2AFDF7637313489E63E05268E5BADB601AF417786472E5F\
      93B85438968E20E6729A301C0AFC121BF7151F834436F7FDA680847A66BF64AC\
      CEC78EE21C0B316F0EDAFE2F41908DA7BD1F4A5107638EEB67040ACE472A14F9\
      0D9F7C2B7DEF99688BA3073ADB5750BB02964902A359FE745D8170E36876D4FD\
      8A5D41B2A76CBFF9A13267EB9580B2D06D10357448D20D9DA2191CB5D8C93982\
      961CDFDEDA629E37F1FB09A0722027696032FE61ED663DB7A37F6F263D370F69\
      DB53A0DC0A1748BDAAFF6209D5645485E6E001D1953255757E4B8E42813347B1\
      1DA6AB500FD0ACE7E6DFA3736199CCAF9397ED0745A427DCFA6CD67BCB1ACFF3",
);

const TELEGRAM_TEST_N: [u8; 256] = hex_array::<256>(
    b"C8C11D635691FAC091DD9489AEDCED2932AA8A0BCEFEF05FA800892D9B52ED03\
      200865C9E97211CB2EE6C7AE96D3FB0E15AEFFD66019B44A08A240CFDD2868A8\
      5E1F54D6FA5DEAA041F6941DDF302690D61DC476385C2FA655142353CB4E4B59\
      F6E5B6584DB76FE8B1370263246C010C93D011014113EBDF987D093F9D37C2BE\
      48352D69A1683F8F6E6C2167983C761E3AB169FDE5DAAA12123FA1BEAB621E4D\
      A5935E9C198F82F35EAE583A99386D8110EA6BD1ABB0F568759F62694419EA5F\
      69847C43462ABEF858B4CB5EDC84E7B9226CD7BD7E183AA974A712C079DDE85B\
      9DC063B8A5C08E8F859C0EE5DCD824C7807F20153361A7F63CFD2A433A1BE7F5",
);

const E_65537: [u8; 3] = [0x01, 0x00, 0x01];

impl RsaPublicKey {
    /// A key from its big-endian modulus and exponent. The modulus must be 2048 bits; the
    /// exponent odd, at least 3 and below the modulus.
    pub fn from_be(n: &[u8], e: &[u8]) -> Result<Self, RsaError> {
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        Self::new(n, e)
    }

    fn new(n: BigUint, e: BigUint) -> Result<Self, RsaError> {
        if n.bits() != 2048 {
            return Err(RsaError::ModulusSize);
        }
        if e < BigUint::from(3u32) || e.is_even() || e >= n {
            return Err(RsaError::BadExponent);
        }
        let fingerprint = compute_fingerprint(&n, &e);
        Ok(Self { n, e, fingerprint })
    }

    /// A key from PEM text: `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1, the form Telegram and
    /// my.telegram.org publish) or `-----BEGIN PUBLIC KEY-----` (X.509 SubjectPublicKeyInfo).
    pub fn from_pem(pem: &str) -> Result<Self, RsaError> {
        let der = pem::decode(pem).ok_or(RsaError::BadPem)?;
        let (n, e) = pem::rsa_public_key(&der).ok_or(RsaError::BadPem)?;
        Self::from_be(n, e)
    }

    /// Telegram's production-DC key (fingerprint bytes `85FD64DE851D9DD0` on the wire),
    /// from `rsa_keys_and_dh_prime.md`.
    pub fn telegram_production() -> Self {
        Self::from_known(&TELEGRAM_PROD_N)
    }

    /// Telegram's test-DC key (fingerprint bytes `03268D20DF9858B2` on the wire).
    pub fn telegram_test() -> Self {
        Self::from_known(&TELEGRAM_TEST_N)
    }

    fn from_known(n: &[u8; 256]) -> Self {
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(&E_65537);
        let fingerprint = compute_fingerprint(&n, &e);
        Self { n, e, fingerprint }
    }

    /// The fingerprint: the low 64 bits of SHA-1 over the TL serialization of
    /// `rsa_public_key n:string e:string`, i.e. the last 8 bytes of the digest read as a
    /// little-endian `long` (exactly how it travels in `resPQ` and `req_DH_params`).
    pub fn fingerprint(&self) -> i64 {
        self.fingerprint
    }

    /// The modulus as 256 big-endian bytes.
    pub fn modulus_be(&self) -> [u8; 256] {
        to_256(&self.n).unwrap_or([0; 256])
    }

    /// RSA_PAD(data, key) exactly as `mtproto_auth_key.md` 4.1 describes. Randomness drawn from
    /// `rng`, in this order: the `192 - data.len()` padding bytes, then one 32-byte `temp_key`
    /// per attempt (a fresh one whenever `key_aes_encrypted >= n`).
    pub fn encrypt_pad<R: CryptoRng + ?Sized>(
        &self,
        data: &[u8],
        rng: &mut R,
    ) -> Result<[u8; 256], RsaError> {
        let mut data_with_padding = Zeroizing::new([0u8; 192]);
        let (head, pad) = data_with_padding
            .split_at_mut_checked(data.len())
            .ok_or(RsaError::DataTooLong)?;
        if data.len() > RSA_PAD_MAX_DATA {
            return Err(RsaError::DataTooLong);
        }
        head.copy_from_slice(data);
        rng.fill_bytes(pad);
        for _ in 0..RSA_PAD_MAX_TRIES {
            let mut temp_key = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(temp_key.as_mut());
            let mut key_aes_encrypted = Zeroizing::new([0u8; 256]);
            let (key_part, aes_part) = key_aes_encrypted.split_at_mut(32);
            // data_with_hash := BYTE_REVERSE(data_with_padding) + SHA256(temp_key + data_with_padding)
            for (d, s) in aes_part.iter_mut().zip(data_with_padding.iter().rev()) {
                *d = *s;
            }
            let h = sha256(&[temp_key.as_ref(), data_with_padding.as_ref()]);
            if let Some(dst) = aes_part.get_mut(192..224) {
                dst.copy_from_slice(&h);
            }
            // aes_encrypted := AES256_IGE(data_with_hash, temp_key, 0)
            ige::aes256_ige_encrypt(&temp_key, &[0u8; 32], aes_part)
                .map_err(|_| RsaError::DataTooLong)?;
            // temp_key_xor := temp_key XOR SHA256(aes_encrypted)
            let h = sha256(&[aes_part]);
            for ((d, k), x) in key_part.iter_mut().zip(temp_key.iter()).zip(h.iter()) {
                *d = k ^ x;
            }
            // The RSA plaintext reveals temp_key and data: wiped after use.
            let m = Zeroizing::new(BigUint::from_bytes_be(key_aes_encrypted.as_ref()));
            if *m >= self.n {
                continue;
            }
            let c = bn::modpow(&m, &self.e, &self.n).ok_or(RsaError::ModulusSize)?;
            return to_256(&c).ok_or(RsaError::ModulusSize);
        }
        Err(RsaError::PadRetriesExhausted)
    }
}

/// Just enough PEM, base64 and DER to read an RSA public key.
mod pem {
    use alloc::vec::Vec;

    /// The base64 body between the `-----BEGIN` and `-----END` lines, decoded.
    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if !lines.next()?.starts_with("-----BEGIN ") {
            return None;
        }
        let mut out = Vec::with_capacity((text.len() / 4).saturating_mul(3));
        // `acc` collects 6-bit groups; only its low `bits + 8 <= 14` bits are ever read, so the
        // high bits it shifts out are irrelevant. `bits` stays in 0..8 between characters.
        let (mut acc, mut bits) = (0u32, 0u32);
        for line in lines {
            if line.starts_with("-----END ") {
                return Some(out);
            }
            for c in line.bytes() {
                // Each arm's arithmetic stays within the matched range: no wrap.
                let v = match c {
                    b'A'..=b'Z' => c.wrapping_sub(b'A'),
                    b'a'..=b'z' => c.wrapping_sub(b'a' - 26),
                    b'0'..=b'9' => c.wrapping_add(52 - b'0'),
                    b'+' => 62,
                    b'/' => 63,
                    b'=' => continue,
                    _ => return None,
                };
                acc = acc.wrapping_shl(6) | u32::from(v);
                bits = bits.saturating_add(6);
                if let Some(rest) = bits.checked_sub(8) {
                    bits = rest;
                    let [byte, ..] = acc.wrapping_shr(bits).to_le_bytes();
                    out.push(byte);
                }
            }
        }
        None
    }

    /// One DER element: `(tag, contents, rest)`.
    fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&len0, rest) = rest.split_first()?;
        let (len, rest) = if len0 < 0x80 {
            (usize::from(len0), rest)
        } else {
            let n = usize::from(len0 & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let (len_bytes, rest) = rest.split_at_checked(n)?;
            let len = len_bytes.iter().try_fold(0usize, |acc, &b| {
                acc.checked_mul(256)?.checked_add(usize::from(b))
            })?;
            (len, rest)
        };
        let (contents, rest) = rest.split_at_checked(len)?;
        Some((tag, contents, rest))
    }

    /// A DER INTEGER's magnitude (leading sign byte dropped).
    fn integer(der: &[u8]) -> Option<(&[u8], &[u8])> {
        let (tag, mut v, rest) = element(der)?;
        if tag != 0x02 {
            return None;
        }
        while let [0, tail @ ..] = v {
            v = tail;
        }
        Some((v, rest))
    }

    /// `(n, e)` from PKCS#1 `RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }`, or from an
    /// X.509 `SubjectPublicKeyInfo` wrapping one in its BIT STRING.
    pub(super) fn rsa_public_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
        let (tag, seq, _) = element(der)?;
        if tag != 0x30 {
            return None;
        }
        let (first_tag, first, rest) = element(seq)?;
        if first_tag == 0x30 {
            // SubjectPublicKeyInfo: AlgorithmIdentifier, then BIT STRING (unused-bits byte 0).
            let (bs_tag, bits, _) = element(rest)?;
            let (&unused, inner) = bits.split_first()?;
            if bs_tag != 0x03 || unused != 0 {
                return None;
            }
            let _ = first;
            return rsa_public_key(inner);
        }
        let (n, rest) = integer(seq)?;
        let (e, _) = integer(rest)?;
        Some((n, e))
    }
}

fn compute_fingerprint(n: &BigUint, e: &BigUint) -> i64 {
    // SHA1 over the bare `rsa_public_key n:string e:string` (mtproto_auth_key.md step 2).
    let (n, e) = (n.to_bytes_be(), e.to_bytes_be());
    let key = types::RsaPublicKey { n: &n, e: &e };
    let mut buf = [0u8; 544];
    let mut w = Writer::new(&mut buf);
    let written = match key.serialize_bare(&mut w) {
        Ok(()) => w.written(),
        // Unreachable for keys of at most 2048 bits (checked by the constructors).
        Err(_) => &[],
    };
    let digest = sha1(&[written]);
    let mut low = [0u8; 8];
    low.copy_from_slice(digest.get(12..20).unwrap_or(&[0; 8]));
    i64::from_le_bytes(low)
}

/// The set of server public keys a client trusts, looked up by fingerprint. Starts empty
/// ([`RsaKeySet::new`]) or with Telegram's keys; users add their own with [`RsaKeySet::push`].
#[derive(Clone, Debug, Default)]
pub struct RsaKeySet {
    keys: Vec<RsaPublicKey>,
}

impl RsaKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Telegram's production-DC key only.
    pub fn telegram_production() -> Self {
        Self {
            keys: alloc::vec![RsaPublicKey::telegram_production()],
        }
    }

    /// Telegram's test-DC key only.
    pub fn telegram_test() -> Self {
        Self {
            keys: alloc::vec![RsaPublicKey::telegram_test()],
        }
    }

    /// Adds a key (a key with the same fingerprint is replaced).
    pub fn push(&mut self, key: RsaPublicKey) {
        self.keys.retain(|k| k.fingerprint != key.fingerprint);
        self.keys.push(key);
    }

    /// Builder form of [`RsaKeySet::push`].
    pub fn with(mut self, key: RsaPublicKey) -> Self {
        self.push(key);
        self
    }

    /// The key with this fingerprint.
    pub fn get(&self, fingerprint: i64) -> Option<&RsaPublicKey> {
        self.keys.iter().find(|k| k.fingerprint == fingerprint)
    }

    /// The first fingerprint offered by the server (in the server's order) that we know.
    pub fn select(&self, offered: &[i64]) -> Option<&RsaPublicKey> {
        offered.iter().find_map(|&f| self.get(f))
    }

    /// All keys.
    pub fn iter(&self) -> impl Iterator<Item = &RsaPublicKey> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A server's RSA private key (CRT form). `Debug` shows only the fingerprint.
///
/// The private components (`p`, `q`, `d mod (p-1)`, `d mod (q-1)`, `q^-1 mod p`) and the
/// decryption intermediates are wiped on drop ([`Zeroizing`]). Not wiped: temporaries inside
/// num-bigint-dig (see [`handshake`](super) docs).
///
/// Decryption (`modpow`) is not constant time, so it is **blinded** (as the RustCrypto `rsa`
/// crate does on the same num-bigint-dig): for each ciphertext `c` a fresh random `r` is drawn
/// from the caller's RNG, the CRT exponentiation runs on `c * r^e mod n`, and the result is
/// multiplied by `r^-1 mod n`. The private-key operation thus never sees the attacker-chosen
/// value, and its timing is decorrelated from it.
#[derive(Clone)]
pub struct RsaPrivateKey {
    public: RsaPublicKey,
    p: Zeroizing<BigUint>,
    q: Zeroizing<BigUint>,
    dp: Zeroizing<BigUint>,
    dq: Zeroizing<BigUint>,
    qinv: Zeroizing<BigUint>,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field(
                "fingerprint",
                &format_args!("{:016x}", self.public.fingerprint),
            )
            .finish_non_exhaustive()
    }
}

/// Legacy (pre-RSA_PAD) payload: `SHA1(data) + data + random` in a 255-byte block. The SHA-1 can
/// only be checked once the TL reader knows where `data` ends.
pub struct LegacyPayload {
    /// The SHA-1 the client put in front of `data`.
    pub sha1: [u8; 20],
    /// `data` followed by the client's random padding (235 bytes).
    pub body: Zeroizing<[u8; 235]>,
}

impl LegacyPayload {
    /// Checks the SHA-1 over the first `data_len` bytes of `body` (constant time).
    pub fn verify(&self, data_len: usize) -> Result<(), RsaError> {
        let data = self.body.get(..data_len).ok_or(RsaError::LegacyFormat)?;
        if ct_eq(&sha1(&[data]), &self.sha1) {
            Ok(())
        } else {
            Err(RsaError::PadHashMismatch)
        }
    }
}

impl RsaPrivateKey {
    /// A private key from big-endian `n`, `e`, `d`, `p`, `q`. Checks `p * q == n` and that `d`
    /// inverts `e` on a test value.
    pub fn from_be(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> Result<Self, RsaError> {
        const BAD: RsaError = RsaError::InconsistentPrivateKey;
        let public = RsaPublicKey::from_be(n, e)?;
        let d = Zeroizing::new(BigUint::from_bytes_be(d));
        let p = Zeroizing::new(BigUint::from_bytes_be(p));
        let q = Zeroizing::new(BigUint::from_bytes_be(q));
        let one = BigUint::one();
        if *p <= one || *q <= one || bn::mul(&p, &q) != public.n {
            return Err(BAD);
        }
        // p, q > 1: the subtractions and moduli below are defined (the `ok_or`s cannot fire).
        let p_minus_1 = Zeroizing::new(bn::sub(&p, &one).ok_or(BAD)?);
        let q_minus_1 = Zeroizing::new(bn::sub(&q, &one).ok_or(BAD)?);
        let dp = Zeroizing::new(bn::rem(&d, &p_minus_1).ok_or(BAD)?);
        let dq = Zeroizing::new(bn::rem(&d, &q_minus_1).ok_or(BAD)?);
        // q^-1 mod p by Fermat (p is prime; a composite p fails the probe below).
        let p_minus_2 = Zeroizing::new(bn::sub(&p_minus_1, &one).ok_or(BAD)?);
        let qinv = Zeroizing::new(bn::modpow(&q, &p_minus_2, &p).ok_or(BAD)?);
        let key = Self {
            public,
            p,
            q,
            dp,
            dq,
            qinv,
        };
        let probe = BigUint::from(0x1234_5678u32);
        let c = bn::modpow(&probe, &key.public.e, &key.public.n).ok_or(BAD)?;
        if key.raw_decrypt(&c).as_deref() != Some(&probe) {
            return Err(BAD);
        }
        Ok(key)
    }

    /// A fixed 2048-bit key for tests and the built-in demo server. **Its private half is public
    /// (it is in this source file): never use it for anything real.**
    pub fn demo() -> Self {
        match Self::from_be(&DEMO_N, &E_65537, &DEMO_D, &DEMO_P, &DEMO_Q) {
            Ok(k) => k,
            // Unreachable: the constants are checked by a unit test.
            Err(_) => Self {
                public: RsaPublicKey::from_known(&DEMO_N),
                p: Zeroizing::new(BigUint::one()),
                q: Zeroizing::new(BigUint::one()),
                dp: Zeroizing::new(BigUint::one()),
                dq: Zeroizing::new(BigUint::one()),
                qinv: Zeroizing::new(BigUint::one()),
            },
        }
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// c^d mod n with the CRT (Garner), unblinded: only for the fixed probe of
    /// [`RsaPrivateKey::from_be`] and inside [`RsaPrivateKey::blinded_decrypt`]. Every
    /// intermediate is secret and wiped. `None` is impossible for a key from
    /// [`RsaPrivateKey::from_be`] (`p, q > 1`, so no zero modulus); the `Option` keeps the
    /// arithmetic panic-free rather than asserting that.
    fn raw_decrypt(&self, c: &BigUint) -> Option<Zeroizing<BigUint>> {
        #[cfg(test)]
        tests::CRT_INPUTS.with(|v| v.borrow_mut().push(c.clone()));
        let (p, q) = (&*self.p, &*self.q);
        let m1 = Zeroizing::new(bn::modpow(c, &self.dp, p)?);
        let m2 = Zeroizing::new(bn::modpow(c, &self.dq, q)?);
        // h = qinv * (m1 - m2) mod p, with m1 - m2 taken mod p (m1 < p, m2 mod p < p).
        let m2p = Zeroizing::new(bn::rem(&m2, p)?);
        let diff = Zeroizing::new(match bn::sub(&m1, &m2p) {
            Some(d) => d,
            None => bn::sub(&Zeroizing::new(bn::add(&m1, p)), &m2p)?,
        });
        let h = Zeroizing::new(bn::rem(&Zeroizing::new(bn::mul(&self.qinv, &diff)), p)?);
        let hq = Zeroizing::new(bn::mul(&h, q));
        Some(Zeroizing::new(bn::add(&m2, &hq)))
    }

    /// `c^d mod n` blinded: a fresh `r` in `[2, n)` from `rng` (redrawn if not invertible),
    /// `m' = (c * r^e)^d mod n` by the CRT, `m = m' * r^-1 mod n`. Returns `m` and the `r` used
    /// (for tests; callers drop it). `c` must be below `n`.
    fn blinded_decrypt<R: CryptoRng + ?Sized>(
        &self,
        c: &BigUint,
        rng: &mut R,
    ) -> Result<(Zeroizing<BigUint>, Zeroizing<BigUint>), RsaError> {
        const BAD: RsaError = RsaError::BadCiphertext;
        let n = &self.public.n;
        let two = BigUint::from(2u32);
        for _ in 0..BLIND_MAX_TRIES {
            let r = Zeroizing::new(super::prime::random_below(rng, &two, n));
            let Some(r_inv) = bn::mod_inverse(&r, n).map(Zeroizing::new) else {
                continue;
            };
            let r_e = Zeroizing::new(bn::modpow(&r, &self.public.e, n).ok_or(BAD)?);
            let blinded = Zeroizing::new(bn::rem(&Zeroizing::new(bn::mul(c, &r_e)), n).ok_or(BAD)?);
            let m_blinded = self.raw_decrypt(&blinded).ok_or(BAD)?;
            let m = bn::rem(&Zeroizing::new(bn::mul(&m_blinded, &r_inv)), n).ok_or(BAD)?;
            return Ok((Zeroizing::new(m), r));
        }
        Err(RsaError::Blinding)
    }

    fn decrypt_block<R: CryptoRng + ?Sized>(
        &self,
        ciphertext: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<[u8; 256]>, RsaError> {
        if ciphertext.len() != 256 {
            return Err(RsaError::BadCiphertext);
        }
        let c = BigUint::from_bytes_be(ciphertext);
        if c >= self.public.n {
            return Err(RsaError::BadCiphertext);
        }
        let (m, _r) = self.blinded_decrypt(&c, rng)?;
        to_256(&m)
            .map(Zeroizing::new)
            .ok_or(RsaError::BadCiphertext)
    }

    /// Undoes RSA_PAD: returns `data_with_padding` (192 bytes: the TL data and the client's
    /// random padding) after checking the SHA-256 in constant time. `rng` supplies the RSA
    /// blinding factor (256 + 8 bytes per call; see the type docs).
    pub fn decrypt_pad<R: CryptoRng + ?Sized>(
        &self,
        ciphertext: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<[u8; 192]>, RsaError> {
        let mut block = self.decrypt_block(ciphertext, rng)?;
        let (key_part, aes_part) = block.split_at_mut(32);
        let h = sha256(&[aes_part]);
        let mut temp_key = Zeroizing::new([0u8; 32]);
        for ((d, k), x) in temp_key.iter_mut().zip(key_part.iter()).zip(h.iter()) {
            *d = k ^ x;
        }
        ige::aes256_ige_decrypt(&temp_key, &[0u8; 32], aes_part)
            .map_err(|_| RsaError::BadCiphertext)?;
        let mut data_with_padding = Zeroizing::new([0u8; 192]);
        for (d, s) in data_with_padding
            .iter_mut()
            .zip(aes_part.get(..192).unwrap_or(&[]).iter().rev())
        {
            *d = *s;
        }
        let expect = sha256(&[temp_key.as_ref(), data_with_padding.as_ref()]);
        let got = aes_part.get(192..224).unwrap_or(&[]);
        if !ct_eq(&expect, got) {
            data_with_padding.zeroize();
            return Err(RsaError::PadHashMismatch);
        }
        Ok(data_with_padding)
    }

    /// Decodes the legacy padding old clients still send: `RSA(SHA1(data) + data + random)`
    /// with a 255-byte plaintext. Only used when the server enables it explicitly. `rng`
    /// supplies the RSA blinding factor, as for [`RsaPrivateKey::decrypt_pad`].
    pub fn decrypt_legacy<R: CryptoRng + ?Sized>(
        &self,
        ciphertext: &[u8],
        rng: &mut R,
    ) -> Result<LegacyPayload, RsaError> {
        let block = self.decrypt_block(ciphertext, rng)?;
        let (&first, rest) = block.split_first().ok_or(RsaError::LegacyFormat)?;
        if first != 0 {
            return Err(RsaError::LegacyFormat);
        }
        let (hash, body) = rest.split_at_checked(20).ok_or(RsaError::LegacyFormat)?;
        let mut sha = [0u8; 20];
        sha.copy_from_slice(hash);
        let mut b = Zeroizing::new([0u8; 235]);
        b.copy_from_slice(body.get(..235).ok_or(RsaError::LegacyFormat)?);
        Ok(LegacyPayload { sha1: sha, body: b })
    }

    /// Encrypts with the legacy padding (for tests of [`RsaPrivateKey::decrypt_legacy`]; clients
    /// must use RSA_PAD). `data` at most 235 bytes.
    pub fn legacy_encrypt<R: CryptoRng + ?Sized>(
        public: &RsaPublicKey,
        data: &[u8],
        rng: &mut R,
    ) -> Result<[u8; 256], RsaError> {
        let mut block = Zeroizing::new([0u8; 256]);
        let rest = block.get_mut(1..).ok_or(RsaError::DataTooLong)?;
        let (hash, body) = rest.split_at_mut(20);
        let (head, pad) = body
            .split_at_mut_checked(data.len())
            .ok_or(RsaError::DataTooLong)?;
        hash.copy_from_slice(&sha1(&[data]));
        head.copy_from_slice(data);
        rng.fill_bytes(pad);
        let m = Zeroizing::new(BigUint::from_bytes_be(block.as_ref()));
        let c = bn::modpow(&m, &public.e, &public.n).ok_or(RsaError::ModulusSize)?;
        to_256(&c).ok_or(RsaError::ModulusSize)
    }
}

const DEMO_N: [u8; 256] = hex_array::<256>(
    b"9AF4B6762BB03EA4FEB8081FAAD9DFF581E0E6785C3DD8415B92B91A12B27356\
      4689EE3AFCF684EC6134B423DCBF7DD2EE3EBF029E3574D32B046CAA070B4546\
      55F1D2A132A8CE085B984E5C6D2E23C381CB75840AF147C8DC8F1733BCD15E42\
      EADFDCC75274CF72A80EBDB6643A70616408FA678B7B5D3A9C7B2A18499799C2\
      90F8B73575E21EFBB6EDB977186022D9D5268DC790DC2637C89C7AD2E32C845E\
      03940B0B6EA2CB9A20CE488CB8E321180C200961FCB46DFCE163ADC482F228A2\
      019AD4C7C2F8FA5C7D28F7BAB7AA378B7F4108911A92A647874E5F4FA2ED1A03\
      5B60E50DFF9632E58E9CA3A5E7DB57222077C2732304E7E259D17EC6A8D9D753",
);
const DEMO_D: [u8; 256] = hex_array::<256>(
    b"4AB849EBBDB164E3C6F812E2C24E0152AF68357A40708A012A191C2CD86B3876\
      97D9170956C5C0DF031898ECDA1B749EEBC751EFFF3E23B15802F02B24EE685F\
      3C3E39A5057AA4AF1F0BD86D7530548A87E2062EBFE00D0F6C5B8B82A5400846\
      18600E6406FCD0B3A71A449CD8C3DD40F92DE3215EFF03BBA98D328537A764BA\
      CEA4FC342BA0F533C34CFCC715F771AA495AFD450383BE1F880AC7E407154E48\
      409099F06C99F63004D53ED622C2D755C9C0C24857935FC3D73F7C05BC04DAD4\
      E1738591CE60CC209A13B17D2F454898C0C86FF4492844AAFD01FAF25A9490B2\
      AC9A48A8446B665AE66F627C0795C250906CA4B694762189CD7698A8CAD178C1",
);
const DEMO_P: [u8; 128] = hex_array::<128>(
    b"DAB032439C30A432CFAA078D2B00214767490361E0C4C7CF320EB3F5AB827654\
      A6DE7758467E01FA90D887C207F2CEC815342FAA83CD4653F735204310F14B71\
      4EF389179CCF3FF2F5A9F275BFD3D38E340DB67A52FBD0BD64AD927CC9CF8527\
      E859E93DC1B44D4DF535F70691BCC55FDC6BFB259558EF3A4E2474AFD4E2E1B1",
);
const DEMO_Q: [u8; 128] = hex_array::<128>(
    b"B564D52A4C3A91EE4EFF212B3EE58EE23AC168E479784A04488235A09561127A\
      B79BE8E108FC2E2339458C5617998BA4F70BE59138BF4DF76F6DB228E75CC088\
      2AE1B19E00F9C482B89171F9725D9C03919A4251ADE7C31793B9162620AFB56D\
      AC700A4B0A591E1175E6B93B5F5F476C790C2CA22A1349CF7086EEB6AD20A643",
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(core::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    std::thread_local! {
        /// Every value the CRT private-key operation ([`RsaPrivateKey::raw_decrypt`]) was run
        /// on, in this test thread.
        pub(super) static CRT_INPUTS: core::cell::RefCell<Vec<BigUint>> =
            const { core::cell::RefCell::new(Vec::new()) };
    }

    fn take_crt_inputs() -> Vec<BigUint> {
        CRT_INPUTS.with(|v| core::mem::take(&mut *v.borrow_mut()))
    }

    #[test]
    fn blinded_decryption_matches_an_independent_computation() {
        // c = 2^2000 + 12345 and m = pow(c, d, n) computed with Python from DEMO_N / DEMO_D.
        let c = (BigUint::one() << 2000usize) + BigUint::from(12_345u32);
        let expected = hex(
            "44a6acf0d3ee5a9b7d837396d67759952a7b56161ff09bac6a7ca9fbbdd5ab121b7b01d4cf759ba310f6d635f3aeaef9dccd273ae19dc255c64b76ef20c5ccb340fecad3a9a3e5fa62182503184ca309e99c76e3603c2898443d8ee40b0a2dd36387ef738fb86f62c781be40079db90cd5320318ec16b964d32e9eeab30c0ed849503ae7d940fe88b623ec8f4619e921394008c4fcdb45f7fb058c47ebbd09d8e5e664dca2ad894ba951e4afceb2715a57c65d05c58a9eb199a03b6bd5fc27f664425e8149d1f1ff62ebcfb2e0a4f22b6645d7b8649126d1343f225888e8d6d2055458ae982ba24685596a9f9bdc0a82c4f451bb10a18f1a3f8839628668e2c6",
        );
        let key = RsaPrivateKey::demo();
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for _ in 0..3 {
            let (m, _) = key.blinded_decrypt(&c, &mut rng).unwrap();
            assert_eq!(m.to_bytes_be(), expected);
        }
        let block = key.decrypt_block(&to_256(&c).unwrap(), &mut rng).unwrap();
        assert_eq!(block.as_slice(), expected.as_slice());
        // Edge values: 0 and 1 are their own roots, n - 1 too (d is odd).
        let n_minus_1 = &key.public.n - BigUint::one();
        for v in [BigUint::from(0u32), BigUint::one(), n_minus_1] {
            assert_eq!(*key.blinded_decrypt(&v, &mut rng).unwrap().0, v);
        }
    }

    #[test]
    fn the_private_operation_never_sees_the_ciphertext_and_r_is_fresh() {
        // issue 9 item 4: attacker-chosen ciphertexts went straight into the CRT modpow.
        let key = RsaPrivateKey::demo();
        let n = &key.public.n;
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let c = key
            .public_key()
            .encrypt_pad(b"blinding", &mut rng)
            .map(|c| BigUint::from_bytes_be(&c))
            .unwrap();
        take_crt_inputs();
        let (m1, r1) = key.blinded_decrypt(&c, &mut rng).unwrap();
        let (m2, r2) = key.blinded_decrypt(&c, &mut rng).unwrap();
        assert_eq!(*m1, *m2);
        assert_ne!(*r1, *r2, "a fresh blinding factor per call");
        for r in [&r1, &r2] {
            assert!(**r > BigUint::one() && **r < *n);
        }
        // The CRT ran exactly on c * r^e mod n, once per call, never on c itself.
        let seen = take_crt_inputs();
        let blind = |r: &BigUint| (&c * r.modpow(&key.public.e, n)) % n;
        assert_eq!(seen, alloc::vec![blind(&r1), blind(&r2)]);
        assert!(!seen.contains(&c));
        // The public entry points blind too: the same ciphertext twice, two different inputs.
        let bytes = to_256(&c).unwrap();
        key.decrypt_pad(&bytes, &mut rng).unwrap();
        key.decrypt_pad(&bytes, &mut rng).unwrap();
        let seen = take_crt_inputs();
        assert_eq!(seen.len(), 2);
        assert_ne!(seen[0], seen[1]);
        assert!(!seen.contains(&c));
    }

    #[test]
    fn blinding_needs_an_invertible_factor() {
        // A scripted RNG whose every draw gives r = p, which shares the factor p with n:
        // random_below(rng, 2, n) = 2 + X mod (n - 2), X the 264 drawn bytes, here p - 2.
        let key = RsaPrivateKey::demo();
        let p = &*key.p;
        let x = to_256(&(p - BigUint::from(2u32))).unwrap();
        let mut script = VecDeque::new();
        for _ in 0..BLIND_MAX_TRIES {
            script.extend([0u8; 8]);
            script.extend(x);
        }
        let mut rng = Script(script);
        assert_eq!(
            key.blinded_decrypt(&BigUint::from(5u32), &mut rng).err(),
            Some(RsaError::Blinding)
        );
        assert!(rng.0.is_empty());
    }

    /// Hands out scripted bytes in order; panics if the code under test asks for more.
    struct Script(VecDeque<u8>);
    impl rand_core::TryRng for Script {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
            let mut b = [0; 4];
            self.fill_bytes(&mut b);
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
            let mut b = [0; 8];
            self.fill_bytes(&mut b);
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
            for d in dst {
                *d = self.0.pop_front().expect("script exhausted");
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Script {}

    #[test]
    fn telegram_fingerprints_match_the_spec() {
        // rsa_keys_and_dh_prime.md: wire bytes 85FD64DE851D9DD0 / 03268D20DF9858B2.
        let prod = RsaPublicKey::telegram_production();
        assert_eq!(prod.fingerprint().to_le_bytes(), *hex("85FD64DE851D9DD0"));
        assert_eq!(prod.fingerprint(), -3414540481677951611);
        let test = RsaPublicKey::telegram_test();
        assert_eq!(test.fingerprint().to_le_bytes(), *hex("03268D20DF9858B2"));
        assert_eq!(test.fingerprint(), -5595554452916591101);
        // The decimal moduli from the spec agree with our hex constants.
        let dec = "29379598170669337022986177149456128565388431120058863768162556424047512191330847455146576344487764408661701890505066208632169112269581063774293102577308490531282748465986139880977280302242772832972539403531316010870401287642763009136156734339538042419388722777357134487746169093539093850251243897188928735903389451772730245253062963384108812842079887538976360465290946139638691491496062099570836476454855996319192747663615955633778034897140982517446405334423701359108810182097749467210509584293428076654573384828809574217079944388301239431309115013843331317877374435868468779972014486325557807783825502498215169806323";
        assert_eq!(
            BigUint::parse_bytes(dec.as_bytes(), 10).unwrap(),
            BigUint::from_bytes_be(&TELEGRAM_PROD_N)
        );
    }

    /// The PEMs exactly as printed in rsa_keys_and_dh_prime.md (extracted from tdlib there).
    const PROD_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g
5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9krM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO
62cECs5HKhT5DZ98K33vmWiLowc621dQuwKWSQKjWf50XYFw42h21P2KXUGyp2y/
+aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5gpYc397aYp438fsJoHIgJ2lgMv5h7WY9
t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRUhebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs
5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP8wIDAQAB
-----END RSA PUBLIC KEY-----";
    const TEST_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAyMEdY1aR+sCR3ZSJrtztKTKqigvO/vBfqACJLZtS7QMgCGXJ6XIR
yy7mx66W0/sOFa7/1mAZtEoIokDP3ShoqF4fVNb6XeqgQfaUHd8wJpDWHcR2OFwv
plUUI1PLTktZ9uW2WE23b+ixNwJjJGwBDJPQEQFBE+vfmH0JP503wr5INS1poWg/
j25sIWeYPHYeOrFp/eXaqhISP6G+q2IeTaWTXpwZj4LzXq5YOpk4bYEQ6mvRq7D1
aHWfYmlEGepfaYR8Q0YqvvhYtMte3ITnuSJs171+GDqpdKcSwHnd6FudwGO4pcCO
j4WcDuXc2CTHgH8gFTNhp/Y8/SpDOhvn9QIDAQAB
-----END RSA PUBLIC KEY-----";

    #[test]
    fn pem_keys_match_the_built_in_constants() {
        // Independent route to the same keys: PEM -> DER -> (n, e) -> fingerprint.
        let prod = RsaPublicKey::from_pem(PROD_PEM).unwrap();
        assert_eq!(prod, RsaPublicKey::telegram_production());
        assert_eq!(prod.fingerprint().to_le_bytes(), *hex("85FD64DE851D9DD0"));
        let test = RsaPublicKey::from_pem(TEST_PEM).unwrap();
        assert_eq!(test, RsaPublicKey::telegram_test());
        // The same key as X.509 SubjectPublicKeyInfo (produced with
        // `openssl rsa -RSAPublicKey_in -pubout` from PROD_PEM).
        let spki = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6LszBcC1LGzyr992NzE0
ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9k
rM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO62cECs5HKhT5DZ98K33vmWiLowc621dQ
uwKWSQKjWf50XYFw42h21P2KXUGyp2y/+aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5
gpYc397aYp438fsJoHIgJ2lgMv5h7WY9t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRU
hebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP
8wIDAQAB
-----END PUBLIC KEY-----";
        assert_eq!(RsaPublicKey::from_pem(spki).unwrap(), prod);
        // Garbage and truncations are errors, not panics.
        for bad in [
            "",
            "hello",
            "-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----",
            "-----BEGIN RSA PUBLIC KEY-----\n!!!!\n-----END RSA PUBLIC KEY-----",
            &PROD_PEM[..200],
        ] {
            assert_eq!(
                RsaPublicKey::from_pem(bad).err(),
                Some(RsaError::BadPem),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn from_pem_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            // Arbitrary DER in a PEM envelope.
            const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut text = alloc::string::String::from("-----BEGIN RSA PUBLIC KEY-----\n");
            for chunk in body.chunks(3) {
                let v = chunk.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    text.push(char::from(B64[((v >> (18 - 6 * i)) & 63) as usize]));
                }
            }
            text.push_str("\n-----END RSA PUBLIC KEY-----");
            let _ = RsaPublicKey::from_pem(&text);
        }
    }

    #[test]
    fn key_set_selects_by_fingerprint_in_server_order() {
        let set = RsaKeySet::telegram_production().with(RsaPublicKey::telegram_test());
        assert_eq!(set.len(), 2);
        // The official sample's resPQ offers these three; only the first is ours.
        let offered = [
            i64::from_le_bytes(hex("85FD64DE851D9DD0").try_into().unwrap()),
            i64::from_le_bytes(hex("A5B7F709355FC30B").try_into().unwrap()),
            i64::from_le_bytes(hex("216BE86C022BB4C3").try_into().unwrap()),
        ];
        let k = set.select(&offered).unwrap();
        assert_eq!(k, &RsaPublicKey::telegram_production());
        assert!(set.select(&offered[1..]).is_none());
        assert!(RsaKeySet::new().select(&offered).is_none());
        let demo = RsaPrivateKey::demo();
        let mut set = RsaKeySet::new();
        set.push(demo.public_key().clone());
        set.push(demo.public_key().clone());
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn rsa_pad_matches_the_grammers_vector() {
        // rsa_keys_and_dh_prime.md, "Extra deterministic RSA_PAD test vector": test-DC key;
        // padding = random_bytes[..192 - len(data)], temp_key = random_bytes[192..224], and the
        // vector needs one retry, where grammers uses temp_key + 1 (big-endian) as the next key.
        let data = hex(
            "955ff5a9081a8e635f5743de9b00000004453dc27100000004622f1fcb000000f7a81627bbf511fa4afef71e94a0937474586c1add9198dda81a5df8393871c8293623c5fb968894af1be7dfe9c7be813f9307789242fd0cb0c16a5cb39a8d3e",
        );
        let random = hex(
            "12270000635593b03fee033d0672f9afddf9124de9e77df6251806cba93482e4c9e6e06e7d44e4c4baae821aff91af44789689faaee9bdfc7b2df8c08709afe57396c4638ceaa0dc30114f82447e81d3b53edc423b32660c43a5b8ad057b64500000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000007dada0920c4973913229e0f881aec7b9db0c392d34f52fb0995ea493ecb4c09d",
        );
        let expected = hex(
            "b610642a828b4a61fe32931815cae318d311660580f1e0df768f3140f4d37dfcfcac0c2870318de4ff2d2e0e9669bcfdc0bad06cadb1b59d9726b427368a9c7b4fc0d5e7b2e99fc571968705c03acf5341fd7021bef653fa77b3776ae430e366fc46d232459ebe128b08d80e049ae579a48b56ca93b520709468587c81af96666046e9ea85091d729e921e8d8a36f57b27644052dae7387c7f4131701d59cda75251dac66c94276280ef950d3c44c21e5a2454f7da7a6818cf23ae9c490b72b2170d7cbc24f8a93db739d76f2d241c78b80123faaff3e664f074d6375d794dbf2800a0b5bb48d54eceafedfb355bfbebd287d9023264e3b53627888250787a9e",
        );
        let pad_len = 192 - data.len();
        let key1 = &random[192..224];
        let key2 = (BigUint::from_bytes_be(key1) + 1u32).to_bytes_be();
        assert_eq!(key2.len(), 32);
        let mut script = VecDeque::new();
        script.extend(&random[..pad_len]);
        script.extend(key1);
        script.extend(&key2);
        let mut rng = Script(script);
        let out = RsaPublicKey::telegram_test()
            .encrypt_pad(&data, &mut rng)
            .unwrap();
        assert_eq!(out.as_slice(), expected.as_slice());
        assert!(rng.0.is_empty(), "exactly one retry expected");
    }

    #[test]
    fn rsa_pad_round_trips_through_the_demo_key() {
        let key = RsaPrivateKey::demo();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for len in [0usize, 1, 100, 144] {
            let data: Vec<u8> = (0..len as u8).collect();
            let c = key.public_key().encrypt_pad(&data, &mut rng).unwrap();
            let plain = key.decrypt_pad(&c, &mut rng).unwrap();
            assert_eq!(&plain[..len], data.as_slice());
        }
    }

    #[test]
    fn rsa_pad_rejects_long_data_and_tampering() {
        let key = RsaPrivateKey::demo();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        assert_eq!(
            key.public_key().encrypt_pad(&[0; 145], &mut rng),
            Err(RsaError::DataTooLong)
        );
        assert_eq!(
            key.public_key().encrypt_pad(&[0; 300], &mut rng),
            Err(RsaError::DataTooLong)
        );
        let mut c = key.public_key().encrypt_pad(b"hello", &mut rng).unwrap();
        c[200] ^= 1;
        assert_eq!(
            key.decrypt_pad(&c, &mut rng).err(),
            Some(RsaError::PadHashMismatch)
        );
        assert_eq!(
            key.decrypt_pad(&c[..255], &mut rng).err(),
            Some(RsaError::BadCiphertext)
        );
        assert_eq!(
            key.decrypt_pad(&[0xff; 256], &mut rng).err(),
            Some(RsaError::BadCiphertext)
        );
        // Encrypted for another key: the hash check fails.
        let other = RsaPublicKey::telegram_production()
            .encrypt_pad(b"hello", &mut rng)
            .unwrap();
        let r = key.decrypt_pad(&other, &mut rng);
        assert!(matches!(
            r.err(),
            Some(RsaError::PadHashMismatch | RsaError::BadCiphertext)
        ));
    }

    #[test]
    fn demo_key_is_consistent_and_legacy_padding_round_trips() {
        let key = RsaPrivateKey::from_be(&DEMO_N, &E_65537, &DEMO_D, &DEMO_P, &DEMO_Q).unwrap();
        // Fingerprint computed independently with Python (hashlib) over the TL serialization.
        assert_eq!(
            key.public_key().fingerprint().to_le_bytes(),
            *hex("65c9244ae7c1b082")
        );
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let data = [7u8; 100];
        let c = RsaPrivateKey::legacy_encrypt(key.public_key(), &data, &mut rng).unwrap();
        let p = key.decrypt_legacy(&c, &mut rng).unwrap();
        assert_eq!(&p.body[..100], &data);
        assert_eq!(p.verify(100), Ok(()));
        assert_eq!(p.verify(99), Err(RsaError::PadHashMismatch));
        assert_eq!(p.verify(236), Err(RsaError::LegacyFormat));
        // Inconsistent components are refused.
        assert_eq!(
            RsaPrivateKey::from_be(&DEMO_N, &E_65537, &DEMO_D, &DEMO_Q, &DEMO_Q).err(),
            Some(RsaError::InconsistentPrivateKey)
        );
        assert_eq!(
            RsaPublicKey::from_be(&DEMO_P, &E_65537).err(),
            Some(RsaError::ModulusSize)
        );
        assert_eq!(
            RsaPublicKey::from_be(&DEMO_N, &[2]).err(),
            Some(RsaError::BadExponent)
        );
    }

    #[test]
    fn debug_hides_key_material() {
        let s = alloc::format!("{:?}", RsaPrivateKey::demo());
        assert!(s.contains("fingerprint"));
        assert!(!s.contains("dp"));
    }
}
