//! Our client against our server, in memory: permanent and temporary keys over many seeds, both
//! sides agreeing on key, salt, time offset and expiry; then the PFS binding of the temporary
//! key to the permanent one verifies on the server side.

use mtproto::core::handshake::pfs::{BindError, bind_temp_auth_key, verify_bind};
use mtproto::core::handshake::plain;
use mtproto::core::handshake::{
    AuthKeyResult, ClientConfig, ClientHandshake, ClientStep, HandshakeError, KeyKind, RsaKeySet,
    ServerAuthKey, ServerConfig, ServerHandshake, ServerStep,
};
use mtproto::core::time::UnixTime;
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
    mut taken: impl FnMut(u64) -> bool,
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

#[test]
fn pfs_binding_verifies() {
    let perm = exchange(KeyKind::Permanent, 11, 30, |_| false).unwrap();
    let temp = exchange(KeyKind::Temporary { expires_in: 3600 }, 12, 30, |_| false).unwrap();
    let expires_at = i32::try_from(temp.client.expires_at.unwrap()).unwrap();
    let session_id = 0x1122_3344_5566_7788u64;
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
