//! `ServerConnection` against a minimal client written here by hand (handshake state machine,
//! MTProto 2.0 message encryption and a transport codec, no session layer of ours), in memory,
//! over several transports, with seeded RNGs and a simulated clock. Byte streams are delivered
//! in random chunk sizes.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use mtproto::core::connection::server::{
    CloseReason, KeyStore, MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
    ServerRequestId,
};
use mtproto::core::crypto::message::{
    MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
};
use mtproto::core::crypto::{AuthKey, Side};
use mtproto::core::handshake::{
    AuthKeyResult, ClientConfig, ClientHandshake, ClientStep, RsaKeySet, RsaPrivateKey,
    ServerConfig, pfs,
};
use mtproto::core::plain;
use mtproto::core::session::SeqNo;
use mtproto::core::session::server::Rejection;
use mtproto::core::time::{Instant, Now, UnixTime};
use mtproto::core::tl::schema::{Object, functions, types};
use mtproto::core::tl::{BOOL_TRUE_ID, Deserialize, Serialize};
use mtproto::core::transport::{
    self, Codec, FakeTlsClient, Frame, Framing, ObfuscatedCodec, ProxySecret, Role, Status,
    Transport,
};
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

const T0: u64 = 1_764_000_000;
const DC: i16 = 2;

type Store = Rc<RefCell<MemoryKeyStore>>;
type Server = ServerConnection<ChaCha20Rng, Store>;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Plain(Framing),
    Obfuscated(Framing),
    FakeTls,
}

const KINDS: [Kind; 7] = [
    Kind::Plain(Framing::Abridged),
    Kind::Plain(Framing::Intermediate),
    Kind::Plain(Framing::PaddedIntermediate),
    Kind::Plain(Framing::Full),
    Kind::Obfuscated(Framing::Abridged),
    Kind::Obfuscated(Framing::PaddedIntermediate),
    Kind::FakeTls,
];

fn tls_secret() -> ProxySecret {
    ProxySecret::fake_tls([0x44; 16], b"example.com").unwrap()
}

/// The simulated clock: both sides read it.
#[derive(Clone, Copy)]
struct Clock(u64); // microseconds since T0

impl Clock {
    fn now(self) -> Now {
        Now {
            mono: Instant::from_micros(self.0),
            unix: UnixTime::from_nanos(T0 * 1_000_000_000 + self.0 * 1_000),
        }
    }
    fn advance_secs(&mut self, s: u64) {
        self.0 += s * 1_000_000;
    }
}

fn config() -> ServerConnectionConfig {
    let mut c = ServerConnectionConfig::new(ServerConfig::demo());
    c.transport = transport::ServerConfig {
        secrets: vec![tls_secret()],
        ..transport::ServerConfig::default()
    };
    c
}

fn new_server(store: &Store, seed: u64) -> Server {
    ServerConnection::new(config(), store.clone(), common::rng(seed))
}

/// A transport event seen by the client.
#[derive(Debug)]
enum Ev {
    Payload(Vec<u8>),
    TransportError(i32),
    QuickAck,
}

/// A decrypted message from the server (containers flattened).
#[derive(Debug, Clone)]
struct Msg {
    msg_id: i64,
    #[allow(dead_code)] // kept for failure messages
    seq_no: i32,
    body: Vec<u8>,
}

impl Msg {
    fn object(&self) -> Object<'_> {
        Object::from_bytes(&self.body).unwrap()
    }
}

/// The hand-driven client.
struct Client {
    rng: ChaCha20Rng,
    wire: ChaCha20Rng,
    transport: Transport,
    pending: Vec<u8>,
    key: Option<AuthKey>,
    salt: i64,
    session_id: i64,
    last_id: i64,
    seq: SeqNo,
}

impl Client {
    /// Opens a transport to `server` (fake TLS first exchanges its hellos).
    fn connect(kind: Kind, seed: u64, server: &mut Server, clock: Clock) -> Self {
        let mut rng = common::rng(seed);
        let wire = common::rng(seed ^ 0x5eed);
        let transport = match kind {
            Kind::Plain(f) => Transport::Plain(Codec::new(f, Role::Client)),
            Kind::Obfuscated(f) => {
                Transport::Obfuscated(ObfuscatedCodec::client(f, Some(DC), None, &mut rng).unwrap())
            }
            Kind::FakeTls => {
                let mut hello = Vec::new();
                let mut tls =
                    FakeTlsClient::new(&tls_secret(), clock.now().unix, &mut rng, &mut hello)
                        .unwrap();
                server.handle_input(clock.now(), &hello);
                let mut answer = Vec::new();
                server.poll_transmit(clock.now(), &mut answer);
                let (used, status) = tls.decode(&answer).unwrap();
                assert_eq!((used, status), (answer.len(), Status::Complete(())));
                Transport::Obfuscated(tls.into_codec(Some(DC), &mut rng).unwrap())
            }
        };
        let session_id = rng.next_u64() as i64;
        Self {
            rng,
            wire,
            transport,
            pending: Vec::new(),
            key: None,
            salt: 0,
            session_id,
            last_id: 0,
            seq: SeqNo::new(),
        }
    }

    fn msg_id(&mut self, clock: Clock) -> i64 {
        let id = plain::msg_id_from_time(clock.now().unix).max(self.last_id + 4);
        self.last_id = id;
        id
    }

