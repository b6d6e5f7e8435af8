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
//!
//! Server mode, for other clients (e.g. the Telethon interop test in `tests/interop/`):
//!
//! ```text
//! cargo run --release --example demo -- --serve 127.0.0.1:PORT [--legacy-rsa] [--secret HEX]...
//!     [--max-conns N] [--seed N]
//! ```
//!
//! It prints the demo RSA public key (`rsa: fingerprint=… n=… e=…`), then accepts connections:
//! transport auto-detection (any framing, obfuscated2, the MTProxy secrets given with `--secret`),
//! the server handshake (`--legacy-rsa` also accepts the pre-RSA_PAD `SHA1 + data + padding`
//! encoding old clients use), then MTProto 2.0 messages: `ping` → `pong`, any other
//! content-related message echoed in an `rpc_result`. One line per finished handshake:
//! `handshake: auth_key_id=… transport=…` (no secrets). With `--max-conns N` it exits after N
//! connections, with status 1 if any of them failed.

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
    ClientConfig, ClientHandshake, ClientStep, RsaKeySet, ServerConfig, ServerHandshake, ServerStep,
};
use mtproto::core::plain;
use mtproto::core::time::UnixTime;
use mtproto::core::tl::schema::{functions, types};
use mtproto::core::tl::{Deserialize, Serialize};
use mtproto::core::transport::{
    self, Detector, Frame, Framing, ObfuscatedCodec, ProxySecret, SecretKind, Status, Transport,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

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
        self.recv_or_eof()?
            .ok_or_else(|| "connection closed".into())
    }

    /// The next payload, or `None` if the peer closed the connection between two frames.
    /// (The transport hands out payloads without padded-intermediate padding.)
    fn recv_or_eof(&mut self) -> Res<Option<Vec<u8>>> {
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
                    return Ok(Some(frame?));
                }
                if !self.pending.is_empty() {
                    continue;
                }
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// Message ids for the few encrypted messages of the demo client: `unixtime * 2^32` plus a
/// counter, client ids divisible by 4 (`mtproto_description.md`, "Message Identifier"). The
/// session layer will own this.
fn msg_id(time_offset: i64, counter: &mut i64) -> i64 {
    let secs = UnixTime::now().as_secs() as i64 + time_offset;
    *counter += 1;
    (secs << 32) | (*counter << 2)
}

/// Server message ids (`mtproto_description.md`, "Message Identifier"): time-based (the
/// fraction of the second in the low 32 bits, as clients do), ≡ 1 (mod 4) for responses, and
/// strictly increasing on the connection even if the clock stalls or steps back.
#[derive(Default)]
struct ServerMsgIds {
    last: i64,
}

impl ServerMsgIds {
    fn next(&mut self) -> i64 {
        let from_clock = plain::msg_id_from_time(UnixTime::now()) | 1;
        self.last = from_clock.max(self.last + 4);
        self.last
    }
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

/// What a served connection did, for the log line.
struct Served {
    auth_key_id: i64,
    transport: String,
    requests: usize,
}

fn serve(listener: TcpListener, secret: ProxySecret, mut rng: ChaCha20Rng) -> Res<()> {
    let (stream, _) = listener.accept()?;
    let config = transport::ServerConfig {
        secrets: vec![secret],
        ..transport::ServerConfig::default()
    };
    serve_connection(stream, config, ServerConfig::demo(), &mut rng, |_| {})?;
    Ok(())
}

/// One connection: transport detection, the server handshake, then encrypted requests until
/// the client hangs up. `on_key` sees each finished handshake before the encrypted part.
fn serve_connection(
    stream: TcpStream,
    transports: transport::ServerConfig,
    handshake: ServerConfig,
    rng: &mut ChaCha20Rng,
    on_key: impl FnOnce(&Served),
) -> Res<Served> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let (mut conn, layer) = accept_transport(stream, transports, rng)?;
    let mut ids = ServerMsgIds::default();

    // Handshake, server side.
    let mut hs = ServerHandshake::new(handshake);
    let key = loop {
        let frame = conn.recv()?;
        let (_, body) = plain::unwrap(&frame)?;
        let id = ids.next();
        match hs.handle(UnixTime::now(), body, rng)? {
            ServerStep::Send(reply) => conn.send(&plain::wrap(id, &reply), rng)?,
            ServerStep::Done { reply, key } => {
                conn.send(&plain::wrap(id, &reply), rng)?;
                break key;
            }
        }
    };
    // Behind fake TLS the framing is only known after the first frames: label it now.
    let framing = match conn.transport.framing() {
        Some(Framing::Abridged) => "abridged",
        Some(Framing::Intermediate) => "intermediate",
        Some(Framing::PaddedIntermediate) => "padded_intermediate",
        Some(Framing::Full) => "full",
        None => "unknown",
    };
    let mut served = Served {
        auth_key_id: key.auth_key.id(),
        transport: format!("{layer}/{framing}"),
        requests: 0,
    };
    on_key(&served);

    // Encrypted messages until the client hangs up: ping → pong, any other content-related
    // message is echoed back in an rpc_result; non-content-related ones (acks) get no answer.
    let mut seq = 0i32;
    while let Some(mut frame) = conn.recv_or_eof()? {
        let (reply, header) = {
            let msg: DecryptedMessage<'_> =
                decrypt_message(&key.auth_key, Side::Client, &mut frame)
                    .map_err(|e| format!("server: {e}"))?;
            if msg.seq_no % 2 == 0 {
                continue;
            }
            let req_msg_id = msg.msg_id;
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
                salt: key.server_salt,
                session_id: msg.session_id,
                msg_id: ids.next(),
                seq_no: seq * 2 - 1, // content-related
            };
            (reply, header)
        };
        let sealed = encrypt(&key.auth_key, Side::Server, &header, &reply, rng)?;
        conn.send(&sealed, rng)?;
        served.requests += 1;
    }
    Ok(served)
}

