#![no_main]
//! One `req_pq_multi` for a fresh demo server.
//!
//! The state is precomputed once (`mtproto_fuzz::handshake`), so each execution runs only this
//! step's parser and checks. Seeds: `fuzz/corpus/handshake_server_req_pq/` (`cargo run --example write_seeds`).

use libfuzzer_sys::fuzz_target;
use mtproto_fuzz::LcgRng;
use mtproto_fuzz::handshake::states;

fuzz_target!(|data: &[u8]| {
    let s = states();
    let mut m = s.server_req_pq.clone();
    let _ = m.handle(s.now, data, &mut LcgRng(0x5eed));
});