    /// Sends one transport payload in random chunks.
    fn send_payload(&mut self, server: &mut Server, clock: Clock, payload: &[u8]) {
        let mut bytes = Vec::new();
        self.transport
            .encode(payload, false, &mut self.rng, &mut bytes)
            .unwrap();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = (self.wire.next_u32() as usize % 97 + 1).min(rest.len());
            server.handle_input(clock.now(), &rest[..n]);
            rest = &rest[n..];
        }
    }

    /// Everything the server has to send now, as transport events.
    fn receive(&mut self, server: &mut Server, clock: Clock) -> Vec<Ev> {
        let mut bytes = Vec::new();
        server.poll_transmit(clock.now(), &mut bytes);
        self.pending.extend_from_slice(&bytes);
        let mut out = Vec::new();
        while !self.pending.is_empty() {
            let (used, status) = self.transport.decode(&self.pending).expect("client decode");
            let ev = match status {
                Status::Complete(Frame::Payload { data, .. }) => Some(Ev::Payload(data.to_vec())),
                Status::Complete(Frame::TransportError(c)) => Some(Ev::TransportError(c)),
                Status::Complete(Frame::QuickAck(_)) => Some(Ev::QuickAck),
                Status::Partial => None,
            };
            self.pending.drain(..used);
            match ev {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Creates a key (permanent, or temporary for `temp` seconds).
    fn handshake(&mut self, server: &mut Server, clock: Clock, temp: Option<u32>) -> AuthKeyResult {
        let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
        let mut config = ClientConfig::new(keys, i32::from(DC));
        if let Some(secs) = temp {
            config = config.temporary(secs);
        }
        let mut hs = ClientHandshake::new(config);
        let mut body = hs.start(&mut self.rng).unwrap();
        let result = loop {
            let id = self.msg_id(clock);
            self.send_payload(server, clock, &plain::wrap(id, &body));
            let evs = self.receive(server, clock);
            assert_eq!(evs.len(), 1, "one answer per handshake step: {evs:?}");
            let Ev::Payload(answer) = &evs[0] else {
                panic!("not a payload: {evs:?}")
            };
            let (_, answer) = plain::unwrap(answer).unwrap();
            match hs.handle(clock.now().unix, answer, &mut self.rng).unwrap() {
                ClientStep::Send(next) => body = next,
                ClientStep::Done(result) => break *result,
            }
        };
        self.key = Some(result.auth_key.clone());
        self.salt = result.server_salt as i64;
        result
    }

    /// Sends one encrypted message; returns its msg_id.
    fn send_with(
        &mut self,
        server: &mut Server,
        clock: Clock,
        body: &[u8],
        msg_id: i64,
        seq_no: i32,
    ) -> i64 {
        let header = MessageHeader {
            // `as _`: the header's field types follow the crate's id convention.
            salt: self.salt as _,
            session_id: self.session_id as _,
            msg_id: msg_id as _,
            seq_no: seq_no as _,
        };
        let sealed = encrypt_message_to_vec(
            self.key.as_ref().unwrap(),
            Side::Client,
            &header,
            body,
            &PaddingPolicy::default(),
            &mut self.rng,
        )
        .unwrap();
        self.send_payload(server, clock, &sealed.bytes);
        msg_id
    }

    fn send(&mut self, server: &mut Server, clock: Clock, body: &[u8], content: bool) -> i64 {
        let id = self.msg_id(clock);
        let seq = self.seq.next(content);
        self.send_with(server, clock, body, id, seq)
    }

    /// Decrypts every payload the server sends now; containers flattened.
    fn messages(&mut self, server: &mut Server, clock: Clock) -> Vec<Msg> {
        let mut out = Vec::new();
        for ev in self.receive(server, clock) {
            let Ev::Payload(mut p) = ev else { continue };
            let m = decrypt_message(self.key.as_ref().unwrap(), Side::Server, &mut p)
                .expect("client decrypts");
            assert_eq!(m.session_id as i64, self.session_id);
            assert_eq!(m.msg_id % 2, 1, "server msg_ids are odd");
            let outer = Msg {
                msg_id: m.msg_id as i64,
                seq_no: m.seq_no as i32,
                body: m.body.to_vec(),
            };
            match outer.object() {
                Object::MsgContainer(c) => {
                    for i in &c.messages {
                        out.push(Msg {
                            msg_id: i.msg_id,
                            seq_no: i.seqno,
                            body: i.body.to_vec(),
                        });
                    }
                }
                _ => out.push(outer),
            }
        }
        out
    }
}

fn events(server: &mut Server) -> Vec<ServerEvent> {
    std::iter::from_fn(|| server.poll_event()).collect()
}

fn requests(evs: &[ServerEvent]) -> Vec<(ServerRequestId, Vec<u8>)> {
    evs.iter()
        .filter_map(|e| match e {
            ServerEvent::Request { id, body } => Some((*id, body.clone())),
            _ => None,
        })
        .collect()
}

fn rpc_result(msgs: &[Msg], req: i64) -> Option<Vec<u8>> {
    msgs.iter().find_map(|m| match m.object() {
        Object::RpcResult(r) if r.req_msg_id == req => Some(r.result.to_vec()),
        _ => None,
    })
}

fn count_new_session(msgs: &[Msg]) -> usize {
    msgs.iter()
        .filter(|m| matches!(m.object(), Object::NewSessionCreated(_)))
        .count()
}

/// A request body for the application (any TL the session does not handle itself).
fn app_request(x: u32) -> Vec<u8> {
    let mut b = 0x1234_5678u32.to_le_bytes().to_vec();
    b.extend_from_slice(&x.to_le_bytes());
    b
}

#[test]
fn every_transport_handshake_request_response_and_even_seq_ping() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let store: Store = Rc::default();
        let mut clock = Clock(0);
        let mut server = new_server(&store, 100 + i as u64);
        let mut client = Client::connect(kind, i as u64, &mut server, clock);
        let key = client.handshake(&mut server, clock, None);
        let key_id = key.auth_key.id() as i64;
        let evs = events(&mut server);
        assert!(
            evs.contains(&ServerEvent::AuthKeyCreated {
                auth_key_id: key_id,
                temporary: false
            }),
            "{kind:?}: {evs:?}"
        );
        assert!(store.get(key_id).is_some(), "{kind:?}: key stored");

        // A request reaches the application; its answer reaches the client.
        clock.advance_secs(1);
        let req = app_request(7);
        let req_id = client.send(&mut server, clock, &req, true);
        let evs = events(&mut server);
        assert!(evs.contains(&ServerEvent::NewSession {
            auth_key_id: key_id,
            session_id: client.session_id
        }));
        let reqs = requests(&evs);
        assert_eq!(reqs.len(), 1, "{kind:?}");
        assert_eq!(reqs[0].1, req);
        assert_eq!(reqs[0].0.msg_id, req_id);
        server
            .respond(clock.now(), reqs[0].0, &[0xaa, 0xbb, 0xcc, 0xdd])
            .unwrap();
        let msgs = client.messages(&mut server, clock);
        assert_eq!(count_new_session(&msgs), 1, "{kind:?}");
        assert!(matches!(msgs[0].object(), Object::NewSessionCreated(_)));
        assert_eq!(
            rpc_result(&msgs, req_id).as_deref(),
            Some(&[0xaa, 0xbb, 0xcc, 0xdd][..]),
            "{kind:?}"
        );

        // Pyrogram's ping: non-content-related (even seq_no).
        let ping = functions::Ping { ping_id: 99 }.to_vec().unwrap();
        let ping_id = client.send(&mut server, clock, &ping, false);
        let msgs = client.messages(&mut server, clock);
        let pong = msgs
            .iter()
            .find_map(|m| match m.object() {
                Object::Pong(p) => Some((m.msg_id, p)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{kind:?}: no bare pong in {msgs:?}"));
        assert_eq!((pong.1.msg_id, pong.1.ping_id), (ping_id, 99));
        assert_eq!(pong.0 & 3, 1, "pong answers: msg_id ≡ 1 mod 4");
        assert!(!server.is_closed());
    }
}

#[test]
fn a_key_made_on_one_connection_serves_the_next_new_and_continued_sessions() {
    for (i, kind) in [Kind::Plain(Framing::Intermediate), Kind::FakeTls]
        .into_iter()
        .enumerate()
    {
        let store: Store = Rc::default();
        let clock = Clock(0);
        let mut first = new_server(&store, 1 + i as u64);
        let mut c1 = Client::connect(kind, 10 + i as u64, &mut first, clock);
        let key = c1.handshake(&mut first, clock, None);
        let key_id = key.auth_key.id() as i64;
        // A request answered, but the answer is lost with the connection (never acked).
        let req_id = c1.send(&mut first, clock, &app_request(1), true);
        let (rid, _) = requests(&events(&mut first)).remove(0);
        first.respond(clock.now(), rid, &[1, 2, 3, 4]).unwrap();
        let mut lost = Vec::new();
        first.poll_transmit(clock.now(), &mut lost);
        drop(first); // the socket died: the session is parked in the store
        assert_eq!(store.borrow().session_count(), 1);

        // Same key and session on a new connection: no new_session_created, the unacked
        // answer comes again (fresh msg_id).
        let mut clock = clock;
        clock.advance_secs(5);
        let mut second = new_server(&store, 3 + i as u64);
        let mut c2 = Client::connect(kind, 20 + i as u64, &mut second, clock);
        c2.key = c1.key.clone();
        c2.salt = c1.salt;
        c2.session_id = c1.session_id;
        c2.last_id = c1.last_id;
        c2.seq = c1.seq;
        c2.send(
            &mut second,
            clock,
            &functions::Ping { ping_id: 5 }.to_vec().unwrap(),
            false,
        );
        let evs = events(&mut second);
        assert!(evs.contains(&ServerEvent::SessionResumed {
            auth_key_id: key_id,
            session_id: c1.session_id
        }));
        let msgs = c2.messages(&mut second, clock);
        assert_eq!(count_new_session(&msgs), 0, "{kind:?}: session continued");
        assert_eq!(
            rpc_result(&msgs, req_id).as_deref(),
            Some(&[1, 2, 3, 4][..])
        );
        assert!(msgs.iter().any(|m| matches!(m.object(), Object::Pong(_))));

        // A third connection with the same key and a new session: new_session_created.
        let mut third = new_server(&store, 5 + i as u64);
        let mut c3 = Client::connect(kind, 30 + i as u64, &mut third, clock);
        c3.key = c1.key.clone();
        c3.salt = c1.salt;
        let r = c3.send(&mut third, clock, &app_request(3), true);
        let evs = events(&mut third);
        assert!(evs.contains(&ServerEvent::NewSession {
            auth_key_id: key_id,
            session_id: c3.session_id
        }));
        assert_eq!(requests(&evs)[0].0.msg_id, r);
        let msgs = c3.messages(&mut third, clock);
        assert_eq!(count_new_session(&msgs), 1);
        let Object::NewSessionCreated(n) = msgs[0].object() else {
            panic!("new_session_created first")
        };
        assert_eq!(n.first_msg_id, r);
    }
}

#[test]
fn an_unknown_auth_key_gets_transport_error_404_and_the_connection_closes() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let store: Store = Rc::default();
        let clock = Clock(0);
        let mut server = new_server(&store, i as u64);
        let mut client = Client::connect(kind, 40 + i as u64, &mut server, clock);
        client.key = Some(AuthKey::from_bytes([0x5a; 256]));
        client.send(&mut server, clock, &app_request(1), true);
        let evs = client.receive(&mut server, clock);
        assert!(
            matches!(evs[..], [Ev::TransportError(-404)]),
            "{kind:?}: {evs:?}"
        );
        assert!(server.is_closed());
        let unknown = AuthKey::from_bytes([0x5a; 256]).id();
        assert_eq!(
            events(&mut server),
            [ServerEvent::Closed(CloseReason::UnknownAuthKey {
                auth_key_id: unknown
            })]
        );
    }
}

#[test]
fn wrong_salt_and_msg_id_out_of_the_window_are_answered_not_fatal() {
    let store: Store = Rc::default();
    let mut clock = Clock(0);
    let mut server = new_server(&store, 7);
    let mut client = Client::connect(Kind::Plain(Framing::Abridged), 8, &mut server, clock);
    client.handshake(&mut server, clock, None);
    events(&mut server);
    clock.advance_secs(60);

    // Wrong salt: bad_server_salt with the salt to use.
    let good_salt = client.salt;
    client.salt = 0x0bad;
    let id = client.send(&mut server, clock, &app_request(1), true);
    let msgs = client.messages(&mut server, clock);
    let Object::BadServerSalt(b) = msgs[0].object() else {
        panic!("{msgs:?}")
    };
    assert_eq!((b.bad_msg_id, b.error_code), (id, 48));
    assert!(requests(&events(&mut server)).is_empty());
    client.salt = b.new_server_salt;
    assert_ne!(
        client.salt, good_salt,
        "the current salt, not the handshake one"
    );
    let id = client.send(&mut server, clock, &app_request(2), true);
    assert_eq!(requests(&events(&mut server))[0].0.msg_id, id);
    client.messages(&mut server, clock);

    // msg_id 301 s old, 31 s ahead: 16 and 17, each notification carrying server time.
    for (shift, code) in [(-301i64, 16), (31, 17)] {
        let base = plain::msg_id_from_time(clock.now().unix);
        let bad_id = base + (shift << 32);
        let seq = client.seq.next(true);
        client.send_with(&mut server, clock, &app_request(3), bad_id, seq);
        let msgs = client.messages(&mut server, clock);
        let n = msgs
            .iter()
            .find_map(|m| match m.object() {
                Object::BadMsgNotification(n) => Some((m.msg_id, n)),
                _ => None,
            })
            .unwrap();
        assert_eq!((n.1.bad_msg_id, n.1.error_code), (bad_id, code));
        assert_eq!(n.0 >> 32, (T0 + 60) as i64);
        let evs = events(&mut server);
        assert!(evs.contains(&ServerEvent::MessageRejected {
            msg_id: bad_id,
            reason: Rejection::BadMsg(code)
        }));
    }
    assert!(!server.is_closed());
}

#[test]
fn seq_no_mistakes_and_a_nested_container_get_bad_msg() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 9);
    let mut client = Client::connect(Kind::Obfuscated(Framing::Abridged), 9, &mut server, clock);
    client.handshake(&mut server, clock, None);
    events(&mut server);
    // A request with an even seq_no: 35; msgs_ack with an odd one: 34.
    let id = client.msg_id(clock);
    client.send_with(&mut server, clock, &app_request(1), id, 0);
    let ack = types::MsgsAck { msg_ids: vec![4] }.to_vec().unwrap();
    let id2 = client.msg_id(clock);
    client.send_with(&mut server, clock, &ack, id2, 1);
    // A container inside a container: 64.
    let inner_id = client.msg_id(clock);
    let mut nested = Vec::new();
    mtproto::core::session::container::write_container_header(&mut nested, 1);
    mtproto::core::session::container::write_inner(
        &mut nested,
        &mtproto::core::session::container::OutMessage {
            msg_id: inner_id,
            seq_no: 1,
            body: &app_request(2),
        },
    );
    let mid_id = client.msg_id(clock);
    let mut outer = Vec::new();
    mtproto::core::session::container::write_container_header(&mut outer, 1);
    mtproto::core::session::container::write_inner(
        &mut outer,
        &mtproto::core::session::container::OutMessage {
            msg_id: mid_id,
            seq_no: 2,
            body: &nested,
        },
    );
    let id3 = client.msg_id(clock);
    client.send_with(&mut server, clock, &outer, id3, 2);
    let codes: Vec<(i64, i32)> = client
        .messages(&mut server, clock)
        .iter()
        .filter_map(|m| match m.object() {
            Object::BadMsgNotification(n) => Some((n.bad_msg_id, n.error_code)),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [(id, 35), (id2, 34), (id3, 64)]);
    assert!(requests(&events(&mut server)).is_empty());
}

