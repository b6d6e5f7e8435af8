#![no_main]
//! Fuzzer-chosen PLAINTEXTS, encrypted under a key the server knows (so they pass msg_key), fed
//! into a `ServerConnection` over the intermediate transport. Must never panic, never close the
//! connection for a bad message inside a valid session (only `ping_delay_disconnect` or a
//! timeout may close it) and keep its queues bounded.
//!
//! Input: records of `len:u8 flags:u8 seq_no:u8 body[len * 4]`. Flags pick the salt (valid or
//! not), the session (one of four), a msg_id shift (none, ≡ 2 mod 4, 400 s old, 40 s ahead),
//! whether time advances, and whether the application polls and answers.
use libfuzzer_sys::fuzz_target;
use mtproto_core::connection::server::{
    KeyStore, MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent, StoredKey,
};
use mtproto_core::crypto::message::{MessageHeader, PaddingPolicy, encrypt_message_to_vec};
use mtproto_core::crypto::{AuthKey, Side};
use mtproto_core::handshake::ServerConfig;
use mtproto_core::session::server::ServerSalts;
use mtproto_core::time::{Instant, Now, UnixTime};
use mtproto_core::transport::{Codec, Framing, Role};
use mtproto_fuzz::LcgRng;

const T0: u64 = 1_764_000_000;
const SALT: i64 = 0x0123_4567_89ab_cdef;

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ 0x5c));
    let mut store = MemoryKeyStore::default();
    store
        .insert(StoredKey {
            auth_key: key.clone(),
            temporary: false,
            expires_at: None,
            bound_to: None,
            created_at: T0 as i64,
            salts: ServerSalts::new([9; 32], SALT, T0 as i64, 3600),
        })
        .unwrap();
    // Building the demo RSA key is slow: once per process.
    static CONFIG: std::sync::OnceLock<ServerConnectionConfig> = std::sync::OnceLock::new();
    let config = CONFIG
        .get_or_init(|| ServerConnectionConfig::new(ServerConfig::demo()))
        .clone();
    let max_events = config.max_events;
    let mut server = ServerConnection::new(config, &mut store, LcgRng(1));
    let mut client_rng = LcgRng(2);
    let mut codec = Codec::new(Framing::Intermediate, Role::Client);
    let mut micros = 0u64;
    let now = |micros: u64| Now {
        mono: Instant::from_micros(micros),
        unix: UnixTime::from_nanos(T0 * 1_000_000_000 + micros * 1_000),
    };
    let mut next_id = (T0 as i64) << 32;
    let mut rest = data;
    let mut wire = Vec::new();
    let mut sink = Vec::new();
    while let [len, flags, seq, tail @ ..] = rest {
        let n = (*len as usize % 64) * 4;
        let Some((body, tail)) = tail.split_at_checked(n) else {
            break;
        };
        rest = tail;
        if flags & 0x80 != 0 {
            micros += 1_000_000 * u64::from(flags & 0x0f);
            server.handle_timeout(now(micros));
        }
        let t = now(micros);
        next_id = next_id.max(mtproto_core::plain::msg_id_from_time(t.unix)) + 4;
        let msg_id = match (flags >> 2) & 3 {
            0 => next_id,
            1 => next_id + 2,
            2 => next_id - (400 << 32),
            _ => next_id + (40 << 32),
        };
        let header = MessageHeader {
            salt: if flags & 0x40 != 0 { 7 } else { SALT as _ },
            session_id: ((flags & 3) + 1) as _,
            msg_id: msg_id as _,
            seq_no: *seq as _,
        };
        let sealed = encrypt_message_to_vec(
            &key,
            Side::Client,
            &header,
            body,
            &PaddingPolicy::default(),
            &mut client_rng,
        )
        .unwrap();
        codec
            .encode(&sealed.bytes, false, &mut client_rng, &mut wire)
            .unwrap();
        server.handle_input(t, &wire);
        wire.clear();
        if flags & 0x20 != 0 {
            while let Some(e) = server.poll_event() {
                if let ServerEvent::Request { id, .. } = e {
                    let _ = server.respond(t, id, &[1, 0, 0, 0]);
                }
            }
        }
        server.poll_transmit(t, &mut sink);
        sink.clear();
        assert!(server.pending_events() <= max_events + 1);
        if server.is_closed() {
            break; // ping_delay_disconnect or a timeout
        }
    }
});
