#![no_main]
//! Drives our client against our server with the fuzzer's bytes as both sides' randomness and as
//! mutations of the messages in flight. Whatever happens, nothing may panic, and if both sides
//! finish they must agree on the key and the salt.
//!
//! Input layout: `[target, mode, pos_lo, pos_hi, value, ...rng bytes]`. Message number
//! `target % 8` (0 = req_pq_multi, 1 = resPQ, 2 = req_DH_params, ...) is mutated according to
//! `mode`: flip a byte, truncate, or replace it entirely with the rest of the input (which then
//! also feeds the RNG, so parser paths see arbitrary bytes).

use libfuzzer_sys::fuzz_target;
use mtproto_core::handshake::{
    ClientConfig, ClientHandshake, ClientStep, KeyKind, RsaKeySet, ServerConfig, ServerHandshake,
    ServerStep,
};
use mtproto_core::time::UnixTime;
use rand_core::Rng;

/// Fuzzer bytes first, then a SplitMix64 stream (so a short input cannot stall a retry loop).
struct FuzzRng<'a> {
    data: &'a [u8],
    state: u64,
}

impl rand_core::TryRng for FuzzRng<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
        for d in dst {
            if let Some((&first, rest)) = self.data.split_first() {
                *d = first;
                self.data = rest;
            } else {
                self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                *d = (z ^ (z >> 31)) as u8;
            }
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for FuzzRng<'_> {}

fn mutate(msg: &mut Vec<u8>, mode: u8, pos: usize, value: u8, replacement: &[u8]) {
    match mode % 4 {
        0 => {}
        1 => {
            if !msg.is_empty() {
                let i = pos % msg.len();
                msg[i] ^= value | 1;
            }
        }
        2 => msg.truncate(pos % (msg.len() + 1)),
        _ => *msg = replacement.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let [target, mode, lo, hi, value] = *head;
    let target = target % 8;
    let pos = usize::from(u16::from_le_bytes([lo, hi]));
    let mut rng = FuzzRng {
        data: rest,
        state: data.len() as u64,
    };
    let now = UnixTime::from_secs(1_700_000_000);
    let server_cfg = ServerConfig::demo();
    let keys = RsaKeySet::new().with(server_cfg.keys[0].public_key().clone());
    let mut cfg = ClientConfig::new(keys, 2);
    if value & 0x80 != 0 {
        cfg.kind = KeyKind::Temporary { expires_in: 3600 };
    }
    let mut client = ClientHandshake::new(cfg);
    let mut server = ServerHandshake::new(server_cfg);
    let Ok(mut msg) = client.start(&mut rng) else {
        return;
    };
    let mut n = 0u8;
    let mut server_key = None;
    // Bounded: at most 6 retries' worth of messages.
    while n < 24 {
        if n == target {
            mutate(&mut msg, mode, pos, value, rest);
        }
        n += 1;
        let reply = match server.handle_with(now, &msg, &mut rng, |id| id & 0xF == 0) {
            Ok(ServerStep::Send(r)) => r,
            Ok(ServerStep::Done { reply, key }) => {
                server_key = Some(key);
                reply
            }
            Err(_) => return,
        };
        msg = reply;
        if n == target {
            mutate(&mut msg, mode, pos, value, rest);
        }
        n += 1;
        match client.handle(now, &msg, &mut rng) {
            Ok(ClientStep::Send(next)) => msg = next,
            Ok(ClientStep::Done(result)) => {
                if let Some(k) = server_key {
                    assert_eq!(result.auth_key.as_bytes(), k.auth_key.as_bytes());
                    assert_eq!(result.server_salt, k.server_salt);
                }
                return;
            }
            Err(_) => return,
        }
    }
});
