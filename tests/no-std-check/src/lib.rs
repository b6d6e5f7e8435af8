//! A no_std consumer of mtproto-core. Every layer gets at least one call here so the linker keeps
//! it; if std sneaks into the graph, the duplicate `panic_impl` lang item breaks the build.
#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use rand_core::Rng;

/// A bump allocator over a static arena: enough to link and exercise `alloc`.
struct Bump;

const ARENA: usize = 1 << 20;
static mut HEAP: [u8; ARENA] = [0; ARENA];
static NEXT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        use core::sync::atomic::Ordering;
        let align = layout.align();
        let mut cur = NEXT.load(Ordering::Relaxed);
        loop {
            let start = (cur + align - 1) & !(align - 1);
            let end = match start.checked_add(layout.size()) {
                Some(e) if e <= ARENA => e,
                _ => return core::ptr::null_mut(),
            };
            match NEXT.compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return unsafe { (&raw mut HEAP).cast::<u8>().add(start) },
                Err(now) => cur = now,
            }
        }
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOC: Bump = Bump;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// A deterministic toy RNG (an LCG): enough to drive the code paths, never for real keys.
struct ToyRng(u64);

impl rand_core::TryRng for ToyRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
        Ok(self.next_u64() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
        for b in dst {
            *b = (self.next_u64() >> 33) as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ToyRng {}

/// Exercises the time types.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_time(secs: u64) -> u64 {
    mtproto_core::time::UnixTime::from_secs(secs).as_nanos()
}

/// Exercises the crypto layer: AES-256-IGE, the auth_key_id, an MTProto 2.0 message encrypted
/// and decrypted, and a v1 (PFS bind) encryption.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_crypto(seed: u8) -> i64 {
    use mtproto_core::crypto::message::{
        MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
    };
    use mtproto_core::crypto::{AuthKey, Side, ige, v1};
    let mut buf = [seed; 64];
    if ige::aes256_ige_encrypt(&[seed; 32], &[seed; 32], &mut buf).is_err() {
        return 0;
    }
    let key = AuthKey::from_bytes([buf[0]; 256]);
    let mut rng = ToyRng(u64::from(seed));
    // An MTProto 2.0 message both ways, and a v1 (PFS bind) encryption.
    let header = MessageHeader {
        salt: 1,
        session_id: 2,
        msg_id: 4,
        seq_no: 1,
    };
    let mut acc = key.id();
    if let Ok(mut sealed) = encrypt_message_to_vec(
        &key,
        Side::Client,
        &header,
        &[seed; 16],
        &PaddingPolicy::default(),
        &mut rng,
    ) && let Ok(msg) = decrypt_message(&key, Side::Client, &mut sealed.bytes)
    {
        acc ^= msg.msg_id;
    }
    let bound =
        v1::encrypt_bind_auth_key_inner(&key, 4, &[seed; v1::BIND_AUTH_KEY_INNER_LEN], &mut rng);
    acc ^ bound.len() as i64
}

/// Exercises the handshake layer: pq factorization, the built-in RSA keys, and the first
/// client -> server -> client round (req_pq_multi, resPQ, RSA_PAD'd req_DH_params).
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_handshake(pq: u64) -> i64 {
    use mtproto_core::handshake::{
        ClientConfig, ClientHandshake, ClientStep, RsaKeySet, ServerConfig, ServerHandshake,
        ServerStep,
    };
    use mtproto_core::time::UnixTime;
    let fp = mtproto_core::handshake::rsa::RsaPublicKey::telegram_production().fingerprint();
    let mut acc = match mtproto_core::handshake::pq::factorize(pq) {
        Ok((p, _)) => p.cast_signed() ^ fp,
        Err(_) => fp,
    };
    let mut rng = ToyRng(pq);
    let now = UnixTime::from_secs(pq >> 32);
    let server_cfg = ServerConfig::demo();
    let keys = RsaKeySet::new().with(server_cfg.keys[0].public_key().clone());
    let mut client = ClientHandshake::new(ClientConfig::new(keys, 2));
    let mut server = ServerHandshake::new(server_cfg);
    if let Ok(req) = client.start(&mut rng)
        && let Ok(ServerStep::Send(res_pq)) = server.handle(now, &req, &mut rng)
        && let Ok(ClientStep::Send(req_dh)) = client.handle(now, &res_pq, &mut rng)
    {
        acc ^= req_dh.len() as i64;
    }
    acc
}

/// Exercises the TL layer: encodes `req_pq_multi`, decodes it back, and runs the any-object decoder.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_tl(seed: u8) -> u32 {
    use mtproto_core::tl::schema::{Object, functions::ReqPqMulti};
    use mtproto_core::tl::{Deserialize, Serialize};
    let nonce = [seed; 16];
    let Ok(bytes) = (ReqPqMulti { nonce: &nonce }).to_vec() else {
        return 0;
    };
    let unknown = Object::from_bytes(&bytes).map_or(0, |o| o.constructor_id());
    match ReqPqMulti::from_bytes(&bytes) {
        Ok(q) => u32::from(q.nonce[0]) ^ unknown,
        Err(_) => 0,
    }
}

/// Exercises the transports: abridged encode + decode, an obfuscated client init, and a fake-TLS
/// ClientHello through the server-side detector.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_transport(seed: u64) -> usize {
    use mtproto_core::time::UnixTime;
    use mtproto_core::transport::{
        Codec, Detector, FakeTlsClient, Framing, ObfuscatedCodec, ProxySecret, Role, ServerConfig,
        Status,
    };
    let mut rng = ToyRng(seed);
    let mut out = alloc::vec::Vec::new();
    let mut c = Codec::new(Framing::Abridged, Role::Client);
    if c.encode(&[1, 2, 3, 4], true, &mut rng, &mut out).is_err() {
        return 0;
    }
    let mut s = Codec::new(Framing::Abridged, Role::Server);
    let decoded = match s.decode(&out) {
        Ok((_, Status::Complete(_))) => 1,
        _ => 0,
    };
    let obfuscated = match ObfuscatedCodec::client(Framing::Intermediate, Some(2), None, &mut rng) {
        Ok(mut o) => {
            let _ = o.encode(&[0; 8], false, &mut rng, &mut out);
            decoded + out.len()
        }
        Err(_) => decoded,
    };
    // An MTProxy fake-TLS ClientHello, fed to the server-side detector.
    let Ok(secret) = ProxySecret::fake_tls([seed as u8; 16], b"example.com") else {
        return obfuscated;
    };
    let now = UnixTime::from_secs(seed >> 32);
    let mut hello = alloc::vec::Vec::new();
    if FakeTlsClient::new(&secret, now, &mut rng, &mut hello).is_err() {
        return obfuscated;
    }
    let config = ServerConfig {
        secrets: alloc::vec![secret],
        ..ServerConfig::default()
    };
    match Detector::new(config).decode(&hello, now, &mut rng) {
        Ok((_, Status::Complete(found))) => obfuscated + found.reply.len(),
        _ => obfuscated,
    }
}
