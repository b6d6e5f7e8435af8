//! Every layer of mtproto-core together, client and server in memory: a transport the server
//! auto-detects (each plain framing, obfuscated2 without and with MTProxy secrets, fake TLS), the
//! auth key handshake over unencrypted messages, then MTProto 2.0 encrypted `ping` → `pong`.
//! The byte streams are delivered in random chunk sizes, so every layer sees split input.

use mtproto::core::crypto::message::{
    MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
};
use mtproto::core::crypto::{AuthKey, Side};
use mtproto::core::handshake::{
    AuthKeyResult, ClientConfig, ClientHandshake, ClientStep, RsaKeySet, RsaPrivateKey,
    ServerAuthKey, ServerConfig, ServerHandshake, ServerStep,
};
use mtproto::core::plain;
use mtproto::core::time::UnixTime;
use mtproto::core::tl::schema::{functions, types};
use mtproto::core::tl::{Deserialize, Serialize};
use mtproto::core::transport::{
    self, Codec, Detector, FakeTlsClient, Frame, Framing, ObfuscatedCodec, ProxySecret, Role,
    Status, Transport,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const NOW: u64 = 1_764_000_000;
const DC: i16 = -4;

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Plain(Framing),
    Obfuscated(Framing),
    /// Index into `secrets()`.
    Proxy(usize),
}

fn secrets() -> Vec<ProxySecret> {
    vec![
        ProxySecret::plain([0x42; 16]),
        ProxySecret::padded([0x43; 16]),
        ProxySecret::fake_tls([0x44; 16], b"example.com").unwrap(),
    ]
}

/// The receiving half of one direction: bytes not consumed yet, and the frames completed.
#[derive(Default)]
struct Inbox {
    pending: Vec<u8>,
}

impl Inbox {
    /// Decodes every complete frame of `pending` with `t` (payloads come without padding).
    fn frames(&mut self, t: &mut Transport) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !self.pending.is_empty() {
            let (used, status) = t.decode(&self.pending).expect("transport decode");
            let done = match status {
                Status::Complete(Frame::Payload { data, .. }) => {
                    out.push(data.to_vec());
                    false
                }
                Status::Complete(other) => panic!("unexpected frame {other:?}"),
                Status::Partial => true,
            };
            self.pending.drain(..used);
            if done {
                break;
            }
        }
        out
    }
}

/// Splits `bytes` into random chunks: the order of arrival a socket could produce.
fn chunks(bytes: &[u8], rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = (rng.next_u32() as usize % 97 + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a.to_vec());
        rest = b;
    }
    out
}

struct Server {
    detector: Option<Detector>,
    transport: Option<Transport>,
    inbox: Inbox,
    handshake: ServerHandshake,
    key: Option<Box<ServerAuthKey>>,
}

impl Server {
    fn new() -> Self {
        let config = transport::ServerConfig {
            secrets: secrets(),
            ..transport::ServerConfig::default()
        };
        Self {
            detector: Some(Detector::new(config)),
            transport: None,
            inbox: Inbox::default(),
            handshake: ServerHandshake::new(ServerConfig::demo()),
            key: None,
        }
    }

    /// Feeds bytes from the client; returns bytes to send back.
    fn receive(&mut self, bytes: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
        let mut reply = Vec::new();
        let mut input = bytes;
        if let Some(det) = self.detector.as_mut() {
            let (used, status) = det.decode(input, now(), rng).expect("detect");
            input = &input[used..];
            match status {
                Status::Complete(found) => {
                    reply.extend_from_slice(&found.reply);
                    self.transport = Some(found.transport);
                    self.detector = None;
                }
                Status::Partial => return reply,
            }
        }
        self.inbox.pending.extend_from_slice(input);
        let t = self.transport.as_mut().expect("detected");
        for frame in self.inbox.frames(t) {
            let answer = match &self.key {
                None => {
                    let (_, body) = plain::unwrap(&frame).expect("plain message");
                    let id = plain::msg_id_from_time(now()) | 1;
                    match self
                        .handshake
                        .handle(now(), body, rng)
                        .expect("server step")
                    {
                        ServerStep::Send(b) => plain::wrap(id, &b),
                        ServerStep::Done { reply, key } => {
                            self.key = Some(key);
                            plain::wrap(id, &reply)
                        }
                    }
                }
                Some(key) => pong(&key.auth_key, frame, rng),
            };
            t.encode(&answer, false, rng, &mut reply).expect("encode");
        }
        reply
    }
}

/// The server's answer to an encrypted ping.
fn pong(key: &AuthKey, mut frame: Vec<u8>, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let msg = decrypt_message(key, Side::Client, &mut frame).expect("server decrypts");
    let ping = functions::Ping::from_bytes(msg.body).expect("a ping");
    let body = types::Pong {
        msg_id: msg.msg_id,
        ping_id: ping.ping_id,
    }
    .to_vec()
    .unwrap();
    let header = MessageHeader {
        salt: msg.salt,
        session_id: msg.session_id,
        msg_id: msg.msg_id + 1, // odd: a server message
        seq_no: 1,
    };
    let policy = PaddingPolicy::default();
    encrypt_message_to_vec(key, Side::Server, &header, &body, &policy, rng)
        .unwrap()
        .bytes
}

