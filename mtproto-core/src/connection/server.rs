//! The server end of one client connection: transport auto-detection
//! ([`transport::Detector`]), the auth key handshake over unencrypted messages
//! ([`ServerHandshake`], [`plain`]), MTProto 2.0 message encryption and the session rules
//! ([`ServerSession`]), stacked into one sans-IO state machine.
//!
//! # Driving it
//!
//! ```text
//! loop {
//!     bytes from the socket      -> conn.handle_input(now, &bytes)
//!     timer fired                -> conn.handle_timeout(now)
//!     while let Some(e) = conn.poll_event() { Request -> conn.respond(now, id, &answer) .. }
//!     conn.poll_transmit(now, &mut buf) -> write buf to the socket
//!     sleep until conn.poll_timeout() or the socket is readable; stop when conn.is_closed()
//! }
//! ```
//!
//! Given the same RNG seed, the same input split and the same clock, the output is identical.
//!
//! # Example
//!
//! A client made of parts (a transport codec, the handshake machine, message encryption)
//! against a `ServerConnection`, in memory:
//!
//! ```
//! use std::{cell::RefCell, rc::Rc};
//! use mtproto_core::connection::server::{
//!     MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
//! };
//! use mtproto_core::crypto::{Side, message::*};
//! use mtproto_core::handshake::*;
//! use mtproto_core::plain;
//! use mtproto_core::time::{Instant, Now, UnixTime};
//! use mtproto_core::transport::{Codec, Frame, Framing, Role, Status};
//! # use rand_core::SeedableRng;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1); // use OS-seeded CSPRNGs
//! let now = Now { mono: Instant::from_micros(0), unix: UnixTime::from_secs(1_700_000_000) };
//!
//! // One store for every connection of this thread: keys made here serve the next ones.
//! let store = Rc::new(RefCell::new(MemoryKeyStore::default()));
//! let config = ServerConnectionConfig::new(ServerConfig::demo());
//! let mut server = ServerConnection::new(config, store.clone(), rng.clone());
//!
//! let mut codec = Codec::new(Framing::Intermediate, Role::Client);
//! let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
//! let mut hs = ClientHandshake::new(ClientConfig::new(keys, 2));
//! let (mut wire, mut back) = (Vec::new(), Vec::new());
//! // Client → server → client, one transport payload each way.
//! let mut exchange = |payload: &[u8], codec: &mut Codec, server: &mut ServerConnection<_, _>| {
//!     codec.encode(payload, false, &mut rand_chacha::ChaCha20Rng::seed_from_u64(2), &mut wire).unwrap();
//!     server.handle_input(now, &wire);
//!     wire.clear();
//!     server.poll_transmit(now, &mut back);
//!     let (_, status) = codec.decode(&back).unwrap();
//!     back.clear();
//!     match status {
//!         Status::Complete(Frame::Payload { data, .. }) => data.to_vec(),
//!         other => panic!("{other:?}"),
//!     }
//! };
//! let mut body = hs.start(&mut rng).unwrap();
//! let key = loop {
//!     let answer = exchange(&plain::wrap(plain::msg_id_from_time(now.unix), &body), &mut codec, &mut server);
//!     let (_, answer) = plain::unwrap(&answer).unwrap();
//!     match hs.handle(now.unix, answer, &mut rng).unwrap() {
//!         ClientStep::Send(next) => body = next,
//!         ClientStep::Done(key) => break key,
//!     }
//! };
//! assert!(matches!(server.poll_event(), Some(ServerEvent::AuthKeyCreated { .. })));
//!
//! // An encrypted request reaches the application, which answers it.
//! let header = MessageHeader {
//!     salt: key.server_salt as _,
//!     session_id: 7,
//!     msg_id: plain::msg_id_from_time(now.unix) as _,
//!     seq_no: 1,
//! };
//! let request = [0x78, 0x56, 0x34, 0x12];
//! let sealed = encrypt_message_to_vec(&key.auth_key, Side::Client, &header, &request,
//!     &PaddingPolicy::default(), &mut rng).unwrap();
//! codec.encode(&sealed.bytes, false, &mut rng, &mut wire).unwrap();
//! server.handle_input(now, &wire);
//! let id = loop {
//!     match server.poll_event() {
//!         Some(ServerEvent::Request { id, body }) => { assert_eq!(body, request); break id }
//!         Some(_) => continue, // NewSession
//!         None => panic!("no request"),
//!     }
//! };
//! server.respond(now, id, &[1, 0, 0, 0]).unwrap();
//! server.poll_transmit(now, &mut back); // new_session_created + rpc_result, in a container
//! let (_, Status::Complete(Frame::Payload { data, .. })) = codec.decode(&back).unwrap() else {
//!     panic!()
//! };
//! let mut data = data.to_vec();
//! let answer = decrypt_message(&key.auth_key, Side::Server, &mut data).unwrap();
//! assert_eq!(answer.session_id, 7);
//! ```
//!
//! # Auth keys and sessions outlive connections
//!
//! Keys live in a [`KeyStore`] the embedding application provides ([`MemoryKeyStore`] ships
//! here; `&mut K` and `Rc<RefCell<K>>` are stores too, so one store serves many connections, and
//! a threaded driver wraps its own `Arc<Mutex<..>>`). A key made on one connection is found by
//! the next; an unknown (or expired temporary) `auth_key_id` gets transport error −404 and the
//! connection closes.
//!
//! The store also holds **sessions**, live ones included: a connection takes its session out
//! ([`KeyStore::take_session`]) for the duration of one call (`handle_input`,
//! `poll_transmit`, `respond`, ..) and puts it back at the end ([`KeyStore::put_session`]).
//! So every connection of one (key, session_id) shares one session state: one replay window (a
//! message replayed on a second connection is a duplicate there too), one seq_no state, one
//! set of running requests and kept answers. A client that comes back with the same key and
//! session_id, on a new connection while the old one is half-open or after it closed, gets no
//! `new_session_created`; the connection that received the session's latest message
//! **carries** it ([`ServerSession::carrier`], the newest connection wins): only it sends the
//! session's messages, and when it takes over, every answer the client had not acknowledged is
//! sent again with a fresh msg_id once the client's first message there (and the
//! acknowledgements in it) has been processed ([`ServerEvent::SessionResumed`]). The old
//! connection stays open (a client may use several) but sends nothing of that session until
//! the client speaks on it again; an answer given through it ([`ServerConnection::respond`])
//! goes out on the carrier. A new session_id gets `new_session_created` before anything else.
//!
//! Because live sessions sit in the store, its session caps ([`MemoryKeyStore::new`]) count
//! them too: size them for the connections served at once. A session evicted while in use
//! starts over (`new_session_created`) at its next message.
//!
//! # PFS (`api_pfs.md`)
//!
//! `auth.bindTempAuthKey` arriving on a temporary key is verified by the connection itself
//! ([`pfs::verify_bind`]), the binding recorded in the store ([`KeyStore::bind`]) and answered
//! `boolTrue` (or `rpc_error 400 ENCRYPTED_MESSAGE_INVALID` / `EXPIRES_AT_INVALID` /
//! `TEMP_AUTH_KEY_EMPTY`). Until bound, a temporary key may only carry `auth.bindTempAuthKey`,
//! `help.getConfig` and `help.getNearestDc`; anything else is answered
//! `rpc_error 401 AUTH_KEY_UNREGISTERED` without reaching the application.
//!
//! # Failures
//!
//! Transport, handshake and decryption failures are fatal for the connection
//! ([`ServerEvent::Closed`] with a [`CloseReason`]); a bad message inside a valid session is
//! dropped (with a `bad_msg_notification` where the spec asks for one) and reported as
//! [`ServerEvent::MessageRejected`].
//!
//! # Bounded memory
//!
//! - events not yet polled: [`ServerConnectionConfig::max_events`]. Beyond it a request is
//!   answered at once with `rpc_error 420 FLOOD_WAIT_1` and not reported; other events are
//!   dropped (counted by [`ServerConnection::dropped_events`]); `Closed` is always delivered;
//! - bytes waiting in [`ServerConnection::poll_transmit`]: only handshake answers, transport
//!   replies and quick acks (skipped beyond 64 KiB); session messages are produced when polled;
//! - the session's queues: [`ServerSessionConfig`]; the store's: [`MemoryKeyStore::new`];
//! - handshakes per connection: [`ServerConnectionConfig::max_handshakes`] per
//!   [`ServerConnectionConfig::handshake_window_micros`] (a rate: PFS renewals on a long-lived
//!   connection are never refused).
//!
//! Every waiting state has a deadline: the handshake ([`handshake_timeout_micros`]) and an idle
//! connection ([`idle_timeout_micros`]), besides `ping_delay_disconnect`.
//!
//! [`handshake_timeout_micros`]: ServerConnectionConfig::handshake_timeout_micros
//! [`idle_timeout_micros`]: ServerConnectionConfig::idle_timeout_micros

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use rand_core::CryptoRng;

