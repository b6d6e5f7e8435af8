//! MTProto transports (`mtproto_mtproto-transports.md`): framings, quick ack, transport errors,
//! obfuscation and MTProxy. Incremental, sans-IO, both roles.
