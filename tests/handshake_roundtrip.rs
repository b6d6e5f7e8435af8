//! Our client against our server, in memory: permanent and temporary keys over many seeds, both
//! sides agreeing on key, salt, time offset and expiry; then the PFS binding of the temporary
//! key to the permanent one verifies on the server side.

use mtproto::core::crypto::{AuthKey, Side, v1};
use mtproto::core::handshake::pfs::{BindError, BindTempAuthKey, bind_temp_auth_key, verify_bind};
use mtproto::core::handshake::{
    AuthKeyResult, ClientConfig, ClientHandshake, ClientStep, HandshakeError, KeyKind, RsaKeySet,
    ServerAuthKey, ServerConfig, ServerHandshake, ServerStep,
};
use mtproto::core::plain;
use mtproto::core::time::UnixTime;
use mtproto::core::tl::Serialize;
use mtproto::core::tl::schema::types::BindAuthKeyInner;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Outcome {
    client: AuthKeyResult,
    server: ServerAuthKey,
    messages: usize,
}

/// Runs a full exchange. The server's clock is `skew` seconds ahead of the client's; messages
/// travel through the unencrypted envelope like on a real connection. `taken` answers the
/// server's "does this auth_key_id exist" question.
fn exchange(
    kind: KeyKind,
    seed: u64,
    skew: i64,
    mut taken: impl FnMut(i64) -> bool,
) -> Result<Outcome, HandshakeError> {
    let client_now = UnixTime::from_secs(1_700_000_000);
    let server_now = UnixTime::from_secs(1_700_000_000u64.checked_add_signed(skew).unwrap());
    let mut crng = ChaCha20Rng::seed_from_u64(seed);
    let mut srng = ChaCha20Rng::seed_from_u64(!seed);
    let demo = ServerConfig::demo();
    let keys = RsaKeySet::telegram_production().with(demo.keys[0].public_key().clone());
    let mut config = ClientConfig::new(keys, 2);
    config.kind = kind;
    let mut client = ClientHandshake::new(config);
    let mut server = ServerHandshake::new(demo);

    let mut to_server = client.start(&mut crng)?;
    let mut messages = 1;
    loop {
        let wire = plain::wrap(plain::msg_id_from_time(client_now), &to_server);
        let (_, body) = plain::unwrap(&wire).unwrap();
        let (reply, server_key) =
            match server.handle_with(server_now, body, &mut srng, &mut taken)? {
                ServerStep::Send(r) => (r, None),
                ServerStep::Done { reply, key } => (reply, Some(*key)),
            };
        messages += 1;
        match client.handle(client_now, &reply, &mut crng)? {
            ClientStep::Send(next) => {
                assert!(server_key.is_none());
                to_server = next;
                messages += 1;
            }
            ClientStep::Done(result) => {
                return Ok(Outcome {
                    client: *result,
                    server: server_key.expect("server finished with the client"),
                    messages,
                });
            }
        }
    }
}

