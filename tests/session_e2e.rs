//! Client `Connection` against `ServerConnection`, both ours, in memory with a simulated clock:
//! every transport, many concurrent requests, salt rotation, pings, key reuse, PFS bind and
//! renewal, clock skew repaired through bad_msg 16/17, and a deterministic lossy network.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use mtproto::core::connection::server::{
    MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
};
use mtproto::core::connection::{
    Connection, ConnectionConfig, Event, PfsConfig, RequestId, TransportConfig,
};
use mtproto::core::handshake::{RsaKeySet, RsaPrivateKey, ServerConfig};
use mtproto::core::time::{Instant, Now, UnixTime};
use mtproto::core::transport::{self, Framing, ProxySecret};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

type Store = Rc<RefCell<MemoryKeyStore>>;
type Server = ServerConnection<ChaCha20Rng, Store>;

const T0: u64 = 1_700_000_000;

fn secrets() -> Vec<ProxySecret> {
    vec![
        ProxySecret::plain([0x42; 16]),
        ProxySecret::padded([0x43; 16]),
        ProxySecret::fake_tls([0x44; 16], b"example.com").unwrap(),
    ]
}

fn transports() -> Vec<(&'static str, TransportConfig)> {
    let s = secrets();
    vec![
        ("abridged", TransportConfig::plain(Framing::Abridged)),
        (
            "intermediate",
            TransportConfig::plain(Framing::Intermediate),
        ),
        (
            "padded",
            TransportConfig::plain(Framing::PaddedIntermediate),
        ),
        ("full", TransportConfig::plain(Framing::Full)),
        (
            "obf-abridged",
            TransportConfig::obfuscated(Framing::Abridged, None),
        ),
        (
            "obf-intermediate",
            TransportConfig::obfuscated(Framing::Intermediate, None),
        ),
        (
            "obf-padded",
            TransportConfig::obfuscated(Framing::PaddedIntermediate, None),
        ),
        (
            "mtproxy",
            TransportConfig::obfuscated(Framing::Intermediate, Some(s[0].clone())),
        ),
        (
            "mtproxy-dd",
            TransportConfig::obfuscated(Framing::PaddedIntermediate, Some(s[1].clone())),
        ),
        (
            "mtproxy-ee",
            TransportConfig::obfuscated(Framing::PaddedIntermediate, Some(s[2].clone())),
        ),
    ]
}

fn server_config() -> ServerConnectionConfig {
    let mut c = ServerConnectionConfig::new(ServerConfig::demo());
    c.transport = transport::ServerConfig {
        secrets: secrets(),
        ..Default::default()
    };
    c
}

fn client_config(t: TransportConfig) -> ConnectionConfig {
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    ConnectionConfig::new(2, t, keys)
}

/// The echo application: every request is answered with its own body.
struct Net {
    client: Connection<ChaCha20Rng>,
    server: Server,
    store: Store,
    server_config: ServerConnectionConfig,
    /// Server (true) time, monotonic ms since the start.
    ms: u64,
    /// Client wall clock minus server wall clock, seconds.
    client_skew: i64,
    results: BTreeMap<RequestId, Vec<Vec<u8>>>,
    events: Vec<Event>,
    server_events: Vec<ServerEvent>,
    seed: u64,
    connections: u64,
}

impl Net {
    fn new(t: TransportConfig, seed: u64) -> Self {
        Self::with(client_config(t), server_config(), seed, 0)
    }

    fn with(
        client: ConnectionConfig,
        server_config: ServerConnectionConfig,
        seed: u64,
        client_skew: i64,
    ) -> Self {
        let store = Rc::new(RefCell::new(MemoryKeyStore::default()));
        let server = ServerConnection::new(
            server_config.clone(),
            store.clone(),
            ChaCha20Rng::seed_from_u64(seed ^ 0x5e),
        );
        let start = Now {
            mono: Instant::from_millis(0),
            unix: UnixTime::from_secs((T0 as i64 + client_skew) as u64),
        };
        Self {
            client: Connection::new(client, ChaCha20Rng::seed_from_u64(seed), start),
            server,
            store,
            server_config,
            ms: 0,
            client_skew,
            results: BTreeMap::new(),
            events: Vec::new(),
            server_events: Vec::new(),
            seed,
            connections: 1,
        }
    }

