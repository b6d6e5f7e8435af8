//! Big-integer arithmetic without panicking operators.
//!
//! num-bigint-dig's `-` panics on underflow and its `%` / `modpow` panic on a zero modulus; `+`,
//! `*` and `>>` are arbitrary precision and cannot fail (they only allocate). The handshake does
//! all `BigUint` arithmetic through these helpers, so every fallible case is an `Option` at the
//! call site and `clippy::arithmetic_side_effects` stays denied everywhere else in `handshake/`.
//!
//! Temporaries created inside num-bigint-dig (Montgomery buffers in `modpow`, the intermediate
//! products and remainders below, buffers freed when a `BigUint` grows) are not wiped: the crate
//! gives no hook for it. Callers hold their secret inputs and results in
//! [`Zeroizing`](zeroize::Zeroizing).

use num_bigint_dig::BigUint;
use num_traits::{CheckedSub, Zero};

/// `a + b`.
// Arbitrary precision: cannot overflow or panic.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn add(a: &BigUint, b: &BigUint) -> BigUint {
    a + b
}

/// `a * b`.
// Arbitrary precision: cannot overflow or panic.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn mul(a: &BigUint, b: &BigUint) -> BigUint {
    a * b
}

/// `2^bits`.
// A left shift of a BigUint grows it; it cannot panic (`bits` is one of our constants).
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn pow2(bits: usize) -> BigUint {
    BigUint::from(1u32) << bits
}

/// `a >> bits`.
// A right shift of a BigUint drops bits; it cannot panic for any `bits`.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn shr(a: &BigUint, bits: usize) -> BigUint {
    a >> bits
}

/// `a - b`, or `None` if `b > a`.
pub(crate) fn sub(a: &BigUint, b: &BigUint) -> Option<BigUint> {
    a.checked_sub(b)
}

/// `a mod m`, or `None` if `m` is zero.
pub(crate) fn rem(a: &BigUint, m: &BigUint) -> Option<BigUint> {
    if m.is_zero() {
        return None;
    }
    // m != 0 was checked just above.
    #[allow(clippy::arithmetic_side_effects)]
    Some(a % m)
}

/// `base^exp mod m`, or `None` if `m` is zero. **Not constant time** (see the module docs of
/// [`handshake`](super)).
pub(crate) fn modpow(base: &BigUint, exp: &BigUint, m: &BigUint) -> Option<BigUint> {
    if m.is_zero() {
        return None;
    }
    Some(base.modpow(exp, m))
}

/// `a^-1 mod m`, or `None` if it does not exist (`gcd(a, m) != 1`, or `m` is zero). Not
/// constant time: only used on random blinding factors.
pub(crate) fn mod_inverse(a: &BigUint, m: &BigUint) -> Option<BigUint> {
    if m.is_zero() {
        return None;
    }
    let inv = num_bigint_dig::ModInverse::mod_inverse(a, m)?;
    // The result is reduced into [0, m): never negative, but the conversion is checked anyway.
    num_bigint_dig::ToBigUint::to_biguint(&inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallible_cases_are_none() {
        let (two, five) = (BigUint::from(2u32), BigUint::from(5u32));
        let zero = BigUint::zero();
        assert_eq!(sub(&two, &five), None);
        assert_eq!(sub(&five, &two), Some(BigUint::from(3u32)));
        assert_eq!(rem(&five, &zero), None);
        assert_eq!(rem(&five, &two), Some(BigUint::from(1u32)));
        assert_eq!(modpow(&two, &five, &zero), None);
        // 2^5 = 32 = 2 mod 3 (odd modulus: Montgomery path); 32 mod 6 = 2 (even modulus path).
        assert_eq!(
            modpow(&two, &five, &BigUint::from(3u32)),
            Some(BigUint::from(2u32))
        );
        assert_eq!(
            modpow(&two, &five, &BigUint::from(6u32)),
            Some(BigUint::from(2u32))
        );
        assert_eq!(add(&two, &five), BigUint::from(7u32));
        assert_eq!(mul(&two, &five), BigUint::from(10u32));
        assert_eq!(shr(&five, 1), two);
        assert_eq!(shr(&five, 1000), zero);
        assert_eq!(pow2(0), BigUint::from(1u32));
        assert_eq!(pow2(70).bits(), 71);
        // 3 * 5 = 15 = 1 mod 7; 2 has no inverse mod 6.
        assert_eq!(
            mod_inverse(&BigUint::from(3u32), &BigUint::from(7u32)),
            Some(BigUint::from(5u32))
        );
        assert_eq!(mod_inverse(&two, &BigUint::from(6u32)), None);
        assert_eq!(mod_inverse(&two, &zero), None);
    }
}