/// Reads the first bytes until the detector knows the client's transport. Returns the
/// connection and the transport's outer layer: `plain`, `obfuscated`, `mtproxy` (plain secret),
/// `mtproxy-dd` or `mtproxy-ee` (fake TLS).
fn accept_transport(
    mut stream: TcpStream,
    config: transport::ServerConfig,
    rng: &mut ChaCha20Rng,
) -> Res<(Conn, &'static str)> {
    let secrets = config.secrets.clone();
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
            let secret = found.secret_index.and_then(|i| secrets.get(i));
            let layer = match (&found.transport, secret.map(ProxySecret::kind)) {
                (Transport::Plain(_), _) => "plain",
                (Transport::Obfuscated(_), None) => "obfuscated",
                (Transport::Obfuscated(_), Some(SecretKind::Plain)) => "mtproxy",
                (Transport::Obfuscated(_), Some(SecretKind::Padded)) => "mtproxy-dd",
                (Transport::Obfuscated(_), Some(_)) => "mtproxy-ee",
            };
            let conn = Conn {
                stream,
                transport: found.transport,
                pending: input,
                out: Vec::new(),
            };
            return Ok((conn, layer));
        }
    }
}

/// Options of the `--serve` mode.
struct ServeOptions {
    addr: String,
    legacy_rsa: bool,
    secrets: Vec<ProxySecret>,
    max_conns: Option<usize>,
    seed: Option<u64>,
}

impl ServeOptions {
    /// `None` if `--serve` is absent.
    fn parse(args: &[String]) -> Res<Option<Self>> {
        if !args.iter().any(|a| a == "--serve") {
            return Ok(None);
        }
        let mut opts = ServeOptions {
            addr: String::new(),
            legacy_rsa: false,
            secrets: Vec::new(),
            max_conns: None,
            seed: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--serve" => opts.addr = value()?.clone(),
                "--legacy-rsa" => opts.legacy_rsa = true,
                "--secret" => opts.secrets.push(ProxySecret::parse(value()?)?),
                "--max-conns" => opts.max_conns = Some(value()?.parse()?),
                "--seed" => opts.seed = Some(value()?.parse()?),
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        Ok(Some(opts))
    }
}

/// `--serve`: accept connections (one thread each) until `--max-conns` have been handled.
fn serve_forever(opts: ServeOptions) -> Res<()> {
    let listener = TcpListener::bind(&opts.addr)?;
    let handshake = ServerConfig {
        accept_legacy_padding: opts.legacy_rsa,
        ..ServerConfig::demo()
    };
    let transports = transport::ServerConfig {
        secrets: opts.secrets,
        ..transport::ServerConfig::default()
    };
    // The public half of the demo key, for clients that need it (its private half is public
    // too: `RsaPrivateKey::demo`).
    let public = mtproto::core::handshake::RsaPrivateKey::demo()
        .public_key()
        .clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    println!(
        "rsa: fingerprint={:016x} n={} e=010001",
        public.fingerprint(),
        hex(&public.modulus_be())
    );
    println!(
        "serving on {} (legacy RSA padding {}, {} MTProxy secret(s))",
        listener.local_addr()?,
        if opts.legacy_rsa { "on" } else { "off" },
        transports.secrets.len()
    );

    let mut workers = Vec::new();
    let mut index = 0u64;
    while opts.max_conns.is_none_or(|max| workers.len() < max) {
        let (stream, peer) = listener.accept()?;
        let mut rng = match opts.seed {
            Some(s) => ChaCha20Rng::seed_from_u64(s.wrapping_add(index)),
            None => rand::make_rng::<ChaCha20Rng>(),
        };
        index += 1;
        let (transports, handshake) = (transports.clone(), handshake.clone());
        let worker = thread::spawn(move || {
            let outcome = serve_connection(stream, transports, handshake, &mut rng, |s| {
                println!(
                    "handshake: auth_key_id={:016x} transport={} peer={peer}",
                    s.auth_key_id, s.transport
                );
            });
            match outcome {
                Ok(s) => {
                    println!(
                        "closed: auth_key_id={:016x} requests={}",
                        s.auth_key_id, s.requests
                    );
                    true
                }
                Err(e) => {
                    eprintln!("connection from {peer} failed: {e}");
                    false
                }
            }
        });
        if opts.max_conns.is_some() {
            workers.push(worker);
        }
    }
    let failed = workers
        .into_iter()
        .map(|w| w.join())
        .filter(|outcome| !matches!(outcome, Ok(true)))
        .count();
    if failed > 0 {
        return Err(format!("{failed} connection(s) failed").into());
    }
    println!("served: ok");
    Ok(())
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

    let session_id = rng.next_u64() as i64;
    let mut counter = 0;
    let mut seq = 0i32;
    let mut call = |conn: &mut Conn, rng: &mut ChaCha20Rng, body: &[u8]| -> Res<(i64, Vec<u8>)> {
        seq += 1;
        let header = MessageHeader {
            salt: result.server_salt,
            session_id,
            msg_id: msg_id(result.time_offset, &mut counter),
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
    if pong.ping_id != ping_id || pong.msg_id != sent_id {
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
    if result.req_msg_id != sent_id || result.result != request.as_slice() {
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(opts) = ServeOptions::parse(&args)? {
        return serve_forever(opts);
    }
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
        None => (
            rand::make_rng::<ChaCha20Rng>(),
            rand::make_rng::<ChaCha20Rng>(),
        ),
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
