//! Auth key creation (`mtproto_auth_key.md`) as client and server state machines.
