//! TL binary serialization and the MTProto schema types. Knows nothing of sessions.
