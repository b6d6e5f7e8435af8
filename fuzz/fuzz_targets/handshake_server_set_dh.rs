#![no_main]
//! One `set_client_DH_params` for a demo server that has sent `server_DH_params_ok`.
//!
//! The state is precomputed once (`mtproto_fuzz::handshake`), so each execution runs only this
//! step's parser and checks. Input: a mode byte, then the message (even mode) or the plaintext
//! of its encrypted part, which the harness encrypts and wraps (odd mode).
//! Seeds: `fuzz/corpus/handshake_server_set_dh/` (`cargo run --example write_seeds`).

use libfuzzer_sys::fuzz_target;
use mtproto_fuzz::LcgRng;
use mtproto_fuzz::handshake::{states, wrap_set_client_dh};

fuzz_target!(|data: &[u8]| {
    // Mode byte: even, the message itself; odd, the plaintext of its encrypted part.
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let wrapped;
    let data = if mode & 1 == 0 {
        body
    } else {
        wrapped = wrap_set_client_dh(body);
        &wrapped[..]
    };
    let s = states();
    let mut m = s.server_set_dh.clone();
    let _ = m.handle(s.now, data, &mut LcgRng(0x5eed));
});