#[test]
fn get_future_salts_and_rpc_drop_answer_over_the_wire() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 11);
    let mut client = Client::connect(Kind::Plain(Framing::Full), 11, &mut server, clock);
    client.handshake(&mut server, clock, None);
    let q = functions::GetFutureSalts { num: 3 }.to_vec().unwrap();
    let qid = client.send(&mut server, clock, &q, true);
    let r = client.send(&mut server, clock, &app_request(1), true);
    let drop = functions::RpcDropAnswer { req_msg_id: r }.to_vec().unwrap();
    let did = client.send(&mut server, clock, &drop, true);
    let msgs = client.messages(&mut server, clock);
    let salts = msgs
        .iter()
        .find_map(|m| match m.object() {
            Object::FutureSalts(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(salts.req_msg_id, qid);
    assert_eq!(salts.salts.len(), 3);
    let dropped = rpc_result(&msgs, did).unwrap();
    assert!(matches!(
        Object::from_bytes(&dropped).unwrap(),
        Object::RpcAnswerDroppedRunning(_)
    ));
    // The application's late answer is refused, nothing more goes out.
    let (rid, _) = requests(&events(&mut server)).remove(0);
    assert!(server.respond(clock.now(), rid, &[0; 4]).is_err());
}

#[test]
fn events_stay_bounded_when_the_application_never_polls() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut cfg = config();
    cfg.max_events = 64;
    let mut server: Server = ServerConnection::new(cfg, store.clone(), common::rng(12));
    let mut client = Client::connect(Kind::Plain(Framing::Intermediate), 12, &mut server, clock);
    client.handshake(&mut server, clock, None);
    let mut floods = 0;
    for i in 0..300 {
        client.send(&mut server, clock, &app_request(i), true);
        for m in client.messages(&mut server, clock) {
            if let Object::RpcResult(r) = m.object()
                && let Object::RpcError(e) = Object::from_bytes(r.result).unwrap()
            {
                assert_eq!((e.error_code, e.error_message), (420, &b"FLOOD_WAIT_1"[..]));
                floods += 1;
            }
        }
    }
    assert_eq!(server.pending_events(), 64);
    // 300 requests + AuthKeyCreated + NewSession; 62 requests fit.
    assert_eq!(floods, 300 - 62);
    assert!(server.dropped_events() >= floods);
    assert!(!server.is_closed());
}

#[test]
fn ping_delay_disconnect_closes_after_its_delay_and_pings_reset_it() {
    let store: Store = Rc::default();
    let mut clock = Clock(0);
    let mut server = new_server(&store, 13);
    let mut client = Client::connect(Kind::Plain(Framing::Abridged), 13, &mut server, clock);
    client.handshake(&mut server, clock, None);
    let p = |id| {
        functions::PingDelayDisconnect {
            ping_id: id,
            disconnect_delay: 75,
        }
        .to_vec()
        .unwrap()
    };
    client.send(&mut server, clock, &p(1), true);
    assert!(
        client
            .messages(&mut server, clock)
            .iter()
            .any(|m| matches!(m.object(), Object::Pong(_)))
    );
    clock.advance_secs(60);
    server.handle_timeout(clock.now());
    client.send(&mut server, clock, &p(2), true);
    clock.advance_secs(60); // 120 s after the first, 60 s after the second
    server.handle_timeout(clock.now());
    assert!(!server.is_closed());
    let deadline = server.poll_timeout().unwrap();
    assert!(deadline <= Clock(135_000_000).now().mono);
    clock.advance_secs(16);
    server.handle_timeout(clock.now());
    assert_eq!(
        server.close_reason(),
        Some(CloseReason::PingDelayDisconnect)
    );
}

#[test]
fn a_silent_connection_is_closed_by_the_handshake_timeout() {
    let store: Store = Rc::default();
    let mut server = new_server(&store, 14);
    server.handle_input(Clock(0).now(), &[0xef]);
    assert_eq!(
        server.poll_timeout(),
        Some(Instant::from_micros(60_000_000))
    );
    server.handle_timeout(Clock(59_000_000).now());
    assert!(!server.is_closed());
    server.handle_timeout(Clock(60_000_000).now());
    assert_eq!(server.close_reason(), Some(CloseReason::HandshakeTimeout));
}

#[test]
fn a_tampered_message_closes_the_connection() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 15);
    let mut client = Client::connect(Kind::Plain(Framing::Intermediate), 15, &mut server, clock);
    let key = client.handshake(&mut server, clock, None);
    let header = MessageHeader {
        salt: key.server_salt,
        session_id: 1,
        msg_id: client.msg_id(clock) as _,
        seq_no: 1,
    };
    let mut sealed = encrypt_message_to_vec(
        &key.auth_key,
        Side::Client,
        &header,
        &app_request(1),
        &PaddingPolicy::default(),
        &mut client.rng,
    )
    .unwrap()
    .bytes;
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    client.send_payload(&mut server, clock, &sealed);
    assert!(matches!(
        server.close_reason(),
        Some(CloseReason::Decrypt(_))
    ));
}

