#![no_main]
//! Feeds a client `Connection` frames encrypted under its own auth key (so they pass msg_key)
//! around fuzzer-chosen plaintext: msg_id, seq_no and body of each message are the fuzzer's, the
//! session_id is right (mode bit 0 clear) or wrong. Everything behind decryption — containers,
//! gzip, rpc_result matching, every service message, the time window — is reached. Must never
//! panic; the connection's queues stay bounded.
use libfuzzer_sys::fuzz_target;
use mtproto_core::connection::{Connection, ConnectionConfig, ResumeState, TransportConfig};
use mtproto_core::crypto::message::{MessageHeader, PaddingPolicy, encrypt_message_to_vec};
use mtproto_core::crypto::{AuthKey, Side};
use mtproto_core::handshake::RsaKeySet;
use mtproto_core::session::SavedSession;
use mtproto_core::time::{Instant, Now, UnixTime};
use mtproto_core::transport::{Codec, Framing, Role};
use mtproto_fuzz::LcgRng;

const T0: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ 0xa5));
    let now = Now {
        mono: Instant::from_millis(1),
        unix: UnixTime::from_secs(T0),
    };
    let config = ConnectionConfig::new(
        2,
        TransportConfig::plain(Framing::Intermediate),
        RsaKeySet::telegram_production(),
    );
    let saved = SavedSession {
        session_id: 0x1122_3344_5566_7788,
        salt: 0x55,
        time_offset_secs: 0,
        last_msg_id: 0,
        seq_count: 0,
    };
    let state = ResumeState {
        auth_key: key.clone(),
        session: saved,
    };
    let mut conn = Connection::resume(config, state, LcgRng(1), now);
    // A few requests in flight so that rpc_results and bad_msgs can match something.
    let mut out = Vec::new();
    for i in 0..4u32 {
        let _ = conn.invoke_raw(&[0x01, 0x00, 0xde, 0xc0, i as u8, 0, 0, 0]);
    }
    while conn.poll_transmit(now, &mut out) {}
    let mut server = Codec::new(Framing::Intermediate, Role::Server);
    let mut rng = LcgRng(2);
    // Skip the client's tag: the server codec expects to see it first.
    let _ = server.decode(&out);
    let mut rest = data;
    let mut wire = Vec::new();
    while let [
        mode,
        a,
        b,
        c,
        d,
        e,
        f,
        g,
        h,
        s0,
        s1,
        s2,
        s3,
        l0,
        l1,
        tail @ ..,
    ] = rest
    {
        let len = (usize::from(*l0) | usize::from(*l1) << 8) & 0x3ffc;
        let take = len.min(tail.len() & !3);
        let (body, next) = tail.split_at(take);
        rest = next;
        let msg_id = i64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]) | 1;
        // Most ids are pulled into the time window so the body is processed.
        let msg_id = if mode & 2 == 0 {
            ((T0 as i64) << 32) | (msg_id & 0xffff_ffff)
        } else {
            msg_id
        };
        let header = MessageHeader {
            salt: 0,
            session_id: if mode & 1 == 0 {
                0x1122_3344_5566_7788
            } else {
                7
            },
            msg_id,
            seq_no: i32::from_le_bytes([*s0, *s1, *s2, *s3]),
        };
        let Ok(m) = encrypt_message_to_vec(
            &key,
            Side::Server,
            &header,
            body,
            &PaddingPolicy::default(),
            &mut rng,
        ) else {
            continue;
        };
        let _ = server.encode(&m.bytes, false, &mut rng, &mut wire);
    }
    // Deliver in two uneven pieces.
    let cut = wire.len() / 3;
    conn.handle_input(now, &wire[..cut]);
    conn.handle_input(now, &wire[cut..]);
    let later = Now {
        mono: Instant::from_millis(120_000),
        unix: UnixTime::from_secs(T0 + 120),
    };
    conn.handle_timeout(later);
    out.clear();
    let mut n = 0;
    while conn.poll_transmit(later, &mut out) && n < 64 {
        n += 1;
    }
    let mut events = 0usize;
    while conn.poll_event().is_some() {
        events += 1;
    }
    assert!(events <= 1_000_000);
    assert!(conn.session().pending_requests() <= 4);
});