use crate::crypto::message::{
    DecryptError, MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
    peek_auth_key_id,
};
use crate::crypto::{AuthKey, Side};
use crate::handshake::pfs::{self, BindError, BindTempAuthKey};
use crate::handshake::{HandshakeError, KeyKind, ServerHandshake, ServerStep};
use crate::plain::{self, PlainError};
use crate::session::MsgIdGen;
use crate::session::server::{
    HELP_GET_CONFIG_ID, HELP_GET_NEAREST_DC_ID, IncomingMessage, OutgoingMessage, Rejection,
    SendError, ServerSalts, ServerSession, ServerSessionConfig, SessionEvent,
};
use crate::time::{Instant, Now};
use crate::tl::{BOOL_TRUE_ID, Deserialize, Identifiable};
use crate::transport::{
    self, Detector, EncodeError, Frame, Framing, HttpRequestId, HttpWaitConfig, QuickAckToken,
    Status, Transport, TransportError, WsServerMode,
};

/// Encrypts one outgoing session message under `key` with the current salt; `None` only for a
/// body the crypto layer refuses (a caller-made one, refused earlier).
fn seal<R: CryptoRng + ?Sized>(
    key: &StoredKey,
    session_id: i64,
    m: &OutgoingMessage,
    now: Now,
    padding: &PaddingPolicy,
    rng: &mut R,
) -> Option<Vec<u8>> {
    let header = MessageHeader {
        salt: b64(key.salts.current(unix_secs(now)).to_le_bytes()),
        session_id: b64(session_id.to_le_bytes()),
        msg_id: b64(m.msg_id.to_le_bytes()),
        seq_no: b32(m.seq_no.to_le_bytes()),
    };
    encrypt_message_to_vec(&key.auth_key, Side::Server, &header, &m.body, padding, rng)
        .ok()
        .map(|sealed| sealed.bytes)
}

/// Same 64 bits as another integer type (TL `long` ids are `i64`; some older APIs use `u64`).
trait Bits64: Sized {
    fn from_le8(b: [u8; 8]) -> Self;
}
impl Bits64 for u64 {
    fn from_le8(b: [u8; 8]) -> Self {
        u64::from_le_bytes(b)
    }
}
impl Bits64 for i64 {
    fn from_le8(b: [u8; 8]) -> Self {
        i64::from_le_bytes(b)
    }
}
trait Bits32: Sized {
    fn from_le4(b: [u8; 4]) -> Self;
}
impl Bits32 for u32 {
    fn from_le4(b: [u8; 4]) -> Self {
        u32::from_le_bytes(b)
    }
}
impl Bits32 for i32 {
    fn from_le4(b: [u8; 4]) -> Self {
        i32::from_le_bytes(b)
    }
}
fn b64<T: Bits64>(b: [u8; 8]) -> T {
    T::from_le8(b)
}
fn b32<T: Bits32>(b: [u8; 4]) -> T {
    T::from_le4(b)
}

/// `auth_key_id` of a key as a TL `long`.
pub fn key_id(key: &AuthKey) -> i64 {
    b64(key.id().to_le_bytes())
}

/// An auth key as the server keeps it.
#[derive(Clone)]
pub struct StoredKey {
    /// The key.
    pub auth_key: AuthKey,
    /// A PFS temporary key.
    pub temporary: bool,
    /// For temporary keys: unix time after which the key is gone.
    pub expires_at: Option<i64>,
    /// For temporary keys: the permanent key it is bound to.
    pub bound_to: Option<i64>,
    /// Unix time the key was made.
    pub created_at: i64,
    /// The key's server salts.
    pub salts: ServerSalts,
}

impl StoredKey {
    /// The key's `auth_key_id`.
    pub fn id(&self) -> i64 {
        key_id(&self.auth_key)
    }

    /// Whether a temporary key has expired at unix time `secs`.
    pub fn is_expired(&self, secs: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= secs)
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("auth_key_id", &self.id())
            .field("temporary", &self.temporary)
            .field("expires_at", &self.expires_at)
            .field("bound_to", &self.bound_to)
            .finish_non_exhaustive()
    }
}

/// Why a store refused a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store holds as many keys as it may.
    Full,
    /// The store is in use (a shared store borrowed elsewhere).
    Busy,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "key store full",
            Self::Busy => "key store busy",
        })
    }
}

impl core::error::Error for StoreError {}

/// Where auth keys and sessions live; implemented by the embedding application.
pub trait KeyStore {
    /// The key with this id, if known.
    fn get(&self, auth_key_id: i64) -> Option<StoredKey>;
    /// Adds a new key.
    fn insert(&mut self, key: StoredKey) -> Result<(), StoreError>;
    /// Records that temporary key `temp` is bound to permanent key `perm` (replacing an earlier
    /// binding of `perm`). Returns false if `temp` is unknown.
    fn bind(&mut self, temp: i64, perm: i64, expires_at: i32) -> bool;
    /// Takes a session out of the store (a connection works on it; it comes back with
    /// [`KeyStore::put_session`] before the connection's call returns). Sessions in use live
    /// here between calls too, so that every connection of one session shares its state. A
    /// threaded store (`Arc<Mutex<..>>`) must hand a session to one caller at a time: while
    /// one connection has it out, another caller asking for it waits (e.g. on a `Condvar`)
    /// until it is put back; answering `None` then would start the session afresh (empty
    /// replay window) on the second connection.
    fn take_session(&mut self, auth_key_id: i64, session_id: i64) -> Option<ServerSession>;
    /// Puts a session (back) into the store.
    fn put_session(&mut self, auth_key_id: i64, session: ServerSession);
    /// Forgets a parked session (`destroy_session`); whether it existed.
    fn remove_session(&mut self, auth_key_id: i64, session_id: i64) -> bool;
    /// Destroys a key and its parked sessions (`destroy_auth_key`); whether it existed.
    fn remove_key(&mut self, auth_key_id: i64) -> bool;
}

/// Bytes waiting in [`ServerConnection::poll_transmit`] above which quick acks are skipped.
const MAX_QUICK_ACK_BACKLOG: usize = 64 * 1024;

/// Default cap on the sessions [`MemoryKeyStore`] parks per auth key.
pub const DEFAULT_MAX_SESSIONS_PER_KEY: usize = 64;

/// An in-memory [`KeyStore`] with caps on keys and parked sessions.
#[derive(Debug)]
pub struct MemoryKeyStore {
    keys: BTreeMap<i64, StoredKey>,
    sessions: BTreeMap<(i64, i64), (u64, ServerSession)>,
    stamp: u64,
    max_keys: usize,
    max_sessions: usize,
    max_sessions_per_key: usize,
}

impl Default for MemoryKeyStore {
    fn default() -> Self {
        Self::new(65_536, 4_096)
    }
}

impl MemoryKeyStore {
    /// A store of at most `max_keys` keys (more are refused with [`StoreError::Full`]; expired
    /// temporary keys are purged first) and `max_sessions` sessions, in use or parked (beyond
    /// it the session put back longest ago is forgotten; its client gets
    /// `new_session_created`), at
    /// most [`DEFAULT_MAX_SESSIONS_PER_KEY`] of them per key (beyond it that key's oldest goes,
    /// so one key cannot push out the sessions of others).
    /// A parked session takes about `8 KiB` (replay window) plus its kept answers.
    pub fn new(max_keys: usize, max_sessions: usize) -> Self {
        Self {
            keys: BTreeMap::new(),
            sessions: BTreeMap::new(),
            stamp: 0,
            max_keys,
            max_sessions,
            max_sessions_per_key: DEFAULT_MAX_SESSIONS_PER_KEY,
        }
    }

    /// Sets the most sessions parked per key.
    pub fn with_max_sessions_per_key(mut self, max: usize) -> Self {
        self.max_sessions_per_key = max;
        self
    }

    /// Whether a session is parked.
    pub fn has_session(&self, auth_key_id: i64, session_id: i64) -> bool {
        self.sessions.contains_key(&(auth_key_id, session_id))
    }

    /// Forgets the session parked longest ago among those `filter` selects.
    fn evict_oldest(&mut self, filter: impl Fn(&(i64, i64)) -> bool) {
        let oldest = self
            .sessions
            .iter()
            .filter(|(k, _)| filter(k))
            .min_by_key(|(_, (stamp, _))| *stamp)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.sessions.remove(&k);
        }
    }

    /// Keys held.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Sessions parked.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Removes temporary keys expired at unix time `secs` (and their sessions).
    pub fn purge_expired(&mut self, secs: i64) {
        let gone: Vec<i64> = self
            .keys
            .iter()
            .filter(|(_, k)| k.is_expired(secs))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.keys.remove(&id);
            self.sessions.retain(|(k, _), _| *k != id);
        }
    }
}

impl KeyStore for MemoryKeyStore {
    fn get(&self, auth_key_id: i64) -> Option<StoredKey> {
        self.keys.get(&auth_key_id).cloned()
    }

