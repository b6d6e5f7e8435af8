//! Criterion benchmarks of the TL layer: encoding and decoding handshake types, and decoding a
//! `msg_container` of 100 messages (zero-copy bodies) through the any-object decoder.
//!
//! Run briefly: `cargo bench --bench tl -- --warm-up-time 1 --measurement-time 2`.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtproto::core::tl::schema::{Object, enums, types};
use mtproto::core::tl::{Deserialize, Serialize};
use std::hint::black_box;

fn handshake(c: &mut Criterion) {
    let nonce = [1u8; 16];
    let server_nonce = [2u8; 16];
    let dh_prime = [0xC7u8; 256];
    let g_a = [0x23u8; 256];
    let inner = types::ServerDhInnerData {
        nonce: &nonce,
        server_nonce: &server_nonce,
        g: 3,
        dh_prime: &dh_prime,
        g_a: &g_a,
        server_time: 1735910891,
    };
    let bytes = inner.to_vec().unwrap();
    let mut buf = vec![0u8; inner.serialized_len()];
    let mut g = c.benchmark_group("tl_server_DH_inner_data");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            black_box(&inner)
                .serialize_into(black_box(&mut buf))
                .unwrap()
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| types::ServerDhInnerData::from_bytes(black_box(&bytes)).unwrap())
    });
    g.finish();

    let res_pq = types::ResPq {
        nonce: &nonce,
        server_nonce: &server_nonce,
        pq: &[0x17, 0xED, 0x48, 0x94, 0x1A, 0x08, 0xF9, 0x81],
        server_public_key_fingerprints: vec![1, 2, 3],
    }
    .to_vec()
    .unwrap();
    c.bench_function("tl_resPQ_decode", |b| {
        b.iter(|| enums::ResPq::from_bytes(black_box(&res_pq)).unwrap())
    });
}

fn container(c: &mut Criterion) {
    // msg_container with 100 messages, each carrying a 64-byte body.
    let n = 100u32;
    let mut bytes = 0x73f1f8dcu32.to_le_bytes().to_vec();
    bytes.extend(n.to_le_bytes());
    for i in 0..n {
        bytes.extend((i64::from(i) << 2).to_le_bytes());
        bytes.extend((2 * i + 1).to_le_bytes());
        bytes.extend(64u32.to_le_bytes());
        bytes.extend([0x5a; 64]);
    }
    let mut g = c.benchmark_group("tl_msg_container_100x64");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_any_object", |b| {
        b.iter(|| {
            let Object::MsgContainer(m) = Object::from_bytes(black_box(&bytes)).unwrap() else {
                unreachable!()
            };
            m.messages.len()
        })
    });
    g.finish();
}

criterion_group!(benches, handshake, container);
criterion_main!(benches);