    fn server_now(&self) -> Now {
        Now {
            mono: Instant::from_millis(self.ms),
            unix: UnixTime::from_nanos(T0 * 1_000_000_000 + self.ms * 1_000_000),
        }
    }

    fn client_now(&self) -> Now {
        let unix = (T0 as i64 + self.client_skew) as u64;
        Now {
            mono: Instant::from_millis(self.ms),
            unix: UnixTime::from_nanos(unix * 1_000_000_000 + self.ms * 1_000_000),
        }
    }

    /// Moves bytes both ways and answers requests until nothing moves.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let (cn, sn) = (self.client_now(), self.server_now());
            let mut buf = Vec::new();
            while self.client.poll_transmit(cn, &mut buf) {}
            if !buf.is_empty() {
                moved = true;
                self.server.handle_input(sn, &buf);
            }
            self.serve();
            let mut back = Vec::new();
            while self.server.poll_transmit(sn, &mut back) {}
            if !back.is_empty() {
                moved = true;
                self.client.handle_input(cn, &back);
            }
            self.collect();
            if !moved {
                return;
            }
        }
        panic!("no quiescence (seed {})", self.seed);
    }

    fn serve(&mut self) {
        let sn = self.server_now();
        while let Some(e) = self.server.poll_event() {
            if let ServerEvent::Request { id, body } = &e {
                let _ = self.server.respond(sn, *id, body);
            }
            self.server_events.push(e);
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.client.poll_event() {
            if let Event::RpcResult { id, body } = &e {
                self.results.entry(*id).or_default().push(body.clone());
            }
            self.events.push(e);
        }
    }

    /// Advances both clocks by `ms`, running timers every 100 ms.
    fn advance(&mut self, ms: u64) {
        let end = self.ms + ms;
        while self.ms < end {
            self.ms = (self.ms + 100).min(end);
            let (cn, sn) = (self.client_now(), self.server_now());
            if self.client.poll_timeout().is_some_and(|t| t <= cn.mono) {
                self.client.handle_timeout(cn);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= sn.mono) {
                self.server.handle_timeout(sn);
            }
            self.pump();
        }
    }

    /// A new TCP connection: the client keeps key and session, the server side is new (same
    /// store).
    fn reconnect(&mut self) {
        self.server.close();
        self.serve();
        self.connections += 1;
        self.server = ServerConnection::new(
            self.server_config.clone(),
            self.store.clone(),
            ChaCha20Rng::seed_from_u64(self.seed ^ self.connections),
        );
        let cn = self.client_now();
        self.client.reconnect(cn);
        self.pump();
    }

    fn ready(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Event::Ready))
    }
}

fn body(n: u32, len: usize) -> Vec<u8> {
    let mut b = 0xc0de_0001u32.to_le_bytes().to_vec();
    b.extend_from_slice(&n.to_le_bytes());
    b.resize(len.max(8).next_multiple_of(4), (n % 251) as u8);
    b
}

#[test]
fn every_transport_handshakes_and_answers_many_requests_in_containers() {
    for (name, t) in transports() {
        let mut net = Net::new(t, 1);
        net.pump();
        assert!(net.ready(), "{name}: handshake");
        let ids: Vec<_> = (0..100)
            .map(|i| {
                net.client
                    .invoke_raw(&body(i, 16 + i as usize * 8))
                    .unwrap()
            })
            .collect();
        net.pump();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                net.results.get(id),
                Some(&vec![body(i as u32, 16 + i * 8)]),
                "{name}: request {i}"
            );
        }
        // A ping round trip.
        let ping_id = net.client.ping();
        net.pump();
        assert!(
            net.events
                .iter()
                .any(|e| matches!(e, Event::Pong { ping_id: p, .. } if *p == ping_id)),
            "{name}: pong"
        );
        // Acks flow: after the ack delay the server has nothing left to keep.
        net.advance(2_000);
        assert_eq!(net.client.session().pending_requests(), 0, "{name}");
    }
}