#[test]
fn pfs_temp_key_is_restricted_until_bound_then_serves_requests() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 16);
    let mut client = Client::connect(
        Kind::Obfuscated(Framing::PaddedIntermediate),
        16,
        &mut server,
        clock,
    );
    let perm = client.handshake(&mut server, clock, None);
    let temp = client.handshake(&mut server, clock, Some(3600));
    let evs = events(&mut server);
    assert!(evs.contains(&ServerEvent::AuthKeyCreated {
        auth_key_id: temp.auth_key.id() as i64,
        temporary: true
    }));
    // Unbound: an ordinary request is refused without reaching the application.
    let r = client.send(&mut server, clock, &app_request(1), true);
    let msgs = client.messages(&mut server, clock);
    let err = rpc_result(&msgs, r).unwrap();
    let Object::RpcError(e) = Object::from_bytes(&err).unwrap() else {
        panic!()
    };
    assert_eq!(
        (e.error_code, e.error_message),
        (401, &b"AUTH_KEY_UNREGISTERED"[..])
    );
    assert!(requests(&events(&mut server)).is_empty());

    // Bind.
    let bind_id = client.msg_id(clock);
    let bind = pfs::bind_temp_auth_key(
        &perm.auth_key,
        &temp.auth_key,
        client.session_id as _,
        temp.expires_at.unwrap() as i32,
        bind_id,
        &mut client.rng,
    )
    .unwrap();
    let seq = client.seq.next(true);
    client.send_with(&mut server, clock, &bind, bind_id, seq);
    let msgs = client.messages(&mut server, clock);
    assert_eq!(
        rpc_result(&msgs, bind_id).as_deref(),
        Some(&BOOL_TRUE_ID.to_le_bytes()[..])
    );
    assert!(events(&mut server).contains(&ServerEvent::TempKeyBound {
        temp_auth_key_id: temp.auth_key.id() as i64,
        perm_auth_key_id: perm.auth_key.id() as i64
    }));
    assert_eq!(
        store.get(temp.auth_key.id() as i64).unwrap().bound_to,
        Some(perm.auth_key.id() as i64)
    );
    // Now requests go through.
    let r = client.send(&mut server, clock, &app_request(2), true);
    assert_eq!(requests(&events(&mut server))[0].0.msg_id, r);

    // A binding encrypted with the wrong permanent key is refused.
    let other = client.handshake(&mut server, clock, Some(3600));
    let _ = other;
    let bind_id = client.msg_id(clock);
    let forged = pfs::bind_temp_auth_key(
        &AuthKey::from_bytes([3; 256]),
        client.key.as_ref().unwrap(),
        client.session_id as _,
        temp.expires_at.unwrap() as i32,
        bind_id,
        &mut client.rng,
    )
    .unwrap();
    let seq = client.seq.next(true);
    client.send_with(&mut server, clock, &forged, bind_id, seq);
    let msgs = client.messages(&mut server, clock);
    let err = rpc_result(&msgs, bind_id).unwrap();
    let Object::RpcError(e) = Object::from_bytes(&err).unwrap() else {
        panic!()
    };
    assert_eq!(e.error_code, 400);
}