    fn insert(&mut self, key: StoredKey) -> Result<(), StoreError> {
        if self.keys.len() >= self.max_keys {
            self.purge_expired(key.created_at);
        }
        if self.keys.len() >= self.max_keys {
            return Err(StoreError::Full);
        }
        self.keys.insert(key.id(), key);
        Ok(())
    }

    fn bind(&mut self, temp: i64, perm: i64, expires_at: i32) -> bool {
        for k in self.keys.values_mut() {
            if k.bound_to == Some(perm) {
                k.bound_to = None;
            }
        }
        match self.keys.get_mut(&temp) {
            Some(k) => {
                k.bound_to = Some(perm);
                k.expires_at = Some(
                    k.expires_at
                        .map_or(i64::from(expires_at), |e| e.min(i64::from(expires_at))),
                );
                true
            }
            None => false,
        }
    }

    fn take_session(&mut self, auth_key_id: i64, session_id: i64) -> Option<ServerSession> {
        self.sessions
            .remove(&(auth_key_id, session_id))
            .map(|(_, s)| s)
    }

    fn put_session(&mut self, auth_key_id: i64, session: ServerSession) {
        if self.max_sessions == 0 || self.max_sessions_per_key == 0 {
            return;
        }
        let slot = (auth_key_id, session.session_id());
        if !self.sessions.contains_key(&slot) {
            let of_key = self
                .sessions
                .range((auth_key_id, i64::MIN)..=(auth_key_id, i64::MAX))
                .count();
            if of_key >= self.max_sessions_per_key {
                self.evict_oldest(|(k, _)| *k == auth_key_id);
            } else if self.sessions.len() >= self.max_sessions {
                self.evict_oldest(|_| true);
            }
        }
        self.stamp = self.stamp.wrapping_add(1);
        self.sessions.insert(slot, (self.stamp, session));
    }

    fn remove_session(&mut self, auth_key_id: i64, session_id: i64) -> bool {
        self.sessions.remove(&(auth_key_id, session_id)).is_some()
    }

    fn remove_key(&mut self, auth_key_id: i64) -> bool {
        self.sessions.retain(|(k, _), _| *k != auth_key_id);
        for k in self.keys.values_mut() {
            if k.bound_to == Some(auth_key_id) {
                k.bound_to = None;
            }
        }
        self.keys.remove(&auth_key_id).is_some()
    }
}

impl<K: KeyStore + ?Sized> KeyStore for &mut K {
    fn get(&self, auth_key_id: i64) -> Option<StoredKey> {
        (**self).get(auth_key_id)
    }
    fn insert(&mut self, key: StoredKey) -> Result<(), StoreError> {
        (**self).insert(key)
    }
    fn bind(&mut self, temp: i64, perm: i64, expires_at: i32) -> bool {
        (**self).bind(temp, perm, expires_at)
    }
    fn take_session(&mut self, auth_key_id: i64, session_id: i64) -> Option<ServerSession> {
        (**self).take_session(auth_key_id, session_id)
    }
    fn put_session(&mut self, auth_key_id: i64, session: ServerSession) {
        (**self).put_session(auth_key_id, session);
    }
    fn remove_session(&mut self, auth_key_id: i64, session_id: i64) -> bool {
        (**self).remove_session(auth_key_id, session_id)
    }
    fn remove_key(&mut self, auth_key_id: i64) -> bool {
        (**self).remove_key(auth_key_id)
    }
}

/// A store shared by the connections of one thread. A store already borrowed (re-entrancy)
/// answers like an empty one and refuses inserts with [`StoreError::Busy`]; it never panics.
impl<K: KeyStore> KeyStore for Rc<RefCell<K>> {
    fn get(&self, auth_key_id: i64) -> Option<StoredKey> {
        self.try_borrow().ok()?.get(auth_key_id)
    }
    fn insert(&mut self, key: StoredKey) -> Result<(), StoreError> {
        self.try_borrow_mut()
            .map_err(|_| StoreError::Busy)?
            .insert(key)
    }
    fn bind(&mut self, temp: i64, perm: i64, expires_at: i32) -> bool {
        self.try_borrow_mut()
            .is_ok_and(|mut s| s.bind(temp, perm, expires_at))
    }
    fn take_session(&mut self, auth_key_id: i64, session_id: i64) -> Option<ServerSession> {
        self.try_borrow_mut()
            .ok()?
            .take_session(auth_key_id, session_id)
    }
    fn put_session(&mut self, auth_key_id: i64, session: ServerSession) {
        if let Ok(mut s) = self.try_borrow_mut() {
            s.put_session(auth_key_id, session);
        }
    }
    fn remove_session(&mut self, auth_key_id: i64, session_id: i64) -> bool {
        self.try_borrow_mut()
            .is_ok_and(|mut s| s.remove_session(auth_key_id, session_id))
    }
    fn remove_key(&mut self, auth_key_id: i64) -> bool {
        self.try_borrow_mut()
            .is_ok_and(|mut s| s.remove_key(auth_key_id))
    }
}

/// Settings of a [`ServerConnection`].
#[derive(Clone, Debug)]
pub struct ServerConnectionConfig {
    /// Transports and MTProxy secrets accepted.
    pub transport: transport::ServerConfig,
    /// The handshake's RSA keys, DH prime, limits.
    pub handshake: crate::handshake::ServerConfig,
    /// Session limits.
    pub session: ServerSessionConfig,
    /// Padding of encrypted messages.
    pub padding: PaddingPolicy,
    /// Each salt of a key is valid for this long (seconds).
    pub salt_period_secs: u32,
    /// Events held until polled.
    pub max_events: usize,
    /// Handshakes (started, finished or not) allowed on one connection within any
    /// [`handshake_window_micros`](Self::handshake_window_micros): a rate, not a lifetime
    /// total, so that a PFS client renewing its temporary key on the same connection is never
    /// cut off.
    pub max_handshakes: u32,
    /// The sliding window (µs) of [`max_handshakes`](Self::max_handshakes).
    pub handshake_window_micros: u64,
    /// A connection that has not sent an encrypted message this long (µs) after its first byte
    /// is closed.
    pub handshake_timeout_micros: u64,
    /// A connection silent this long (µs) is closed.
    pub idle_timeout_micros: Option<u64>,
    /// WebSocket (`mtproto_transports.md`; obfuscation is mandatory inside): upgrades answered
    /// here besides the TCP transports ([`WsServerMode::Codec`]), or a driver that unwraps the
    /// messages itself and feeds their payloads ([`WsServerMode::External`]: only obfuscated2
    /// is accepted; send each `poll_transmit` output as one binary message). Default off. The
    /// upgrade counts towards [`handshake_timeout_micros`](Self::handshake_timeout_micros).
    pub websocket: WsServerMode,
    /// The HTTP transport's limits ([`ServerConnection::new_http`]).
    pub http: HttpServerConfig,
}

/// Limits of a [`ServerConnection`] in HTTP mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpServerConfig {
    /// Requests in the machine at most: held ones plus answers not polled yet. Beyond it
    /// [`ServerConnection::handle_http_request`] refuses the request (answer it `503`).
    pub max_requests: usize,
    /// Requests held per session at most: when one more arrives, the oldest held one is
    /// answered at once (with what is queued, else an empty container). Two fit the
    /// long poll plus one request-lane POST of a client.
    pub max_held_per_session: usize,
    /// Requests held per auth key at most, over all its sessions (session ids are the
    /// client's choice, so the per-session cap alone lets one key fill the endpoint): when one
    /// more arrives, the key's oldest held one is answered at once.
    pub max_held_per_key: usize,
    /// The longest wait a client's `http_wait` can ask for, ms: its `max_wait`, `max_delay`
    /// and `wait_after` are clamped to `0..=max_wait_ms` (25 s: the spec's default `max_wait`,
    /// what tdlib asks for).
    pub max_wait_ms: i32,
    /// Handshakes started at most per [`ServerConnectionConfig::handshake_window_micros`]
    /// on the endpoint (all its clients together; a new client nonce starts one): each costs
    /// an RSA decryption and 2048-bit DH. Beyond it the request is answered `429`. The
    /// default, 64 per 60 s, is for an endpoint that serves many clients; the stream
    /// transports' per-connection [`ServerConnectionConfig::max_handshakes`] does not apply.
    pub max_handshakes_per_window: u32,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            max_requests: 1024,
            max_held_per_session: 2,
            max_held_per_key: 16,
            max_wait_ms: 25_000,
            max_handshakes_per_window: 64,
        }
    }
}

impl ServerConnectionConfig {
    /// Defaults around the given handshake settings.
    pub fn new(handshake: crate::handshake::ServerConfig) -> Self {
        Self {
            transport: transport::ServerConfig::default(),
            handshake,
            session: ServerSessionConfig::default(),
            padding: PaddingPolicy::default(),
            salt_period_secs: 3600,
            max_events: 1024,
            max_handshakes: 4,
            handshake_window_micros: 60_000_000,
            handshake_timeout_micros: 60_000_000,
            idle_timeout_micros: Some(600_000_000),
            websocket: WsServerMode::Off,
            http: HttpServerConfig::default(),
        }
    }
}

