//! Decoding never allocates more than a bound proportional to the input: a counting global
//! allocator measures the peak heap use of decoding valid, mutated and hostile inputs.
//! One test function only, so no other test thread allocates concurrently.

mod tl_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mtproto::core::tl::schema::{Function, Object};
use mtproto::core::tl::{Deserialize, Limits, Reader, TlError, VECTOR_ID};
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

/// A user type far larger in memory than on the wire (`big#0b16b16b x:long = Big`, held with a
/// 4 KiB table): 12 wire bytes, 4104 bytes in memory.
#[derive(Debug, PartialEq)]
struct Big {
    x: i64,
    table: [i64; 512],
}

const BIG_ID: u32 = 0x0b16_b16b;

impl<'a> Deserialize<'a> for Big {
    const MIN_SERIALIZED_LEN: usize = 12;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.expect_constructor(BIG_ID)?;
        let x = r.read_i64()?;
        Ok(Big { x, table: [x; 512] })
    }
}

/// A boxed vector header claiming as many elements as `body` could hold at `min_len` bytes each,
/// followed by `body`.
fn claiming_vector(min_len: usize, body: &[u8]) -> Vec<u8> {
    let mut v = VECTOR_ID.to_le_bytes().to_vec();
    v.extend(u32::try_from(body.len() / min_len).unwrap().to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// Issue 9 item 1: a vector's up-front capacity came from its claimed count (checked only
/// against `remaining / MIN_SERIALIZED_LEN`) times `size_of::<T>()`: about 21x the input for
/// `Vec<Object>`, 2^20 x `size_of::<T>()` at most for any user type. Claimed counts whose elements
/// are not there must not reserve more than the input bound.
fn hostile_vector_counts_reserve_within_the_bound() {
    // Unknown constructor ids: every claimed element fails to decode at the first one.
    let junk = vec![0xffu8; 1 << 18];
    type Case = (&'static str, Vec<u8>, fn(&[u8]) -> bool);
    let cases: [Case; 4] = [
        (
            "Vec<Object>",
            claiming_vector(Object::MIN_SERIALIZED_LEN, &junk),
            |b| Vec::<Object>::from_bytes(b).is_err(),
        ),
        (
            "Vec<Function>",
            claiming_vector(Function::MIN_SERIALIZED_LEN, &junk),
            |b| Vec::<Function>::from_bytes(b).is_err(),
        ),
        (
            "Vec<Big>",
            claiming_vector(Big::MIN_SERIALIZED_LEN, &junk[..junk.len() / 16]),
            |b| Vec::<Big>::from_bytes(b).is_err(),
        ),
        // Nesting: each level's claim is checked against the same remaining input, so a
        // per-vector cap alone would add up level by level.
        (
            "Vec<Vec<Vec<Big>>>",
            {
                let inner = claiming_vector(Big::MIN_SERIALIZED_LEN, &junk[..junk.len() / 16]);
                let middle = claiming_vector(8, &inner);
                claiming_vector(8, &middle)
            },
            |b| Vec::<Vec<Vec<Big>>>::from_bytes(b).is_err(),
        ),
    ];
    let mut over = Vec::new();
    for (name, input, decode_fails) in cases {
        let (peak, _) = measure(|| assert!(decode_fails(&input), "{name} must not decode"));
        let report = format!(
            "{name}: {peak} bytes reserved for {} input bytes",
            input.len()
        );
        eprintln!("{report}");
        if peak > bound(input.len()) {
            over.push(report);
        }
    }
    assert!(over.is_empty(), "{over:#?}");

    // Real elements past the budget still decode: the vector grows as they arrive.
    let n = 100usize;
    let mut real = VECTOR_ID.to_le_bytes().to_vec();
    real.extend(u32::try_from(n).unwrap().to_le_bytes());
    for i in 0..n {
        real.extend(BIG_ID.to_le_bytes());
        real.extend(i64::try_from(i).unwrap().to_le_bytes());
    }
    let big = Vec::<Big>::from_bytes(&real).unwrap();
    assert_eq!(big.len(), n);
    assert!(
        big.iter()
            .enumerate()
            .all(|(i, b)| b.x == i as i64 && b.table[511] == b.x)
    );

    // Within the budget a vector is still allocated exactly once: 1000 longs, one allocation.
    let longs: Vec<i64> = (0..1000).collect();
    let mut enc = VECTOR_ID.to_le_bytes().to_vec();
    enc.extend(1000u32.to_le_bytes());
    longs.iter().for_each(|l| enc.extend(l.to_le_bytes()));
    let (peak, calls) = measure(|| assert_eq!(Vec::<i64>::from_bytes(&enc).unwrap(), longs));
    assert_eq!((peak, calls), (8000, 1));
}

#[test]
fn decoding_allocation_is_bounded_by_input_length() {
    hostile_vector_counts_reserve_within_the_bound();

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
