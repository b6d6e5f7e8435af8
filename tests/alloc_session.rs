//! Heap allocations per steady-state request → rpc_result cycle through a client
//! [`Connection`] (intermediate framing, our `ServerConnection` as an echo service), and
//! separately per ping → pong and per pushed update → lone `msgs_ack`. A counting global
//! allocator counts only the client's calls (the server runs outside the counting windows), on
//! this thread only, after a warm-up long enough for every bounded structure to reach its
//! steady size (the session remembers its last 1024 service messages: acks and containers, two
//! per request or ping cycle, one per update cycle; until that window is full its ring buffers
//! still grow, a handful of amortised reallocations).
//!
//! The target: at most the one owned result body per request, none for acks and pings.
//! Measured (per 1000 cycles after the warm-up), and asserted exactly:
//!
//! - request → rpc_result: 1000, all in `handle_input`: the owned body of
//!   `Event::RpcResult`, which the API hands out. `invoke_raw` makes none: the request's copy
//!   of its body (kept for resends) goes into a buffer of an earlier, answered request.
//! - the same through the typed `invoke` (`typed_request_cycle`): 1000, the result bodies.
//! - ping → pong: 0.
//! - update → lone `msgs_ack`: 1000, all in `handle_input`: the owned body of `Event::Update`.
//!
//! What was removed to get there (`mtproto-core/src/session/client.rs`), from 9.5 / 7.5 / 4.25
//! per request / ping / update cycle when this test was written:
//! - the request body copy in `invoke_raw` → reused buffers of answered requests (a bounded
//!   spare list; `invoke` serializes straight into one);
//! - the `msgs_ack` id list taken out of the ack queue (which then regrew) and the container's
//!   member list → both copied into an `IdList`, inline up to four ids (more go on the heap);
//! - B-tree node splits and merges of the sent map (a sliding window of monotonic msg_ids) →
//!   `SentMap`, a sorted ring buffer with tombstones;
//! - the server's `msgs_ack` decoded into a `Vec` → its ids read in place after the same
//!   count check;
//! - earlier (commit 9578913): the container built in place, the bookkeeping list reused.

use std::cell::RefCell;
use std::rc::Rc;

use mtproto::core::connection::server::{
    MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
};
use mtproto::core::connection::{Connection, ConnectionConfig, Event, TransportConfig};
use mtproto::core::handshake::{RsaKeySet, RsaPrivateKey, ServerConfig};
use mtproto::core::time::{Instant, Now, UnixTime};
use mtproto::core::tl::{RemoteCall, Serialize, TlError, Writer};
use mtproto::core::transport::Framing;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// Heap allocations made by `f` on this thread, added to `total`.
fn count<T>(total: &mut usize, f: impl FnOnce() -> T) -> T {
    let (n, out) = allocations(f);
    *total += n;
    out
}

const T0: u64 = 1_700_000_000;
type Server = ServerConnection<ChaCha20Rng, Rc<RefCell<MemoryKeyStore>>>;

/// Allocations per phase of the client's work.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Phases {
    invoke: usize,
    transmit: usize,
    input: usize,
    events: usize,
    timers: usize,
}

impl Phases {
    fn total(&self) -> usize {
        self.invoke + self.transmit + self.input + self.events + self.timers
    }
}

/// A client and our server in memory; buffers are reused.
struct Pair {
    client: Connection<ChaCha20Rng>,
    server: Server,
    ms: u64,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    results: usize,
    pongs: usize,
    updates: usize,
}

impl Pair {
    fn new() -> Self {
        let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
        let config = ConnectionConfig::new(2, TransportConfig::plain(Framing::Intermediate), keys);
        let store = Rc::new(RefCell::new(MemoryKeyStore::default()));
        let server = ServerConnection::new(
            ServerConnectionConfig::new(ServerConfig::demo()),
            store,
            ChaCha20Rng::seed_from_u64(2),
        );
        let mut p = Self {
            client: Connection::new(config, ChaCha20Rng::seed_from_u64(1), Self::at(0)),
            server,
            ms: 0,
            c2s: Vec::with_capacity(1 << 16),
            s2c: Vec::with_capacity(1 << 16),
            results: 0,
            pongs: 0,
            updates: 0,
        };
        // The handshake and a first request (key, salts, buffers grown).
        p.client.invoke_raw(&[0, 0, 0, 0]).unwrap();
        let mut sink = Phases::default();
        for _ in 0..20 {
            p.pump(&mut sink);
        }
        assert!(p.client.is_ready() && p.results == 1, "no steady state");
        p
    }

    fn at(ms: u64) -> Now {
        Now {
            mono: Instant::from_millis(ms),
            unix: UnixTime::from_nanos(T0 * 1_000_000_000 + ms * 1_000_000),
        }
    }

