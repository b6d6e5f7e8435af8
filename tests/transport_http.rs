//! The HTTP transport end to end: a client `Connection` and a `ServerConnection`, both in HTTP
//! mode, in memory with a simulated clock. The driver loop below plays the HTTP client and
//! server: every body the client yields is one POST, every answer the server yields is that
//! POST's response; requests are concurrent (the long poll stays held while request-lane POSTs
//! come and go).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use mtproto::core::connection::server::{
    MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent, ServerRequestId,
};
use mtproto::core::connection::{
    CloseReason, Connection, ConnectionConfig, Event, RequestId, TransportConfig,
};
use mtproto::core::handshake::{RsaKeySet, RsaPrivateKey, ServerConfig};
use mtproto::core::time::{Instant, Now, UnixTime};
use mtproto::core::transport::{HttpRequestId, HttpResponse, HttpWaitConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

type Store = Rc<RefCell<MemoryKeyStore>>;
type Server = ServerConnection<ChaCha20Rng, Store>;

const T0: u64 = 1_700_000_000;

fn client_config(wait: HttpWaitConfig) -> ConnectionConfig {
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    let mut t = TransportConfig::http();
    t.http = Some(wait);
    // Asked for, and impossible over HTTP: never used.
    t.quick_ack = true;
    ConnectionConfig::new(2, t, keys)
}

/// What the driver does with the next response(s) of the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The response is lost: the client's HTTP call fails.
    FailResponse,
    /// The request never reaches the server and no answer ever comes (the client's own
    /// deadline must notice).
    BlackholeRequest,
}

/// One answer the server gave: (server request id, status, body length, when).
type Answer = (HttpRequestId, u16, usize, u64);

struct Net {
    client: Connection<ChaCha20Rng>,
    server: Server,
    store: Store,
    ms: u64,
    /// Server request id -> client request id, for POSTs the server holds or answered.
    inflight: BTreeMap<HttpRequestId, HttpRequestId>,
    /// Application behaviour: answer requests at once (echo) or keep them.
    auto_answer: bool,
    kept: Vec<(ServerRequestId, Vec<u8>)>,
    fault: Fault,
    results: BTreeMap<RequestId, Vec<Vec<u8>>>,
    events: Vec<Event>,
    server_events: Vec<ServerEvent>,
    answers: Vec<Answer>,
    client_posts: usize,
    /// When the server received each request (ms).
    arrived: BTreeMap<HttpRequestId, u64>,
}

impl Net {
    fn new(wait: HttpWaitConfig, seed: u64) -> Self {
        Self::with(
            wait,
            seed,
            ServerConnectionConfig::new(ServerConfig::demo()),
        )
    }

    fn with(wait: HttpWaitConfig, seed: u64, config: ServerConnectionConfig) -> Self {
        Self::with_client(client_config(wait), seed, config)
    }

    fn with_client(
        client_config: ConnectionConfig,
        seed: u64,
        config: ServerConnectionConfig,
    ) -> Self {
        let store: Store = Rc::new(RefCell::new(MemoryKeyStore::default()));
        let server = ServerConnection::new_http(
            config,
            store.clone(),
            ChaCha20Rng::seed_from_u64(seed ^ 0x5e),
        );
        let client = Connection::new(client_config, ChaCha20Rng::seed_from_u64(seed), Self::at(0));
        Self {
            client,
            server,
            store,
            ms: 0,
            inflight: BTreeMap::new(),
            auto_answer: true,
            kept: Vec::new(),
            fault: Fault::None,
            results: BTreeMap::new(),
            events: Vec::new(),
            server_events: Vec::new(),
            answers: Vec::new(),
            client_posts: 0,
            arrived: BTreeMap::new(),
        }
    }

    fn at(ms: u64) -> Now {
        Now {
            mono: Instant::from_millis(ms),
            unix: UnixTime::from_nanos(T0 * 1_000_000_000 + ms * 1_000_000),
        }
    }

    fn now(&self) -> Now {
        Self::at(self.ms)
    }