#[test]
fn the_memory_store_caps_parked_sessions_per_key_and_in_total() {
    use mtproto::core::session::server::{ServerSession, ServerSessionConfig};
    let session = |id| ServerSession::new(ServerSessionConfig::default(), id, 0);
    let mut store = MemoryKeyStore::new(10, 5).with_max_sessions_per_key(3);
    // One key opening many sessions only pushes out its own oldest.
    store.put_session(1, session(100));
    for id in 0..10 {
        store.put_session(2, session(id));
    }
    assert_eq!(store.session_count(), 4);
    assert!(store.has_session(1, 100), "another key's session survives");
    assert!((7..10).all(|id| store.has_session(2, id)));
    // Over the total cap the oldest of all goes.
    store.put_session(3, session(1));
    store.put_session(4, session(1));
    assert_eq!(store.session_count(), 5);
    assert!(!store.has_session(1, 100));
    // Taking a session out and putting it back does not count twice.
    let s = store.take_session(4, 1).unwrap();
    store.put_session(4, s);
    assert_eq!(store.session_count(), 5);
}

#[test]
fn an_expired_temporary_key_is_unknown() {
    let store: Store = Rc::default();
    let mut clock = Clock(0);
    let mut server = new_server(&store, 17);
    let mut client = Client::connect(Kind::Plain(Framing::Intermediate), 17, &mut server, clock);
    client.handshake(&mut server, clock, Some(30));
    client.send(&mut server, clock, &app_request(1), true);
    assert_eq!(requests(&events(&mut server)).len(), 0, "unbound: refused");
    assert!(!server.is_closed());
    clock.advance_secs(31);
    client.send(&mut server, clock, &app_request(2), true);
    let evs = client.receive(&mut server, clock);
    assert!(
        matches!(evs.last(), Some(Ev::TransportError(-404))),
        "{evs:?}"
    );
    assert!(matches!(
        server.close_reason(),
        Some(CloseReason::UnknownAuthKey { .. })
    ));
}

#[test]
fn destroy_session_forgets_a_parked_session() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut first = new_server(&store, 18);
    let mut c1 = Client::connect(Kind::Plain(Framing::Abridged), 18, &mut first, clock);
    let key = c1.handshake(&mut first, clock, None);
    c1.send(&mut first, clock, &app_request(1), true);
    let old_session = c1.session_id;
    first.close();
    let key_id = key.auth_key.id() as i64;
    assert!(store.borrow().has_session(key_id, old_session));

    let mut second = new_server(&store, 19);
    let mut c2 = Client::connect(Kind::Plain(Framing::Abridged), 19, &mut second, clock);
    c2.key = c1.key.clone();
    c2.salt = c1.salt;
    let d = |sid| {
        functions::DestroySession { session_id: sid }
            .to_vec()
            .unwrap()
    };
    c2.send(&mut second, clock, &d(old_session), true);
    c2.send(&mut second, clock, &d(old_session), true);
    let answers: Vec<(bool, i64)> = c2
        .messages(&mut second, clock)
        .iter()
        .filter_map(|m| match m.object() {
            Object::DestroySessionOk(d) => Some((true, d.session_id)),
            Object::DestroySessionNone(d) => Some((false, d.session_id)),
            _ => None,
        })
        .collect();
    assert_eq!(answers, [(true, old_session), (false, old_session)]);
    assert!(!store.borrow().has_session(key_id, old_session));
}

