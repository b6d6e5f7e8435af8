//! Heap allocations per steady-state request → rpc_result cycle through a client
//! [`Connection`] (intermediate framing, our `ServerConnection` as an echo service), and
//! separately per ping → pong and per pushed update → lone `msgs_ack`. A counting global
//! allocator counts only the client's calls (the server runs outside the counting windows), on
//! this thread only, after a warm-up of 100 cycles. Each bound below is today's measurement
//! (rounded up for the amortised B-tree node splits), so any new allocation fails the test.
//!
//! The target is at most the one owned result body per request, none for acks and
//! pings. Measured today (per cycle; found with a backtrace-capturing allocator; `:N` are lines of
//! `mtproto-core/src/session/client.rs` at this commit), and what would remove each:
//!
//! Request → rpc_result, 9.5 per request:
//! - `invoke_raw` :601: `body.to_vec()` (the request's copy in `Pending`). Remove: serialize the
//!   request straight into a reusable outgoing arena (or a caller-owned buffer handed in).
//! - `poll_message`, 5 + ~0.5:
//!   - `msg_ids: ids.clone()` :1061 for the `msgs_ack` written with `write_tl`: write the ack from a
//!     borrowed slice (a `MsgsAck<'a>` over `&[i64]`, or a hand-written vector writer);
//!   - `inner: Vec<(i64, i32, usize, usize)>` and `members: Vec<i64>` (:1043, :1044; first push :1065, :1182), fresh per message: keep
//!     them as cleared scratch fields of the session (or a fixed `[_; MAX_CONTAINER_MESSAGES]`);
//!   - `out.split_off(header_end)` :1210 when building the container: reserve the 24 bytes of
//!     container + inner headers while writing (the container header is already reserved) and
//!     patch in place, or `copy_within` the bodies;
//!   - `Sent::Container(all)` :1228, a `Vec<i64>` of the members: store members in a bounded inline
//!     array, or point each member's `Sent` entry at the container id instead;
//!   - ~0.5: B-tree node allocations of `sent: BTreeMap<i64, Sent>` in `remember` :1021 (insert and
//!     remove of three ids per cycle split and merge nodes): a ring/slab indexed by msg_id
//!     order (msg_ids are monotonic) instead of a `BTreeMap`.
//! - `handle_input`, 3:
//!   - `queue_ack` :969: `self.acks` regrows every cycle, because `poll_message` takes it with
//!     `mem::take` (capacity gone): clear it after writing instead;
//!   - the server's `msgs_ack` for our request, decoded by `MsgsAck::deserialize_bare` (:1470) into a
//!     `Vec<i64>` (`tl/reader.rs` `read_bare_vector_with`): iterate the ids in place from the
//!     reader instead of collecting;
//!   - `on_rpc_result` :1676: `result.to_vec()`, the owned body of `Event::RpcResult` (the one the
//!     issue allows).
//! - `poll_event`, timers: none.
//!
//! Ping → pong, 7.5: `poll_message` 5.5 (the same five as above: ack clone, `inner`,
//! `members`, `split_off`, container member list; B-tree nodes), `handle_input` 2 (`queue_ack`
//! regrow; the server's `msgs_ack` of the ping decoded into a `Vec`).
//!
//! Update → lone `msgs_ack`, 4.25: `handle_input` 2 (`queue_ack` regrow; the update's owned
//! body in `Event::Update` :1563, which the API hands out), `poll_message` 2.25 (ack clone, `inner`,
//! B-tree nodes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mtproto::core::connection::server::{
    MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
};
use mtproto::core::connection::{Connection, ConnectionConfig, Event, TransportConfig};
use mtproto::core::handshake::{RsaKeySet, RsaPrivateKey, ServerConfig};
use mtproto::core::time::{Instant, Now, UnixTime};
use mtproto::core::transport::Framing;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations made by `f` on this thread, added to `total`.
fn count<T>(total: &mut usize, f: impl FnOnce() -> T) -> T {
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    let out = f();
    ON.with(|on| on.set(false));
    *total += COUNT.with(Cell::get);
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

    /// `n` request → rpc_result cycles, 1 ms apart.
    fn requests(&mut self, n: usize, body: &[u8]) -> Phases {
        let mut a = Phases::default();
        for _ in 0..n {
            self.ms += 1;
            let before = self.results;
            count(&mut a.invoke, || self.client.invoke_raw(body).unwrap());
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

#[test]
fn request_cycle() {
    let mut p = Pair::new();
    let body = [0x01, 0x00, 0xde, 0xc0, 42, 0, 0, 0];
    p.requests(100, &body); // warm-up: maps and queues at their steady size
    let a = p.requests(N, &body);
    eprintln!("request → rpc_result, {N} cycles: {a:?}");
    // Today: invoke 1000, transmit ~5500, input 3000 (see the module docs).
    assert!(a.invoke <= N, "{a:?}");
    assert!(a.transmit <= 6 * N, "{a:?}");
    assert!(a.input <= 3 * N, "{a:?}");
    assert_eq!((a.events, a.timers), (0, 0), "{a:?}");
    assert!(a.total() <= 10 * N, "{a:?}");
}

#[test]
fn ping_cycle() {
    let mut p = Pair::new();
    p.pings(100);
    let a = p.pings(N);
    eprintln!("ping → pong, {N} cycles: {a:?}");
    // Today: transmit ~5500, input 2000.
    assert_eq!(a.invoke, 0, "{a:?}");
    assert!(a.transmit <= 6 * N, "{a:?}");
    assert!(a.input <= 2 * N, "{a:?}");
    assert_eq!((a.events, a.timers), (0, 0), "{a:?}");
}

#[test]
fn update_and_ack_cycle() {
    let mut p = Pair::new();
    let body = [0x11, 0x22, 0x33, 0x44, 1, 0, 0, 0];
    p.updates(100, &body);
    let a = p.updates(N, &body);
    eprintln!("update → msgs_ack, {N} cycles: {a:?}");
    // Today: transmit ~2230, input ~2020 (one of them the update's owned body).
    assert!(a.transmit <= 2 * N + N / 4, "{a:?}");
    assert!(a.input <= 2 * N + N / 20, "{a:?}");
    assert_eq!((a.events, a.timers), (0, 0), "{a:?}");
}
