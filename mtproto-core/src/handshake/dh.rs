//! Diffie–Hellman parameter checks (`mtproto_auth_key.md` step 6 and the "IMPORTANT" note after
//! step 9; `mtproto_security_guidelines.md`, "Validation of DH parameters" and "g_a and g_b
//! validation").

use core::fmt;

use num_bigint_dig::BigUint;
use num_traits::{One, Zero};
use rand_core::CryptoRng;

use super::bn;
use super::prime::is_probable_prime;

/// Telegram's current 2048-bit safe prime, big-endian (`mtproto_auth_key.md` step 6,
/// `rsa_keys_and_dh_prime.md`). Accepted by the client without a primality test (the "table of
/// known good primes" optimisation the spec recommends), and used by our server.
pub const TELEGRAM_DH_PRIME: [u8; 256] = hex256(
    b"C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F\
      48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37\
      20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64\
      2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4\
      A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754\
      FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4\
      E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F\
      0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B",
);

/// The generator Telegram sends with [`TELEGRAM_DH_PRIME`] (valid for it: p mod 3 = 2).
pub const TELEGRAM_DH_G: u32 = 3;

/// Miller–Rabin rounds used for an unknown `dh_prime` (and again for `(p-1)/2`). The spec says 15
/// rounds already give an error probability below 10^-9; we use more.
pub const DEFAULT_MR_ROUNDS: u32 = 24;

/// The fewest Miller–Rabin rounds [`check_prime`] ever runs, whatever the caller asks for:
/// `mtproto_security_guidelines.md` allows "only 15 Miller–Rabin iterations" at the least.
/// Fewer rounds are raised to this floor (clamped, not refused): the round count is a speed
/// knob, and an error would only surface mid-handshake, when a server first sends a prime that
/// is not in the known-good table. With 0 rounds any composite without a factor below 256
/// would pass.
pub const MIN_MR_ROUNDS: u32 = 15;

/// Decodes a 512-digit hex string (whitespace ignored) at compile time.
pub(crate) const fn hex256(s: &[u8]) -> [u8; 256] {
    hex_array::<256>(s)
}

/// Decodes exactly `2 * N` hex digits (whitespace and line continuations ignored) at compile time.
/// A wrong digit count is an `assert!`, i.e. a build error for the `const` items that use it.
pub(crate) const fn hex_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut dst: &mut [u8] = &mut out;
    let mut src = s;
    let mut high: Option<u8> = None;
    let mut too_many = false;
    while let [c, rest @ ..] = src {
        src = rest;
        // Each arm's subtraction stays within the matched range: no wrap.
        let v = match *c {
            b'0'..=b'9' => c.wrapping_sub(b'0'),
            b'a'..=b'f' => c.wrapping_sub(b'a' - 10),
            b'A'..=b'F' => c.wrapping_sub(b'A' - 10),
            _ => continue,
        };
        match high {
            None => high = Some(v << 4),
            Some(h) => {
                high = None;
                // `mem::take` is not `const`.
                #[allow(clippy::mem_replace_with_default)]
                let dst_now = core::mem::replace(&mut dst, &mut []);
                match dst_now.split_first_mut() {
                    Some((slot, tail)) => {
                        *slot = h | v;
                        dst = tail;
                    }
                    None => too_many = true,
                }
            }
        }
    }
    assert!(
        !too_many && high.is_none() && dst.is_empty(),
        "hex_array: wrong number of hex digits"
    );
    out
}

/// A Diffie–Hellman check that failed. Each variant is one check from the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhError {
    /// `dh_prime` is not a 2048-bit number (2^2047 < p < 2^2048 fails).
    PrimeBitLength,
    /// `dh_prime` is not prime.
    PrimeNotPrime,
    /// `dh_prime` is prime but `(dh_prime - 1) / 2` is not: not a safe prime.
    PrimeNotSafe,
    /// `g` is not one of 2, 3, 4, 5, 6, 7.
    GeneratorOutOfRange,
    /// `g` is not a quadratic residue mod `dh_prime` (the `p mod 4g` condition fails), so it does
    /// not generate the subgroup of prime order `(p-1)/2`.
    GeneratorNotQuadraticResidue,
    /// `g_a` or `g_b` is not in `(1, p-1)` or not in `(2^(2048-64), p - 2^(2048-64))`.
    PublicValueOutOfRange,
}

