#![no_main]
//! One `server_DH_params_*` for a client that has sent the sample's `req_DH_params`.
//!
//! The state is precomputed once (`mtproto_fuzz::handshake`), so each execution runs only this
//! step's parser and checks. Input: a mode byte, then the message (even mode) or the plaintext
//! of its encrypted part, which the harness encrypts and wraps (odd mode).
//! Seeds: `fuzz/corpus/handshake_client_dh_params/` (`cargo run --example write_seeds`).

use libfuzzer_sys::fuzz_target;
use mtproto_fuzz::LcgRng;
use mtproto_fuzz::handshake::{states, wrap_server_dh_params};

fuzz_target!(|data: &[u8]| {
    // Mode byte: even, the message itself; odd, the plaintext of its encrypted part.
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let wrapped;
    let data = if mode & 1 == 0 {
        body
    } else {
        wrapped = wrap_server_dh_params(body);
        &wrapped[..]
    };
    let s = states();
    let mut m = s.client_dh_params.clone();
    let r = m.handle(s.now, data, &mut LcgRng(0x5eed));
    // Any error is final.
    if r.is_err() {
        assert!(m.is_failed());
    }
});