    /// Client POSTs -> server; server answers -> client; the application answers requests;
    /// until nothing moves.
    fn pump(&mut self) {
        for _ in 0..1_000 {
            let now = self.now();
            let mut moved = false;
            let mut body = Vec::new();
            while let Some(cid) = self.client.poll_http_request(now, &mut body) {
                moved = true;
                self.client_posts += 1;
                if self.fault == Fault::BlackholeRequest {
                    self.fault = Fault::None;
                } else {
                    match self.server.handle_http_request(now, &body) {
                        Some(sid) => {
                            self.inflight.insert(sid, cid);
                            self.arrived.insert(sid, self.ms);
                        }
                        None => {
                            self.client
                                .handle_http_response(now, cid, HttpResponse::Status(503))
                        }
                    }
                }
                body.clear();
            }
            self.serve();
            let mut back = Vec::new();
            while let Some((sid, status)) = self.server.poll_http_response(now, &mut back) {
                moved = true;
                self.answers.push((sid, status, back.len(), self.ms));
                if let Some(cid) = self.inflight.remove(&sid) {
                    let response = match (self.fault, status) {
                        (Fault::FailResponse, _) => {
                            self.fault = Fault::None;
                            HttpResponse::Failed
                        }
                        (_, 200) => HttpResponse::Body(&back),
                        (_, s) => HttpResponse::Status(s),
                    };
                    self.client.handle_http_response(now, cid, response);
                }
                back.clear();
            }
            self.collect();
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn serve(&mut self) {
        let now = self.now();
        while let Some(e) = self.server.poll_event() {
            if let ServerEvent::Request { id, body } = &e {
                if self.auto_answer {
                    self.server.respond(now, *id, body).unwrap();
                } else {
                    self.kept.push((*id, body.clone()));
                }
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

    /// Advances the clock by `ms` in 100 ms steps, running due timers on both sides.
    fn advance(&mut self, ms: u64) {
        let end = self.ms + ms;
        while self.ms < end {
            self.ms = (self.ms + 100).min(end);
            let now = self.now();
            if self.client.poll_timeout().is_some_and(|t| t <= now.mono) {
                self.client.handle_timeout(now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now.mono) {
                self.server.handle_timeout(now);
            }
            self.pump();
        }
    }

    fn ready(&mut self) {
        self.pump();
        assert!(
            self.events.iter().any(|e| matches!(e, Event::Ready)),
            "{:?}",
            self.events
        );
        self.assert_one_long_poll();
    }

    /// Exactly one request outstanding (the long poll), held by the server.
    fn assert_one_long_poll(&self) {
        assert_eq!(self.client.http_requests_outstanding(), 1);
        assert_eq!(self.server.http_held(), 1);
        assert_eq!(self.inflight.len(), 1);
    }

    fn long_poll_sid(&self) -> HttpRequestId {
        *self.inflight.keys().next().unwrap()
    }

    fn closed(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed(r) => Some(r),
            _ => None,
        })
    }
}

fn body(n: u32, len: usize) -> Vec<u8> {
    let mut b = 0xc0de_0001u32.to_le_bytes().to_vec();
    b.extend_from_slice(&n.to_le_bytes());
    b.resize(len.max(8).next_multiple_of(4), (n % 251) as u8);
    b
}

#[test]
fn handshake_pings_and_echoes_of_several_sizes() {
    let mut net = Net::new(HttpWaitConfig::default(), 1);
    net.ready();
    // The handshake went over HTTP: a key exists on both sides.
    assert!(net.client.auth_key().is_some());
    assert!(
        net.server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::AuthKeyCreated { .. }))
    );
    for (i, len) in [8usize, 100, 1_000, 4_096, 65_536, 300_000]
        .into_iter()
        .enumerate()
    {
        let id = net.client.invoke_raw(&body(i as u32, len)).unwrap();
        net.pump();
        assert_eq!(
            net.results.get(&id),
            Some(&vec![body(i as u32, len)]),
            "{len}"
        );
        net.assert_one_long_poll();
    }
    // Several at once.
    let ids: Vec<_> = (0..20)
        .map(|i| {
            net.client
                .invoke_raw(&body(100 + i, 16 + 8 * i as usize))
                .unwrap()
        })
        .collect();
    net.pump();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(net.results[id], vec![body(100 + i as u32, 16 + 8 * i)]);
    }
    let ping_id = net.client.ping();
    net.pump();
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Pong { ping_id: p, .. } if *p == ping_id))
    );
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::QuickAck { .. }))
    );
    assert!(net.closed().is_none());
    // Acks go out (on the long poll or alone): nothing stays pending.
    net.advance(2_000);
    assert_eq!(net.client.session().pending_requests(), 0);
    // Every answer of the server was a 200 with a body (a packet or an empty container).
    assert!(
        net.answers.iter().all(|a| a.1 == 200 && a.2 > 0),
        "{:?}",
        net.answers
    );
}

