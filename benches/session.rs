//! Criterion benchmarks of the session path, in memory, intermediate framing:
//!
//! - `round_trip/{1,100}`: a client [`Connection`] and our [`ServerConnection`] (an echo
//!   service) exchange requests: one request at a time, and 100 requests queued together (they
//!   travel in one container each way). Throughput counts requests, so criterion's `elem/s` is
//!   requests per second (client and server on one core).
//! - `client/ours/<size>`, `client/grammers/<size>`: the client side alone, per request:
//!   serialize → container (with the `msgs_ack` of the previous answer) → encrypt → decrypt the
//!   server's answer → match it to its request. The server's answers are encrypted beforehand
//!   (under the key of a real handshake with our server) and replayed, so no server work is
//!   measured. Ours: `invoke_raw` → `poll_transmit` (incl. the 4-byte intermediate frame
//!   header) → `handle_input` → `poll_event` (`Event::RpcResult`). grammers-mtproto 0.11:
//!   `Encrypted::push` → `finalize` → `deserialize` (one copy of the reply into its working
//!   buffer) → look for the `RpcResult` of the request's id. Same default configurations except
//!   compression off in grammers (ours has none by default; the bodies are below its threshold
//!   anyway).
//!
//! After the criterion output, the ratio ours/grammers per request, read back from criterion's
//! samples of this run (fastest sample: on a shared machine others only ever add time).
//!
//! Run briefly: `cargo bench --bench session -- --warm-up-time 1 --measurement-time 2`.
mod common;
use common::{fastest_ns, label};
use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use grammers_crypto::DequeBuffer;
use grammers_mtproto::mtp::{Deserialization, Encrypted, Mtp};
use mtproto::core::connection::server::{
    MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
};
use mtproto::core::connection::{
    Connection, ConnectionConfig, Event, ResumeState, TransportConfig,
};
use mtproto::core::crypto::message::{
    MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
};
use mtproto::core::crypto::{AuthKey, Side};
use mtproto::core::handshake::{RsaKeySet, RsaPrivateKey, ServerConfig};
use mtproto::core::time::{Instant, Now, UnixTime};
use mtproto::core::transport::Framing;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: u64 = 1_700_000_000;
/// Request (and echoed result) body sizes of the client-side benchmark.
const SIZES: [usize; 2] = [16, 1024];
/// Requests per replayed script (one resumed client each; its setup is not timed).
const SCRIPT: usize = 2000;

const RPC_RESULT_ID: u32 = 0xf35c_6d01;
const MSG_CONTAINER_ID: u32 = 0x73f1_f8dc;

fn now() -> Now {
    Now {
        mono: Instant::from_millis(0),
        unix: UnixTime::from_secs(T0),
    }
}

fn config() -> ConnectionConfig {
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    ConnectionConfig::new(2, TransportConfig::plain(Framing::Intermediate), keys)
}

/// A request body of `n` bytes (a multiple of 4); the echo service answers with it.
fn request(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ 0x5a).collect()
}

type Server = ServerConnection<ChaCha20Rng, Rc<RefCell<MemoryKeyStore>>>;

/// A client and our server in memory, on a fixed clock; buffers are reused.
struct Pair {
    client: Connection<ChaCha20Rng>,
    server: Server,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

impl Pair {
    fn new() -> Self {
        let store = Rc::new(RefCell::new(MemoryKeyStore::default()));
        let server = ServerConnection::new(
            ServerConnectionConfig::new(ServerConfig::demo()),
            store,
            ChaCha20Rng::seed_from_u64(2),
        );
        let mut p = Self {
            client: Connection::new(config(), ChaCha20Rng::seed_from_u64(1), now()),
            server,
            c2s: Vec::with_capacity(1 << 20),
            s2c: Vec::with_capacity(1 << 20),
        };
        // The handshake, and a first request so salts and buffers are in place.
        p.round_trip(&request(16), 1);
        p
    }

    /// One exchange each way; returns the number of rpc results the client got.
    fn pump(&mut self) -> usize {
        let now = now();
        self.c2s.clear();
        while self.client.poll_transmit(now, &mut self.c2s) {}
        self.server.handle_input(now, &self.c2s);
        while let Some(e) = self.server.poll_event() {
            if let ServerEvent::Request { id, body } = e {
                let _ = self.server.respond(now, id, &body);
            }
        }
        self.s2c.clear();
        while self.server.poll_transmit(now, &mut self.s2c) {}
        self.client.handle_input(now, &self.s2c);
        let mut got = 0;
        while let Some(e) = self.client.poll_event() {
            if let Event::RpcResult { body, .. } = e {
                black_box(body);
                got += 1;
            }
        }
        got
    }

