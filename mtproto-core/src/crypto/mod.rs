//! Cryptographic primitives of MTProto: AES-256-IGE, the MTProto 2.0 and 1.0 KDFs, message
//! encryption and decryption, and the handshake key derivations. Knows nothing of sessions.