#[test]
fn an_update_pushed_by_the_server_comes_back_through_the_held_long_poll() {
    let mut net = Net::new(HttpWaitConfig::default(), 2);
    net.ready();
    net.advance(1_000); // settle acks and salts
    let poll = net.long_poll_sid();
    let posts = net.client_posts;
    let update = body(7, 40);
    net.server.push_update(net.now(), &update).unwrap();
    net.pump();
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Update { body } if *body == update))
    );
    // It came as the answer to the long poll that was held, not to a new request...
    let carried = net.answers.iter().rev().find(|a| a.0 == poll).unwrap();
    assert_eq!((carried.1, carried.3), (200, net.ms));
    // ...and the client re-armed the long poll at once (its only new request).
    assert_eq!(net.client_posts, posts + 1);
    net.assert_one_long_poll();
    assert_ne!(net.long_poll_sid(), poll);
}

#[test]
fn an_answer_made_later_arrives_on_a_later_long_poll() {
    let mut net = Net::new(HttpWaitConfig::default(), 3);
    net.ready();
    net.auto_answer = false;
    let id = net.client.invoke_raw(&body(1, 64)).unwrap();
    net.pump();
    // The request's own POST was answered at once (max_wait 0), without the result.
    let (sid, _) = net.kept[0].clone();
    assert!(!net.results.contains_key(&id));
    net.assert_one_long_poll();
    let poll = net.long_poll_sid();
    net.advance(3_000);
    assert!(!net.results.contains_key(&id));
    let now = net.now();
    net.server.respond(now, sid, &body(2, 64)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&id), Some(&vec![body(2, 64)]));
    let carried = net.answers.iter().rev().find(|a| a.0 == poll).unwrap();
    assert_eq!(carried.3, net.ms, "the long poll carried it");
    net.assert_one_long_poll();
}

#[test]
fn an_expired_long_poll_gets_an_empty_container_and_is_re_armed() {
    // The server uses the client's http_wait (10 s here, not the default 25 s).
    let wait = HttpWaitConfig {
        max_delay: 0,
        wait_after: 0,
        max_wait: 10_000,
    };
    let mut net = Net::new(wait, 4);
    net.ready();
    net.advance(1_000);
    let poll = net.long_poll_sid();
    let events = net.events.len();
    net.advance(20_000);
    let expired = net.answers.iter().find(|a| a.0 == poll).expect("expired");
    assert_eq!(
        expired.3 - net.arrived[&poll],
        10_000,
        "held exactly max_wait"
    );
    // An empty container, encrypted: 24-byte header + 32 bytes (16 plaintext header + 8
    // container + 12..1024 padding) — a real packet, not an empty body.
    assert_eq!(expired.1, 200);
    assert!(expired.2 >= 24 + 32, "{expired:?}");
    // Nothing reached the application, nothing failed, and a new long poll is held.
    assert!(
        net.events[events..]
            .iter()
            .all(|e| !matches!(e, Event::Update { .. } | Event::Closed(_))),
        "{:?}",
        &net.events[events..]
    );
    net.assert_one_long_poll();
    assert_ne!(net.long_poll_sid(), poll);
    // Many expiries later, still one long poll and no busy loop: one POST per expiry.
    let posts = net.client_posts;
    net.advance(50_000);
    assert!(
        net.client_posts - posts <= 8,
        "{}",
        net.client_posts - posts
    );
    net.assert_one_long_poll();
}

#[test]
fn an_unknown_key_gets_404_which_is_transport_error_minus_404() {
    let mut net = Net::new(HttpWaitConfig::default(), 5);
    net.ready();
    // A server restarted without its keys (a new endpoint on an empty store).
    net.store = Rc::new(RefCell::new(MemoryKeyStore::default()));
    net.server = ServerConnection::new_http(
        ServerConnectionConfig::new(ServerConfig::demo()),
        net.store.clone(),
        ChaCha20Rng::seed_from_u64(55),
    );
    net.inflight.clear();
    net.client.invoke_raw(&body(1, 16)).unwrap();
    net.pump();
    assert!(net.answers.iter().any(|a| a.1 == 404));
    assert!(net.events.contains(&Event::TransportError(-404)));
    assert!(net.events.contains(&Event::AuthKeyUnknown));
    assert_eq!(net.closed(), Some(&CloseReason::TransportError(-404)));
    // The endpoint itself stays open for other requests.
    assert!(!net.server.is_closed());
}

#[test]
fn any_status_of_300_or_more_is_a_transport_error() {
    let mut net = Net::new(HttpWaitConfig::default(), 6);
    net.ready();
    let (sid, cid) = net.inflight.pop_first().unwrap();
    let _ = sid;
    net.client
        .handle_http_response(net.now(), cid, HttpResponse::Status(429));
    net.collect();
    assert!(net.events.contains(&Event::TransportError(-429)));
    assert_eq!(net.closed(), Some(&CloseReason::TransportError(-429)));
    assert!(!net.events.contains(&Event::AuthKeyUnknown));
}

