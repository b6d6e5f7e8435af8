//! A no_std consumer of mtproto-core. Every layer gets at least one call here so the linker keeps
//! it; if std sneaks into the graph, the duplicate `panic_impl` lang item breaks the build.
#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};

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

/// Exercises the time types.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_time(secs: u64) -> u64 {
    mtproto_core::time::UnixTime::from_secs(secs).as_nanos()
}

/// Exercises the crypto layer: AES-256-IGE and the auth_key_id.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_crypto(seed: u8) -> u64 {
    use mtproto_core::crypto::{AuthKey, ige};
    let mut buf = [seed; 64];
    if ige::aes256_ige_encrypt(&[seed; 32], &[seed; 32], &mut buf).is_err() {
        return 0;
    }
    AuthKey::from_bytes([buf[0]; 256]).id()
}

/// Exercises the handshake layer: pq factorization, the built-in RSA keys, and the first
/// client -> server -> client round (req_pq_multi, resPQ, RSA_PAD'd req_DH_params).
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_handshake(pq: u64) -> u64 {
    use mtproto_core::handshake::{
        ClientConfig, ClientHandshake, ClientStep, RsaKeySet, ServerConfig, ServerHandshake,
        ServerStep,
    };
    use mtproto_core::time::UnixTime;
    struct Toy(u64);
    impl rand_core::RngCore for Toy {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for b in dst {
                *b = (self.next_u64() >> 33) as u8;
            }
        }
    }
    impl rand_core::CryptoRng for Toy {}
    let fp = mtproto_core::handshake::rsa::RsaPublicKey::telegram_production().fingerprint();
    let mut acc = match mtproto_core::handshake::pq::factorize(pq) {
        Ok((p, _)) => p ^ fp,
        Err(_) => fp,
    };
    let mut rng = Toy(pq);
    let now = UnixTime::from_secs(pq >> 32);
    let server_cfg = ServerConfig::demo();
    let keys = RsaKeySet::new().with(server_cfg.keys[0].public_key().clone());
    let mut client = ClientHandshake::new(ClientConfig::new(keys, 2));
    let mut server = ServerHandshake::new(server_cfg);
    if let Ok(req) = client.start(&mut rng)
        && let Ok(ServerStep::Send(res_pq)) = server.handle(now, &req, &mut rng)
        && let Ok(ClientStep::Send(req_dh)) = client.handle(now, &res_pq, &mut rng)
    {
        acc ^= req_dh.len() as u64;
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

/// Exercises the transports: abridged encode + decode, and an obfuscated client init.
#[unsafe(no_mangle)]
pub extern "C" fn mtproto_check_transport(seed: u64) -> usize {
    use mtproto_core::transport::{Codec, Framing, ObfuscatedCodec, Role, Status};
    struct Lcg(u64);
    impl rand_core::RngCore for Lcg {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for b in dst {
                *b = (self.next_u64() >> 33) as u8;
            }
        }
    }
    impl rand_core::CryptoRng for Lcg {}
    let mut rng = Lcg(seed);
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
    match ObfuscatedCodec::client(Framing::Intermediate, Some(2), None, &mut rng) {
        Ok(mut o) => {
            let _ = o.encode(&[0; 8], false, &mut rng, &mut out);
            decoded + out.len()
        }
        Err(_) => decoded,
    }
}
