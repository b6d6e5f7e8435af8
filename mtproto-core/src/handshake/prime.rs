//! Primality tests: deterministic Miller–Rabin for `u64`, probabilistic Miller–Rabin with
//! caller-supplied random bases for big integers.
//!
//! num-bigint-dig's own `prime` feature pulls in std, so the big-integer test is written here on
//! top of [`BigUint::modpow`].
//!
//! **Why random bases for big numbers.** The numbers tested here come from the peer (the server's
//! `dh_prime`). Composites that pass Miller–Rabin for any *fixed, publicly known* set of bases can
//! be constructed (Arnault, 1995), so a fixed base list would let a malicious server slip a
//! composite "prime" past us. Bases drawn from the caller's cryptographic RNG cannot be
//! anticipated: each round lets a composite through with probability at most 1/4.

use num_bigint_dig::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use rand_core::CryptoRng;

use super::bn;

/// Odd primes used for trial division before Miller–Rabin.
const SMALL_PRIMES: [u32; 53] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193,
    197, 199, 211, 223, 227, 229, 233, 239, 241, 251,
];

/// The first 12 primes: as Miller–Rabin bases they decide primality exactly for every `n < 3.3e24`,
/// hence for every `u64`.
const U64_BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

/// `a * b mod m` (0 for `m == 0`, which no caller passes).
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    // (2^64 - 1)^2 < 2^128: the u128 product never wraps.
    let r = u128::from(a)
        .wrapping_mul(u128::from(b))
        .checked_rem(u128::from(m));
    r.and_then(|r| u64::try_from(r).ok()).unwrap_or(0)
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut acc = 1u64.checked_rem(m).unwrap_or(0);
    base = base.checked_rem(m).unwrap_or(0);
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    acc
}

/// Exact primality of a `u64` (deterministic Miller–Rabin).
pub fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for &p in &U64_BASES {
        if n == p {
            return true;
        }
        if n.is_multiple_of(p) {
            return false;
        }
    }
    // n > 37 here.
    let n_minus_1 = n.saturating_sub(1);
    let s = n_minus_1.trailing_zeros();
    // n - 1 is even and nonzero, so 1 <= s <= 63.
    let d = n_minus_1.checked_shr(s).unwrap_or(0);
    'bases: for &a in &U64_BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n_minus_1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n_minus_1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// A uniformly-ish random `BigUint` in `[low, high)` (`low < high`), from 8 extra bytes of the
/// RNG so the modulo bias is below 2^-64.
pub(crate) fn random_below<R: CryptoRng + ?Sized>(
    rng: &mut R,
    low: &BigUint,
    high: &BigUint,
) -> BigUint {
    let span = match bn::sub(high, low) {
        Some(span) if !span.is_zero() => span,
        _ => return low.clone(),
    };
    // `bits()` of a value in memory is far below usize::MAX; saturating is harmless.
    let len = span.bits().div_ceil(8).saturating_add(8);
    let mut buf = alloc::vec![0u8; len];
    rng.fill_bytes(&mut buf);
    let r = bn::rem(&BigUint::from_bytes_be(&buf), &span).unwrap_or_default();
    zeroize::Zeroize::zeroize(buf.as_mut_slice());
    bn::add(low, &r)
}

/// Probabilistic primality of `n`: trial division, then `rounds` Miller–Rabin rounds with bases
/// drawn from `rng` (see the module docs for why they must be random). A composite passes with
/// probability at most `4^-rounds`; a prime always passes.
pub fn is_probable_prime<R: CryptoRng + ?Sized>(n: &BigUint, rounds: u32, rng: &mut R) -> bool {
    let two = BigUint::from(2u32);
    if n < &two {
        return false;
    }
    if n.is_even() {
        return n == &two;
    }
    for &p in &SMALL_PRIMES {
        let p = BigUint::from(p);
        if n == &p {
            return true;
        }
        if bn::rem(n, &p).is_some_and(|r| r.is_zero()) {
            return false;
        }
    }
    // n is odd and > 251 here.
    let one = BigUint::one();
    let Some(n_minus_1) = bn::sub(n, &one) else {
        return false;
    };
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = bn::shr(&n_minus_1, s);
    'rounds: for _ in 0..rounds {
        let a = random_below(rng, &two, &n_minus_1);
        let Some(mut x) = bn::modpow(&a, &d, n) else {
            return false;
        };
        if x == one || x == n_minus_1 {
            continue;
        }
        for _ in 1..s {
            let Some(sq) = bn::rem(&bn::mul(&x, &x), n) else {
                return false;
            };
            x = sq;
            if x == n_minus_1 {
                continue 'rounds;
            }
            if x == one {
                return false;
            }
        }
        return false;
    }
    true
}

