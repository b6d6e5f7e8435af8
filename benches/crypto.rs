//! Criterion benchmarks of the crypto layer, side by side in ONE run with `grammers-crypto` (the
//! Rust reference implementation) and with the limit kernels of one message on one core:
//!
//! - `encrypt/*`, `decrypt/*`: MTProto 2.0 message encryption/decryption of a body of 16 B ..
//!   512 KiB (throughput counts body bytes). Ours with the default padding policy and with least
//!   padding; grammers' `encrypt_data_v2` / `decrypt_data_v2`. Every variant copies the body (or
//!   the sealed message) into its working buffer once per iteration.
//! - `ige/*`: AES-256-IGE alone, ours and grammers'.
//! - `limit/*`: the aes crate's serially dependent AES-256 chain inside one backend closure
//!   (what IGE cannot beat: every block waits for the previous one) and one SHA-256 pass. The
//!   two-pass limit of a message is `L = 1 / (1/AES + 1/SHA)`.
//!
//! After the criterion output, a table of MB/s (10^6 bytes/s) with the ratios ours/grammers and
//! ours/limit, read back from criterion's estimates of this run.
//!
//! Run briefly: `cargo bench --bench crypto -- --warm-up-time 1 --measurement-time 2`.
mod common;
use aes::Aes256Enc;
use aes::cipher::{
    Array, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser,
    KeyInit, consts::U16,
};
use common::{fastest_ns, label};
use criterion::{BenchmarkId, Criterion, Throughput};
use grammers_crypto::DequeBuffer;
use mtproto::core::crypto::message::{
    self, BODY_OFFSET, MessageHeader, PaddingPolicy, decrypt_message, encrypt_message,
};
use mtproto::core::crypto::{AuthKey, Side, ige};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use std::hint::black_box;

const SIZES: [usize; 6] = [16, 128, 1024, 8 * 1024, 64 * 1024, 512 * 1024];

fn raw_key() -> [u8; 256] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3))
}

const LEAST: PaddingPolicy = PaddingPolicy::Random { min: 12, max: 27 };

fn encrypt(c: &mut Criterion) {
    let key = AuthKey::from_bytes(raw_key());
    let gkey = grammers_crypto::AuthKey::from_bytes(raw_key());
    let header = MessageHeader {
        salt: 1,
        session_id: 2,
        msg_id: 4,
        seq_no: 1,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("encrypt");
    for n in SIZES {
        let body = vec![7u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        for (name, policy) in [
            ("ours_default", PaddingPolicy::default()),
            ("ours_least", LEAST),
        ] {
            let mut buf = vec![0u8; message::max_encrypted_len(n, &policy).unwrap()];
            g.bench_function(BenchmarkId::new(name, label(n)), |b| {
                b.iter(|| {
                    buf[BODY_OFFSET..BODY_OFFSET + n].copy_from_slice(&body);
                    encrypt_message(
                        &key,
                        Side::Client,
                        &header,
                        n,
                        black_box(&mut buf),
                        &policy,
                        &mut rng,
                    )
                    .unwrap()
                    .len
                })
            });
        }
        let mut dq = DequeBuffer::with_capacity(n + 64, 24);
        g.bench_function(BenchmarkId::new("grammers", label(n)), |b| {
            b.iter(|| {
                dq.clear();
                dq.extend(body.iter());
                grammers_crypto::encrypt_data_v2(black_box(&mut dq), &gkey);
                dq.len()
            })
        });
    }
    g.finish();
}

fn decrypt(c: &mut Criterion) {
    let key = AuthKey::from_bytes(raw_key());
    let gkey = grammers_crypto::AuthKey::from_bytes(raw_key());
    // grammers' decrypt_data_v2 only decrypts server→client messages.
    let header = MessageHeader {
        salt: 1,
        session_id: 2,
        msg_id: 5,
        seq_no: 1,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut g = c.benchmark_group("decrypt");
    for n in SIZES {
        let sealed = message::encrypt_message_to_vec(
            &key,
            Side::Server,
            &header,
            &vec![7u8; n],
            &LEAST,
            &mut rng,
        )
        .unwrap()
        .bytes;
        let mut work = sealed.clone();
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("ours", label(n)), |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                decrypt_message(&key, Side::Server, black_box(&mut work))
                    .unwrap()
                    .body
                    .len()
            })
        });
        // The same work as two separate passes (KDF, IGE-decrypt, then SHA-256 over the
        // plaintext and the msg_key comparison): what `decrypt_message` did before it fused them.
        g.bench_function(BenchmarkId::new("ours_two_pass", label(n)), |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                let (head, enc) = black_box(&mut work[..]).split_at_mut(24);
                let msg_key: [u8; 16] = head[8..24].try_into().unwrap();
                let (k, iv) = message::kdf(&key, Side::Server, &msg_key);
                ige::aes256_ige_decrypt(&k, &iv, enc).unwrap();
                let large = message::msg_key_large(&key, Side::Server, enc);
                assert!(large[8..24] == msg_key);
                enc.len()
            })
        });
        g.bench_function(BenchmarkId::new("grammers", label(n)), |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                grammers_crypto::decrypt_data_v2(black_box(&mut work), &gkey)
                    .unwrap()
                    .len()
            })
        });
    }
    g.finish();
}