#[test]
fn debug_output_shows_no_key_material() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 20);
    let mut client = Client::connect(Kind::Plain(Framing::Abridged), 20, &mut server, clock);
    let key = client.handshake(&mut server, clock, None);
    client.send(&mut server, clock, &app_request(1), true);
    let key_bytes = format!("{:?}", &key.auth_key.as_bytes()[..6]);
    let key_bytes = key_bytes.trim_matches(|c| c == '[' || c == ']');
    let shown = format!(
        "{server:?} {:?} {:?} {:?}",
        store.borrow(),
        store.get(key.auth_key.id() as i64),
        events(&mut server)
    );
    assert!(!shown.contains(key_bytes), "{shown}");
    assert!(
        !shown.contains("salt_seed") && !shown.contains("seed:"),
        "{shown}"
    );
}

/// Hostile plaintexts that pass msg_key (encrypted under the real key): random bodies, random
/// service constructors with garbage after them, containers and gzip of the same, random
/// msg_ids/seq_nos/salts/session_ids. Nothing panics, the connection stays open (a bad message
/// in a valid session is never fatal) and every queue stays within its cap.
#[test]
fn hostile_plaintexts_under_a_valid_key_never_panic_and_stay_bounded() {
    use mtproto::core::session::container::{OutMessage, write_container_header, write_inner};
    use mtproto::core::session::gzip;
    const SERVICE: [u32; 14] = [
        0x62d6b459, // msgs_ack
        0x7abe77ec, // ping
        0xf3427b8c, // ping_delay_disconnect
        0xda69fb52, // msgs_state_req
        0x7d861a08, // msg_resend_req
        0x8610baeb, // msg_resend_ans_req
        0xb921bd04, // get_future_salts
        0xe7512126, // destroy_session
        0x58e4a740, // rpc_drop_answer
        0x73f1f8dc, // msg_container
        0x3072cfa1, // gzip_packed
        0xe06046b2, // msg_copy
        0xcdd42a05, // auth.bindTempAuthKey
        0x9299359f, // http_wait
    ];
    let store: Store = Rc::default();
    let mut clock = Clock(0);
    let mut server = new_server(&store, 21);
    let kind = Kind::Plain(Framing::Intermediate);
    let mut client = Client::connect(kind, 21, &mut server, clock);
    client.handshake(&mut server, clock, None);
    let mut reconnects = 0;
    let seed = 0xf00d;
    let mut rng = common::rng(seed);
    let body_of = |rng: &mut ChaCha20Rng, depth: u32| -> Vec<u8> {
        let len = (rng.next_u32() % 24) as usize * 4;
        let mut b = vec![0u8; len];
        rng.fill_bytes(&mut b);
        if !rng.next_u32().is_multiple_of(4) {
            let ctor = SERVICE[rng.next_u32() as usize % SERVICE.len()];
            b.splice(0..0, ctor.to_le_bytes());
            // Plausible small vector/count fields right after the constructor.
            if rng.next_u32().is_multiple_of(2) {
                let n = rng.next_u32() % 4;
                let at = 4.min(b.len());
                b.splice(at..at, [0x15, 0xc4, 0xb5, 0x1c]);
                b.splice(at + 4..at + 4, n.to_le_bytes());
            }
        }
        if depth == 0 && rng.next_u32().is_multiple_of(8) {
            let packed = gzip::deflate(&b);
            b = types::GzipPacked {
                packed_data: &packed,
            }
            .to_vec()
            .unwrap();
        }
        b
    };
    let mut seen = (0, 0, 0); // requests, rejected messages, new sessions
    let mut reasons = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..3000u32 {
        if i.is_multiple_of(500) {
            clock.advance_secs(1);
            server.handle_timeout(clock.now());
        }
        let body = if rng.next_u32().is_multiple_of(5) {
            let n = rng.next_u32() % 6;
            let mut c = Vec::new();
            write_container_header(&mut c, n as usize);
            for _ in 0..n {
                let inner = body_of(&mut rng, 1);
                let id = client.msg_id(clock) - 4 * (rng.next_u32() % 3) as i64;
                let seq = (rng.next_u32() % 64) as i32;
                write_inner(
                    &mut c,
                    &OutMessage {
                        msg_id: id,
                        seq_no: seq,
                        body: &inner,
                    },
                );
            }
            c
        } else {
            body_of(&mut rng, 0)
        };
        let mut id = client.msg_id(clock);
        if rng.next_u32().is_multiple_of(10) {
            // ≡ 2 mod 4 (still even for the cipher), or 1000 s in the past.
            id += 2 * (rng.next_u32() % 2) as i64 - (((rng.next_u32() % 2) as i64 * 1000) << 32);
        }
        // Mostly a plausible seq_no (either parity), sometimes a random one.
        let seq = if rng.next_u32().is_multiple_of(10) {
            (client.seq.count() * 2 + (rng.next_u32() % 4) as i32 - 2).max(0)
        } else {
            client.seq.next(rng.next_u32().is_multiple_of(2))
        };
        if rng.next_u32().is_multiple_of(50) {
            client.session_id = rng.next_u64() as i64;
            client.seq = SeqNo::new();
        }
        let salt = client.salt;
        if rng.next_u32().is_multiple_of(20) {
            client.salt = rng.next_u64() as i64;
        }
        client.send_with(&mut server, clock, &body, id, seq);
        client.salt = salt;
        // The application polls only now and then.
        if i.is_multiple_of(7) {
            for e in events(&mut server) {
                match e {
                    ServerEvent::Request { id, .. } => {
                        seen.0 += 1;
                        let _ = server.respond(clock.now(), id, &[1, 0, 0, 0]);
                    }
                    ServerEvent::MessageRejected { reason, .. } => {
                        seen.1 += 1;
                        *reasons.entry(format!("{reason:?}")).or_insert(0) += 1;
                    }
                    ServerEvent::NewSession { .. } => seen.2 += 1,
                    _ => {}
                }
            }
        }
        if i.is_multiple_of(3) {
            let mut sink = Vec::new();
            server.poll_transmit(clock.now(), &mut sink);
        }
        if server.is_closed() {
            // Only a (fuzzed) ping_delay_disconnect may end it: reconnect, same key.
            assert_eq!(
                server.close_reason(),
                Some(CloseReason::PingDelayDisconnect),
                "seed {seed:#x}, message {i}"
            );
            reconnects += 1;
            server = new_server(&store, 1000 + u64::from(i));
            let mut next = Client::connect(kind, 2000 + u64::from(i), &mut server, clock);
            next.key = client.key.take();
            (next.salt, next.session_id, next.last_id) =
                (client.salt, client.session_id, client.last_id);
            next.seq = client.seq;
            client = next;
        }
        assert!(server.pending_events() <= 1024, "seed {seed:#x}");
    }
    assert!(
        store.borrow().session_count() <= 64,
        "parked sessions per key capped"
    );
    assert!(
        seen.0 > 100 && seen.1 > 100 && seen.2 > 10,
        "{seen:?} {reasons:?}: the input reaches every path"
    );
    eprintln!("requests, rejected, new sessions: {seen:?}; {reconnects} reconnects");
}

