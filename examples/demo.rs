//! The project's main job on a fresh machine: `cargo run --release --example demo`.
//!
//! A built-in server and a client talk over loopback TCP using only `mtproto-core`:
//! 1. transport: obfuscated2 (intermediate framing) with an MTProxy-style secret, DC 2; the
//!    server auto-detects the transport from the first bytes;
//! 2. handshake: `req_pq_multi` → `resPQ` → `req_DH_params` (RSA_PAD) → `server_DH_params_ok` →
//!    `set_client_DH_params` → `dh_gen_ok`, client and server state machines on both ends;
//! 3. MTProto 2.0 encrypted messages: `ping` → `pong`, then an opaque request echoed back in an
//!    `rpc_result`.
//!
//! The session layer (msg_id/seqno bookkeeping, acks, salts, containers) is not built yet, so the
//! few fields it would manage are filled in by hand here; this example is the stand-in for the
//! `mtproto demo` tool until then. Pass `--seed N` for a deterministic run.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use mtproto::core::crypto::message::{
    DecryptedMessage, MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
};
use mtproto::core::crypto::{AuthKey, Side};
use mtproto::core::handshake::{
    ClientConfig, ClientHandshake, ClientStep, RsaKeySet, ServerConfig, ServerHandshake,
    ServerStep, plain,
};
use mtproto::core::time::UnixTime;
use mtproto::core::tl::schema::{functions, types};
use mtproto::core::tl::{Deserialize, Serialize};
use mtproto::core::transport::{
    self, Detector, Frame, Framing, ObfuscatedCodec, ProxySecret, Status, Transport,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const DC: i16 = 2;

/// A TCP stream with an MTProto transport on top: whole payloads in, whole payloads out.
struct Conn {
    stream: TcpStream,
    transport: Transport,
    /// Received bytes the transport has not consumed yet.
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl Conn {
    fn send(&mut self, payload: &[u8], rng: &mut ChaCha20Rng) -> Res<()> {
        self.out.clear();
        self.transport.encode(payload, false, rng, &mut self.out)?;
        self.stream.write_all(&self.out)?;
        Ok(())
    }

    fn recv(&mut self) -> Res<Vec<u8>> {
        let mut buf = [0u8; 4096];
        loop {
            if !self.pending.is_empty() {
                let (used, status) = self.transport.decode(&self.pending)?;
                let frame = match status {
                    Status::Complete(Frame::Payload { data, .. }) => Some(Ok(data.to_vec())),
                    Status::Complete(Frame::TransportError(code)) => {
                        Some(Err(format!("transport error {code}")))
                    }
                    Status::Complete(Frame::QuickAck(_)) | Status::Partial => None,
                };
                self.pending.drain(..used);
                if let Some(frame) = frame {
                    return Ok(frame?);
                }
                if !self.pending.is_empty() {
                    continue;
                }
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// Message ids for the few encrypted messages of the demo: `unixtime * 2^32` plus a counter,
/// client ids divisible by 4, server ids ≡ 1 (mod 4) (`mtproto_description.md`, "Message
/// Identifier"). The session layer will own this.
fn msg_id(time_offset: i64, counter: &mut u64, server: bool) -> u64 {
    let secs = UnixTime::now().as_secs() as i64 + time_offset;
    *counter += 1;
    ((secs as u64) << 32) | (*counter << 2) | u64::from(server)
}

fn encrypt(
    key: &AuthKey,
    side: Side,
    header: &MessageHeader,
    body: &[u8],
    rng: &mut ChaCha20Rng,
) -> Res<Vec<u8>> {
    Ok(encrypt_message_to_vec(key, side, header, body, &PaddingPolicy::default(), rng)?.bytes)
}

fn constructor(body: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(body.get(..4)?.try_into().ok()?))
}

// ---------------------------------------------------------------------------------------------
// The built-in server.

fn serve(listener: TcpListener, secret: ProxySecret, mut rng: ChaCha20Rng) -> Res<()> {
    let (stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut conn = accept_transport(stream, secret, &mut rng)?;

    // Handshake, server side.
    let mut hs = ServerHandshake::new(ServerConfig::demo());
    let mut counter = 0;
    let key = loop {
        let frame = conn.recv()?;
        let (_, body) = plain::unwrap(&frame)?;
        let id = msg_id(0, &mut counter, true) as i64;
        match hs.handle(UnixTime::now(), body, &mut rng)? {
            ServerStep::Send(reply) => conn.send(&plain::wrap(id, &reply), &mut rng)?,
            ServerStep::Done { reply, key } => {
                conn.send(&plain::wrap(id, &reply), &mut rng)?;
                break key;
            }
        }
    };

    // Encrypted requests until the client hangs up: ping → pong, anything else is echoed back.
    let mut seq = 0u32;
    while let Ok(mut frame) = conn.recv() {
        let (reply, header) = {
            let msg: DecryptedMessage<'_> =
                decrypt_message(&key.auth_key, Side::Client, &mut frame)
                    .map_err(|e| format!("server: {e}"))?;
            let req_msg_id = msg.msg_id as i64;
            let reply = if constructor(msg.body) == Some(functions::Ping::CONSTRUCTOR_ID) {
                let ping = functions::Ping::from_bytes(msg.body)?;
                types::Pong {
                    msg_id: req_msg_id,
                    ping_id: ping.ping_id,
                }
                .to_vec()?
            } else {
                types::RpcResult {
                    req_msg_id,
                    result: msg.body,
                }
                .to_vec()?
            };
            seq += 1;
            let header = MessageHeader {
                salt: msg.salt,
                session_id: msg.session_id,
                msg_id: msg_id(0, &mut counter, true),
                seq_no: seq * 2 - 1, // content-related
            };
            (reply, header)
        };
        let sealed = encrypt(&key.auth_key, Side::Server, &header, &reply, &mut rng)?;
        conn.send(&sealed, &mut rng)?;
    }
    Ok(())
}

/// Reads the first bytes until the detector knows the client's transport.
fn accept_transport(
    mut stream: TcpStream,
    secret: ProxySecret,
    rng: &mut ChaCha20Rng,
) -> Res<Conn> {
    let config = transport::ServerConfig {
        secrets: vec![secret],
        ..transport::ServerConfig::default()
    };
    let mut detector = Detector::new(config);
    let mut buf = [0u8; 4096];
    let mut input = Vec::new();
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err("client left before choosing a transport".into());
        }
        input.extend_from_slice(&buf[..n]);
        let (used, status) = detector.decode(&input, UnixTime::now(), rng)?;
        input.drain(..used);
        if let Status::Complete(found) = status {
            stream.write_all(&found.reply)?;
            return Ok(Conn {
                stream,
                transport: found.transport,
                pending: input,
                out: Vec::new(),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client.

fn run_client(addr: std::net::SocketAddr, secret: &ProxySecret, mut rng: ChaCha20Rng) -> Res<()> {
    let t0 = Instant::now();
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let codec = ObfuscatedCodec::client(Framing::Intermediate, Some(DC), Some(secret), &mut rng)?;
    let mut conn = Conn {
        stream,
        transport: Transport::Obfuscated(codec),
        pending: Vec::new(),
        out: Vec::new(),
    };
    println!("transport: obfuscated2 + intermediate, MTProxy secret, dc {DC}, {addr}");

    // Handshake, client side, trusting the built-in server's public key.
    let demo_key = mtproto::core::handshake::RsaPrivateKey::demo();
    let keys = RsaKeySet::new().with(demo_key.public_key().clone());
    let mut hs = ClientHandshake::new(ClientConfig::new(keys, i32::from(DC)));
    let mut body = hs.start(&mut rng)?;
    let result = loop {
        let id = plain::msg_id_from_time(UnixTime::now());
        conn.send(&plain::wrap(id, &body), &mut rng)?;
        let frame = conn.recv()?;
        let (_, answer) = plain::unwrap(&frame)?;
        match hs.handle(UnixTime::now(), answer, &mut rng)? {
            ClientStep::Send(next) => body = next,
            ClientStep::Done(result) => break result,
        }
    };
    let handshake = t0.elapsed();
    println!(
        "handshake: auth key {:016x} in {:.1} ms (time offset {} s)",
        result.auth_key.id(),
        handshake.as_secs_f64() * 1e3,
        result.time_offset
    );

    let session_id = rng.next_u64();
    let mut counter = 0;
    let mut seq = 0u32;
    let mut call = |conn: &mut Conn, rng: &mut ChaCha20Rng, body: &[u8]| -> Res<(u64, Vec<u8>)> {
        seq += 1;
        let header = MessageHeader {
            salt: result.server_salt,
            session_id,
            msg_id: msg_id(result.time_offset, &mut counter, false),
            seq_no: seq * 2 - 1,
        };
        conn.send(
            &encrypt(&result.auth_key, Side::Client, &header, body, rng)?,
            rng,
        )?;
        let mut frame = conn.recv()?;
        let msg = decrypt_message(&result.auth_key, Side::Server, &mut frame)
            .map_err(|e| format!("client: {e}"))?;
        if msg.session_id != session_id {
            return Err("reply for another session".into());
        }
        Ok((header.msg_id, msg.body.to_vec()))
    };

    // ping → pong
    let ping_id = rng.next_u64() as i64;
    let t = Instant::now();
    let (sent_id, reply) = call(&mut conn, &mut rng, &functions::Ping { ping_id }.to_vec()?)?;
    let pong = types::Pong::from_bytes(&reply)?;
    if pong.ping_id != ping_id || pong.msg_id != sent_id as i64 {
        return Err("pong does not answer our ping".into());
    }
    println!(
        "ping: pong for ping_id {ping_id} in {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // An opaque request (help.getConfig's constructor and a payload) comes back in rpc_result.
    let mut request = 0xc4f9_186b_u32.to_le_bytes().to_vec();
    request.extend_from_slice(b"echo through MTProto 2.0 :-)");
    request.resize(request.len().next_multiple_of(4), 0);
    let t = Instant::now();
    let (sent_id, reply) = call(&mut conn, &mut rng, &request)?;
    let result = types::RpcResult::from_bytes(&reply)?;
    if result.req_msg_id != sent_id as i64 || result.result != request.as_slice() {
        return Err("echo mismatch".into());
    }
    println!(
        "echo: {} bytes back in rpc_result in {:.2} ms",
        result.result.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> Res<()> {
    let seed = std::env::args()
        .skip_while(|a| a != "--seed")
        .nth(1)
        .map(|s| s.parse::<u64>())
        .transpose()?;
    let (mut client_rng, server_rng) = match seed {
        Some(s) => (
            ChaCha20Rng::seed_from_u64(s),
            ChaCha20Rng::seed_from_u64(!s),
        ),
        None => (ChaCha20Rng::from_os_rng(), ChaCha20Rng::from_os_rng()),
    };
    let mut key = [0u8; 16];
    client_rng.fill_bytes(&mut key);
    let secret = ProxySecret::plain(key);

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_secret = secret.clone();
    let server = thread::spawn(move || serve(listener, server_secret, server_rng));
    let outcome = run_client(addr, &secret, client_rng);
    let served = server.join().map_err(|_| "server thread panicked")?;
    outcome?;
    served?;
    println!("demo: ok");
    Ok(())
}
