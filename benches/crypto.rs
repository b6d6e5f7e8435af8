//! Criterion benchmarks of the crypto layer: AES-256-IGE and MTProto 2.0 message
//! encryption/decryption at 16 B .. 512 KiB, reported as throughput.
//!
//! Run briefly: `cargo bench --bench crypto -- --warm-up-time 1 --measurement-time 2`.
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mtproto::core::crypto::message::{
    self, MessageHeader, PaddingPolicy, decrypt_message, encrypt_message,
};
use mtproto::core::crypto::{AuthKey, Side, ige};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

const SIZES: [usize; 6] = [16, 128, 1024, 8 * 1024, 64 * 1024, 512 * 1024];

fn label(n: usize) -> String {
    if n >= 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

fn ige(c: &mut Criterion) {
    let key = [0x42u8; 32];
    let iv = [0x17u8; 32];
    let mut g = c.benchmark_group("aes256_ige");
    for n in SIZES {
        let mut buf = vec![0u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::new("encrypt", label(n)), &n, |b, _| {
            b.iter(|| ige::aes256_ige_encrypt(&key, &iv, black_box(&mut buf)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("decrypt", label(n)), &n, |b, _| {
            b.iter(|| ige::aes256_ige_decrypt(&key, &iv, black_box(&mut buf)).unwrap())
        });
    }
    g.finish();
}

fn messages(c: &mut Criterion) {
    let key = AuthKey::from_bytes([0x5a; 256]);
    let header = MessageHeader {
        salt: 1,
        session_id: 2,
        msg_id: 4,
        seq_no: 1,
    };
    // Least padding (12..27 bytes) so the numbers measure the crypto, not the policy.
    let policy = PaddingPolicy::Random { min: 12, max: 27 };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("message");
    for n in SIZES {
        let mut buf = vec![0u8; message::max_encrypted_len(n, &policy).unwrap()];
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::new("encrypt", label(n)), &n, |b, &n| {
            b.iter(|| {
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
            })
        });
        let sealed = message::encrypt_message_to_vec(
            &key,
            Side::Client,
            &header,
            &vec![7; n],
            &policy,
            &mut rng,
        )
        .unwrap()
        .bytes;
        let mut work = sealed.clone();
        g.bench_with_input(BenchmarkId::new("decrypt", label(n)), &n, |b, _| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                decrypt_message(&key, Side::Client, black_box(&mut work))
                    .unwrap()
                    .body
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ige, messages);
criterion_main!(benches);
