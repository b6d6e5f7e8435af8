#![no_main]
//! One `dh_gen_*` for a client that has sent the sample's `set_client_DH_params`.
//!
//! The state is precomputed once (`mtproto_fuzz::handshake`), so each execution runs only this
//! step's parser and checks. Seeds: `fuzz/corpus/handshake_client_dh_gen/` (`cargo run --example write_seeds`).

use libfuzzer_sys::fuzz_target;
use mtproto_fuzz::LcgRng;
use mtproto_fuzz::handshake::states;

fuzz_target!(|data: &[u8]| {
    let s = states();
    let mut m = s.client_dh_gen.clone();
    let r = m.handle(s.now, data, &mut LcgRng(0x5eed));
    // Any error is final.
    if r.is_err() {
        assert!(m.is_failed());
    }
});