#[test]
fn salts_rotate_and_requests_survive_it() {
    let mut sc = server_config();
    sc.salt_period_secs = 60;
    let mut net = Net::with(
        client_config(TransportConfig::plain(Framing::Intermediate)),
        sc,
        2,
        0,
    );
    net.pump();
    for round in 0..10u32 {
        let id = net.client.invoke_raw(&body(round, 32)).unwrap();
        net.pump();
        net.advance(45_000); // salts expire every 60 s
        assert_eq!(net.results.get(&id).map(Vec::len), Some(1), "round {round}");
    }
    assert!(!net.events.iter().any(|e| matches!(e, Event::Closed(_))));
}

#[test]
fn a_second_connection_reuses_the_key_and_the_session() {
    let mut net = Net::new(TransportConfig::obfuscated(Framing::Intermediate, None), 3);
    net.pump();
    let key_id = net.client.auth_key().unwrap().id();
    let first = net.client.invoke_raw(&body(1, 64)).unwrap();
    net.pump();
    net.reconnect();
    let second = net.client.invoke_raw(&body(2, 64)).unwrap();
    net.pump();
    assert_eq!(net.client.auth_key().unwrap().id(), key_id, "same key");
    assert_eq!(net.results.get(&first).map(Vec::len), Some(1));
    assert_eq!(net.results.get(&second).map(Vec::len), Some(1));
    let created = net
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::AuthKeyCreated { .. }))
        .count();
    assert_eq!(created, 1, "no new key on the second connection");
    // A restart from the exported state (a new Connection object) works as well.
    let state = net.client.export().unwrap();
    let cn = net.client_now();
    net.client = Connection::resume(
        client_config(TransportConfig::obfuscated(Framing::Intermediate, None)),
        state,
        ChaCha20Rng::seed_from_u64(33),
        cn,
    );
    net.reconnect();
    net.results.clear(); // request ids are per Connection object
    let third = net.client.invoke_raw(&body(3, 64)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&third).map(Vec::len), Some(1));
}

#[test]
fn pfs_binds_a_temporary_key_and_renews_it_before_expiry() {
    let mut cfg = client_config(TransportConfig::plain(Framing::Intermediate));
    cfg.pfs = Some(PfsConfig {
        expires_in_secs: 300,
        renew_before_secs: 120,
        max_bind_retries: 3,
    });
    let mut net = Net::with(cfg, server_config(), 4, 0);
    net.pump();
    assert!(net.ready(), "bound");
    assert!(net.client.is_bound());
    let perm = net.client.auth_key().unwrap().id();
    let temp = net.client.message_key().unwrap().id();
    assert_ne!(perm, temp, "messages never use the permanent key");
    let a = net.client.invoke_raw(&body(1, 32)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&a).map(Vec::len), Some(1));
    // 200 s later the renewal (due at 180 s) has made and bound a new temporary key.
    net.advance(200_000);
    let temp2 = net.client.message_key().unwrap().id();
    assert_ne!(temp2, temp, "renewed");
    assert!(net.client.is_bound());
    let bound = net
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::TempKeyBound { perm_auth_key_id, .. } if *perm_auth_key_id == perm))
        .count();
    assert_eq!(bound, 2);
    let b = net.client.invoke_raw(&body(2, 32)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&b).map(Vec::len), Some(1));
}

#[test]
fn a_client_clock_off_by_minutes_is_repaired_through_bad_msg_16_and_17() {
    for skew in [-600i64, -120, 120, 600] {
        let cfg = client_config(TransportConfig::plain(Framing::Intermediate));
        let mut net = Net::with(cfg, server_config(), 5, 0);
        net.pump();
        // The key is made with a correct clock; then the client's clock jumps.
        net.client_skew = skew;
        let ids: Vec<_> = (0..5)
            .map(|i| net.client.invoke_raw(&body(i, 24)).unwrap())
            .collect();
        net.pump();
        net.advance(1_000);
        for id in &ids {
            assert_eq!(net.results.get(id).map(Vec::len), Some(1), "skew {skew}");
        }
        assert!(
            net.events.iter().any(|e| matches!(e, Event::TimeSynced { offset_secs } if (offset_secs + skew).abs() <= 1)),
            "skew {skew}: {:?}",
            net.events
        );
    }
}