/// Candidates tried by [`random_prime_u64`] before giving up. Primes have density about
/// `2 / ln(2^bits)` among odd numbers (1 in 11 at 31 bits), so only a broken RNG exhausts this.
const MAX_PRIME_DRAWS: usize = 20_000;

/// A random prime with exactly `bits` bits (`2 <= bits <= 63`), e.g. for a server's `pq`.
/// Returns `None` if `bits` is out of range or the RNG gave no prime in 20 000 draws.
pub fn random_prime_u64<R: CryptoRng + ?Sized>(bits: u32, rng: &mut R) -> Option<u64> {
    if !(2..=63).contains(&bits) {
        return None;
    }
    // 1 <= bits - 1 <= 62: the shift is in range and top >= 2.
    let top = 1u64.checked_shl(bits.saturating_sub(1))?;
    let mask = top.saturating_sub(1);
    for _ in 0..MAX_PRIME_DRAWS {
        let mut b = [0u8; 8];
        rng.fill_bytes(&mut b);
        let cand = (u64::from_le_bytes(b) & mask) | top | 1;
        if is_prime_u64(cand) {
            return Some(cand);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// A plain trial-division reference for the u64 test.
    fn naive_is_prime(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        let mut d = 2;
        while d * d <= n {
            if n.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    }

    #[test]
    fn u64_matches_trial_division() {
        for n in 0..20_000u64 {
            assert_eq!(is_prime_u64(n), naive_is_prime(n), "{n}");
        }
        // Strong pseudoprimes to small base sets must be rejected.
        for n in [
            2_047u64,
            1_373_653,
            25_326_001,
            3_215_031_751,
            3_825_123_056_546_413_051,
        ] {
            assert!(!is_prime_u64(n), "{n}");
        }
        assert!(is_prime_u64(18_446_744_073_709_551_557)); // largest u64 prime
        assert!(!is_prime_u64(u64::MAX));
    }

    #[test]
    fn big_primes_and_composites() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        // 2^127 - 1 is a Mersenne prime; 2^128 + 1 is composite (274177 * ...).
        let m127 = (BigUint::one() << 127usize) - BigUint::one();
        assert!(is_probable_prime(&m127, 16, &mut rng));
        let f7 = (BigUint::one() << 128usize) + BigUint::one();
        assert!(!is_probable_prime(&f7, 16, &mut rng));
        // Carmichael number 561 and a product of two large primes.
        assert!(!is_probable_prime(&BigUint::from(561u32), 16, &mut rng));
        let prod = &m127 * BigUint::from(18_446_744_073_709_551_557u64);
        assert!(!is_probable_prime(&prod, 16, &mut rng));
        assert!(is_probable_prime(&BigUint::from(2u32), 1, &mut rng));
        assert!(!is_probable_prime(&BigUint::from(1u32), 1, &mut rng));
        assert!(!is_probable_prime(&BigUint::zero(), 1, &mut rng));
    }

    #[test]
    fn random_primes_have_the_requested_size() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for bits in [2u32, 8, 31, 32, 63] {
            let p = random_prime_u64(bits, &mut rng).unwrap();
            assert!(bits > 40 || naive_is_prime(p));
            assert!(is_prime_u64(p));
            assert_eq!(64 - p.leading_zeros(), bits);
        }
        assert_eq!(random_prime_u64(64, &mut rng), None);
        // A stuck RNG (all zeros gives 2^30 + 1 = 5^2 * 42949673 every time) ends, with None.
        struct Zero;
        impl rand_core::TryRng for Zero {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
                Ok(0)
            }
            fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
                Ok(0)
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
                dst.fill(0);
                Ok(())
            }
        }
        impl rand_core::TryCryptoRng for Zero {}
        assert_eq!(random_prime_u64(31, &mut Zero), None);
        assert_eq!(random_prime_u64(1, &mut rng), None);
    }
}