impl fmt::Display for DhError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PrimeBitLength => "dh_prime is not a 2048-bit number",
            Self::PrimeNotPrime => "dh_prime is not prime",
            Self::PrimeNotSafe => "(dh_prime - 1) / 2 is not prime",
            Self::GeneratorOutOfRange => "g is not in 2..=7",
            Self::GeneratorNotQuadraticResidue => "g fails the p mod 4g residue condition",
            Self::PublicValueOutOfRange => "g_a or g_b is out of the allowed range",
        })
    }
}

impl core::error::Error for DhError {}

/// `TELEGRAM_DH_PRIME` as a big integer.
pub fn telegram_dh_prime() -> BigUint {
    BigUint::from_bytes_be(&TELEGRAM_DH_PRIME)
}

/// `p mod m` for the small constant moduli of [`check_generator`] (0 for `m == 0`, never used).
fn rem_u32(p: &BigUint, m: u32) -> u32 {
    bn::rem(p, &BigUint::from(m)).map_or(0, |r| r.to_u32_digits_lossy())
}

trait ToU32 {
    fn to_u32_digits_lossy(&self) -> u32;
}

impl ToU32 for BigUint {
    fn to_u32_digits_lossy(&self) -> u32 {
        let b = self.to_bytes_le();
        let mut w = [0u8; 4];
        for (d, s) in w.iter_mut().zip(b.iter()) {
            *d = *s;
        }
        u32::from_le_bytes(w)
    }
}

/// Checks `g ∈ 2..=7` and the quadratic-residue condition on `p mod 4g` from the spec:
/// p mod 8 = 7 for g = 2; p mod 3 = 2 for g = 3; none for g = 4; p mod 5 ∈ {1, 4} for g = 5;
/// p mod 24 ∈ {19, 23} for g = 6; p mod 7 ∈ {3, 5, 6} for g = 7.
pub fn check_generator(g: u32, p: &BigUint) -> Result<(), DhError> {
    let ok = match g {
        2 => rem_u32(p, 8) == 7,
        3 => rem_u32(p, 3) == 2,
        4 => true,
        5 => matches!(rem_u32(p, 5), 1 | 4),
        6 => matches!(rem_u32(p, 24), 19 | 23),
        7 => matches!(rem_u32(p, 7), 3 | 5 | 6),
        _ => return Err(DhError::GeneratorOutOfRange),
    };
    if ok {
        Ok(())
    } else {
        Err(DhError::GeneratorNotQuadraticResidue)
    }
}

/// Checks that `p` is a 2048-bit safe prime. `known_good` is a table of primes already verified
/// offline (big-endian, 256 bytes): a match skips the Miller–Rabin work. Otherwise `rounds`
/// Miller–Rabin rounds with random bases from `rng` are run on `p` and on `(p-1)/2`; `rounds`
/// below [`MIN_MR_ROUNDS`] is raised to it.
pub fn check_prime<R: CryptoRng + ?Sized>(
    p: &BigUint,
    known_good: &[[u8; 256]],
    rounds: u32,
    rng: &mut R,
) -> Result<(), DhError> {
    if p.bits() != 2048 {
        return Err(DhError::PrimeBitLength);
    }
    let bytes = p.to_bytes_be();
    if known_good.iter().any(|k| k.as_slice() == bytes.as_slice()) {
        return Ok(());
    }
    let rounds = rounds.max(MIN_MR_ROUNDS);
    if !is_probable_prime(p, rounds, rng) {
        return Err(DhError::PrimeNotPrime);
    }
    // p has 2048 bits here, so p - 1 cannot underflow.
    let p_minus_1 = bn::sub(p, &BigUint::one()).ok_or(DhError::PrimeBitLength)?;
    let half = bn::shr(&p_minus_1, 1);
    if !is_probable_prime(&half, rounds, rng) {
        return Err(DhError::PrimeNotSafe);
    }
    Ok(())
}

/// All checks on the server's `(g, dh_prime)`: bit length, safe primality, `g` range and residue.
pub fn check_params<R: CryptoRng + ?Sized>(
    g: u32,
    p: &BigUint,
    known_good: &[[u8; 256]],
    rounds: u32,
    rng: &mut R,
) -> Result<(), DhError> {
    if p.bits() != 2048 {
        return Err(DhError::PrimeBitLength);
    }
    // Cheap checks first: a bad g needs no primality test.
    check_generator(g, p)?;
    check_prime(p, known_good, rounds, rng)
}