/// Names one request: the key and session it arrived in and its msg_id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerRequestId {
    /// The auth key.
    pub auth_key_id: i64,
    /// The session.
    pub session_id: i64,
    /// The request's msg_id.
    pub msg_id: i64,
}

/// Why a connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`ServerConnection::close`].
    Local,
    /// The transport stream is malformed (or no accepted transport).
    Transport(TransportError),
    /// Encoding for the transport failed.
    Encode(EncodeError),
    /// A frame is too short to hold an auth_key_id.
    ShortFrame,
    /// A malformed unencrypted message.
    Plain(PlainError),
    /// The handshake failed.
    Handshake(HandshakeError),
    /// More handshakes than [`ServerConnectionConfig::max_handshakes`] within
    /// [`ServerConnectionConfig::handshake_window_micros`].
    TooManyHandshakes,
    /// The key store refused the new key.
    Store(StoreError),
    /// An unknown `auth_key_id` (transport error −404 was sent).
    UnknownAuthKey {
        /// The id the client used.
        auth_key_id: i64,
    },
    /// A message did not decrypt.
    Decrypt(DecryptError),
    /// `ping_delay_disconnect`'s delay passed without a new one.
    PingDelayDisconnect,
    /// No encrypted message within the handshake timeout.
    HandshakeTimeout,
    /// Nothing received within the idle timeout.
    IdleTimeout,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("closed locally"),
            Self::Transport(e) => write!(f, "transport: {e}"),
            Self::Encode(e) => write!(f, "transport encoding: {e}"),
            Self::ShortFrame => f.write_str("frame shorter than an auth_key_id"),
            Self::Plain(e) => write!(f, "unencrypted message: {e}"),
            Self::Handshake(e) => write!(f, "handshake: {e}"),
            Self::TooManyHandshakes => f.write_str("too many handshakes on one connection"),
            Self::Store(e) => write!(f, "{e}"),
            Self::UnknownAuthKey { auth_key_id } => write!(f, "unknown auth_key_id {auth_key_id}"),
            Self::Decrypt(e) => write!(f, "{e}"),
            Self::PingDelayDisconnect => f.write_str("ping_delay_disconnect delay passed"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::IdleTimeout => f.write_str("idle timeout"),
        }
    }
}

/// What a [`ServerConnection`] reports.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A request for the application; answer with [`ServerConnection::respond`] or
    /// [`ServerConnection::respond_error`]. `body` is owned: it outlives the input buffer.
    Request {
        /// Which request.
        id: ServerRequestId,
        /// Its TL body (inflated if it came as `gzip_packed`).
        body: Vec<u8>,
    },
    /// A handshake made a key (now in the store).
    AuthKeyCreated {
        /// The new key's id.
        auth_key_id: i64,
        /// A PFS temporary key.
        temporary: bool,
    },
    /// A temporary key was bound to a permanent one.
    TempKeyBound {
        /// The temporary key.
        temp_auth_key_id: i64,
        /// The permanent key.
        perm_auth_key_id: i64,
    },
    /// A new session started (`new_session_created` sent).
    NewSession {
        /// Its key.
        auth_key_id: i64,
        /// The session.
        session_id: i64,
    },
    /// A session parked in the store continues on this connection.
    SessionResumed {
        /// Its key.
        auth_key_id: i64,
        /// The session.
        session_id: i64,
    },
    /// The client destroyed its key (`destroy_auth_key`); it is gone from the store.
    AuthKeyDestroyed {
        /// The destroyed key.
        auth_key_id: i64,
    },
    /// A client message was dropped (not fatal).
    MessageRejected {
        /// Its msg_id.
        msg_id: i64,
        /// Why.
        reason: Rejection,
    },
    /// The connection is closed; nothing more will happen (drain `poll_transmit` once more: a
    /// transport error may be waiting).
    Closed(CloseReason),
}

impl fmt::Debug for ServerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request { id, body } => f
                .debug_struct("Request")
                .field("id", id)
                .field("body_len", &body.len())
                .finish(),
            Self::AuthKeyCreated {
                auth_key_id,
                temporary,
            } => f
                .debug_struct("AuthKeyCreated")
                .field("auth_key_id", auth_key_id)
                .field("temporary", temporary)
                .finish(),
            Self::TempKeyBound {
                temp_auth_key_id,
                perm_auth_key_id,
            } => f
                .debug_struct("TempKeyBound")
                .field("temp_auth_key_id", temp_auth_key_id)
                .field("perm_auth_key_id", perm_auth_key_id)
                .finish(),
            Self::NewSession {
                auth_key_id,
                session_id,
            } => f
                .debug_struct("NewSession")
                .field("auth_key_id", auth_key_id)
                .field("session_id", session_id)
                .finish(),
            Self::SessionResumed {
                auth_key_id,
                session_id,
            } => f
                .debug_struct("SessionResumed")
                .field("auth_key_id", auth_key_id)
                .field("session_id", session_id)
                .finish(),
            Self::AuthKeyDestroyed { auth_key_id } => f
                .debug_struct("AuthKeyDestroyed")
                .field("auth_key_id", auth_key_id)
                .finish(),
            Self::MessageRejected { msg_id, reason } => f
                .debug_struct("MessageRejected")
                .field("msg_id", msg_id)
                .field("reason", reason)
                .finish(),
            Self::Closed(r) => f.debug_tuple("Closed").field(r).finish(),
        }
    }
}

enum Link {
    Detecting(Detector),
    Ready(Transport),
    /// The HTTP transport: bodies in, bodies out (no stream).
    Http,
}

/// A request held until its session has something to send or its `max_wait` passes.
struct Held {
    id: u64,
    /// (auth_key_id, session_id)
    session: (i64, i64),
    arrived: Instant,
    wait: HttpWaitConfig,
    /// Answer at once (a newer request of the same session pushed it out).
    now: bool,
}

/// When a session's queued messages appeared (for `max_delay` / `wait_after`).
struct Queued {
    first: Instant,
    last: Instant,
    len: usize,
}

/// The HTTP side of a [`ServerConnection`].
#[derive(Default)]
struct HttpState {
    next_id: u64,
    /// Answers ready for `poll_http_response`: (request, status, body).
    ready: VecDeque<(u64, u16, Vec<u8>)>,
    held: VecDeque<Held>,
    queued: BTreeMap<(i64, i64), Queued>,
    /// Handshakes in progress, by the client's nonce (many clients share one endpoint): the
    /// handshake, its deadline, and whether it got past `req_pq` (a later message came).
    handshakes: BTreeMap<[u8; 16], (ServerHandshake, Instant, bool)>,
    /// The request being handled failed with this HTTP status.
    failed: Option<u16>,
}

/// The server end of one connection. See the [module docs](self).
pub struct ServerConnection<R: CryptoRng, K: KeyStore> {
    config: ServerConnectionConfig,
    keys: K,
    rng: R,
    link: Link,
    handshake: Option<ServerHandshake>,
    /// When the handshakes of the last [`ServerConnectionConfig::handshake_window_micros`]
    /// started (at most [`ServerConnectionConfig::max_handshakes`] entries; in HTTP mode
    /// [`HttpServerConfig::max_handshakes_per_window`], for the endpoint).
    handshakes: VecDeque<Instant>,
    plain_ids: MsgIdGen,
    key: Option<StoredKey>,
    /// This connection's id as a session carrier ([`ServerSession::carrier`]).
    token: u64,
    /// The session of the last client message (under `key`).
    session_id: Option<i64>,
    /// The session, while checked out of the store during a call (sessions live in the store
    /// between calls, so that every connection of one session shares its state); kept here
    /// only while not started yet (nothing to share) or while its key is being destroyed.
    session: Option<ServerSession>,
    /// `poll_timeout` of the session as last checked in, if this connection carries it.
    session_timeout: Option<Instant>,
    out: Vec<u8>,
    events: VecDeque<ServerEvent>,
    dropped_events: u64,
    closed: Option<CloseReason>,
    opened_at: Option<Instant>,
    last_input: Option<Instant>,
    established: bool,
    disconnect_at: Option<Instant>,
    /// The current key was destroyed (`destroy_auth_key`).
    key_destroyed: bool,
    /// HTTP mode ([`ServerConnection::new_http`]).
    http: Option<HttpState>,
}