fn check_agreement(o: &Outcome, kind: KeyKind, skew: i64) {
    assert_eq!(o.client.auth_key.as_bytes(), o.server.auth_key.as_bytes());
    assert_eq!(o.client.auth_key.id(), o.server.auth_key.id());
    assert_eq!(o.client.server_salt, o.server.server_salt);
    assert_eq!(o.client.time_offset, skew);
    assert_eq!(o.client.kind, kind);
    assert_eq!(o.server.kind, kind);
    assert_eq!(o.server.dc, 2);
    assert_eq!(o.client.expires_at, o.server.expires_at);
    match kind {
        KeyKind::Permanent => assert_eq!(o.client.expires_at, None),
        KeyKind::Temporary { expires_in } => assert_eq!(
            o.client.expires_at,
            Some(1_700_000_000 + skew + i64::from(expires_in))
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn permanent_and_temporary_keys_agree(
        seed in any::<u64>(),
        skew in -100_000i64..100_000,
        temp in any::<bool>(),
        expires_in in 60u32..86_400,
    ) {
        let kind = if temp { KeyKind::Temporary { expires_in } } else { KeyKind::Permanent };
        let o = exchange(kind, seed, skew, |_| false).unwrap();
        prop_assert_eq!(o.messages, 6);
        check_agreement(&o, kind, skew);
        if temp {
            // PFS: one more exchange for a permanent key, then bind the temporary key to it
            // (client side) and verify the binding on the server side.
            let perm = exchange(KeyKind::Permanent, seed ^ 0x5a5a_5a5a_5a5a_5a5a, skew, |_| false)
                .unwrap();
            check_agreement(&perm, KeyKind::Permanent, skew);
            prop_assert_ne!(perm.client.auth_key.id(), o.client.auth_key.id());
            let expires_at = i32::try_from(o.client.expires_at.unwrap()).unwrap();
            let session_id = (seed.rotate_left(17) | 1).cast_signed();
            let client_now = UnixTime::from_secs(1_700_000_000);
            let msg_id = plain::msg_id_from_time(client_now);
            let mut rng = ChaCha20Rng::seed_from_u64(seed.wrapping_add(1));
            let request = bind_temp_auth_key(
                &perm.client.auth_key,
                &o.client.auth_key,
                session_id,
                expires_at,
                msg_id,
                &mut rng,
            )
            .unwrap();
            let server_now = 1_700_000_000 + skew;
            let binding = verify_bind(
                &perm.server.auth_key,
                o.server.auth_key.id(),
                session_id,
                msg_id,
                server_now,
                &request,
            );
            prop_assert_eq!(
                binding,
                Ok(mtproto::core::handshake::pfs::Binding {
                    perm_auth_key_id: perm.server.auth_key.id(),
                    temp_auth_key_id: o.server.auth_key.id(),
                    expires_at,
                })
            );
        }
    }
}

/// Runs a clean exchange up to message `target` (2 = req_DH_params, 3 = server_DH_params_ok,
/// 4 = set_client_DH_params, 5 = dh_gen_ok), flips one bit of it, and returns what the receiver
/// said about the corrupted message.
fn flip_one_bit(seed: u64, target: usize, pos: usize, bit: u8) -> Result<(), HandshakeError> {
    let now = UnixTime::from_secs(1_700_000_000);
    let mut crng = ChaCha20Rng::seed_from_u64(seed);
    let mut srng = ChaCha20Rng::seed_from_u64(!seed);
    let demo = ServerConfig::demo();
    let keys = RsaKeySet::new().with(demo.keys[0].public_key().clone());
    let mut client = ClientHandshake::new(ClientConfig::new(keys, 2));
    let mut server = ServerHandshake::new(demo);
    let mut msg = client.start(&mut crng)?;
    for index in 0.. {
        let corrupt = index == target;
        if corrupt {
            let i = pos % msg.len();
            msg[i] ^= 1 << bit;
        }
        let to_client = index % 2 == 1;
        let next = if to_client {
            match client.handle(now, &msg, &mut crng)? {
                ClientStep::Send(m) => m,
                ClientStep::Done(_) => Vec::new(),
            }
        } else {
            match server.handle(now, &msg, &mut srng)? {
                ServerStep::Send(m) | ServerStep::Done { reply: m, .. } => m,
            }
        };
        if corrupt {
            return Ok(());
        }
        msg = next;
    }
    unreachable!()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every message after resPQ is bound to the exchange (nonces, RSA_PAD or AES-IGE with a
    /// SHA-1/SHA-256 check, new_nonce_hash, canonical TL): any single flipped bit is rejected by
    /// its receiver with an error.
    #[test]
    fn any_flipped_bit_is_rejected(
        seed in any::<u64>(),
        target in 2usize..=5,
        pos in any::<usize>(),
        bit in 0u8..8,
    ) {
        let r = flip_one_bit(seed, target, pos, bit);
        prop_assert!(r.is_err(), "message {} byte {} bit {} accepted", target, pos, bit);
    }
}

#[test]
fn same_seeds_give_the_same_key() {
    let a = exchange(KeyKind::Permanent, 5, 0, |_| false).unwrap();
    let b = exchange(KeyKind::Permanent, 5, 0, |_| false).unwrap();
    let c = exchange(KeyKind::Permanent, 6, 0, |_| false).unwrap();
    assert_eq!(a.client.auth_key.as_bytes(), b.client.auth_key.as_bytes());
    assert_ne!(a.client.auth_key.as_bytes(), c.client.auth_key.as_bytes());
}

#[test]
fn dh_gen_retry_then_ok() {
    // The server finds the first two key ids taken: two dh_gen_retry rounds (the client sends
    // retry_id = aux_hash of the previous key, which the server checks), then dh_gen_ok.
    let mut n = 0;
    let o = exchange(KeyKind::Permanent, 9, 0, |_| {
        n += 1;
        n <= 2
    })
    .unwrap();
    assert_eq!(o.messages, 10);
    check_agreement(&o, KeyKind::Permanent, 0);
}

#[test]
fn too_many_retries_is_an_error() {
    // ClientConfig::new allows 5 retries and ServerConfig 5: the server gives up first with
    // dh_gen_fail (correct new_nonce_hash3), which the client reports.
    let r = exchange(KeyKind::Permanent, 10, 0, |_| true);
    assert_eq!(r.err(), Some(HandshakeError::DhGenFail));
}

/// The fields of one `auth.bindTempAuthKey` built by hand, so each can be tampered with.
struct BindParts {
    perm: i64,
    temp: i64,
    session: i64,
    nonce: i64,
    expires_at: i32,
}

/// Builds an `auth.bindTempAuthKey` body whose request fields are `req` and whose encrypted
/// `bind_auth_key_inner` holds `inner`. With `extra = None` this goes through
/// `v1::encrypt_bind_auth_key_inner`; with `Some(bytes)` the same v1 layout is built by hand
/// (`random ‖ msg_id ‖ seqno 0 ‖ msg_len ‖ data`, `method_auth.bindTempAuthKey.md`) with
/// `bytes` appended to the inner message (`msg_len = 40 + bytes.len()`).
fn bind_request(
    perm_key: &AuthKey,
    msg_id: i64,
    req: &BindParts,
    inner: &BindParts,
    extra: Option<&[u8]>,
    seed: u64,
) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut buf = [0u8; v1::BIND_AUTH_KEY_INNER_LEN];
    let n = BindAuthKeyInner {
        nonce: inner.nonce,
        temp_auth_key_id: inner.temp,
        perm_auth_key_id: inner.perm,
        temp_session_id: inner.session,
        expires_at: inner.expires_at,
    }
    .serialize_into(&mut buf)
    .unwrap();
    assert_eq!(n, v1::BIND_AUTH_KEY_INNER_LEN);
    let encrypted = if let Some(extra) = extra {
        let mut plaintext = vec![0x77u8; 16];
        plaintext.extend_from_slice(&msg_id.to_le_bytes());
        plaintext.extend_from_slice(&0u32.to_le_bytes());
        let len = u32::try_from(buf.len() + extra.len()).unwrap();
        plaintext.extend_from_slice(&len.to_le_bytes());
        plaintext.extend_from_slice(&buf);
        plaintext.extend_from_slice(extra);
        v1::encrypt(perm_key, Side::Client, &plaintext, &mut rng)
    } else {
        v1::encrypt_bind_auth_key_inner(perm_key, msg_id, &buf, &mut rng)
    };
    BindTempAuthKey {
        perm_auth_key_id: req.perm,
        nonce: req.nonce,
        expires_at: req.expires_at,
        encrypted_message: &encrypted,
    }
    .to_vec()
    .unwrap()
}

#[test]
fn pfs_binding_inner_mismatches_are_refused() {
    let perm = exchange(KeyKind::Permanent, 21, 0, |_| false).unwrap();
    let temp = exchange(KeyKind::Temporary { expires_in: 600 }, 22, 0, |_| false).unwrap();
    let perm_key = &perm.server.auth_key;
    let temp_id = temp.server.auth_key.id();
    let session_id = 0x0102_0304_0506_0708i64;
    let msg_id = plain::msg_id_from_time(UnixTime::from_secs(1_700_000_000));
    let now = 1_700_000_000;
    let good = || BindParts {
        perm: perm_key.id(),
        temp: temp_id,
        session: session_id,
        nonce: 0x1234_5678_9abc_def0,
        expires_at: 1_700_000_600,
    };
    let verify = |req: &[u8]| verify_bind(perm_key, temp_id, session_id, msg_id, now, req);

    // The hand-built request with matching fields verifies: each case below changes one thing.
    let ok = verify(&bind_request(perm_key, msg_id, &good(), &good(), None, 1));
    assert_eq!(
        ok,
        Ok(mtproto::core::handshake::pfs::Binding {
            perm_auth_key_id: perm_key.id(),
            temp_auth_key_id: temp_id,
            expires_at: 1_700_000_600,
        })
    );
    // The hand-built v1 layout with no extra bytes is accepted too (so the InnerLength case
    // below fails only on its length).
    assert_eq!(
        verify(&bind_request(
            perm_key,
            msg_id,
            &good(),
            &good(),
            Some(&[]),
            2
        )),
        ok
    );

    let inner = BindParts {
        nonce: good().nonce ^ 1,
        ..good()
    };
    assert_eq!(
        verify(&bind_request(perm_key, msg_id, &good(), &inner, None, 3)),
        Err(BindError::NonceMismatch)
    );
    let inner = BindParts {
        perm: good().perm ^ 0x100,
        ..good()
    };
    assert_eq!(
        verify(&bind_request(perm_key, msg_id, &good(), &inner, None, 4)),
        Err(BindError::InnerPermKeyIdMismatch)
    );
    let inner = BindParts {
        expires_at: good().expires_at + 1,
        ..good()
    };
    assert_eq!(
        verify(&bind_request(perm_key, msg_id, &good(), &inner, None, 5)),
        Err(BindError::ExpiresAtMismatch)
    );
    // Also when only the outer expires_at changes (e.g. a longer-lived binding than signed).
    let req = BindParts {
        expires_at: good().expires_at + 3600,
        ..good()
    };
    assert_eq!(
        verify(&bind_request(perm_key, msg_id, &req, &good(), None, 6)),
        Err(BindError::ExpiresAtMismatch)
    );
    // The inner message is 4 bytes longer than bind_auth_key_inner (msg_len = 44, valid
    // msg_key): refused on its length, whatever the 4 bytes are.
    for extra in [[0u8; 4], [0xff; 4]] {
        assert_eq!(
            verify(&bind_request(
                perm_key,
                msg_id,
                &good(),
                &good(),
                Some(&extra),
                7
            )),
            Err(BindError::InnerLength)
        );
    }
}

#[test]
fn pfs_binding_verifies() {
    let perm = exchange(KeyKind::Permanent, 11, 30, |_| false).unwrap();
    let temp = exchange(KeyKind::Temporary { expires_in: 3600 }, 12, 30, |_| false).unwrap();
    let expires_at = i32::try_from(temp.client.expires_at.unwrap()).unwrap();
    let session_id = 0x1122_3344_5566_7788i64;
    let msg_id = plain::msg_id_from_time(UnixTime::from_secs(1_700_000_030));
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let request = bind_temp_auth_key(
        &perm.client.auth_key,
        &temp.client.auth_key,
        session_id,
        expires_at,
        msg_id,
        &mut rng,
    )
    .unwrap();

    // Server side: the request arrived on the temporary key, in that session, with that msg_id.
    let now = 1_700_000_030;
    let temp_id = temp.server.auth_key.id();
    let binding = verify_bind(
        &perm.server.auth_key,
        temp_id,
        session_id,
        msg_id,
        now,
        &request,
    )
    .unwrap();
    assert_eq!(binding.perm_auth_key_id, perm.server.auth_key.id());
    assert_eq!(binding.temp_auth_key_id, temp_id);
    assert_eq!(binding.expires_at, expires_at);

    // A failed bind is an error the caller sees, never a silent success.
    let other = &temp.server.auth_key;
    assert_eq!(
        verify_bind(other, temp_id, session_id, msg_id, now, &request),
        Err(BindError::PermKeyIdMismatch)
    );
    assert_eq!(
        verify_bind(
            &perm.server.auth_key,
            temp_id ^ 1,
            session_id,
            msg_id,
            now,
            &request
        ),
        Err(BindError::TempKeyIdMismatch)
    );
    assert_eq!(
        verify_bind(
            &perm.server.auth_key,
            temp_id,
            session_id + 1,
            msg_id,
            now,
            &request
        ),
        Err(BindError::SessionMismatch)
    );
    assert_eq!(
        verify_bind(
            &perm.server.auth_key,
            temp_id,
            session_id,
            msg_id + 4,
            now,
            &request
        ),
        Err(BindError::MsgIdMismatch)
    );
    assert_eq!(
        verify_bind(
            &perm.server.auth_key,
            temp_id,
            session_id,
            msg_id,
            i64::from(expires_at),
            &request
        ),
        Err(BindError::Expired)
    );
    let mut tampered = request.clone();
    let last = tampered.len() - 1;
    tampered[last - 4] ^= 0x40;
    assert!(matches!(
        verify_bind(
            &perm.server.auth_key,
            temp_id,
            session_id,
            msg_id,
            now,
            &tampered
        ),
        Err(BindError::Decrypt(_))
    ));
}
