//! Auth key creation (`mtproto_auth_key.md`) as client and server state machines.

pub mod dh;
pub mod pq;
pub mod prime;
pub mod rsa;