impl<R: CryptoRng, K: KeyStore> fmt::Debug for ServerConnection<R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConnection")
            .field("auth_key_id", &self.key.as_ref().map(StoredKey::id))
            .field("session", &self.session)
            .field("events", &self.events.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<R: CryptoRng, K: KeyStore> Drop for ServerConnection<R, K> {
    fn drop(&mut self) {
        self.park_session();
    }
}

fn constructor(body: &[u8]) -> Option<u32> {
    body.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

fn unix_secs(now: Now) -> i64 {
    i64::try_from(now.unix.as_secs()).unwrap_or(i64::MAX)
}

fn unix_nanos(now: Now) -> i64 {
    i64::try_from(now.unix.as_nanos()).unwrap_or(i64::MAX)
}

impl<R: CryptoRng, K: KeyStore> ServerConnection<R, K> {
    /// A connection that has not received a byte yet.
    pub fn new(config: ServerConnectionConfig, keys: K, mut rng: R) -> Self {
        let detector =
            Detector::new(config.transport.clone()).with_websocket(config.websocket.clone());
        let token = rng.next_u64();
        Self {
            config,
            keys,
            rng,
            link: Link::Detecting(detector),
            handshake: None,
            handshakes: VecDeque::new(),
            plain_ids: MsgIdGen::new(),
            key: None,
            token,
            session_id: None,
            session: None,
            session_timeout: None,
            out: Vec::new(),
            events: VecDeque::new(),
            dropped_events: 0,
            closed: None,
            opened_at: None,
            last_input: None,
            established: false,
            disconnect_at: None,
            key_destroyed: false,
            http: None,
        }
    }

    /// The key store.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why it closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Events dropped because nobody polled them (see the module docs).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Events waiting to be polled.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The framing in use, once known.
    pub fn framing(&self) -> Option<Framing> {
        match &self.link {
            Link::Ready(t) => t.framing(),
            Link::Detecting(_) | Link::Http => None,
        }
    }

    /// The auth key and session currently in use.
    pub fn current_session(&self) -> Option<(i64, i64)> {
        Some((self.key.as_ref()?.id(), self.session_id?))
    }

    /// Closes the connection (its session is parked in the store).
    pub fn close(&mut self) {
        self.fail(CloseReason::Local);
    }

    fn push_event(&mut self, e: ServerEvent) -> bool {
        if self.events.len() < self.config.max_events {
            self.events.push_back(e);
            true
        } else {
            self.dropped_events = self.dropped_events.saturating_add(1);
            false
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Brings the current session out of the store into `self.session` for this call.
    fn checkout(&mut self) {
        if self.session.is_some() {
            return;
        }
        if let (Some(key), Some(sid)) = (&self.key, self.session_id) {
            self.session = self.keys.take_session(key.id(), sid);
        }
    }

    /// Puts the current session back into the store, where every connection of the session
    /// finds it (one replay window, one outbox). A session not started yet stays here, and so
    /// does one whose key is being destroyed (its answer still has to go out).
    fn checkin(&mut self) {
        if self.key_destroyed {
            return;
        }
        let Some(key) = &self.key else { return };
        let Some(s) = self.session.take() else { return };
        if !s.is_started() {
            self.session = Some(s);
            return;
        }
        self.session_timeout = s.poll_timeout().filter(|_| s.carrier() == Some(self.token));
        self.keys.put_session(key.id(), s);
    }

    /// Leaves the current session (a message for another key or session arrived).
    fn park_session(&mut self) {
        self.checkin();
        self.session = None;
        self.session_id = None;
        self.session_timeout = None;
    }

    fn fail(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        if let Some(h) = self.http.as_mut()
            && reason != CloseReason::Local
        {
            // HTTP: one request failed, not the endpoint. Its answer is a status.
            h.failed = Some(match reason {
                CloseReason::UnknownAuthKey { .. } => 404,
                CloseReason::Store(_) => 503,
                CloseReason::TooManyHandshakes => 429,
                _ => 400,
            });
            return;
        }
        self.closed = Some(reason);
        self.checkin();
        // Always delivered, even past the cap.
        self.events.push_back(ServerEvent::Closed(reason));
    }

    /// Feeds bytes received from the client (any split of the stream).
    pub fn handle_input(&mut self, now: Now, bytes: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        self.opened_at.get_or_insert(now.mono);
        self.last_input = Some(now.mono);
        let mut input = bytes;
        loop {
            let frame = match &mut self.link {
                Link::Detecting(d) => match d.decode(input, now.unix, &mut self.rng) {
                    Err(e) => return self.fail(CloseReason::Transport(e)),
                    Ok((_, Status::Partial)) => return,
                    Ok((n, Status::Complete(found))) => {
                        self.out.extend_from_slice(&found.reply);
                        self.link = Link::Ready(found.transport);
                        input = input.get(n..).unwrap_or_default();
                        continue;
                    }
                },
                // HTTP: bodies come through `handle_http_request`.
                Link::Http => return,
                Link::Ready(t) => {
                    if input.is_empty() {
                        return;
                    }
                    match t.decode(input) {
                        Err(e) => return self.fail(CloseReason::Transport(e)),
                        Ok((n, status)) => {
                            input = input.get(n..).unwrap_or_default();
                            match status {
                                Status::Partial => return,
                                Status::Complete(Frame::Payload { data, quick_ack }) => {
                                    Some((data.to_vec(), quick_ack))
                                }
                                // Clients send neither: ignored.
                                Status::Complete(_) => None,
                            }
                        }
                    }
                }
            };
            if let Some((frame, quick_ack)) = frame {
                self.on_frame(now, frame, quick_ack);
            }
            if self.closed.is_some() {
                return;
            }
        }
    }

    fn encode(&mut self, payload: &[u8]) {
        let t = match &mut self.link {
            Link::Ready(t) => t,
            Link::Http => return self.out.extend_from_slice(payload),
            Link::Detecting(_) => return,
        };
        if let Err(e) = t.encode(payload, false, &mut self.rng, &mut self.out) {
            self.fail(CloseReason::Encode(e));
        }
    }

    fn on_frame(&mut self, now: Now, mut frame: Vec<u8>, quick_ack: bool) {
        match peek_auth_key_id(&frame) {
            None => self.fail(CloseReason::ShortFrame),
            Some(0) => self.on_plain(now, &frame),
            Some(id) => self.on_encrypted(now, &mut frame, quick_ack, b64(id.to_le_bytes())),
        }
    }

    fn on_plain(&mut self, now: Now, frame: &[u8]) {
        let body = match plain::unwrap(frame) {
            Ok((_, body)) => body,
            Err(e) => return self.fail(CloseReason::Plain(e)),
        };
        if self.handshake.is_none() {
            let window = self.config.handshake_window_micros;
            while self
                .handshakes
                .front()
                .is_some_and(|t| now.mono >= t.saturating_add_micros(window))
            {
                self.handshakes.pop_front();
            }
            // HTTP: handshakes are kept by nonce and capped (`handle_http_request`); the rate
            // is the endpoint's.
            let max = if self.http.is_some() {
                self.config.http.max_handshakes_per_window
            } else {
                self.config.max_handshakes
            };
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if self.handshakes.len() >= max {
                return self.fail(CloseReason::TooManyHandshakes);
            }
            self.handshakes.push_back(now.mono);
            self.handshake = Some(ServerHandshake::new(self.config.handshake.clone()));
        }
        let Some(hs) = self.handshake.as_mut() else {
            return;
        };
        let keys = &self.keys;
        let step = hs.handle_with(now.unix, body, &mut self.rng, |id| {
            keys.get(b64(id.to_le_bytes())).is_some()
        });
        let reply = match step {
            Err(e) => return self.fail(CloseReason::Handshake(e)),
            Ok(ServerStep::Send(reply)) => reply,
            Ok(ServerStep::Done { reply, key }) => {
                self.handshake = None;
                let secs = unix_secs(now);
                let salts = ServerSalts::generate(
                    &mut self.rng,
                    b64(key.server_salt.to_le_bytes()),
                    secs,
                    self.config.salt_period_secs,
                );
                let temporary = matches!(key.kind, KeyKind::Temporary { .. });
                let stored = StoredKey {
                    auth_key: key.auth_key.clone(),
                    temporary,
                    expires_at: key.expires_at,
                    bound_to: None,
                    created_at: secs,
                    salts,
                };
                let auth_key_id = stored.id();
                if let Err(e) = self.keys.insert(stored) {
                    return self.fail(CloseReason::Store(e));
                }
                self.push_event(ServerEvent::AuthKeyCreated {
                    auth_key_id,
                    temporary,
                });
                reply
            }
        };
        let id = self.plain_ids.next(unix_nanos(now), 1);
        self.encode(&plain::wrap(id, &reply));
    }

    fn unknown_key(&mut self, auth_key_id: i64) {
        if let Link::Ready(t) = &mut self.link {
            // Best effort: the connection closes either way.
            let _ = t.encode_transport_error(-404, &mut self.rng, &mut self.out);
        }
        self.fail(CloseReason::UnknownAuthKey { auth_key_id });
    }

    fn on_encrypted(&mut self, now: Now, frame: &mut [u8], quick_ack: bool, auth_key_id: i64) {
        let secs = unix_secs(now);
        if self.key_destroyed {
            self.session = None;
            self.session_id = None;
            self.session_timeout = None;
            self.key = None;
            self.key_destroyed = false;
        }
        if self.key.as_ref().map(StoredKey::id) != Some(auth_key_id) {
            match self.keys.get(auth_key_id) {
                Some(k) if !k.is_expired(secs) => {
                    self.park_session();
                    self.key = Some(k);
                }
                _ => return self.unknown_key(auth_key_id),
            }
        }
        let Some(key) = self.key.take() else { return };
        if key.is_expired(secs) {
            self.key = Some(key);
            return self.unknown_key(auth_key_id);
        }
        let msg = match decrypt_message(&key.auth_key, Side::Client, frame) {
            Ok(m) => m,
            Err(e) => {
                self.key = Some(key);
                return self.fail(CloseReason::Decrypt(e));
            }
        };
        self.established = true;
        // Quick acks wait in `out` until polled: past 64 KiB of them (a driver that does not
        // poll while a client floods) they are skipped, they are only a hint.
        if quick_ack
            && self.out.len() < MAX_QUICK_ACK_BACKLOG
            && let Link::Ready(t) = &mut self.link
        {
            // The full transport has no quick acks: nothing to send then.
            let token = QuickAckToken::new(msg.quick_ack_token);
            let _ = t.encode_quick_ack(token, &mut self.rng, &mut self.out);
        }
        let incoming = IncomingMessage {
            salt: b64(msg.salt.to_le_bytes()),
            session_id: b64(msg.session_id.to_le_bytes()),
            msg_id: b64(msg.msg_id.to_le_bytes()),
            seq_no: b32(msg.seq_no.to_le_bytes()),
            body: msg.body,
        };
        self.key = Some(key);
        let session_id = incoming.session_id;
        if self.session_id != Some(session_id) {
            self.park_session();
            self.session_id = Some(session_id);
        }
        // One session, whatever connection carries it: its state (replay window, seq_no,
        // kept answers) comes from the store, so a message replayed on a second connection is
        // a duplicate there too.
        self.checkout();
        let token = self.token;
        match self.session.as_mut() {
            Some(s) => {
                if s.set_carrier(token) {
                    // Parked by a closed connection or carried by another live one until now:
                    // this connection takes it over (the newest connection wins) and sends
                    // again what the client has not acknowledged.
                    s.resume();
                    self.push_event(ServerEvent::SessionResumed {
                        auth_key_id,
                        session_id,
                    });
                }
            }
            None => {
                let unique_id = b64(self.rng.next_u64().to_le_bytes());
                let mut s = ServerSession::new(self.config.session.clone(), session_id, unique_id);
                s.set_carrier(token);
                self.session = Some(s);
            }
        }
        if let (Some(session), Some(key)) = (self.session.as_mut(), self.key.as_ref()) {
            session.handle(now, &key.salts, incoming);
            self.drain_session(now, auth_key_id, session_id);
        }
        self.checkin();
    }

    fn drain_session(&mut self, now: Now, auth_key_id: i64, session_id: i64) {
        while let Some(e) = self.session.as_mut().and_then(ServerSession::poll_event) {
            match e {
                SessionEvent::Request { msg_id, body } => {
                    self.on_request(now, auth_key_id, session_id, msg_id, body);
                }
                SessionEvent::Started { .. } => {
                    self.push_event(ServerEvent::NewSession {
                        auth_key_id,
                        session_id,
                    });
                }
                SessionEvent::DisconnectAfter { delay_secs } => {
                    let micros = u64::try_from(delay_secs)
                        .unwrap_or(0)
                        .saturating_mul(1_000_000);
                    self.disconnect_at = Some(now.mono.saturating_add_micros(micros));
                }
                SessionEvent::DestroySession {
                    req_msg_id: _,
                    session_id: other,
                } => {
                    let existed = self.keys.remove_session(auth_key_id, other);
                    if let Some(s) = self.session.as_mut() {
                        s.answer_destroy_session(other, existed);
                    }
                }
                SessionEvent::DestroyAuthKey { .. } => {
                    let existed = self.keys.remove_key(auth_key_id);
                    // The answer still goes out under the key; then the key is gone: any
                    // later message with it gets -404.
                    self.key_destroyed = true;
                    if let Some(s) = self.session.as_mut() {
                        s.answer_destroy_auth_key(Some(existed));
                    }
                    self.push_event(ServerEvent::AuthKeyDestroyed { auth_key_id });
                }
                SessionEvent::Rejected { msg_id, reason } => {
                    self.push_event(ServerEvent::MessageRejected { msg_id, reason });
                }
            }
        }
    }

    fn session_error(&mut self, msg_id: i64, code: i32, message: &str) {
        if let Some(s) = self.session.as_mut() {
            let _ = s.respond_error(msg_id, code, message);
        }
    }

    fn on_request(
        &mut self,
        now: Now,
        auth_key_id: i64,
        session_id: i64,
        msg_id: i64,
        body: Vec<u8>,
    ) {
        let Some(key) = self.key.as_ref() else { return };
        let ctor = constructor(&body);
        if ctor == Some(BindTempAuthKey::CONSTRUCTOR_ID) {
            return self.bind(now, msg_id, session_id, &body);
        }
        let unbound_temp = key.temporary && key.bound_to.is_none();
        if unbound_temp && !matches!(ctor, Some(HELP_GET_CONFIG_ID | HELP_GET_NEAREST_DC_ID)) {
            return self.session_error(msg_id, 401, "AUTH_KEY_UNREGISTERED");
        }
        let id = ServerRequestId {
            auth_key_id,
            session_id,
            msg_id,
        };
        if !self.push_event(ServerEvent::Request { id, body }) {
            self.session_error(msg_id, 420, "FLOOD_WAIT_1");
        }
    }

    fn bind(&mut self, now: Now, msg_id: i64, session_id: i64, body: &[u8]) {
        let Some(temp) = self.key.as_ref() else {
            return;
        };
        if !temp.temporary {
            return self.session_error(msg_id, 400, "TEMP_AUTH_KEY_EMPTY");
        }
        let temp_id = temp.id();
        let perm = BindTempAuthKey::from_bytes(body)
            .ok()
            .and_then(|req| self.keys.get(req.perm_auth_key_id))
            .filter(|p| !p.temporary);
        let Some(perm) = perm else {
            return self.session_error(msg_id, 400, "ENCRYPTED_MESSAGE_INVALID");
        };
        let verdict = pfs::verify_bind(
            &perm.auth_key,
            b64(temp_id.to_le_bytes()),
            b64(session_id.to_le_bytes()),
            msg_id,
            unix_secs(now),
            body,
        );
        match verdict {
            Ok(binding) => {
                let perm_id = perm.id();
                if !self.keys.bind(temp_id, perm_id, binding.expires_at) {
                    return self.session_error(msg_id, 400, "TEMP_AUTH_KEY_EMPTY");
                }
                if let Some(k) = self.key.as_mut() {
                    k.bound_to = Some(perm_id);
                }
                if let Some(s) = self.session.as_mut() {
                    let _ = s.respond(msg_id, &BOOL_TRUE_ID.to_le_bytes());
                }
                self.push_event(ServerEvent::TempKeyBound {
                    temp_auth_key_id: temp_id,
                    perm_auth_key_id: perm_id,
                });
            }
            Err(BindError::Expired) => self.session_error(msg_id, 400, "EXPIRES_AT_INVALID"),
            Err(_) => self.session_error(msg_id, 400, "ENCRYPTED_MESSAGE_INVALID"),
        }
    }

    /// Appends the bytes to send to `out`; whether there were any.
    pub fn poll_transmit(&mut self, now: Now, out: &mut Vec<u8>) -> bool {
        if self.http.is_some() {
            // HTTP: messages go out only as answers (`poll_http_response`).
            return false;
        }
        let start = out.len();
        if let Link::Ready(t) = &mut self.link {
            // The transport's own bytes (a WebSocket upgrade answer, pong, close answer).
            t.poll_output(&mut self.rng, &mut self.out);
        }
        out.append(&mut self.out);
        if self.closed.is_none() {
            self.checkout();
            let token = self.token;
            // Only the connection carrying the session sends its messages.
            let carrier = self
                .session
                .as_ref()
                .is_some_and(|s| s.carrier() == Some(token));
            while let Some(m) = self
                .session
                .as_mut()
                .filter(|_| carrier)
                .and_then(|s| s.poll_message(now))
            {
                let Some(key) = self.key.as_ref() else { break };
                let Some(session) = self.session.as_ref() else {
                    break;
                };
                let sealed = seal(
                    key,
                    session.session_id(),
                    &m,
                    now,
                    &self.config.padding,
                    &mut self.rng,
                );
                // Only a caller-made body can fail (refused earlier): skip it.
                if let Some(sealed) = sealed {
                    self.encode(&sealed);
                }
                out.append(&mut self.out);
            }
            self.checkin();
        }
        out.len() > start
    }

    /// The next time [`ServerConnection::handle_timeout`] (then `poll_transmit`) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        if self.http.is_some() {
            return self.http_timeout();
        }
        let handshake = (!self.established)
            .then(|| {
                self.opened_at
                    .map(|t| t.saturating_add_micros(self.config.handshake_timeout_micros))
            })
            .flatten();
        let idle = self
            .config
            .idle_timeout_micros
            .and_then(|d| Some(self.last_input?.saturating_add_micros(d)));
        [
            handshake,
            idle,
            self.disconnect_at,
            self.session
                .as_ref()
                .map_or(self.session_timeout, ServerSession::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires due timers (closing the connection if one of its deadlines passed).
    pub fn handle_timeout(&mut self, now: Now) {
        if self.closed.is_some() {
            return;
        }
        if let Some(h) = self.http.as_mut() {
            // No connection to close; held requests are answered by `poll_http_response`.
            h.handshakes
                .retain(|_, (_, deadline, _)| now.mono < *deadline);
            return;
        }
        self.opened_at.get_or_insert(now.mono);
        if self.disconnect_at.is_some_and(|t| now.mono >= t) {
            return self.fail(CloseReason::PingDelayDisconnect);
        }
        let handshake_due = !self.established
            && self.opened_at.is_some_and(|t| {
                now.mono >= t.saturating_add_micros(self.config.handshake_timeout_micros)
            });
        if handshake_due {
            return self.fail(CloseReason::HandshakeTimeout);
        }
        if let (Some(d), Some(last)) = (self.config.idle_timeout_micros, self.last_input)
            && now.mono >= last.saturating_add_micros(d)
        {
            self.fail(CloseReason::IdleTimeout);
        }
    }

    /// Runs `f` on the session of `id`, wherever it is: checked out here, or in the store
    /// (parked, or carried by this or another connection between calls).
    fn with_session(
        &mut self,
        now: Now,
        id: &ServerRequestId,
        f: impl FnOnce(&mut ServerSession) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let here = self.current_session() == Some((id.auth_key_id, id.session_id));
        if here && let Some(s) = self.session.as_mut() {
            let r = f(s);
            let len = s.outbox_len();
            self.note_queued(now, (id.auth_key_id, id.session_id), len);
            return r;
        }
        let mut s = self
            .keys
            .take_session(id.auth_key_id, id.session_id)
            .ok_or(SendError::Unavailable)?;
        let r = f(&mut s);
        self.note_queued(now, (id.auth_key_id, id.session_id), s.outbox_len());
        if here && s.carrier() == Some(self.token) {
            self.session_timeout = s.poll_timeout();
        }
        self.keys.put_session(id.auth_key_id, s);
        r
    }

    /// Answers a request with `rpc_result` carrying `body` (a serialized TL object).
    ///
    /// The answer is queued in the request's session wherever that is, and goes out on the
    /// connection that carries the session ([`ServerSession::carrier`]): this one, another
    /// live connection the client has moved to (that connection sends it at its next
    /// [`poll_transmit`](Self::poll_transmit): a driver with several connections of one
    /// session polls the other one too), or, for a parked session, the connection the client
    /// comes back on. It is kept until the client acknowledges it. Works after this
    /// connection closed. [`SendError::Unavailable`]: the session is gone (destroyed, or
    /// evicted from the store).
    pub fn respond(&mut self, now: Now, id: ServerRequestId, body: &[u8]) -> Result<(), SendError> {
        self.with_session(now, &id, |s| s.respond(id.msg_id, body))
    }

    /// Answers a request with `rpc_error`.
    pub fn respond_error(
        &mut self,
        now: Now,
        id: ServerRequestId,
        code: i32,
        message: &str,
    ) -> Result<(), SendError> {
        self.with_session(now, &id, |s| s.respond_error(id.msg_id, code, message))
    }

    /// Sends a message that answers nothing (an update) in the current session.
    pub fn push_update(&mut self, now: Now, body: &[u8]) -> Result<(), SendError> {
        if self.closed.is_some() {
            return Err(SendError::Unavailable);
        }
        let (auth_key_id, session_id) = self.current_session().ok_or(SendError::Unavailable)?;
        let id = ServerRequestId {
            auth_key_id,
            session_id,
            msg_id: 0,
        };
        self.with_session(now, &id, |s| s.push_update(body))
    }
}

fn ms_micros(ms: i32) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1000)
}

/// # The HTTP transport
///
/// One `ServerConnection` made with [`new_http`](ServerConnection::new_http) serves HTTP
/// requests: from one client or from many (a listener's every request may go to one
/// endpoint: handshakes are told apart by their nonce, sessions by key and session id). It
/// never sees a socket; the driver parses HTTP (or uses [`crate::transport::http`]) and runs:
///
/// ```text
/// POST body arrived  -> match conn.handle_http_request(now, &body) {
///                           Some(id) => remember id with its HTTP exchange,
///                           None => answer 503 yourself (too many requests held) }
/// events             -> conn.poll_event(): Request -> conn.respond(now, id, &answer), ...
/// answers            -> while let Some((id, status)) = conn.poll_http_response(now, &mut body)
///                           { answer exchange `id` with `status` and `body` }
/// client went away   -> conn.cancel_http_request(id) for each of its requests
/// timer              -> conn.handle_timeout(now) at conn.poll_timeout(), then answers again
/// ```
///
/// Every request gets exactly one answer, after at most its `max_wait` (`http_wait` of the
/// message, else the spec's defaults 0/0/25000 ms), [`poll_timeout`](ServerConnection::poll_timeout)
/// names when:
/// - an unencrypted (handshake) message is answered at once with the handshake's reply;
/// - a request that fails is answered with a status: `404` for an unknown auth key (the
///   client reads transport error −404), `400` for one that does not decrypt or parse, `503`
///   if the key store refused a new key, `429` for a handshake beyond the endpoint's rate.
///   The endpoint stays open;
/// - an encrypted message is **held** until its session has messages queued (answers,
///   updates, service answers) and `max_delay` / `wait_after` passed (`mtproto_service_messages.md`),
///   then answered with them (pending acks flushed into the same packet); with nothing to
///   send by `max_wait`, with an empty `msg_container`. A request-lane POST
///   (`max_wait` 0) is thus answered at once, a long poll when something comes up.
///
/// Bounds: [`HttpServerConfig::max_requests`] held plus unpolled answers (beyond it
/// `handle_http_request` answers `None`); [`HttpServerConfig::max_held_per_session`] held per
/// session and [`HttpServerConfig::max_held_per_key`] per auth key: a newer request answers
/// the session's (the key's) oldest held one at once (with what is queued, else an empty
/// container); `http_wait` times clamped to [`HttpServerConfig::max_wait_ms`]; handshakes in progress at most
/// [`HttpServerConfig::max_requests`] (a new one evicts the oldest that only got `resPQ`
/// first), [`HttpServerConfig::max_handshakes_per_window`] started per
/// [`ServerConnectionConfig::handshake_window_micros`] (beyond it: `429`), each dropped after
/// [`ServerConnectionConfig::handshake_timeout_micros`]. There is no idle timeout and no
/// `ping_delay_disconnect` (nothing to close), and no quick acks.
impl<R: CryptoRng, K: KeyStore> ServerConnection<R, K> {
    /// A server endpoint for the HTTP transport. See the section above.
    pub fn new_http(config: ServerConnectionConfig, keys: K, rng: R) -> Self {
        let mut c = Self::new(config, keys, rng);
        c.link = Link::Http;
        c.http = Some(HttpState::default());
        c
    }

    /// HTTP: a request body (one MTProto packet) arrived. Its answer comes from
    /// [`poll_http_response`](Self::poll_http_response) under the returned id, at once or
    /// once the session has something to send. `None`: not in HTTP mode, closed, or
    /// [`HttpServerConfig::max_requests`] reached (answer `503`).
    pub fn handle_http_request(&mut self, now: Now, body: &[u8]) -> Option<HttpRequestId> {
        let cap = self.config.http.max_requests.max(1);
        let h = self.http.as_mut().filter(|_| self.closed.is_none())?;
        if h.ready.len().saturating_add(h.held.len()) >= cap {
            return None;
        }
        let id = h.next_id;
        h.next_id = h.next_id.wrapping_add(1);
        h.failed = None;
        self.out.clear();
        if body.len() > self.config.transport.max_frame_len
            || !body.len().is_multiple_of(4)
            || body.is_empty()
        {
            self.http_ready(id, 400, Vec::new());
            return Some(HttpRequestId(id));
        }
        match peek_auth_key_id(body) {
            Some(0) => self.http_plain(now, body),
            Some(key) => {
                let mut frame = body.to_vec();
                self.on_encrypted(now, &mut frame, false, b64(key.to_le_bytes()));
            }
            None => self.fail(CloseReason::ShortFrame),
        }
        let failed = self.http.as_mut().and_then(|h| h.failed.take());
        // The request's http_wait applies to this request only, whatever became of it.
        let session = self.current_session();
        let wait = session
            .and_then(|s| self.session_do(s, |s| s.take_http_wait()))
            .flatten();
        if let Some(status) = failed {
            self.out.clear();
            self.http_ready(id, status, Vec::new());
        } else if !self.out.is_empty() {
            let reply = core::mem::take(&mut self.out);
            self.http_ready(id, 200, reply);
        } else if let Some(session) = session {
            let len = self.session_do(session, |s| s.outbox_len()).unwrap_or(0);
            self.note_queued(now, session, len);
            let cap = self.config.http.max_wait_ms.max(0);
            let w = wait.unwrap_or_default();
            let wait = HttpWaitConfig {
                max_delay: w.max_delay.clamp(0, cap),
                wait_after: w.wait_after.clamp(0, cap),
                max_wait: w.max_wait.clamp(0, cap),
            };
            self.http_hold(now, id, session, wait);
        } else {
            self.http_ready(id, 200, Vec::new());
        }
        Some(HttpRequestId(id))
    }

    /// HTTP: the next answer. Its body (one MTProto packet, or empty for an error status) is
    /// appended to `out`; returns the request it answers and the HTTP status. Call until
    /// `None` after every input, command or timeout.
    pub fn poll_http_response(
        &mut self,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<(HttpRequestId, u16)> {
        let h = self.http.as_mut()?;
        if let Some((id, status, body)) = h.ready.pop_front() {
            out.extend_from_slice(&body);
            return Some((HttpRequestId(id), status));
        }
        // Of the due requests, the one that would expire first gets the messages (a
        // request-lane POST before the long poll, which can go on waiting).
        let pos = h
            .held
            .iter()
            .enumerate()
            .filter(|(_, held)| Self::held_due(&h.queued, held) <= now.mono)
            .min_by_key(|(i, held)| {
                let expire = held
                    .arrived
                    .saturating_add_micros(ms_micros(held.wait.max_wait));
                (!held.now, expire, *i)
            })
            .map(|(i, _)| i)?;
        let held = h.held.remove(pos)?;
        let session = held.session;
        let message = self.session_do(session, |s| {
            let m = s.http_response(now);
            (m, s.outbox_len())
        });
        let Some((m, left)) = message else {
            // The session is gone (evicted, destroyed): nothing to say.
            if let Some(h) = self.http.as_mut() {
                h.queued.remove(&session);
            }
            return Some((HttpRequestId(held.id), 200));
        };
        if let Some(h) = self.http.as_mut() {
            if left == 0 {
                h.queued.remove(&session);
            } else {
                // What is left is a new batch, for the next request.
                h.queued.insert(
                    session,
                    Queued {
                        first: now.mono,
                        last: now.mono,
                        len: left,
                    },
                );
            }
        }
        let key = match &self.key {
            Some(k) if k.id() == session.0 => Some(k.clone()),
            _ => self.keys.get(session.0),
        };
        if let Some(key) = key
            && let Some(sealed) = seal(
                &key,
                session.1,
                &m,
                now,
                &self.config.padding,
                &mut self.rng,
            )
        {
            out.extend_from_slice(&sealed);
        }
        Some((HttpRequestId(held.id), 200))
    }

    /// HTTP: the driver gave up on request `id` (its client went away, the HTTP connection
    /// closed): it is no longer held, and what its answer would have carried goes with another
    /// request instead. Whether it was still waiting. (An answer already produced and lost on
    /// the way is recovered by the client: it stays kept until acknowledged.)
    pub fn cancel_http_request(&mut self, id: HttpRequestId) -> bool {
        let Some(h) = self.http.as_mut() else {
            return false;
        };
        let before = h.held.len().saturating_add(h.ready.len());
        h.held.retain(|x| x.id != id.0);
        h.ready.retain(|x| x.0 != id.0);
        h.held.len().saturating_add(h.ready.len()) != before
    }

    /// HTTP: requests held, waiting for something to send.
    pub fn http_held(&self) -> usize {
        self.http.as_ref().map_or(0, |h| h.held.len())
    }

    fn http_ready(&mut self, id: u64, status: u16, body: Vec<u8>) {
        if let Some(h) = self.http.as_mut() {
            h.ready.push_back((id, status, body));
        }
    }

    fn http_plain(&mut self, now: Now, body: &[u8]) {
        let nonce = plain::unwrap(body)
            .ok()
            .and_then(|(_, b)| b.get(4..20))
            .and_then(|n| <[u8; 16]>::try_from(n).ok());
        let Some(nonce) = nonce else {
            return self.fail(CloseReason::Plain(PlainError::TooShort));
        };
        let cap = self.config.http.max_requests.max(1);
        let Some(h) = self.http.as_mut() else { return };
        h.handshakes
            .retain(|_, (_, deadline, _)| now.mono < *deadline);
        self.handshake = h.handshakes.remove(&nonce).map(|(hs, _, _)| hs);
        let progressed = self.handshake.is_some();
        if self.handshake.is_none() && h.handshakes.len() >= cap {
            // The oldest one that only got `resPQ` goes first: a flood of `req_pq` never
            // evicts a client that got further while such a one exists.
            let oldest = h
                .handshakes
                .iter()
                .min_by_key(|(_, (_, d, past_pq))| (*past_pq, *d))
                .map(|(n, _)| *n);
            if let Some(n) = oldest {
                h.handshakes.remove(&n);
            }
        }
        self.on_plain(now, body);
        let hs = self.handshake.take();
        let timeout = self.config.handshake_timeout_micros;
        if let (Some(hs), Some(h)) = (hs, self.http.as_mut())
            && h.failed.is_none()
        {
            h.handshakes.insert(
                nonce,
                (hs, now.mono.saturating_add_micros(timeout), progressed),
            );
        }
    }

    fn http_hold(&mut self, now: Now, id: u64, session: (i64, i64), wait: HttpWaitConfig) {
        let per_session = self.config.http.max_held_per_session.max(1);
        let per_key = self.config.http.max_held_per_key.max(1);
        let Some(h) = self.http.as_mut() else { return };
        h.held.push_back(Held {
            id,
            session,
            arrived: now.mono,
            wait,
            now: false,
        });
        // Too many held for this session: the oldest ones are answered now.
        let mut of_session = h.held.iter().filter(|x| x.session == session).count();
        for held in h.held.iter_mut() {
            if of_session <= per_session {
                break;
            }
            if held.session == session && !held.now {
                held.now = true;
                of_session = of_session.saturating_sub(1);
            }
        }
        // Too many held for this key (over all its sessions): its oldest ones too.
        let mut of_key = h
            .held
            .iter()
            .filter(|x| x.session.0 == session.0 && !x.now)
            .count();
        for held in h.held.iter_mut() {
            if of_key <= per_key {
                break;
            }
            if held.session.0 == session.0 && !held.now {
                held.now = true;
                of_key = of_key.saturating_sub(1);
            }
        }
    }

    /// When a held request is due.
    fn held_due(queued: &BTreeMap<(i64, i64), Queued>, held: &Held) -> Instant {
        if held.now {
            return held.arrived;
        }
        let expire = held
            .arrived
            .saturating_add_micros(ms_micros(held.wait.max_wait));
        match queued.get(&held.session) {
            Some(q) => expire
                .min(
                    q.first
                        .saturating_add_micros(ms_micros(held.wait.max_delay)),
                )
                .min(
                    q.last
                        .saturating_add_micros(ms_micros(held.wait.wait_after)),
                ),
            None => expire,
        }
    }

    fn http_timeout(&self) -> Option<Instant> {
        let h = self.http.as_ref()?;
        h.held
            .iter()
            .map(|held| Self::held_due(&h.queued, held))
            .min()
    }

    /// Records that `session` has `len` messages queued (for the `http_wait` timers).
    fn note_queued(&mut self, now: Now, session: (i64, i64), len: usize) {
        let Some(h) = self.http.as_mut() else { return };
        if len == 0 {
            h.queued.remove(&session);
            return;
        }
        match h.queued.get_mut(&session) {
            Some(q) => {
                if len > q.len {
                    q.last = now.mono;
                }
                q.len = len;
            }
            None => {
                // Bounded: one entry per session with messages waiting; the map cannot outgrow
                // the sessions a client can reach (capped by the store), and is cut besides.
                if h.queued.len() >= self.config.http.max_requests.max(1) {
                    h.queued.pop_first();
                }
                h.queued.insert(
                    session,
                    Queued {
                        first: now.mono,
                        last: now.mono,
                        len,
                    },
                );
            }
        }
    }

    /// Runs `f` on a session, checked out here or in the store.
    fn session_do<T>(
        &mut self,
        session: (i64, i64),
        f: impl FnOnce(&mut ServerSession) -> T,
    ) -> Option<T> {
        if self.current_session() == Some(session)
            && let Some(s) = self.session.as_mut()
        {
            return Some(f(s));
        }
        let mut s = self.keys.take_session(session.0, session.1)?;
        let r = f(&mut s);
        self.keys.put_session(session.0, s);
        Some(r)
    }
}