    /// One exchange: the client sends what it has, the server answers (echo), the client reads
    /// the answer and its events. Only the client's calls are counted.
    fn pump(&mut self, a: &mut Phases) {
        let now = Self::at(self.ms);
        if self.client.poll_timeout().is_some_and(|t| t <= now.mono) {
            count(&mut a.timers, || self.client.handle_timeout(now));
        }
        self.c2s.clear();
        count(&mut a.transmit, || {
            while self.client.poll_transmit(now, &mut self.c2s) {}
        });
        self.server.handle_input(now, &self.c2s);
        while let Some(e) = self.server.poll_event() {
            if let ServerEvent::Request { id, body } = e {
                self.server.respond(now, id, &body).unwrap();
            }
        }
        self.s2c.clear();
        while self.server.poll_transmit(now, &mut self.s2c) {}
        count(&mut a.input, || self.client.handle_input(now, &self.s2c));
        while let Some(e) = count(&mut a.events, || self.client.poll_event()) {
            match e {
                Event::RpcResult { body, .. } => {
                    assert_eq!(body.len() % 4, 0);
                    self.results += 1;
                }
                Event::Pong { .. } => self.pongs += 1,
                Event::Update { .. } => self.updates += 1,
                Event::TimeSynced { .. } | Event::Ready | Event::UpdatesGapPossible => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(!self.client.is_closed());
    }

    /// `n` request → rpc_result cycles, 1 ms apart, each request queued by `invoke_raw`.
    fn requests(&mut self, n: usize, body: &[u8]) -> Phases {
        self.requests_with(n, |c| {
            c.invoke_raw(body).unwrap();
        })
    }

    /// `n` request → rpc_result cycles, 1 ms apart, each request queued by `invoke`.
    fn requests_with(
        &mut self,
        n: usize,
        mut invoke: impl FnMut(&mut Connection<ChaCha20Rng>),
    ) -> Phases {
        let mut a = Phases::default();
        for _ in 0..n {
            self.ms += 1;
            let before = self.results;
            count(&mut a.invoke, || invoke(&mut self.client));
            self.pump(&mut a);
            assert_eq!(self.results, before + 1);
        }
        a
    }

    /// `n` updates pushed by the server, each acknowledged by a lone `msgs_ack` once the ack
    /// delay has passed (the timer fires in the next exchange).
    fn updates(&mut self, n: usize, body: &[u8]) -> Phases {
        let mut a = Phases::default();
        for _ in 0..n {
            self.ms += 1;
            let before = self.updates;
            self.server.push_update(Self::at(self.ms), body).unwrap();
            self.pump(&mut a);
            assert_eq!(self.updates, before + 1);
            self.ms += 1_000; // past the ack delay: the ack goes out alone
            let sent = self.c2s.len();
            self.pump(&mut a);
            assert!(!self.c2s.is_empty() || sent > 0);
        }
        a
    }

    /// `n` ping → pong cycles, 1 ms apart.
    fn pings(&mut self, n: usize) -> Phases {
        let mut a = Phases::default();
        for _ in 0..n {
            self.ms += 1;
            let before = self.pongs;
            count(&mut a.invoke, || self.client.ping());
            self.pump(&mut a);
            assert_eq!(self.pongs, before + 1);
        }
        a
    }
}

#[test]
fn the_counter_counts() {
    // Guards the tests below: an allocation inside the window is seen.
    let mut n = 0;
    let b = count(&mut n, || Box::new(std::hint::black_box(7u64)));
    assert_eq!((n, *b), (1, 7));
    n = 0;
    count(&mut n, || 1 + 1);
    assert_eq!(n, 0);
}

/// Cycles measured after the warm-up.
const N: usize = 1000;
/// Warm-up cycles: past the session's window of 1024 remembered service messages.
const WARM_UP: usize = 1100;

#[test]
fn request_cycle() {
    let mut p = Pair::new();
    let body = [0x01, 0x00, 0xde, 0xc0, 42, 0, 0, 0];
    p.requests(WARM_UP, &body); // maps and queues at their steady size
    let a = p.requests(N, &body);
    eprintln!("request → rpc_result, {N} cycles: {a:?}");
    // Exactly the result bodies (see the module docs).
    let want = Phases {
        input: N,
        ..Phases::default()
    };
    assert_eq!(a, want);
    assert_eq!(a.total(), N);
}

/// A typed request (`test.echo#c0de0001 value:int = Int`), queued through
/// `Connection::invoke`: serialized straight into a recycled buffer, so the cycle allocates
/// exactly what `invoke_raw`'s does (the result body).
struct Echo(i32);

impl Serialize for Echo {
    fn serialized_len(&self) -> usize {
        8
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_u32(0xc0de_0001)?;
        w.write_i32(self.0)
    }
}

impl RemoteCall for Echo {
    type Return<'r> = i32;
}

#[test]
fn typed_request_cycle() {
    let mut p = Pair::new();
    let echo = Echo(42);
    p.requests_with(WARM_UP, |c| {
        c.invoke(&echo).unwrap();
    });
    let a = p.requests_with(N, |c| {
        c.invoke(&echo).unwrap();
    });
    eprintln!("typed request → rpc_result, {N} cycles: {a:?}");
    let want = Phases {
        input: N,
        ..Phases::default()
    };
    assert_eq!(a, want);
}

#[test]
fn ping_cycle() {
    let mut p = Pair::new();
    p.pings(WARM_UP);
    let a = p.pings(N);
    eprintln!("ping → pong, {N} cycles: {a:?}");
    assert_eq!(a, Phases::default());
}

#[test]
fn update_and_ack_cycle() {
    let mut p = Pair::new();
    let body = [0x11, 0x22, 0x33, 0x44, 1, 0, 0, 0];
    p.updates(WARM_UP, &body);
    let a = p.updates(N, &body);
    eprintln!("update → msgs_ack, {N} cycles: {a:?}");
    // Exactly the update bodies.
    let want = Phases {
        input: N,
        ..Phases::default()
    };
    assert_eq!(a, want);
}
