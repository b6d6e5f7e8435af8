//! Key material is really wiped on drop (issue 9 item 5): each value is dropped in place inside
//! storage the test owns, and that storage is read back afterwards. The crate's own tests only
//! check the `ZeroizeOnDrop` marker trait, which a `Drop` impl that forgets a field still has.
//!
//! A control type without any wiping shows that the read-back does see leftovers.

use std::mem::{MaybeUninit, size_of};

use aes::Aes256Dec;
use aes::Aes256Enc;
use aes::cipher::KeyInit;
use mtproto::core::crypto::AuthKey;
use mtproto::core::transport::secret::ProxySecret;

/// Moves `value` into a slot, drops it there and returns the slot's bytes before and after.
fn around_drop<T>(value: T) -> (Vec<u8>, Vec<u8>) {
    let mut slot = MaybeUninit::new(value);
    let read = |slot: &MaybeUninit<T>| -> Vec<u8> {
        let p = slot.as_ptr().cast::<u8>();
        // SAFETY: `p` points to `size_of::<T>()` bytes owned by `slot`. After `drop_in_place`
        // they are no longer a valid `T`, but they are still plain memory of this stack slot;
        // volatile reads keep the compiler from assuming anything about dead contents. (Padding
        // bytes, if any, are read as whatever they hold; the types checked here have none in
        // the places that matter.)
        (0..size_of::<T>())
            .map(|i| unsafe { std::ptr::read_volatile(p.add(i)) })
            .collect()
    };
    let before = read(&slot);
    // SAFETY: the slot holds an initialized `T`, dropped exactly once and never used after.
    unsafe { std::ptr::drop_in_place(slot.as_mut_ptr()) };
    let after = read(&slot);
    (before, after)
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A non-repeating secret pattern (so a hit cannot be a coincidence of zeros or fill bytes).
fn pattern<const N: usize>(seed: u8) -> [u8; N] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 1)
}

/// No wiping at all: the read-back must find the secret after drop.
struct Unwiped {
    _key: [u8; 64],
}

#[test]
fn read_back_detects_an_unwiped_value() {
    let key = pattern::<64>(0x11);
    let (before, after) = around_drop(Unwiped { _key: key });
    assert!(contains(&before, &key));
    assert!(contains(&after, &key), "the read-back cannot see leftovers");
}

#[test]
fn auth_key_is_wiped_after_drop() {
    let bytes = pattern::<256>(0x5a);
    let key = AuthKey::from_bytes(bytes);
    let id = key.id().to_le_bytes();
    let aux = key.aux_hash().to_le_bytes();
    let (before, after) = around_drop(key);
    assert!(contains(&before, &bytes) && contains(&before, &aux));
    for window in [&bytes[..16], &bytes[120..136], &bytes[240..]] {
        assert!(!contains(&after, window), "key bytes left after drop");
    }
    assert!(!contains(&after, &aux), "aux_hash left after drop");
    // Everything but the public auth_key_id is zero.
    let nonzero = after.iter().filter(|&&b| b != 0).count();
    assert!(nonzero <= id.len(), "{nonzero} non-zero bytes left");
}

#[test]
fn aes_key_schedules_are_wiped_after_drop() {
    // The AES-256 ciphers IGE builds from the derived message keys hold the expanded key
    // schedule (15 round keys, in whichever representation the backend uses).
    let key = pattern::<32>(0x3c);
    let (before, after) = around_drop(Aes256Enc::new(&key.into()));
    let nonzero_before = before.iter().filter(|&&b| b != 0).count();
    let nonzero_after = after.iter().filter(|&&b| b != 0).count();
    assert!(
        nonzero_before >= 200,
        "{nonzero_before} of {}",
        before.len()
    );
    assert!(
        nonzero_after <= 8,
        "encryption schedule: {nonzero_after} non-zero bytes left of {}",
        after.len()
    );
    assert!(!contains(&after, &key[..16]) && !contains(&after, &key[16..]));

    let (before, after) = around_drop(Aes256Dec::new(&key.into()));
    let nonzero_before = before.iter().filter(|&&b| b != 0).count();
    let nonzero_after = after.iter().filter(|&&b| b != 0).count();
    assert!(
        nonzero_before >= 200,
        "{nonzero_before} of {}",
        before.len()
    );
    assert!(
        nonzero_after <= 8,
        "decryption schedule: {nonzero_after} non-zero bytes left of {}",
        after.len()
    );
}

#[test]
fn proxy_secret_key_is_wiped_after_drop() {
    let key = pattern::<16>(0x77);
    for secret in [
        ProxySecret::plain(key),
        ProxySecret::padded(key),
        ProxySecret::fake_tls(key, b"example.com").unwrap(),
    ] {
        let (before, after) = around_drop(secret);
        assert!(contains(&before, &key));
        assert!(!contains(&after, &key), "key bytes left after drop");
        assert!(
            !contains(&after, &key[..8]) && !contains(&after, &key[8..]),
            "half a key left after drop"
        );
    }
}
