//! Criterion benchmarks of the handshake: a full in-memory auth key creation (our client and our
//! server, both sides' CPU time, no I/O), for a permanent and a temporary key, plus the pieces
//! that dominate it (pq factorization, RSA_PAD, server RSA decryption, one 2048-bit DH step).
//!
//! Run briefly: `cargo bench --bench handshake -- --warm-up-time 1 --measurement-time 2`.
use criterion::{Criterion, criterion_group, criterion_main};
use mtproto::core::handshake::pq::factorize;
use mtproto::core::handshake::{
    ClientConfig, ClientHandshake, ClientStep, KeyKind, RsaKeySet, RsaPrivateKey, ServerConfig,
    ServerHandshake, ServerStep,
};
use mtproto::core::time::UnixTime;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

/// One complete exchange; returns the auth key id so nothing is optimised away.
fn full_handshake(kind: KeyKind, seed: u64) -> i64 {
    let now = UnixTime::from_secs(1_700_000_000);
    let mut crng = ChaCha20Rng::seed_from_u64(seed);
    let mut srng = ChaCha20Rng::seed_from_u64(!seed);
    let server_cfg = ServerConfig::demo();
    let keys = RsaKeySet::new().with(server_cfg.keys[0].public_key().clone());
    let mut cfg = ClientConfig::new(keys, 2);
    cfg.kind = kind;
    let mut client = ClientHandshake::new(cfg);
    let mut server = ServerHandshake::new(server_cfg);
    let mut msg = client.start(&mut crng).unwrap();
    loop {
        let reply = match server.handle(now, &msg, &mut srng).unwrap() {
            ServerStep::Send(r) => r,
            ServerStep::Done { reply, .. } => reply,
        };
        match client.handle(now, &reply, &mut crng).unwrap() {
            ClientStep::Send(next) => msg = next,
            ClientStep::Done(result) => return result.auth_key.id(),
        }
    }
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.sample_size(20);
    let mut seed = 0u64;
    g.bench_function("full permanent key (client + server)", |b| {
        b.iter(|| {
            seed += 1;
            black_box(full_handshake(KeyKind::Permanent, seed))
        })
    });
    g.bench_function("full temporary key (client + server)", |b| {
        b.iter(|| {
            seed += 1;
            black_box(full_handshake(
                KeyKind::Temporary { expires_in: 3600 },
                seed,
            ))
        })
    });
    g.finish();
}

fn pieces(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake pieces");
    // The official sample's pq.
    g.bench_function("pq factorization (sample pq)", |b| {
        b.iter(|| factorize(black_box(1_372_318_559_046_200_203)).unwrap())
    });
    let key = RsaPrivateKey::demo();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let data = [0x5au8; 100];
    g.bench_function("RSA_PAD encrypt (client)", |b| {
        b.iter(|| {
            key.public_key()
                .encrypt_pad(black_box(&data), &mut rng)
                .unwrap()
        })
    });
    let ct = key.public_key().encrypt_pad(&data, &mut rng).unwrap();
    g.bench_function("RSA_PAD decrypt (server, CRT, blinded)", |b| {
        b.iter(|| key.decrypt_pad(black_box(&ct), &mut rng).unwrap())
    });
    g.finish();
}

criterion_group!(benches, handshake, pieces);
criterion_main!(benches);