#[test]
fn an_answer_given_after_the_connection_died_reaches_the_client_on_the_next_one() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut first = new_server(&store, 22);
    let mut c1 = Client::connect(Kind::Plain(Framing::Full), 22, &mut first, clock);
    c1.handshake(&mut first, clock, None);
    let req = c1.send(&mut first, clock, &app_request(1), true);
    c1.messages(&mut first, clock);
    let (rid, _) = requests(&events(&mut first)).remove(0);
    first.close();
    // The application answers late, through the closed connection: parked with the session.
    first.respond(clock.now(), rid, &[7, 7, 7, 7]).unwrap();
    drop(first);
    let mut second = new_server(&store, 23);
    let mut c2 = Client::connect(Kind::Plain(Framing::Full), 23, &mut second, clock);
    c2.key = c1.key.clone();
    (c2.salt, c2.session_id, c2.last_id, c2.seq) = (c1.salt, c1.session_id, c1.last_id, c1.seq);
    c2.send(
        &mut second,
        clock,
        &functions::Ping { ping_id: 1 }.to_vec().unwrap(),
        false,
    );
    let msgs = c2.messages(&mut second, clock);
    assert_eq!(rpc_result(&msgs, req).as_deref(), Some(&[7, 7, 7, 7][..]));
    assert_eq!(count_new_session(&msgs), 0);
    // Answering twice is refused.
    assert_eq!(
        second.respond(clock.now(), rid, &[0; 4]),
        Err(mtproto::core::session::server::SendError::UnknownRequest)
    );
}

#[test]
fn destroy_auth_key_answers_ok_then_the_key_is_unknown() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 24);
    let mut client = Client::connect(Kind::Plain(Framing::Intermediate), 24, &mut server, clock);
    let key = client.handshake(&mut server, clock, None);
    let key_id = key.auth_key.id() as i64;
    client.send(
        &mut server,
        clock,
        &functions::DestroyAuthKey.to_vec().unwrap(),
        true,
    );
    let msgs = client.messages(&mut server, clock);
    assert!(
        msgs.iter()
            .any(|m| matches!(m.object(), Object::DestroyAuthKeyOk(_))),
        "{msgs:?}"
    );
    assert!(
        events(&mut server).contains(&ServerEvent::AuthKeyDestroyed {
            auth_key_id: key_id
        })
    );
    assert!(store.get(key_id).is_none());
    client.send(&mut server, clock, &app_request(1), true);
    let evs = client.receive(&mut server, clock);
    assert!(matches!(evs[..], [Ev::TransportError(-404)]), "{evs:?}");
    assert_eq!(
        store.borrow().session_count(),
        0,
        "no session parked for a destroyed key"
    );
}

#[test]
fn quick_acks_are_sent_and_their_backlog_is_bounded() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut server = new_server(&store, 25);
    let mut client = Client::connect(Kind::Plain(Framing::Intermediate), 25, &mut server, clock);
    let key = client.handshake(&mut server, clock, None);
    let ping = functions::Ping { ping_id: 1 }.to_vec().unwrap();
    let seal = |client: &mut Client| {
        let header = MessageHeader {
            salt: key.server_salt as _,
            session_id: client.session_id as _,
            msg_id: client.msg_id(clock) as _,
            seq_no: client.seq.next(false) as _,
        };
        let sealed = encrypt_message_to_vec(
            &key.auth_key,
            Side::Client,
            &header,
            &ping,
            &PaddingPolicy::default(),
            &mut client.rng,
        )
        .unwrap();
        let mut bytes = Vec::new();
        client
            .transport
            .encode(&sealed.bytes, true, &mut client.rng, &mut bytes)
            .unwrap();
        bytes
    };
    let bytes = seal(&mut client);
    server.handle_input(clock.now(), &bytes);
    let evs = client.receive(&mut server, clock);
    assert!(matches!(evs[0], Ev::QuickAck), "{evs:?}");
    // Nobody polls: 20,000 quick-ack requests leave at most 64 KiB (+ one token) waiting.
    for _ in 0..20_000 {
        let bytes = seal(&mut client);
        server.handle_input(clock.now(), &bytes);
    }
    let evs = client.receive(&mut server, clock);
    let quick_acks = evs.iter().filter(|e| matches!(e, Ev::QuickAck)).count();
    // An intermediate-framed quick ack is 4 bytes.
    assert!(
        (64 * 1024 / 4 - 16..=64 * 1024 / 4 + 1).contains(&quick_acks),
        "{quick_acks}"
    );
    assert!(
        evs.iter().any(|e| matches!(e, Ev::Payload(_))),
        "pongs still go out"
    );
}

/// Item 5 of the server review: `msg_resend_ans_req` (and `msgs_state_req`, duplicates,
/// `rpc_drop_answer`) find the kept answer to a request through an index, not a scan of every
/// kept message per id. 8,192 ids against 30,000 kept messages took ~1.4 s (debug build) with
/// the scan (8192 × 30000 steps); with the index, a few milliseconds.
#[test]
fn resend_requests_find_kept_answers_by_index_not_by_scan() {
    use mtproto::core::session::server::{
        IncomingMessage, ServerSalts, ServerSession, ServerSessionConfig,
    };
    const KEPT: usize = 30_000;
    let config = ServerSessionConfig {
        max_kept: KEPT + 16,
        max_outbox: KEPT + 16,
        ..ServerSessionConfig::default()
    };
    let mut s = ServerSession::new(config, 1, 0);
    let salts = ServerSalts::new([1; 32], 5, T0 as i64, 3600);
    let now = Clock(0).now();
    let mut last = plain::msg_id_from_time(now.unix);
    let mut seq = SeqNo::new();
    let mut msg = |body: &[u8], content: bool, s: &mut ServerSession| {
        last += 4;
        let m = IncomingMessage {
            salt: 5,
            session_id: 1,
            msg_id: last,
            seq_no: seq.next(content),
            body,
        };
        s.handle(now, &salts, m);
    };
    msg(
        &functions::Ping { ping_id: 1 }.to_vec().unwrap(),
        false,
        &mut s,
    );
    let update = types::RpcAnswerUnknown.to_vec().unwrap();
    for _ in 0..KEPT {
        s.push_update(&update).unwrap();
    }
    while s.poll_message(now).is_some() {}
    assert!(s.kept_len() >= KEPT);
    let ask = types::MsgResendAnsReq {
        msg_ids: (1..=8192).map(|i: i64| i << 2).collect(),
    }
    .to_vec()
    .unwrap();
    let started = std::time::Instant::now();
    msg(&ask, true, &mut s);
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
}

