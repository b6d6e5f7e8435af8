//! Decoding never allocates more than a bound proportional to the input: a counting global
//! allocator measures the peak heap use of decoding valid, mutated and hostile inputs.
//! One test function only, so no other test thread allocates concurrently.

mod tl_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mtproto::core::tl::schema::{Function, Object};
use mtproto::core::tl::{Deserialize, Limits, Reader, TlError};
use tl_support::random::{self, Rng};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        CALLS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns (peak bytes allocated above the starting level, allocation calls).
fn measure(f: impl FnOnce()) -> (usize, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let calls = CALLS.load(Ordering::SeqCst);
    f();
    (
        PEAK.load(Ordering::SeqCst) - base,
        CALLS.load(Ordering::SeqCst) - calls,
    )
}

/// In-memory size per wire byte is at most 2 for the MTProto schema (a bare `message` is 16 wire
/// bytes at least and 32 bytes in memory; `long`s and `future_salt`s are 1:1).
fn bound(len: usize) -> usize {
    2 * len
}

fn decode_all(input: &[u8]) {
    std::hint::black_box(Object::from_bytes(input).ok());
    std::hint::black_box(Function::from_bytes(input).ok());
}

#[test]
fn decoding_allocation_is_bounded_by_input_length() {
    // The 2^31-element claims fail without allocating at all.
    let claim = 0x8000_0000u32.to_le_bytes();
    let open = Limits {
        max_vector_len: u32::MAX,
        ..Limits::DEFAULT
    };
    let (peak, calls) = measure(|| {
        let mut r = Reader::with_limits(&claim, open).unwrap();
        let e = r.read_bare_vector_with(8, |r| r.read_i64());
        assert_eq!(
            e,
            Err(TlError::VectorExceedsInput {
                len: 0x8000_0000,
                remaining: 0
            })
        );
        let boxed = [0x15, 0xc4, 0xb5, 0x1c, 0, 0, 0, 0x80];
        assert!(Vec::<i64>::from_bytes(&boxed).is_err());
        let ack = [
            0x59, 0xb4, 0xd6, 0x62, 0x15, 0xc4, 0xb5, 0x1c, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert!(Object::from_bytes(&ack).is_err());
    });
    assert_eq!(
        (peak, calls),
        (0, 0),
        "no allocation for impossible vectors"
    );

    // The worst legal ratio: a container of empty messages.
    let n = 1000u32;
    let mut container = vec![0xdc, 0xf8, 0xf1, 0x73];
    container.extend(n.to_le_bytes());
    container.extend(std::iter::repeat_n(0u8, 16 * n as usize));
    let (peak, _) = measure(|| decode_all(&container));
    assert!(
        peak > 0 && peak <= bound(container.len()),
        "{peak} for {}",
        container.len()
    );

    // Random valid and mutated encodings of every declaration.
    let all = tl_support::load_schema();
    let decls: Vec<_> = all.iter().filter(|d| !d.builtin).collect();
    let mut rng = Rng(0x5eed);
    let mut worst = 0f64;
    for i in 0..4000 {
        let d = decls[i % decls.len()];
        let mut input = random::decl(d, &all, &mut rng);
        match rng.below(3) {
            0 => {}
            1 => {
                let j = rng.below(input.len() / 4 + 1) * 4;
                for (k, b) in [0xff, 0xff, 0x0f, 0x00].iter().enumerate() {
                    if let Some(x) = input.get_mut(j + k) {
                        *x = *b;
                    }
                }
            }
            _ => input.truncate(rng.below(input.len() + 1)),
        }
        let (peak, _) = measure(|| decode_all(&input));
        assert!(
            peak <= bound(input.len()),
            "{}: {peak} bytes for {} input bytes",
            d.name,
            input.len()
        );
        if !input.is_empty() {
            worst = worst.max(peak as f64 / input.len() as f64);
        }
    }
    assert!(
        worst > 0.0,
        "the measurement must see the decoders allocate"
    );
}
