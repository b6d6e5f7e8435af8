//! Criterion benchmarks: transport encode + decode throughput (one payload per iteration, the
//! whole frame decoded in one chunk) for the plain intermediate framing, the full framing (CRC32)
//! and obfuscated padded intermediate (AES-256-CTR both ways).
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtproto::core::transport::{Codec, Framing, ObfuscatedCodec, Role, Status, Transport};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

fn pair(kind: &str) -> (Transport, Transport) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    match kind {
        "intermediate" => (
            Transport::Plain(Codec::without_tag(Framing::Intermediate, Role::Client)),
            Transport::Plain(Codec::without_tag(Framing::Intermediate, Role::Server)),
        ),
        "full" => (
            Transport::Plain(Codec::new(Framing::Full, Role::Client)),
            Transport::Plain(Codec::new(Framing::Full, Role::Server)),
        ),
        _ => {
            let mut c =
                ObfuscatedCodec::client(Framing::PaddedIntermediate, Some(2), None, &mut rng)
                    .unwrap();
            let mut init = Vec::new();
            c.encode(&[0; 16], false, &mut rng, &mut init).unwrap();
            let i: [u8; 64] = init[..64].try_into().unwrap();
            let mut s = ObfuscatedCodec::server_from_init(&i, None).unwrap();
            s.decode(&init[64..]).unwrap();
            (Transport::Obfuscated(c), Transport::Obfuscated(s))
        }
    }
}

fn bench(c: &mut Criterion) {
    for size in [1024usize, 64 * 1024] {
        let mut g = c.benchmark_group(format!("transport_{size}B"));
        g.throughput(Throughput::Bytes(size as u64));
        for kind in ["intermediate", "full", "obfuscated_padded"] {
            let (mut tx, mut rx) = pair(kind);
            let payload = vec![0x5au8; size];
            let mut rng = ChaCha20Rng::seed_from_u64(2);
            let mut wire = Vec::with_capacity(size + 64);
            g.bench_function(kind, |b| {
                b.iter(|| {
                    wire.clear();
                    tx.encode(black_box(&payload), false, &mut rng, &mut wire)
                        .unwrap();
                    let (n, st) = rx.decode(&wire).unwrap();
                    assert!(matches!(st, Status::Complete(_)));
                    black_box(n)
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