#[test]
fn a_four_byte_body_is_a_transport_error_code() {
    let mut net = Net::new(HttpWaitConfig::default(), 7);
    net.ready();
    let (_, cid) = net.inflight.pop_first().unwrap();
    let now = net.now();
    // 0 is no error: nothing happens (the long poll is re-armed).
    net.client
        .handle_http_response(now, cid, HttpResponse::Body(&0i32.to_le_bytes()));
    net.collect();
    assert!(net.closed().is_none());
    let mut buf = Vec::new();
    let again = net.client.poll_http_request(now, &mut buf);
    assert!(again.is_none(), "an instant empty answer is throttled");
    net.ms += 500;
    net.client.handle_timeout(net.now());
    let cid = net
        .client
        .poll_http_request(net.now(), &mut buf)
        .expect("re-armed");
    net.client
        .handle_http_response(net.now(), cid, HttpResponse::Body(&(-404i32).to_le_bytes()));
    net.collect();
    assert!(net.events.contains(&Event::TransportError(-404)));
    assert!(net.events.contains(&Event::AuthKeyUnknown));
    assert_eq!(net.closed(), Some(&CloseReason::TransportError(-404)));
}

#[test]
fn an_instant_empty_200_throttles_the_next_long_poll() {
    let mut net = Net::new(HttpWaitConfig::default(), 8);
    net.ready();
    net.advance(1_000);
    // A server that ignores http_wait: the long poll comes back empty at once.
    let (_, cid) = net.inflight.pop_first().unwrap();
    let t = net.ms;
    net.client
        .handle_http_response(net.now(), cid, HttpResponse::Body(&[]));
    let mut buf = Vec::new();
    assert!(net.client.poll_http_request(net.now(), &mut buf).is_none());
    let due = net.client.poll_timeout().unwrap();
    assert!(due <= Instant::from_millis(t + 500), "{due:?}");
    // 400 ms later: still nothing.
    net.ms = t + 400;
    net.client.handle_timeout(net.now());
    assert!(net.client.poll_http_request(net.now(), &mut buf).is_none());
    // 500 ms: the long poll goes out again (http_wait only: a short body).
    net.ms = t + 500;
    net.client.handle_timeout(net.now());
    let again = net.client.poll_http_request(net.now(), &mut buf);
    assert!(again.is_some());
    // An empty answer after more than max_wait / 2 is a normal expiry: re-armed at once.
    net.ms = t + 500 + 13_000;
    net.client
        .handle_http_response(net.now(), again.unwrap(), HttpResponse::Body(&[]));
    buf.clear();
    assert!(net.client.poll_http_request(net.now(), &mut buf).is_some());
}

#[test]
fn a_lost_response_loses_no_request() {
    let mut net = Net::new(HttpWaitConfig::default(), 9);
    net.ready();
    net.advance(1_000);
    // The server got the request and answered it, but the response never reached the client.
    net.fault = Fault::FailResponse;
    let id = net.client.invoke_raw(&body(1, 128)).unwrap();
    net.pump();
    net.advance(1_000);
    assert_eq!(net.results.get(&id), Some(&vec![body(1, 128)]));
    let asked = net
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Request { .. }))
        .count();
    assert_eq!(asked, 1, "fetched again, not run twice");
    net.assert_one_long_poll();
    assert!(net.closed().is_none());
}

#[test]
fn a_request_that_never_gets_an_answer_times_out_and_is_sent_again() {
    let mut net = Net::new(HttpWaitConfig::default(), 10);
    net.ready();
    net.advance(1_000);
    net.fault = Fault::BlackholeRequest;
    let id = net.client.invoke_raw(&body(3, 128)).unwrap();
    net.pump();
    assert_eq!(
        net.client.http_requests_outstanding(),
        2,
        "the POST and the long poll"
    );
    // Before the deadline (max_wait 0 + 5 s margin) nothing happens...
    net.advance(4_800);
    assert!(!net.results.contains_key(&id));
    // ...after it the request counts as failed, is asked about and sent again.
    net.advance(1_000);
    assert_eq!(net.results.get(&id), Some(&vec![body(3, 128)]));
    net.assert_one_long_poll();
}

