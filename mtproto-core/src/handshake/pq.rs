//! Step 3 of `mtproto_auth_key.md`: decompose `pq` into its two prime factors `p < q`.
//!
//! `pq` is "the product of two different odd prime numbers", "normally less than or equal to
//! 2^63-1". We factor it with Pollard–Brent over `u64` (multiplications in `u128`), with a hard
//! bound on the number of iterations so a hostile server cannot make us spin: anything we cannot
//! split within the budget, or that is not of the promised shape, is a typed [`PqError`].

use core::fmt;

use super::prime::is_prime_u64;

/// Total Pollard–Brent iterations allowed across all attempts. Two 32-bit primes need about
/// 2^16 steps on average; this leaves a wide margin and still bounds the work to a few ms.
const MAX_ITERATIONS: u64 = 1 << 23;
/// Number of different polynomial constants tried before giving up.
const MAX_ATTEMPTS: u64 = 32;
/// Products accumulated before each gcd (Brent's batching).
const BATCH: u64 = 128;

/// Why `pq` could not be decomposed into `p < q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PqError {
    /// The `pq` string is longer than 64 significant bits.
    TooLarge,
    /// `pq` is below 15, the smallest product of two different odd primes.
    TooSmall,
    /// `pq` is even: one factor would be 2, which the protocol rules out.
    Even,
    /// `pq` is itself prime.
    Prime,
    /// `pq` factors, but not into exactly two different odd primes.
    NotSemiprime,
    /// No factor found within the iteration budget.
    Unfactorable,
}

impl fmt::Display for PqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "pq is wider than 64 bits",
            Self::TooSmall => "pq is too small to be a product of two odd primes",
            Self::Even => "pq is even",
            Self::Prime => "pq is prime",
            Self::NotSemiprime => "pq is not a product of two different odd primes",
            Self::Unfactorable => "pq could not be factored within the iteration budget",
        })
    }
}

impl core::error::Error for PqError {}

/// Reads `pq` from its big-endian TL string bytes (leading zero bytes allowed) and factors it.
pub fn factorize_be(pq: &[u8]) -> Result<(u64, u64), PqError> {
    let start = pq.iter().position(|&b| b != 0).unwrap_or(pq.len());
    let digits = pq.get(start..).unwrap_or(&[]);
    let mut buf = [0u8; 8];
    let off = buf
        .len()
        .checked_sub(digits.len())
        .ok_or(PqError::TooLarge)?;
    buf.get_mut(off..)
        .ok_or(PqError::TooLarge)?
        .copy_from_slice(digits);
    factorize(u64::from_be_bytes(buf))
}

/// Splits `pq` into `(p, q)` with `p < q`, both odd primes, `p * q == pq`.
pub fn factorize(pq: u64) -> Result<(u64, u64), PqError> {
    if pq < 15 {
        return Err(PqError::TooSmall);
    }
    if pq.is_multiple_of(2) {
        return Err(PqError::Even);
    }
    if is_prime_u64(pq) {
        return Err(PqError::Prime);
    }
    let d = small_factor(pq)
        .or_else(|| pollard_brent(pq))
        .ok_or(PqError::Unfactorable)?;
    // d > 1 (a proper factor), so the division is exact and defined.
    let other = pq.checked_div(d).ok_or(PqError::Unfactorable)?;
    let (p, q) = if d < other { (d, other) } else { (other, d) };
    // p == q (a square) or a composite factor: not what the protocol promises.
    if p == q || !is_prime_u64(p) || !is_prime_u64(q) {
        return Err(PqError::NotSemiprime);
    }
    Ok((p, q))
}

/// Trial division by small odd numbers: Pollard's rho is slow to find tiny factors reliably.
fn small_factor(n: u64) -> Option<u64> {
    (3u64..1024)
        .step_by(2)
        .find(|&d| n.is_multiple_of(d) && n != d)
}

/// `a * b mod m` (0 for `m == 0`, which no caller passes).
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    // (2^64 - 1)^2 < 2^128: the u128 product never wraps.
    let r = u128::from(a)
        .wrapping_mul(u128::from(b))
        .checked_rem(u128::from(m));
    r.and_then(|r| u64::try_from(r).ok()).unwrap_or(0)
}

/// One Pollard step `y^2 + c mod n`.
fn step(y: u64, c: u64, n: u64) -> u64 {
    let sq = mul_mod(y, y, n);
    // sq, c < 2^64, so the u128 sum never wraps; the result is below n, so it fits in u64.
    let s = u128::from(sq)
        .wrapping_add(u128::from(c))
        .checked_rem(u128::from(n));
    s.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    // `checked_rem` is `None` exactly when b == 0, the loop's end.
    while let Some(t) = a.checked_rem(b) {
        a = b;
        b = t;
    }
    a
}