/// The handshake limit is a rate: `max_handshakes` within `handshake_window_micros`; once the
/// window has passed, the same connection may make keys again (PFS renewals).
#[test]
fn handshakes_per_connection_are_rate_limited_not_counted_forever() {
    let store: Store = Rc::default();
    let mut clock = Clock(0);
    let mut server = new_server(&store, 25);
    let mut client = Client::connect(Kind::Plain(Framing::Intermediate), 25, &mut server, clock);
    let max = config().max_handshakes;
    let window_secs = config().handshake_window_micros / 1_000_000;
    for round in 0..3 {
        for _ in 0..max {
            client.handshake(&mut server, clock, Some(3600));
        }
        assert!(!server.is_closed(), "round {round}");
        clock.advance_secs(window_secs);
    }
    for _ in 0..max {
        client.handshake(&mut server, clock, Some(3600));
    }
    // One more within the window: refused.
    let req_pq = functions::ReqPqMulti { nonce: &[1; 16] }.to_vec().unwrap();
    let id = client.msg_id(clock);
    client.send_payload(&mut server, clock, &plain::wrap(id, &req_pq));
    assert_eq!(server.close_reason(), Some(CloseReason::TooManyHandshakes));
}

/// Encrypts `body` as the client `c` would (next msg_id and seq_no), without sending it.
fn seal(c: &mut Client, clock: Clock, body: &[u8], content: bool) -> (i64, Vec<u8>) {
    let msg_id = c.msg_id(clock);
    let header = MessageHeader {
        salt: c.salt as _,
        session_id: c.session_id as _,
        msg_id: msg_id as _,
        seq_no: c.seq.next(content) as _,
    };
    let sealed = encrypt_message_to_vec(
        c.key.as_ref().unwrap(),
        Side::Client,
        &header,
        body,
        &PaddingPolicy::default(),
        &mut c.rng,
    )
    .unwrap();
    (msg_id, sealed.bytes)
}

/// A second client transport to `server` continuing `c1`'s key and session.
fn continue_on(c1: &Client, server: &mut Server, seed: u64, clock: Clock) -> Client {
    let mut c2 = Client::connect(Kind::Plain(Framing::Intermediate), seed, server, clock);
    c2.key = c1.key.clone();
    (c2.salt, c2.session_id, c2.last_id, c2.seq) = (c1.salt, c1.session_id, c1.last_id, c1.seq);
    c2
}

/// Server review item 1: a session lived in the store only while parked, so a second live
/// connection with the same key and session_id started it afresh (empty replay window) and
/// ran a captured request again.
#[test]
fn a_request_replayed_on_a_second_live_connection_is_a_duplicate() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut a = new_server(&store, 26);
    let mut c1 = Client::connect(Kind::Plain(Framing::Intermediate), 26, &mut a, clock);
    c1.handshake(&mut a, clock, None);
    let (req, sealed) = seal(&mut c1, clock, &app_request(1), true);
    c1.send_payload(&mut a, clock, &sealed);
    assert_eq!(requests(&events(&mut a)).len(), 1);
    // The attacker opens connection B while A is still up and replays the captured bytes.
    let mut b = new_server(&store, 27);
    let mut attacker = continue_on(&c1, &mut b, 28, clock);
    attacker.send_payload(&mut b, clock, &sealed);
    let evs = events(&mut b);
    assert!(requests(&evs).is_empty(), "ran again: {evs:?}");
    assert!(
        evs.contains(&ServerEvent::MessageRejected {
            msg_id: req,
            reason: Rejection::Duplicate
        }),
        "{evs:?}"
    );
    assert!(!a.is_closed() && !b.is_closed());
}

/// Item 1, the honest case: a mobile client reconnects while the old connection is half-open.
/// The new connection continues the session (no new_session_created, nothing runs twice), an
/// answer the application gives through the old connection reaches the client on the new one,
/// and the old connection closing later does not overwrite the session.
#[test]
fn a_client_moving_to_a_new_connection_takes_its_session_along() {
    let store: Store = Rc::default();
    let clock = Clock(0);
    let mut a = new_server(&store, 29);
    let mut c1 = Client::connect(Kind::Plain(Framing::Intermediate), 29, &mut a, clock);
    let key = c1.handshake(&mut a, clock, None);
    let key_id = key.auth_key.id() as i64;
    let (req, sealed) = seal(&mut c1, clock, &app_request(1), true);
    c1.send_payload(&mut a, clock, &sealed);
    let (rid, _) = requests(&events(&mut a)).remove(0);
    c1.messages(&mut a, clock); // new_session_created (and the ack)
    // A goes half-open; the client opens B and re-sends its request (same msg_id, in a new
    // container as a client does after a reconnect: here simply the same bytes).
    let mut b = new_server(&store, 30);
    let mut c2 = continue_on(&c1, &mut b, 31, clock);
    c2.send_payload(&mut b, clock, &sealed);
    let evs = events(&mut b);
    assert!(requests(&evs).is_empty(), "not run twice: {evs:?}");
    assert!(evs.contains(&ServerEvent::SessionResumed {
        auth_key_id: key_id,
        session_id: c1.session_id
    }));
    assert_eq!(count_new_session(&c2.messages(&mut b, clock)), 0);
    // The application answers through A, where the request arrived.
    a.respond(clock.now(), rid, &[5, 5, 5, 5]).unwrap();
    let mut dead = Vec::new();
    assert!(
        !a.poll_transmit(clock.now(), &mut dead),
        "A no longer carries it"
    );
    let msgs = c2.messages(&mut b, clock);
    assert_eq!(rpc_result(&msgs, req).as_deref(), Some(&[5, 5, 5, 5][..]));
    // A finally closes: B's session state is not overwritten by A's.
    let ack = types::MsgsAck {
        msg_ids: msgs.iter().map(|m| m.msg_id).collect(),
    }
    .to_vec()
    .unwrap();
    c2.send(&mut b, clock, &ack, false);
    a.close();
    drop(a);
    c2.send_payload(&mut b, clock, &sealed);
    assert!(requests(&events(&mut b)).is_empty(), "still a duplicate");
    let ping = functions::Ping { ping_id: 9 }.to_vec().unwrap();
    c2.send(&mut b, clock, &ping, false);
    let msgs = c2.messages(&mut b, clock);
    assert_eq!(count_new_session(&msgs), 0);
    assert!(
        rpc_result(&msgs, req).is_none(),
        "acknowledged: not sent again"
    );
    assert!(msgs.iter().any(|m| matches!(m.object(), Object::Pong(_))));
}