#[test]
fn a_large_upload_gets_time_for_its_bytes_before_it_counts_as_lost() {
    let mut net = Net::new(HttpWaitConfig::default(), 12);
    net.ready();
    net.advance(1_000);
    net.fault = Fault::BlackholeRequest;
    let id = net.client.invoke_raw(&body(4, 300_000)).unwrap();
    net.pump();
    let posts = net.client_posts;
    // 300 kB at the default 16 KiB/s floor: ~18.3 s on top of the 5 s margin. A flat 5 s
    // deadline would have asked about it (and re-sent it) after ~6 s. (At 15 s the session's
    // own `state_req_after_ms` asks about any unanswered request, on every transport.)
    net.advance(13_000);
    assert!(!net.results.contains_key(&id));
    assert_eq!(net.client.http_requests_outstanding(), 2);
    assert!(
        net.client_posts <= posts + 1,
        "only long-poll re-arms, no re-send"
    );
    net.advance(12_000);
    assert_eq!(net.results.get(&id), Some(&vec![body(4, 300_000)]));
}

#[test]
fn a_long_poll_without_answer_times_out_and_is_re_armed() {
    let wait = HttpWaitConfig {
        max_delay: 0,
        wait_after: 0,
        max_wait: 2_000,
    };
    let mut net = Net::new(wait, 11);
    net.ready();
    // The server's answer to the long poll gets lost on the way (no response, no error).
    let (sid, cid) = net.inflight.pop_first().unwrap();
    let _ = (sid, cid);
    net.advance(2_000 + 5_000 + 1_000);
    // The client gave up on it (max_wait + margin) and sent a new one after the 500 ms pause.
    assert_eq!(net.client.http_requests_outstanding(), 1);
    assert!(net.closed().is_none());
}

#[test]
fn a_newer_request_of_the_session_answers_the_older_held_one() {
    // One held request per session: the request-lane POST pushes the long poll out, which
    // then carries what is queued (here the answer) while the POST itself gets the rest.
    let mut config = ServerConnectionConfig::new(ServerConfig::demo());
    config.http.max_held_per_session = 1;
    let mut net = Net::with(HttpWaitConfig::default(), 12, config);
    net.ready();
    net.advance(1_000);
    let poll = net.long_poll_sid();
    let id = net.client.invoke_raw(&body(9, 32)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&id), Some(&vec![body(9, 32)]));
    let pushed_out = net.answers.iter().find(|a| a.0 == poll).expect("answered");
    assert_eq!(pushed_out.3, net.ms, "answered when the newer request came");
    assert!(net.server.http_held() <= 1);
    net.assert_one_long_poll();
}

#[test]
fn a_refused_request_beyond_the_cap_is_none() {
    let mut config = ServerConnectionConfig::new(ServerConfig::demo());
    config.http.max_requests = 1;
    let mut net = Net::with(HttpWaitConfig::default(), 13, config);
    let now = net.now();
    // A malformed body is answered at once (400), but the answer waits to be polled...
    let first = net.server.handle_http_request(now, &[0; 6]).unwrap();
    // ...and fills the endpoint: the next request is refused (the driver answers 503).
    assert_eq!(net.server.handle_http_request(now, &[0; 40]), None);
    let mut out = Vec::new();
    assert_eq!(
        net.server.poll_http_response(now, &mut out),
        Some((first, 400))
    );
    assert!(out.is_empty());
    assert!(net.server.handle_http_request(now, &[0; 40]).is_some());
}

/// The inner messages of a session body: (constructor, seq_no, body) of each, or of the body
/// itself when it is not a container.
fn inner_messages(body: &[u8]) -> Vec<(u32, i32, Vec<u8>)> {
    let id = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    if id(body) != 0x73f1_f8dc {
        return vec![(id(body), -1, body.to_vec())];
    }
    let count = u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize;
    let mut at = 8;
    let mut out = Vec::new();
    for _ in 0..count {
        let seq = i32::from_le_bytes(body[at + 8..at + 12].try_into().unwrap());
        let len = u32::from_le_bytes(body[at + 12..at + 16].try_into().unwrap()) as usize;
        let b = body[at + 16..at + 16 + len].to_vec();
        out.push((id(&b), seq, b));
        at += 16 + len;
    }
    assert_eq!(at, body.len());
    out
}