/// Brent's variant of Pollard's rho, with deterministic starting points and a global budget.
fn pollard_brent(n: u64) -> Option<u64> {
    let mut budget = MAX_ITERATIONS;
    for attempt in 1..=MAX_ATTEMPTS {
        // n >= 15 (checked by `factorize`); `?` only guards the impossible n == 0.
        let c = attempt.checked_rem(n)?;
        let x0 = attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15).checked_rem(n)?;
        match brent_once(n, c, x0, &mut budget) {
            Some(d) => return Some(d),
            None if budget == 0 => return None,
            None => {}
        }
    }
    None
}

fn brent_once(n: u64, c: u64, x0: u64, budget: &mut u64) -> Option<u64> {
    let mut y = x0;
    let mut r: u64 = 1;
    let mut q: u64 = 1;
    let mut g: u64 = 1;
    let mut x = y;
    let mut ys = y;
    while g == 1 {
        x = y;
        for _ in 0..r {
            y = step(y, c, n);
        }
        *budget = budget.saturating_sub(r);
        let mut k = 0;
        while k < r && g == 1 {
            ys = y;
            // k < r by the loop condition.
            let m = BATCH.min(r.saturating_sub(k));
            for _ in 0..m {
                y = step(y, c, n);
                q = mul_mod(q, x.abs_diff(y), n);
            }
            *budget = budget.saturating_sub(m);
            g = gcd(q, n);
            k = k.saturating_add(m);
        }
        if *budget == 0 && g == 1 {
            return None;
        }
        r = r.saturating_mul(2);
    }
    if g == n {
        // The batch overshot: redo it one step at a time (at most `BATCH` steps).
        g = 1;
        for _ in 0..=BATCH {
            ys = step(ys, c, n);
            g = gcd(x.abs_diff(ys), n);
            if g > 1 {
                break;
            }
        }
    }
    (g > 1 && g < n).then_some(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_the_official_sample() {
        // mtproto_samples-auth_key.md, step 3.
        assert_eq!(
            factorize(1_372_318_559_046_200_203),
            Ok((1_141_464_581, 1_202_243_663))
        );
        let be = 1_372_318_559_046_200_203u64.to_be_bytes();
        assert_eq!(factorize_be(&be), Ok((1_141_464_581, 1_202_243_663)));
    }

    #[test]
    fn factors_small_and_large_products() {
        assert_eq!(factorize(15), Ok((3, 5)));
        assert_eq!(factorize(1021 * 1031), Ok((1021, 1031)));
        // The two largest primes below 2^32.
        let p = 4_294_967_291u64; // largest prime < 2^32
        let q = 4_294_967_279u64; // next prime below it
        assert_eq!(factorize(p * q), Ok((q, p)));
        // A lopsided product.
        let big = 2_147_483_647u64 * 4_294_967_291u64; // 2^31-1 (prime) * prime
        assert_eq!(factorize(big), Ok((2_147_483_647, 4_294_967_291)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
        /// Products of two random distinct primes of 20..=32 bits factor back into them.
        #[test]
        fn factors_random_semiprimes(seed in proptest::prelude::any::<u64>(), bp in 20u32..=32, bq in 20u32..=32) {
            use rand_core::SeedableRng;
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let p = super::super::prime::random_prime_u64(bp, &mut rng).unwrap();
            let q = super::super::prime::random_prime_u64(bq, &mut rng).unwrap();
            proptest::prop_assume!(p != q);
            let (lo, hi) = if p < q { (p, q) } else { (q, p) };
            proptest::prop_assert_eq!(factorize(p * q), Ok((lo, hi)));
        }
    }

    #[test]
    fn rejects_what_is_not_two_odd_primes() {
        assert_eq!(factorize(0), Err(PqError::TooSmall));
        assert_eq!(factorize(9), Err(PqError::TooSmall));
        assert_eq!(factorize(2 * 1_000_003), Err(PqError::Even));
        assert_eq!(factorize(4_294_967_291), Err(PqError::Prime));
        assert_eq!(factorize(1_000_003 * 1_000_003), Err(PqError::NotSemiprime));
        assert_eq!(factorize(3 * 5 * 7), Err(PqError::NotSemiprime));
        assert_eq!(
            factorize_be(&[1, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(PqError::TooLarge)
        );
        assert_eq!(factorize_be(&[]), Err(PqError::TooSmall));
        // Leading zeros are fine.
        assert_eq!(factorize_be(&[0, 0, 0, 15]), Ok((3, 5)));
    }
}