/// `2048 - 64`: public values must lie in `(2^DH_RANGE_BITS, p - 2^DH_RANGE_BITS)`.
const DH_RANGE_BITS: usize = 2048 - 64;

/// Checks a DH public value (`g_a` or `g_b`): `1 < v < p - 1` and
/// `2^(2048-64) < v < p - 2^(2048-64)`.
pub fn check_public_value(v: &BigUint, p: &BigUint) -> Result<(), DhError> {
    let one = BigUint::one();
    let bound = bn::pow2(DH_RANGE_BITS);
    // `p <= bound` (a zero or short p) fails here rather than underflowing below.
    let (Some(p_minus_1), Some(upper)) = (bn::sub(p, &one), bn::sub(p, &bound)) else {
        return Err(DhError::PublicValueOutOfRange);
    };
    if upper.is_zero() || v <= &one {
        return Err(DhError::PublicValueOutOfRange);
    }
    if v >= &p_minus_1 || v <= &bound || v >= &upper {
        return Err(DhError::PublicValueOutOfRange);
    }
    Ok(())
}

/// Serializes a value below a 2048-bit modulus as exactly 256 big-endian bytes (leading zeros
/// kept). Values wider than 256 bytes keep their low 256 bytes (never happens for `x < p`).
/// The intermediate byte vector is wiped (this also serializes `g_ab`).
pub fn to_256_be(v: &BigUint) -> [u8; 256] {
    let mut b = v.to_bytes_be();
    let mut out = [0u8; 256];
    // Right-align: walk both from the end; extra high bytes of a too-wide `v` are dropped.
    for (d, s) in out.iter_mut().rev().zip(b.iter().rev()) {
        *d = *s;
    }
    zeroize::Zeroize::zeroize(b.as_mut_slice());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// RFC 3526 group 14: a 2048-bit safe prime with generator 2 (p mod 8 = 7). Independent of
    /// Telegram's prime, so it exercises the Miller–Rabin path.
    const RFC3526_2048: [u8; 256] = hex256(
        b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
          020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
          4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
          EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
          98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
          9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
          E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
          3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    );

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(42)
    }

    #[test]
    fn telegram_prime_facts_from_the_spec() {
        let p = telegram_dh_prime();
        assert_eq!(p.bits(), 2048);
        // rsa_keys_and_dh_prime.md: p mod 8 = 3, p mod 3 = 2, p mod 5 = 3, p mod 24 = 11, p mod 7 = 6.
        assert_eq!(rem_u32(&p, 8), 3);
        assert_eq!(rem_u32(&p, 3), 2);
        assert_eq!(rem_u32(&p, 5), 3);
        assert_eq!(rem_u32(&p, 24), 11);
        assert_eq!(rem_u32(&p, 7), 6);
        // "g is acceptable with this p only for g in [3, 4, 7]".
        for g in 2..=7 {
            let ok = check_generator(g, &p).is_ok();
            assert_eq!(ok, matches!(g, 3 | 4 | 7), "g = {g}");
        }
        assert_eq!(
            check_generator(2, &p),
            Err(DhError::GeneratorNotQuadraticResidue)
        );
        assert_eq!(check_generator(1, &p), Err(DhError::GeneratorOutOfRange));
        assert_eq!(check_generator(8, &p), Err(DhError::GeneratorOutOfRange));
    }

    #[test]
    fn telegram_prime_passes_the_slow_path_too() {
        // No table: run Miller–Rabin on p and (p-1)/2.
        let p = telegram_dh_prime();
        assert_eq!(check_params(3, &p, &[], 8, &mut rng()), Ok(()));
        assert_eq!(
            check_params(3, &p, &[TELEGRAM_DH_PRIME], 8, &mut rng()),
            Ok(())
        );
    }

    #[test]
    fn rfc3526_safe_prime_is_accepted_with_g2() {
        let p = BigUint::from_bytes_be(&RFC3526_2048);
        assert_eq!(check_params(2, &p, &[], 8, &mut rng()), Ok(()));
    }

    /// RFC 2409 (Oakley group 2) 1024-bit prime, and `P * (P + 3350)`: `P + 3350` is prime too
    /// (checked with Python), and neither that 2048-bit product nor `(product - 1) / 2` has a
    /// prime factor below 256 (Python trial division), so only Miller–Rabin rounds can reject it.
    pub(crate) fn composite_without_small_factors() -> BigUint {
        let p = BigUint::from_bytes_be(&hex_array::<128>(
            b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
              020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
              4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
              EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
        ));
        let q = &p + BigUint::from(3350u32);
        p * q
    }

    #[test]
    fn zero_miller_rabin_rounds_are_raised_to_the_floor() {
        let n = composite_without_small_factors();
        assert_eq!(n.bits(), 2048);
        // Any requested count below the guidelines' 15 still rejects the composite (0 rounds
        // used to accept it: trial division alone cannot see its factors).
        for rounds in [0, 1, MIN_MR_ROUNDS - 1] {
            assert_eq!(
                check_prime(&n, &[], rounds, &mut rng()),
                Err(DhError::PrimeNotPrime),
                "rounds = {rounds}"
            );
            assert_eq!(
                check_params(4, &n, &[], rounds, &mut rng()),
                Err(DhError::PrimeNotPrime)
            );
        }
        // The floor is exactly 15: count the bases drawn for a prime that passes.
        struct Counting(ChaCha20Rng, usize);
        impl rand_core::TryRng for Counting {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(rand_core::Rng::next_u32(&mut self.0))
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(rand_core::Rng::next_u64(&mut self.0))
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                self.1 += 1;
                rand_core::Rng::fill_bytes(&mut self.0, dst);
                Ok(())
            }
        }
        impl rand_core::TryCryptoRng for Counting {}
        for (asked, used) in [(0, 15), (15, 15), (16, 16)] {
            let mut r = Counting(rng(), 0);
            assert_eq!(
                check_prime(&telegram_dh_prime(), &[], asked, &mut r),
                Ok(())
            );
            // One base per round, for p and for (p - 1) / 2.
            assert_eq!(r.1, 2 * used, "asked {asked}");
        }
    }

    /// Euler's criterion: `g` is a quadratic residue mod the odd prime `p` iff
    /// `g^((p-1)/2) = 1 (mod p)`. Independent of the `p mod 4g` table under test.
    fn euler_is_residue(g: u64, p: u64) -> bool {
        let (mut base, mut exp, mut acc) = (g % p, (p - 1) / 2, 1u64);
        while exp > 0 {
            if exp & 1 == 1 {
                acc = acc * base % p;
            }
            base = base * base % p;
            exp >>= 1;
        }
        acc == 1
    }

    #[test]
    fn g3_and_g7_residue_conditions() {
        // mtproto_auth_key.md: g = 3 needs p mod 3 = 2; g = 7 needs p mod 7 in {3, 5, 6}.
        // Both are "g is a quadratic residue mod p" for primes p = 3 (mod 4), which every safe
        // prime is; check the table against Euler's criterion on all such small primes.
        let (mut neg3, mut neg7) = (0, 0);
        for p in (11u64..20_000).filter(|&p| p % 4 == 3 && crate::handshake::prime::is_prime_u64(p))
        {
            let big = BigUint::from(p);
            for g in [3u32, 7] {
                let expect = euler_is_residue(u64::from(g), p);
                let got = check_generator(g, &big);
                if expect {
                    assert_eq!(got, Ok(()), "g = {g}, p = {p}");
                } else {
                    assert_eq!(
                        got,
                        Err(DhError::GeneratorNotQuadraticResidue),
                        "g = {g}, p = {p}"
                    );
                    if g == 3 {
                        neg3 += 1;
                    } else {
                        neg7 += 1;
                    }
                }
            }
        }
        assert!(neg3 > 100 && neg7 > 100, "{neg3} {neg7}");
        // Named small cases: 19 = 1 (mod 3) and 19 = 5 (mod 7); 23 = 2 (mod 3) and 2 (mod 7);
        // 43 = 1 (mod 3) and 1 (mod 7); 47 = 2 (mod 3) and 5 (mod 7).
        let r = |g: u32, p: u32| check_generator(g, &BigUint::from(p));
        let bad = Err(DhError::GeneratorNotQuadraticResidue);
        assert_eq!(r(3, 19), bad);
        assert_eq!(r(7, 19), Ok(()));
        assert_eq!(r(3, 23), Ok(()));
        assert_eq!(r(7, 23), bad);
        assert_eq!(r(3, 43), bad);
        assert_eq!(r(7, 43), bad);
        assert_eq!(r(3, 47), Ok(()));
        assert_eq!(r(7, 47), Ok(()));
        // Every residue class: exactly the spec's sets pass.
        for n in 0u32..84 {
            assert_eq!(r(3, n).is_ok(), n % 3 == 2, "g = 3, n = {n}");
            assert_eq!(
                r(7, n).is_ok(),
                matches!(n % 7, 3 | 5 | 6),
                "g = 7, n = {n}"
            );
        }
        // 2048-bit: Telegram's p (p mod 3 = 2, p mod 7 = 6) passes for both; p + 1 (0 mod 3 and
        // mod 7) fails the residue check in check_params before any primality work, and p + 3
        // (p + 3 = 2 mod 3, 2 mod 7) fails for g = 7 only.
        let p = telegram_dh_prime();
        assert_eq!(check_generator(3, &p), Ok(()));
        assert_eq!(check_generator(7, &p), Ok(()));
        let p1 = &p + BigUint::one();
        for g in [3, 7] {
            assert_eq!(
                check_params(g, &p1, &[], 8, &mut rng()),
                Err(DhError::GeneratorNotQuadraticResidue)
            );
        }
        let p3 = &p + BigUint::from(3u32);
        assert_eq!(check_generator(3, &p3), Ok(()));
        assert_eq!(
            check_generator(7, &p3),
            Err(DhError::GeneratorNotQuadraticResidue)
        );
        // RFC 3526's safe prime: 2 mod 3 and 5 mod 7, so both generators are residues, which
        // Euler's criterion on the 2048-bit number confirms.
        let q = BigUint::from_bytes_be(&RFC3526_2048);
        let half = (&q - BigUint::one()) >> 1usize;
        for g in [3u32, 7] {
            assert!(BigUint::from(g).modpow(&half, &q).is_one());
            assert_eq!(check_generator(g, &q), Ok(()));
        }
    }

    #[test]
    fn rejects_wrong_bit_length() {
        let p = telegram_dh_prime();
        let short = &p >> 1usize;
        assert_eq!(
            check_params(3, &short, &[], 8, &mut rng()),
            Err(DhError::PrimeBitLength)
        );
        let long = &p << 1usize;
        assert_eq!(
            check_params(3, &long, &[], 8, &mut rng()),
            Err(DhError::PrimeBitLength)
        );
    }

    #[test]
    fn rejects_composite_and_non_safe_primes() {
        // p + 2 is even; p + 4 (Telegram prime + 4) is divisible by 3 since p mod 3 = 2. Use g=4
        // (no residue condition) so only primality is tested.
        let p = telegram_dh_prime();
        let comp = &p + BigUint::from(4u32);
        assert_eq!(
            check_params(4, &comp, &[], 8, &mut rng()),
            Err(DhError::PrimeNotPrime)
        );
        // A 2048-bit prime whose (q-1)/2 is composite: q = 2^2048 - 1557, the largest prime
        // below 2^2048 (found and checked with pycryptodome's isPrime); (q-1)/2 is divisible by 3.
        let q = (BigUint::one() << 2048usize) - BigUint::from(1_557u32);
        assert_eq!(
            check_params(4, &q, &[], 8, &mut rng()),
            Err(DhError::PrimeNotSafe)
        );
    }

    #[test]
    fn public_value_range() {
        let p = telegram_dh_prime();
        let bound = BigUint::one() << 1984usize;
        let one = BigUint::one();
        for bad in [
            BigUint::from(0u32),
            BigUint::from(1u32),
            BigUint::from(2u32),
            bound.clone(),
            &p - &bound,
            &p - &one,
            p.clone(),
            &p + &one,
        ] {
            assert_eq!(
                check_public_value(&bad, &p),
                Err(DhError::PublicValueOutOfRange)
            );
        }
        for good in [&bound + &one, &p - &bound - &one, &p >> 1usize] {
            assert_eq!(check_public_value(&good, &p), Ok(()));
        }
    }

    #[test]
    fn hex_array_decodes_and_counts_digits() {
        // Independent of the decoder: the digits' values by hand.
        assert_eq!(hex_array::<3>(b"0a Ff\n 19"), [0x0a, 0xff, 0x19]);
        assert_eq!(hex_array::<0>(b" -- "), []);
        // Too few, too many, odd: refused (an `assert!`, a build error in `const` items).
        for bad in [&b""[..], b"0a1b", b"0", b"0a1"] {
            assert!(
                std::panic::catch_unwind(|| hex_array::<1>(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn to_256_be_pads() {
        assert_eq!(to_256_be(&BigUint::from(0x0102u32))[254..], [1, 2]);
        assert_eq!(to_256_be(&telegram_dh_prime()), TELEGRAM_DH_PRIME);
    }
}