/// A middlebox on the MTProto packet level (intermediate framing): it drops, duplicates,
/// reorders and delays packets in both directions and cuts the connection now and then.
/// 10,000 requests must each be answered exactly once. The seed is printed on failure.
#[test]
fn lossy_network_simulation_answers_each_request_exactly_once() {
    let seeds: Vec<u64> = match std::env::var("MTPROTO_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("MTPROTO_SIM_SEED")],
        Err(_) => vec![11, 12],
    };
    for seed in seeds {
        simulate(seed, 10_000);
    }
}

fn simulate(seed: u64, requests: u32) {
    use mtproto::core::transport::{Codec, Frame, Role, Status};
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut cfg = client_config(TransportConfig::plain(Framing::Intermediate));
    cfg.session.max_pending_requests = 256;
    // Small containers: more packets for the middlebox to hurt.
    cfg.session.max_container_messages = 4;
    let mut net = Net::with(cfg, server_config(), seed, 0);
    net.pump();
    assert!(net.ready(), "seed {seed}: handshake");

    // Packet queues of the middlebox: (deliver_at_ms, payload).
    let mut to_server: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut to_client: Vec<(u64, Vec<u8>)> = Vec::new();
    // The handshake went through directly (the tag is behind us); after a reconnect the
    // middlebox sees a new stream that starts with the client's tag.
    let new_codecs = |tagged: bool| {
        let c = |role| {
            if tagged {
                Codec::new(Framing::Intermediate, role)
            } else {
                Codec::without_tag(Framing::Intermediate, role)
            }
        };
        (
            c(Role::Server),                                 // parses client → server
            Codec::new(Framing::Intermediate, Role::Client), // parses server → client
            c(Role::Client),                                 // re-encodes toward the server
            Codec::new(Framing::Intermediate, Role::Server), // re-encodes toward the client
        )
    };
    let mut codecs = new_codecs(false);
    let mut invoked: Vec<RequestId> = Vec::new();
    let mut next = 0u32;
    let mut steps = 0u64;
    let split = |codec: &mut Codec, bytes: &[u8]| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut input = bytes;
        loop {
            match codec.decode(input) {
                Ok((n, Status::Complete(Frame::Payload { data, .. }))) => {
                    out.push(data.to_vec());
                    input = &input[n..];
                }
                Ok((n, Status::Complete(_))) => input = &input[n..],
                Ok((_, Status::Partial)) => break,
                Err(e) => panic!("seed {seed}: middlebox decode {e:?}"),
            }
        }
        out
    };
    let mut faults = Faults::default();
    while (net.results.len() as u32) < requests {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "seed {seed}: stuck at {} answers",
            net.results.len()
        );
        // Keep up to 32 requests in flight (the session caps pending at 256).
        while next < requests && invoked.len() - net.results.len() < 32 {
            invoked.push(net.client.invoke_raw(&body(next, 16)).expect("bounded"));
            next += 1;
        }
        let (cn, sn) = (net.client_now(), net.server_now());
        let mut c_out = Vec::new();
        while net.client.poll_transmit(cn, &mut c_out) {}
        for p in split(&mut codecs.0, &c_out) {
            enqueue(&mut rng, &mut faults, &mut to_server, net.ms, p);
        }
        net.serve();
        let mut s_out = Vec::new();
        while net.server.poll_transmit(sn, &mut s_out) {}
        for p in split(&mut codecs.1, &s_out) {
            enqueue(&mut rng, &mut faults, &mut to_client, net.ms, p);
        }
        // Deliver what is due.
        let mut wire = Vec::new();
        for p in take_due(&mut to_server, net.ms) {
            codecs.2.encode(&p, false, &mut rng, &mut wire).unwrap();
        }
        net.server.handle_input(sn, &wire);
        net.serve();
        let mut wire = Vec::new();
        for p in take_due(&mut to_client, net.ms) {
            codecs.3.encode(&p, false, &mut rng, &mut wire).unwrap();
        }
        net.client.handle_input(cn, &wire);
        net.collect();
        // Connection cut: everything in flight is lost.
        if rng.next_u32() % 1_000 == 0 || net.client.is_closed() || net.server.is_closed() {
            faults.cuts += 1;
            faults.lost_in_cuts += to_server.len() + to_client.len();
            to_server.clear();
            to_client.clear();
            codecs = new_codecs(true);
            net.server.close();
            net.serve();
            net.connections += 1;
            net.server = ServerConnection::new(
                net.server_config.clone(),
                net.store.clone(),
                ChaCha20Rng::seed_from_u64(seed ^ net.connections),
            );
            let cn = net.client_now();
            net.client.reconnect(cn);
        }
        // Time moves 50 ms per step; timers run when due.
        net.ms += 50;
        let (cn, sn) = (net.client_now(), net.server_now());
        if net.client.poll_timeout().is_some_and(|t| t <= cn.mono) {
            net.client.handle_timeout(cn);
        }
        if net.server.poll_timeout().is_some_and(|t| t <= sn.mono) {
            net.server.handle_timeout(sn);
        }
        assert!(
            net.client.session().pending_requests() <= 256,
            "seed {seed}: bounded"
        );
        assert!(
            net.client.session().queued_events() <= 4096,
            "seed {seed}: bounded"
        );
    }
    for (i, id) in invoked.iter().enumerate() {
        let got = net
            .results
            .get(id)
            .unwrap_or_else(|| panic!("seed {seed}: request {i} unanswered"));
        assert_eq!(
            got.len(),
            1,
            "seed {seed}: request {i} answered {} times",
            got.len()
        );
        assert_eq!(
            got[0],
            body(i as u32, 16),
            "seed {seed}: request {i} wrong answer"
        );
    }
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::RpcError { .. })),
        "seed {seed}: errors"
    );
    // The simulation must actually have hurt: every kind of fault happened.
    eprintln!(
        "seed {seed}: {faults:?}, {} ms simulated, {steps} steps",
        net.ms
    );
    assert!(
        faults.dropped > 50 && faults.duplicated > 50 && faults.cuts >= 2,
        "{faults:?}"
    );
}

