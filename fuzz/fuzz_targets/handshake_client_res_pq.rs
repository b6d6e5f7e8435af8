#![no_main]
//! One `resPQ` for a client that has sent the official sample's `req_pq_multi`.
//!
//! The state is precomputed once (`mtproto_fuzz::handshake`), so each execution runs only this
//! step's parser and checks. Seeds: `fuzz/corpus/handshake_client_res_pq/` (`cargo run --example write_seeds`).

use libfuzzer_sys::fuzz_target;
use mtproto_fuzz::LcgRng;
use mtproto_fuzz::handshake::states;

fuzz_target!(|data: &[u8]| {
    let s = states();
    let mut m = s.client_res_pq.clone();
    let r = m.handle(s.now, data, &mut LcgRng(0x5eed));
    // Any error is final.
    if r.is_err() {
        assert!(m.is_failed());
    }
});