#[test]
fn the_session_puts_one_http_wait_last_and_the_long_poll_carries_nothing_else() {
    use mtproto::core::session::{ClientSession, SessionConfig};
    const HTTP_WAIT: u32 = 0x9299_359f;
    let now = Net::at(0);
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let config = SessionConfig {
        max_container_messages: 4,
        ..SessionConfig::default()
    };
    let mut s = ClientSession::new(config, 1, 0, &mut rng);
    let wait = HttpWaitConfig {
        max_delay: 30,
        wait_after: 10,
        max_wait: 0,
    };
    for i in 0..10 {
        s.invoke_raw(&body(i, 16)).unwrap();
    }
    let mut requests = 0;
    for round in 0.. {
        let mut out = Vec::new();
        let Some(_) = s.poll_message_http(now, &mut out, wait, false) else {
            break;
        };
        let inner = inner_messages(&out);
        assert!(inner.len() <= 4, "round {round}: the container limit holds");
        let waits: Vec<_> = inner.iter().filter(|m| m.0 == HTTP_WAIT).collect();
        assert_eq!(waits.len(), 1, "round {round}: exactly one http_wait");
        let (_, seq, w) = inner.last().unwrap();
        assert_eq!(w[..4], HTTP_WAIT.to_le_bytes(), "last");
        assert_eq!(seq & 1, 0, "not content-related");
        assert_eq!(w[4..], [30, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0]);
        requests += inner.iter().filter(|m| m.0 == 0xc0de_0001).count();
    }
    assert_eq!(requests, 10);
    // Nothing left: the request lane has nothing, the long poll still goes, http_wait alone.
    let mut out = Vec::new();
    assert!(s.poll_message_http(now, &mut out, wait, false).is_none());
    s.invoke_raw(&body(99, 16)).unwrap();
    s.ping();
    let long = HttpWaitConfig {
        max_wait: 25_000,
        ..wait
    };
    assert!(s.poll_message_http(now, &mut out, long, true).is_some());
    assert_eq!(
        out,
        [
            &HTTP_WAIT.to_le_bytes()[..],
            &30i32.to_le_bytes(),
            &10i32.to_le_bytes(),
            &25_000i32.to_le_bytes()
        ]
        .concat(),
        "the long poll carries no request and no ping"
    );
    // They went on the request lane.
    out.clear();
    s.poll_message_http(now, &mut out, wait, false).unwrap();
    let kinds: Vec<u32> = inner_messages(&out).iter().map(|m| m.0).collect();
    assert!(
        kinds.contains(&0xc0de_0001) && kinds.last() == Some(&HTTP_WAIT),
        "{kinds:x?}"
    );
}

#[test]
fn pfs_binds_over_http_and_a_reconnect_after_an_error_starts_over() {
    use mtproto::core::connection::PfsConfig;
    let mut net = Net::new(HttpWaitConfig::default(), 15);
    let mut config = client_config(HttpWaitConfig::default());
    config.pfs = Some(PfsConfig::default());
    net.client = Connection::new(config, ChaCha20Rng::seed_from_u64(15), net.now());
    net.ready();
    assert!(net.client.is_bound());
    assert!(
        net.server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::TempKeyBound { .. }))
    );
    let id = net.client.invoke_raw(&body(1, 48)).unwrap();
    net.pump();
    assert_eq!(net.results.get(&id), Some(&vec![body(1, 48)]));
    // The server answers 500: the connection closes; a reconnect goes on with the same keys.
    // (The server side of that exchange was dropped: the driver cancels it there.)
    let (sid, cid) = net.inflight.pop_first().unwrap();
    assert!(net.server.cancel_http_request(sid));
    assert!(!net.server.cancel_http_request(sid));
    net.client
        .handle_http_response(net.now(), cid, HttpResponse::Status(500));
    net.collect();
    assert_eq!(net.closed(), Some(&CloseReason::TransportError(-500)));
    let pending = net.client.invoke_raw(&body(2, 48)).unwrap();
    net.client.reconnect(net.now());
    net.pump();
    assert_eq!(net.results.get(&pending), Some(&vec![body(2, 48)]));
    net.assert_one_long_poll();
    let keys = net
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::AuthKeyCreated { .. }))
        .count();
    assert_eq!(
        keys, 2,
        "one permanent and one temporary key, none made again"
    );
}

#[test]
fn a_ping_lost_with_its_post_does_not_end_the_session_with_a_pong_timeout() {
    let mut net = Net::new(HttpWaitConfig::default(), 21);
    net.ready();
    net.advance(1_000);
    net.client.ping();
    // The POST carrying the ping fails (connection error): it never reaches the server.
    let now = net.now();
    let mut post = Vec::new();
    let cid = net
        .client
        .poll_http_request(now, &mut post)
        .expect("the ping's POST");
    assert!(net.client.poll_http_request(now, &mut post).is_none());
    net.client
        .handle_http_response(now, cid, HttpResponse::Failed);
    net.pump();
    // Past the pong timeout (30 s) and short of the next periodic ping (60 s).
    net.advance(40_000);
    assert!(net.closed().is_none(), "{:?}", net.closed());
    net.assert_one_long_poll();
    // Pings still work afterwards.
    let ping_id = net.client.ping();
    net.pump();
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Pong { ping_id: p, .. } if *p == ping_id))
    );
}

