//! `mtproto`: Telegram's MTProto 2.0 as a `no_std`, sans-IO protocol core ([`core`]) plus std
//! drivers ([`std_io`]). This facade re-exports both; the integration tests and benchmarks live here.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use mtproto_core as core;
pub use mtproto_std_io as std_io;