    /// `n` requests queued at once, then exchanges until all `n` are answered.
    fn round_trip(&mut self, body: &[u8], n: usize) {
        for _ in 0..n {
            self.client.invoke_raw(body).expect("invoke");
        }
        let mut got = 0;
        for _ in 0..1000 {
            got += self.pump();
            if got >= n {
                return;
            }
        }
        panic!("no answer: {got} of {n}");
    }
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");
    let body = request(16);
    for n in [1usize, 100] {
        let mut p = Pair::new();
        // The n requests travel in one message each way (a container when n > 1).
        for _ in 0..n {
            p.client.invoke_raw(&body).expect("invoke");
        }
        assert_eq!(p.pump(), n, "all answered in one exchange");
        assert_eq!(
            (frames(&p.c2s).len(), frames(&p.s2c).len()),
            (1, 1),
            "one message each way"
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| p.round_trip(&body, n))
        });
    }
    g.finish();
}

// ------------------------------------------------------------------------- client side alone

/// Splits intermediate frames (after the optional 0xeeeeeeee tag) into payloads.
fn frames(mut wire: &[u8]) -> Vec<Vec<u8>> {
    if wire.starts_with(&[0xee; 4]) {
        wire = &wire[4..];
    }
    let mut out = Vec::new();
    while wire.len() >= 4 {
        let n = u32::from_le_bytes(wire[..4].try_into().unwrap()) as usize;
        out.push(wire[4..4 + n].to_vec());
        wire = &wire[4 + n..];
    }
    out
}

/// The msg_ids of the messages in a decrypted body whose body equals `want`.
fn find_request(msg_id: i64, body: &[u8], want: &[u8]) -> Option<i64> {
    if body == want {
        return Some(msg_id);
    }
    if body.get(..4)? != MSG_CONTAINER_ID.to_le_bytes() {
        return None;
    }
    let count = u32::from_le_bytes(body[4..8].try_into().ok()?) as usize;
    let mut at = 8;
    for _ in 0..count {
        let id = i64::from_le_bytes(body[at..at + 8].try_into().ok()?);
        let len = u32::from_le_bytes(body[at + 12..at + 16].try_into().ok()?) as usize;
        let inner = &body[at + 16..at + 16 + len];
        if inner == want {
            return Some(id);
        }
        at += 16 + len;
    }
    None
}