#[test]
fn a_client_max_wait_beyond_the_servers_limit_is_clamped_to_25_s() {
    let wait = HttpWaitConfig {
        max_delay: i32::MAX,
        wait_after: i32::MAX,
        max_wait: i32::MAX,
    };
    let mut net = Net::new(wait, 22);
    net.ready();
    net.advance(1_000);
    let poll = net.long_poll_sid();
    net.advance(30_000);
    let expired = net.answers.iter().find(|a| a.0 == poll).expect("answered");
    assert_eq!(
        expired.3 - net.arrived[&poll],
        25_000,
        "held 25 s, not 24.8 days"
    );
    assert_eq!(expired.1, 200);
    assert!(expired.2 >= 24 + 32, "an empty container: {expired:?}");
    assert!(net.closed().is_none());
}

/// Several clients against one server endpoint.
struct Crowd {
    server: Server,
    clients: Vec<Connection<ChaCha20Rng>>,
    /// Server request id -> (client index, client request id).
    route: BTreeMap<HttpRequestId, (usize, HttpRequestId)>,
    refused: usize,
    ms: u64,
}

impl Crowd {
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let now = Net::at(self.ms);
            let mut moved = false;
            let mut body = Vec::new();
            for (i, c) in self.clients.iter_mut().enumerate() {
                while let Some(cid) = c.poll_http_request(now, &mut body) {
                    moved = true;
                    match self.server.handle_http_request(now, &body) {
                        Some(sid) => {
                            self.route.insert(sid, (i, cid));
                        }
                        None => {
                            self.refused += 1;
                            c.handle_http_response(now, cid, HttpResponse::Status(503));
                        }
                    }
                    body.clear();
                }
            }
            while self.server.poll_event().is_some() {}
            while let Some((sid, status)) = self.server.poll_http_response(now, &mut body) {
                moved = true;
                if let Some((i, cid)) = self.route.remove(&sid) {
                    let response = match status {
                        200 => HttpResponse::Body(&body),
                        s => HttpResponse::Status(s),
                    };
                    self.clients[i].handle_http_response(now, cid, response);
                }
                body.clear();
            }
            for c in &mut self.clients {
                while c.poll_event().is_some() {}
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn advance(&mut self, ms: u64) {
        let end = self.ms + ms;
        while self.ms < end {
            self.ms = (self.ms + 100).min(end);
            let now = Net::at(self.ms);
            for c in &mut self.clients {
                if c.poll_timeout().is_some_and(|t| t <= now.mono) {
                    c.handle_timeout(now);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now.mono) {
                self.server.handle_timeout(now);
            }
            self.pump();
        }
    }
}

#[test]
fn one_key_with_many_sessions_cannot_fill_the_endpoint() {
    let mut config = ServerConnectionConfig::new(ServerConfig::demo());
    config.http.max_requests = 20;
    assert_eq!(config.http.max_held_per_key, 16);
    let mut net = Net::with(HttpWaitConfig::default(), 23, config);
    net.ready();
    net.advance(1_000);
    let state = net.client.export().unwrap();
    let Net {
        client,
        server,
        inflight,
        ms,
        ..
    } = net;
    let mut crowd = Crowd {
        server,
        clients: vec![client],
        route: inflight.into_iter().map(|(s, c)| (s, (0, c))).collect(),
        refused: 0,
        ms,
    };
    // 23 more sessions of the same key (session ids are the client's choice), one at a time:
    // without a per-key cap their long polls fill the endpoint.
    for k in 1..24u64 {
        let mut st = state.clone();
        st.session.session_id = 0x1000 + k as i64;
        crowd.clients.push(Connection::resume(
            client_config(HttpWaitConfig::default()),
            st,
            ChaCha20Rng::seed_from_u64(100 + k),
            Net::at(crowd.ms),
        ));
        crowd.advance(300);
    }
    crowd.advance(2_000);
    assert!(
        crowd.server.http_held() <= 16,
        "the key's cap: {}",
        crowd.server.http_held()
    );
    // Another client (another key) still gets its handshake through and its long poll held.
    crowd.clients.push(Connection::new(
        client_config(HttpWaitConfig::default()),
        ChaCha20Rng::seed_from_u64(999),
        Net::at(crowd.ms),
    ));
    let refused = crowd.refused;
    crowd.advance(3_000);
    let other = crowd.clients.last().unwrap();
    assert!(
        other.auth_key().is_some(),
        "refused {}",
        crowd.refused - refused
    );
    assert_eq!(other.http_requests_outstanding(), 1);
    assert!(
        crowd.route.values().any(|r| r.0 == 24),
        "its long poll is held"
    );
}

/// A fresh client's first POST (`req_pq_multi` with its random nonce) and the status of the
/// server's answer.
fn fresh_req_pq(server: &mut Server, now: Now, seed: u64) -> u16 {
    let mut client = Connection::new(
        client_config(HttpWaitConfig::default()),
        ChaCha20Rng::seed_from_u64(seed),
        now,
    );
    let mut b = Vec::new();
    client.poll_http_request(now, &mut b).expect("req_pq");
    let sid = server.handle_http_request(now, &b).expect("taken");
    b.clear();
    let (id, status) = server
        .poll_http_response(now, &mut b)
        .expect("answered at once");
    assert_eq!(id, sid);
    status
}

#[test]
fn handshakes_beyond_the_endpoints_rate_are_refused_with_429() {
    let mut net = Net::new(HttpWaitConfig::default(), 25);
    let now = net.now();
    for k in 0..64 {
        assert_eq!(fresh_req_pq(&mut net.server, now, 1_000 + k), 200, "{k}");
    }
    assert_eq!(fresh_req_pq(&mut net.server, now, 2_000), 429);
    assert!(net.server_events.is_empty());
    // The window slides: a minute later handshakes start again.
    net.ms += 60_000;
    let now = net.now();
    assert_eq!(fresh_req_pq(&mut net.server, now, 3_000), 200);
}

#[test]
fn a_flood_of_req_pq_does_not_evict_a_handshake_past_req_pq() {
    let mut config = ServerConnectionConfig::new(ServerConfig::demo());
    config.http.max_handshakes_per_window = 5_000;
    let mut net = Net::with(HttpWaitConfig::default(), 26, config);
    let now = net.now();
    // req_pq and req_DH_params are answered; set_client_DH_params goes out.
    for _ in 0..2 {
        let mut b = Vec::new();
        let cid = net.client.poll_http_request(now, &mut b).unwrap();
        net.server.handle_http_request(now, &b).unwrap();
        b.clear();
        net.server.poll_http_response(now, &mut b).unwrap();
        net.client
            .handle_http_response(now, cid, HttpResponse::Body(&b));
    }
    let mut dh = Vec::new();
    let cid = net.client.poll_http_request(now, &mut dh).unwrap();
    // Before it arrives, 1025 req_pq with random nonces fill the handshake table (the
    // client's entry is the oldest).
    net.ms += 100;
    let now = net.now();
    for k in 0..1_025 {
        assert_eq!(fresh_req_pq(&mut net.server, now, 10_000 + k), 200, "{k}");
    }
    let sid = net.server.handle_http_request(now, &dh).unwrap();
    net.inflight.insert(sid, cid);
    net.pump();
    assert!(net.closed().is_none(), "{:?}", net.closed());
    net.ready();
}

#[test]
fn a_gateway_error_on_the_long_poll_re_arms_it() {
    for (k, status) in [502u16, 503, 504].into_iter().enumerate() {
        let mut net = Net::new(HttpWaitConfig::default(), 27 + k as u64);
        net.ready();
        net.advance(1_000);
        // A proxy cuts the long poll (and its own request to the server: the driver there
        // cancels it).
        let (sid, cid) = net.inflight.pop_first().unwrap();
        assert!(net.server.cancel_http_request(sid));
        net.client
            .handle_http_response(net.now(), cid, HttpResponse::Status(status));
        net.pump();
        assert!(net.closed().is_none(), "{status}: {:?}", net.closed());
        assert_eq!(net.client.http_requests_outstanding(), 0, "throttled");
        net.advance(600);
        assert_eq!(net.client.http_requests_outstanding(), 1, "re-armed");
        assert!(net.closed().is_none());
        let id = net.client.invoke_raw(&body(1, 64)).unwrap();
        net.pump();
        assert_eq!(net.results.get(&id), Some(&vec![body(1, 64)]));
    }
}

#[test]
fn a_single_request_slot_counts_as_two_so_the_long_poll_does_not_starve_requests() {
    let mut client = client_config(HttpWaitConfig::default());
    client.http_max_requests = 1;
    let mut net = Net::with_client(
        client,
        30,
        ServerConnectionConfig::new(ServerConfig::demo()),
    );
    net.ready();
    net.advance(1_000);
    let poll = net.long_poll_sid();
    let id = net.client.invoke_raw(&body(4, 64)).unwrap();
    net.pump();
    // Answered at once on its own POST, while the long poll stays held.
    assert_eq!(net.results.get(&id), Some(&vec![body(4, 64)]));
    assert!(net.inflight.contains_key(&poll));
    net.assert_one_long_poll();
}