/// Runs the whole stack for one client transport and seed.
fn run(kind: Client, seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut server_rng = ChaCha20Rng::seed_from_u64(!seed);
    let mut wire_rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let secrets = secrets();
    let mut server = Server::new();
    let mut to_server = Vec::new();

    // Transport set-up (fake TLS first exchanges its hellos).
    let mut transport = match kind {
        Client::Plain(f) => Transport::Plain(Codec::new(f, Role::Client)),
        Client::Obfuscated(f) => {
            Transport::Obfuscated(ObfuscatedCodec::client(f, Some(DC), None, &mut rng).unwrap())
        }
        Client::Proxy(i) if secrets[i].is_fake_tls() => {
            let mut tls = FakeTlsClient::new(&secrets[i], now(), &mut rng, &mut to_server).unwrap();
            let mut answer = Vec::new();
            for c in chunks(&to_server, &mut wire_rng) {
                answer.extend(server.receive(&c, &mut server_rng));
            }
            to_server.clear();
            let (used, status) = tls.decode(&answer).unwrap();
            assert_eq!((used, status), (answer.len(), Status::Complete(())));
            Transport::Obfuscated(tls.into_codec(Some(DC), &mut rng).unwrap())
        }
        Client::Proxy(i) => Transport::Obfuscated(
            ObfuscatedCodec::client(Framing::Intermediate, Some(DC), Some(&secrets[i]), &mut rng)
                .unwrap(),
        ),
    };
    let mut inbox = Inbox::default();

    // One request, one answer, through the random-chunk wire.
    let mut exchange = |payload: &[u8], transport: &mut Transport, rng: &mut ChaCha20Rng| {
        transport
            .encode(payload, false, rng, &mut to_server)
            .unwrap();
        let mut back = Vec::new();
        for c in chunks(&to_server, &mut wire_rng) {
            back.extend(server.receive(&c, &mut server_rng));
        }
        to_server.clear();
        for c in chunks(&back, &mut wire_rng) {
            inbox.pending.extend_from_slice(&c);
        }
        let mut frames = inbox.frames(transport);
        assert_eq!(frames.len(), 1, "{kind:?}: one answer per request");
        frames.pop().unwrap()
    };

    // Handshake.
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    let mut hs = ClientHandshake::new(ClientConfig::new(keys, i32::from(DC)));
    let mut body = hs.start(&mut rng).unwrap();
    let result: Box<AuthKeyResult> = loop {
        let msg = plain::wrap(plain::msg_id_from_time(now()), &body);
        let answer = exchange(&msg, &mut transport, &mut rng);
        let (_, answer) = plain::unwrap(&answer).expect("plain answer");
        match hs.handle(now(), answer, &mut rng).expect("client step") {
            ClientStep::Send(next) => body = next,
            ClientStep::Done(result) => break result,
        }
    };
    // Encrypted ping → pong.
    let ping_id = rng.next_u64() as i64;
    let header = MessageHeader {
        salt: result.server_salt,
        session_id: rng.next_u64().cast_signed(),
        msg_id: ((NOW << 32) | 4).cast_signed(),
        seq_no: 1,
    };
    let ping = functions::Ping { ping_id }.to_vec().unwrap();
    let policy = PaddingPolicy::default();
    let sealed = encrypt_message_to_vec(
        &result.auth_key,
        Side::Client,
        &header,
        &ping,
        &policy,
        &mut rng,
    )
    .unwrap();
    let mut answer = exchange(&sealed.bytes, &mut transport, &mut rng);
    let msg =
        decrypt_message(&result.auth_key, Side::Server, &mut answer).expect("client decrypts");
    assert_eq!(msg.session_id, header.session_id);
    let pong = types::Pong::from_bytes(msg.body).unwrap();
    assert_eq!(
        (pong.msg_id, pong.ping_id),
        (header.msg_id, ping_id),
        "{kind:?}"
    );

    // Both sides derived the same key and salt; the server read the DC from the transport.
    let server_key = server.key.as_ref().expect("server finished too");
    assert_eq!(result.auth_key.id(), server_key.auth_key.id(), "{kind:?}");
    assert_eq!(result.auth_key.as_bytes(), server_key.auth_key.as_bytes());
    assert_eq!(result.server_salt, server_key.server_salt);
    assert_eq!(server_key.dc, i32::from(DC));
}

const KINDS: [Client; 10] = [
    Client::Plain(Framing::Abridged),
    Client::Plain(Framing::Intermediate),
    Client::Plain(Framing::PaddedIntermediate),
    Client::Plain(Framing::Full),
    Client::Obfuscated(Framing::Abridged),
    Client::Obfuscated(Framing::Intermediate),
    Client::Obfuscated(Framing::PaddedIntermediate),
    Client::Proxy(0),
    Client::Proxy(1),
    Client::Proxy(2),
];

#[test]
fn every_transport_carries_handshake_and_encrypted_ping() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        for seed in 0..3 {
            run(kind, (i as u64) << 8 | seed);
        }
    }
}