/// `rpc_result req_msg_id:long result:Object`, encrypted by the server under `key`, in an
/// intermediate frame.
fn server_reply(
    key: &AuthKey,
    session_id: i64,
    salt: i64,
    i: usize,
    req: i64,
    res: &[u8],
) -> Vec<u8> {
    let mut body = RPC_RESULT_ID.to_le_bytes().to_vec();
    body.extend_from_slice(&req.to_le_bytes());
    body.extend_from_slice(res);
    let header = MessageHeader {
        salt,
        session_id,
        // Server msg_ids: odd (≡ 1 mod 4), increasing, at the client's clock.
        msg_id: ((T0 as i64) << 32) + 1 + 4 * i as i64,
        seq_no: 2 * i as i32 + 1,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
    let m = encrypt_message_to_vec(
        key,
        Side::Server,
        &header,
        &body,
        &PaddingPolicy::default(),
        &mut rng,
    )
    .expect("encrypt");
    let mut framed = (m.bytes.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(&m.bytes);
    framed
}

fn resumed(state: &ResumeState) -> Connection<ChaCha20Rng> {
    Connection::resume(
        config(),
        state.clone(),
        ChaCha20Rng::seed_from_u64(7),
        now(),
    )
}

/// The server's answers to the `SCRIPT` requests a client resumed from `state` sends, in order.
/// The client is deterministic (seeded RNG, fixed clock), so a fresh one resumed the same way
/// sends the same msg_ids and accepts the same answers.
fn script(state: &ResumeState, body: &[u8]) -> Vec<Vec<u8>> {
    let key = &state.auth_key;
    let mut c = resumed(state);
    let mut out = Vec::new();
    let mut replies = Vec::with_capacity(SCRIPT);
    for i in 0..SCRIPT {
        c.invoke_raw(body).expect("invoke");
        out.clear();
        while c.poll_transmit(now(), &mut out) {}
        let mut req = None;
        let mut session = 0;
        for mut f in frames(&out) {
            let m = decrypt_message(key, Side::Client, &mut f).expect("client message");
            session = m.session_id;
            req = req.or(find_request(m.msg_id, m.body, body));
        }
        let req = req.expect("the request went out");
        let reply = server_reply(key, session, state.session.salt, i, req, body);
        c.handle_input(now(), &reply);
        let mut ok = false;
        while let Some(e) = c.poll_event() {
            ok |= matches!(e, Event::RpcResult { body: ref got, .. } if got == body);
        }
        assert!(ok, "the scripted answer {i} was not accepted");
        replies.push(reply);
    }
    replies
}

fn client(c: &mut Criterion) {
    // A real key: a handshake with our server.
    let state = Pair::new().client.export().expect("key");
    let raw: [u8; 256] = *state.auth_key.as_bytes();
    let mut g = c.benchmark_group("client");
    for n in SIZES {
        let body = request(n);
        let replies = script(&state, &body);
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("ours", label(n)), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                let mut out = Vec::with_capacity(1 << 16);
                while left > 0 {
                    let k = left.min(SCRIPT);
                    let mut conn = resumed(&state);
                    let start = std::time::Instant::now();
                    for reply in &replies[..k] {
                        let id = conn.invoke_raw(&body).expect("invoke");
                        out.clear();
                        while conn.poll_transmit(now(), &mut out) {}
                        black_box(&out);
                        conn.handle_input(now(), reply);
                        let mut found = false;
                        while let Some(e) = conn.poll_event() {
                            if let Event::RpcResult { id: got, body } = e {
                                found |= got == id;
                                black_box(body);
                            }
                        }
                        assert!(found);
                    }
                    total += start.elapsed();
                    left -= k;
                }
                total
            })
        });

        // grammers: its session id is random; read it from its first message (we have the key).
        // Salt 0 (its default): with a real first salt, grammers first asks for future salts
        // and queues nothing else until they come.
        let mut mtp = Encrypted::build().compression_threshold(None).finish(raw);
        let mut buf = DequeBuffer::with_capacity(1 << 16, 64);
        let first = mtp.push(&mut buf, &body).expect("push");
        mtp.finalize(&mut buf);
        let mut sealed = buf[..].to_vec();
        let m =
            decrypt_message(&state.auth_key, Side::Client, &mut sealed).expect("grammers' message");
        let (session, first_raw) = (
            m.session_id,
            find_request(m.msg_id, m.body, &body).expect("request"),
        );
        // grammers matches answers to requests in its caller (no replay window, no pending
        // map): one answer, replayed, for the request id it names.
        let reply = server_reply(
            &state.auth_key,
            session,
            state.session.salt,
            0,
            first_raw,
            &body,
        );
        let reply = &reply[4..];
        let mut work = reply.to_vec();
        g.bench_function(BenchmarkId::new("grammers", label(n)), |b| {
            b.iter(|| {
                buf.clear();
                let id = mtp.push(&mut buf, &body).expect("push");
                mtp.finalize(&mut buf);
                black_box(&buf[..]);
                black_box(id);
                work.copy_from_slice(reply);
                let results = mtp.deserialize(&mut work).expect("deserialize");
                let mut found = false;
                for r in results {
                    if let Deserialization::RpcResult(r) = r
                        && r.msg_id == first
                    {
                        black_box(r.body);
                        found = true;
                    }
                }
                assert!(found);
            })
        });
    }
    g.finish();
}

// ------------------------------------------------------------------------------------ ratios

fn print_ratios() {
    println!();
    println!("requests/s (fastest sample); ×g = ours/grammers per request (grammers' time / ours)");
    for n in [1usize, 100] {
        if let Some(t) = fastest_ns("round_trip", &n.to_string(), "") {
            println!(
                "| round trip, {n:>3} per exchange | {:>10.0} req/s |",
                n as f64 * 1e9 / t
            );
        }
    }
    for n in SIZES {
        let (o, g) = (
            fastest_ns("client", "ours", &label(n)),
            fastest_ns("client", "grammers", &label(n)),
        );
        let rate = |t: Option<f64>| t.map_or("-".into(), |t| format!("{:.0}", 1e9 / t));
        let ratio = match (o, g) {
            (Some(o), Some(g)) => format!("{:.2}", g / o),
            _ => "-".into(),
        };
        println!(
            "| client side, {:>5} | ours {:>9} req/s | grammers {:>9} req/s | ×g {ratio} |",
            label(n),
            rate(o),
            rate(g)
        );
    }
}

fn main() {
    common::start();
    let mut c = Criterion::default().configure_from_args();
    round_trip(&mut c);
    client(&mut c);
    c.final_summary();
    print_ratios();
}