#[derive(Debug, Default)]
struct Faults {
    dropped: usize,
    duplicated: usize,
    cuts: usize,
    lost_in_cuts: usize,
}

/// Queues a packet with the middlebox's faults: 3 % dropped, 2 % duplicated, delay 0..400 ms
/// (which reorders).
fn enqueue(
    rng: &mut ChaCha20Rng,
    faults: &mut Faults,
    q: &mut Vec<(u64, Vec<u8>)>,
    now: u64,
    p: Vec<u8>,
) {
    let r = rng.next_u32() % 100;
    if r < 3 {
        faults.dropped += 1;
        return;
    }
    let delay = u64::from(rng.next_u32() % 400);
    if r < 5 {
        faults.duplicated += 1;
        q.push((now + u64::from(rng.next_u32() % 400), p.clone()));
    }
    q.push((now + delay, p));
}

fn take_due(q: &mut Vec<(u64, Vec<u8>)>, now: u64) -> Vec<Vec<u8>> {
    let mut due: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < q.len() {
        if q[i].0 <= now {
            due.push(q.remove(i));
        } else {
            i += 1;
        }
    }
    due.sort_by_key(|(t, _)| *t);
    due.into_iter().map(|(_, p)| p).collect()
}

// Found by an independent review: each failed before its fix.
#[test]
fn pfs_after_a_pong_timeout_and_temp_expiry_requests_flow_again() {
    let mut cfg = client_config(TransportConfig::plain(Framing::Intermediate));
    cfg.pfs = Some(PfsConfig {
        expires_in_secs: 300,
        renew_before_secs: 10,
        max_bind_retries: 3,
    });
    cfg.session.ping_interval_ms = 60_000;
    cfg.session.pong_timeout_ms = 30_000;
    let mut net = Net::with(cfg, server_config(), 4, 0);
    net.pump();
    assert!(net.client.is_bound());
    // The server goes silent: the client's bytes are dropped.
    let mut closed = false;
    for _ in 0..2000 {
        net.ms += 100;
        let cn = net.client_now();
        net.client.handle_timeout(cn);
        let mut sink = Vec::new();
        while net.client.poll_transmit(cn, &mut sink) {}
        net.collect();
        if net.client.is_closed() {
            closed = true;
            break;
        }
    }
    assert!(closed, "pong timeout");
    assert!(
        net.events.iter().any(|e| matches!(e, Event::Closed(_))),
        "{:?}",
        net.events
    );
    // Later than the temporary key's expiry, the application reconnects.
    net.ms += 400_000;
    net.reconnect();
    net.advance(1_000);
    assert!(
        net.client.is_bound(),
        "rebound: {:?}",
        &net.events[net.events.len().saturating_sub(6)..]
    );
    let a = net.client.invoke_raw(&body(1, 32)).unwrap();
    net.pump();
    net.advance(2_000);
    assert_eq!(
        net.results.get(&a).map(Vec::len),
        Some(1),
        "closed={} events tail {:?}",
        net.client.is_closed(),
        &net.events[net.events.len().saturating_sub(6)..]
    );
}