fn ige(c: &mut Criterion) {
    let key = [0x42u8; 32];
    let iv = [0x17u8; 32];
    let mut g = c.benchmark_group("ige");
    for n in SIZES {
        let mut buf = vec![0u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("ours_encrypt", label(n)), |b| {
            b.iter(|| ige::aes256_ige_encrypt(&key, &iv, black_box(&mut buf)).unwrap())
        });
        g.bench_function(BenchmarkId::new("grammers_encrypt", label(n)), |b| {
            b.iter(|| grammers_crypto::aes::ige_encrypt(black_box(&mut buf), &key, &iv))
        });
        g.bench_function(BenchmarkId::new("ours_decrypt", label(n)), |b| {
            b.iter(|| ige::aes256_ige_decrypt(&key, &iv, black_box(&mut buf)).unwrap())
        });
        g.bench_function(BenchmarkId::new("grammers_decrypt", label(n)), |b| {
            b.iter(|| grammers_crypto::aes::ige_decrypt(black_box(&mut buf), &key, &iv))
        });
    }
    g.finish();
}

/// The serial AES-256 chain `t = E(t ⊕ block)` over the buffer, in one backend closure: the
/// latency bound of any chained mode on this CPU.
struct SerialChain<'a>(&'a mut [Array<u8, U16>]);

impl BlockSizeUser for SerialChain<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for SerialChain<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let mut t = Array::<u8, U16>::default();
        for block in self.0.iter_mut() {
            for (a, b) in t.iter_mut().zip(block.iter()) {
                *a ^= *b;
            }
            backend.encrypt_block_inplace(&mut t);
            *block = t;
        }
    }
}

fn limit(c: &mut Criterion) {
    let cipher = Aes256Enc::new(&[0x42u8; 32].into());
    let mut g = c.benchmark_group("limit");
    for n in SIZES {
        let mut buf = vec![0u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("aes_chain", label(n)), |b| {
            b.iter(|| {
                let (blocks, _) = Array::<u8, U16>::slice_as_chunks_mut(black_box(&mut buf));
                cipher.encrypt_with_backend(SerialChain(blocks));
            })
        });
        g.bench_function(BenchmarkId::new("sha256", label(n)), |b| {
            b.iter(|| Sha256::digest(black_box(&buf)))
        });
    }
    g.finish();
}

fn print_ratios() {
    let mbs = |t: Option<f64>, n: usize| t.map(|t| n as f64 / t * 1e3);
    let cell = |v: Option<f64>, digits: usize| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "-".into(),
    };
    println!();
    println!(
        "MB/s (10^6 bytes of body per second, fastest sample); ×g = ours/grammers, ×L = ours/limit"
    );
    println!("L = 1/(1/AES + 1/SHA): the two-pass limit (serial AES-256 chain + one SHA-256 pass)");
    let head: String = SIZES.iter().map(|&n| format!(" | {}", label(n))).collect();
    println!("| row{head} |");
    println!("|---{}|", "|---:".repeat(SIZES.len()));
    let row = |name: &str, f: &dyn Fn(usize) -> Option<f64>| {
        let digits = if name.ends_with("MB/s") { 0 } else { 2 };
        let cells: String = SIZES
            .iter()
            .map(|&n| format!(" | {}", cell(f(n), digits)))
            .collect();
        println!("| {name}{cells} |");
    };
    let limit = |n| {
        Some(
            fastest_ns("limit", "aes_chain", &label(n))?
                + fastest_ns("limit", "sha256", &label(n))?,
        )
    };
    let rows: [(&str, &str, &str); 6] = [
        ("encrypt, default policy", "encrypt", "ours_default"),
        ("encrypt, least padding", "encrypt", "ours_least"),
        ("encrypt, grammers", "encrypt", "grammers"),
        ("decrypt", "decrypt", "ours"),
        ("decrypt, two passes", "decrypt", "ours_two_pass"),
        ("decrypt, grammers", "decrypt", "grammers"),
    ];
    for (name, group, function) in rows {
        row(&format!("{name} MB/s"), &|n| {
            mbs(fastest_ns(group, function, &label(n)), n)
        });
        if function == "ours" {
            row("decrypt fused/two passes", &|n| {
                Some(
                    fastest_ns(group, "ours_two_pass", &label(n))?
                        / fastest_ns(group, function, &label(n))?,
                )
            });
        }
        if function.starts_with("ours") {
            row(&format!("{name} ×g"), &|n| {
                Some(
                    fastest_ns(group, "grammers", &label(n))?
                        / fastest_ns(group, function, &label(n))?,
                )
            });
            row(&format!("{name} ×L"), &|n| {
                Some(limit(n)? / fastest_ns(group, function, &label(n))?)
            });
        }
    }
    row("limit L MB/s", &|n| mbs(limit(n), n));
    row("limit AES chain MB/s", &|n| {
        mbs(fastest_ns("limit", "aes_chain", &label(n)), n)
    });
    row("limit SHA-256 MB/s", &|n| {
        mbs(fastest_ns("limit", "sha256", &label(n)), n)
    });
    for (name, function) in [
        ("IGE encrypt", "ours_encrypt"),
        ("IGE decrypt", "ours_decrypt"),
    ] {
        let theirs = function.replace("ours", "grammers");
        row(&format!("{name} MB/s"), &|n| {
            mbs(fastest_ns("ige", function, &label(n)), n)
        });
        row(&format!("{name} ×g"), &|n| {
            Some(fastest_ns("ige", &theirs, &label(n))? / fastest_ns("ige", function, &label(n))?)
        });
        row(&format!("{name} ×AES chain"), &|n| {
            Some(
                fastest_ns("limit", "aes_chain", &label(n))?
                    / fastest_ns("ige", function, &label(n))?,
            )
        });
    }
}

fn main() {
    common::start();
    let mut c = Criterion::default().configure_from_args();
    encrypt(&mut c);
    decrypt(&mut c);
    ige(&mut c);
    limit(&mut c);
    c.final_summary();
    print_ratios();
}