#[test]
fn a_restored_session_gets_its_own_answers() {
    let t = TransportConfig::plain(Framing::Intermediate);
    let mut net = Net::new(t.clone(), 8);
    net.pump();
    net.advance(2_050); // salts fetched, acks flushed: nothing pending
    let a = net.client.invoke_raw(&body(1, 32)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&a).map(Vec::len), Some(1));
    // Saved right away and restored (same clock reading), e.g. an app restart.
    let state = net.client.export().unwrap();
    let cn = net.client_now();
    net.client = Connection::resume(client_config(t), state, ChaCha20Rng::seed_from_u64(99), cn);
    net.reconnect();
    net.results.clear();
    let b = net.client.invoke_raw(&body(2, 32)).unwrap();
    net.pump();
    net.advance(20_000);
    let got = net.results.get(&b).cloned().unwrap_or_default();
    assert_eq!(got, vec![body(2, 32)], "request b answered with {got:x?}");
}

/// Server review item 2: the server counted handshakes per connection forever (4), so a PFS
/// client renewing its temporary key on one long-lived connection was cut off at its third
/// renewal. Five renewals on one connection must all bind.
#[test]
fn five_pfs_renewals_on_one_connection_all_bind() {
    let mut cfg = client_config(TransportConfig::plain(Framing::Intermediate));
    cfg.pfs = Some(PfsConfig {
        expires_in_secs: 300,
        renew_before_secs: 120,
        max_bind_retries: 3,
    });
    let mut net = Net::with(cfg, server_config(), 7, 0);
    net.pump();
    assert!(net.ready(), "bound");
    let perm = net.client.auth_key().unwrap().id();
    let mut temps = vec![net.client.message_key().unwrap().id()];
    for round in 1..=5u32 {
        // A renewal is due every 180 s (300 s keys renewed 120 s ahead).
        net.advance(185_000);
        let temp = net.client.message_key().unwrap().id();
        assert!(!temps.contains(&temp), "renewal {round} made a new key");
        temps.push(temp);
        assert!(net.client.is_bound(), "renewal {round} bound");
        assert!(
            !net.server.is_closed(),
            "renewal {round}: {:?}",
            net.server.close_reason()
        );
        let r = net.client.invoke_raw(&body(round, 32)).unwrap();
        net.pump();
        assert_eq!(
            net.results.get(&r).map(Vec::len),
            Some(1),
            "renewal {round}"
        );
    }
    assert_eq!(net.connections, 1, "all on one connection");
    let bound = net
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::TempKeyBound { perm_auth_key_id, .. } if *perm_auth_key_id == perm))
        .count();
    assert_eq!(bound, 6);
}

/// Server review item 3: an update the client received just before its connection broke
/// (its acknowledgement still pending) must not reach it twice. The server used to move kept
/// messages to the outbox with fresh msg_ids before reading the client's first message on the
/// new connection, which carries that acknowledgement.
#[test]
fn an_update_received_before_a_reconnect_is_not_delivered_twice() {
    let mut net = Net::new(TransportConfig::plain(Framing::Intermediate), 8);
    net.pump();
    assert!(net.ready());
    let update = body(0xabcd, 16);
    let sn = net.server_now();
    net.server.push_update(sn, &update).unwrap();
    net.pump(); // delivered; the client's ack waits for its timer
    net.reconnect();
    net.advance(5_000);
    let r = net.client.invoke_raw(&body(1, 16)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&r).map(Vec::len), Some(1));
    let seen = net
        .events
        .iter()
        .filter(|e| matches!(e, Event::Update { body } if *body == update))
        .count();
    assert_eq!(seen, 1, "{:?}", net.events);
}
