//! The server side of an MTProto session, at the plaintext level (no crypto, no transport).
//!
//! [`ServerSession`] takes decrypted client messages (salt, session_id, msg_id, seq_no, body) with
//! the time they arrived, enforces the server-side rules of `mtproto_description.md`,
//! `mtproto_service_messages.md` and `mtproto_service_messages_about_messages.md`, answers the
//! service messages itself and hands everything else to the application as
//! [`SessionEvent::Request`]. Outgoing messages come out of [`ServerSession::poll_message`] with
//! their msg_id (≡ 1 mod 4 for answers, ≡ 3 for everything else, from the server's own clock) and
//! seq_no, packed into one `msg_container` when several are ready.
//!
//! # Rules enforced on every client message (also on each message inside a container)
//!
//! | check | on failure |
//! |---|---|
//! | msg_id ≡ 0 mod 4 | `bad_msg_notification` 18 |
//! | msg_id time within −300 s / +30 s of the server clock | 16 (too low) / 17 (too high) |
//! | msg_id not seen before (replay window of 1024 ids) | duplicate: ignored (a kept answer to it is re-sent); below the window: 16 |
//! | salt valid ([`ServerSalts::is_valid`]), outer message only | `bad_server_salt` 48 with the current salt |
//! | content-related message has an odd seq_no | 35 |
//! | `msgs_ack` has an even seq_no | 34 |
//! | seq_no not lower than that of a message with a lower msg_id | 32 |
//! | seq_no not higher than that of a message with a higher msg_id | 33 |
//! | container: not nested, inner msg_ids below its own and distinct, ≤ 1024 messages, well formed | 64 (the whole container is dropped) |
//!
//! Service messages that may be sent either way (`ping`, `ping_delay_disconnect`, `msgs_state_req`,
//! `msg_resend_req`, `msg_resend_ans_req`, `get_future_salts`, `destroy_session`,
//! `rpc_drop_answer`, `destroy_auth_key`, and the ignored ones below) are accepted with an odd or
//! an even seq_no: Pyrogram sends `ping` as non-content-related. Containers' own seq_no is not
//! checked (clients disagree on it).
//!
//! # What is answered here
//!
//! `ping` → `pong` (bare, `pong.msg_id` = the ping's); `ping_delay_disconnect` → `pong` plus
//! [`SessionEvent::DisconnectAfter`]; `get_future_salts` → `future_salts` (at most
//! [`max_future_salts`](ServerSessionConfig::max_future_salts)); `msgs_state_req` →
//! `msgs_state_info`; `msg_resend_req` (server msg_ids) and `msg_resend_ans_req` (request
//! msg_ids) → the kept messages again, fresh msg_ids; `destroy_session` → `destroy_session_none`
//! for the session in use, else [`SessionEvent::DestroySession`] for the caller;
//! `destroy_auth_key` → [`SessionEvent::DestroyAuthKey`]; `rpc_drop_answer` → `rpc_result` with
//! `rpc_answer_dropped_running` / `rpc_answer_dropped` / `rpc_answer_unknown`; `msgs_ack` →
//! forgets the acknowledged kept messages; `gzip_packed` → inflated (capped) and handled as its
//! content. `http_wait` is recorded for the HTTP transport ([`ServerSession::take_http_wait`];
//! the last one wins), neither acknowledged nor answered. `msg_copy` and informational messages
//! (`msgs_state_info`, `msgs_all_info`, `msg_detailed_info`, `msg_new_detailed_info`) are
//! dropped. Everything else
//! is a [`SessionEvent::Request`]; [`ServerSession::respond`] / [`ServerSession::respond_error`]
//! answer it with `rpc_result`. Every content-related client message is acknowledged
//! (`msgs_ack` piggybacked on the next packet, or sent alone after
//! [`ack_threshold`](ServerSessionConfig::ack_threshold) ids or
//! [`ack_delay_micros`](ServerSessionConfig::ack_delay_micros)).
//!
//! The first accepted message of a session is preceded, in the output, by `new_session_created`
//! (`first_msg_id` = the lowest msg_id of that first message or container).
//!
//! # Bounded memory
//!
//! Every queue has a cap in [`ServerSessionConfig`]:
//! - kept (sent, unacknowledged content-related) messages: [`max_kept`](ServerSessionConfig::max_kept);
//!   when full, the **oldest** is forgotten (the client learns it as "unknown" through
//!   `msgs_state_req` and repeats its request);
//! - the outbox: [`max_outbox`](ServerSessionConfig::max_outbox); a service answer that does not
//!   fit is dropped (the client repeats pings and service requests), [`ServerSession::respond`]
//!   and [`ServerSession::push_update`] return [`SendError::OutboxFull`];
//! - requests handed to the application and not answered yet:
//!   [`max_running`](ServerSessionConfig::max_running); a request beyond it is answered at once
//!   with `rpc_error 420 FLOOD_WAIT_1` and not reported;
//! - acknowledgements to send: [`max_pending_acks`](ServerSessionConfig::max_pending_acks); the
//!   oldest is dropped (the client asks with `msgs_state_req`);
//! - inflated `gzip_packed`: [`max_inflate`](ServerSessionConfig::max_inflate) (a bomb is dropped);
//! - events: at most one per inner message of the message just handled; drain them with
//!   [`ServerSession::poll_event`] after each [`ServerSession::handle`].
//!
//! # Sessions outlive connections
//!
//! A `ServerSession` is a plain value (`Clone`, no borrowed state): the connection layer puts it
//! into its key store when a connection ends and takes it out when the client comes back with
//! the same auth key and session_id ([`crate::connection::server`]). [`ServerSession::resume`]
//! queues every kept (unacknowledged) message for re-sending with fresh msg_ids, once the first
//! client message on the new connection has been processed (so that the acknowledgements it
//! carries are applied first and nothing the client already has goes out again). An application
//! may also answer a request of a stored session: take it out, [`ServerSession::respond`], put it
//! back; the answer goes out when the client reconnects.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::container::{
    ContainerIter, MAX_CONTAINER_MESSAGES, MAX_IDS_PER_SERVICE_MESSAGE, OutMessage,
    write_container_header, write_inner,
};
use super::gzip;
use super::msgid::{MsgIdGen, SeqNo, msg_id_time_nanos};
use super::replay::{Replay, ReplayWindow};
use crate::crypto::sha256;
use crate::time::{Instant, Now};
use crate::tl::schema::{functions, types};
use crate::tl::{Deserialize, Serialize, TlError};
use crate::transport::HttpWaitConfig;

/// `bad_msg_notification` error codes (`mtproto_service_messages_about_messages.md`).
pub mod bad_msg {
    /// msg_id too low.
    pub const MSG_ID_TOO_LOW: i32 = 16;
    /// msg_id too high.
    pub const MSG_ID_TOO_HIGH: i32 = 17;
    /// Incorrect two lower-order msg_id bits.
    pub const MSG_ID_BAD_BITS: i32 = 18;
    /// msg_seqno too low.
    pub const SEQ_NO_TOO_LOW: i32 = 32;
    /// msg_seqno too high.
    pub const SEQ_NO_TOO_HIGH: i32 = 33;
    /// An even msg_seqno expected (irrelevant message), but odd received.
    pub const EXPECTED_EVEN: i32 = 34;
    /// Odd msg_seqno expected (relevant message), but even received.
    pub const EXPECTED_ODD: i32 = 35;
    /// Incorrect server salt (sent as `bad_server_salt`).
    pub const BAD_SALT: i32 = 48;
    /// Invalid container.
    pub const BAD_CONTAINER: i32 = 64;
}

/// `help.getConfig#c4f9186b` (allowed on an unbound temporary key, `api_pfs.md`).
pub const HELP_GET_CONFIG_ID: u32 = 0xc4f9_186b;
/// `help.getNearestDc#1fb33026` (allowed on an unbound temporary key, `api_pfs.md`).
pub const HELP_GET_NEAREST_DC_ID: u32 = 0x1fb3_3026;
/// `http_wait#9299359f`: recorded for the HTTP transport, never acknowledged or answered.
const HTTP_WAIT_ID: u32 = types::HttpWait::CONSTRUCTOR_ID;

/// Limits and policies of one server session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSessionConfig {
    /// Sent content-related messages kept until acknowledged (oldest forgotten beyond it).
    pub max_kept: usize,
    /// Messages waiting to be sent.
    pub max_outbox: usize,
    /// Requests handed to the application and not answered yet.
    pub max_running: usize,
    /// Acknowledgements waiting to be sent (oldest dropped beyond it).
    pub max_pending_acks: usize,
    /// Send acknowledgements once this many are pending.
    pub ack_threshold: usize,
    /// ...or this long (µs) after the first one was queued.
    pub ack_delay_micros: u64,
    /// `rpc_result` bodies above this many bytes are sent as `gzip_packed` (when smaller).
    pub gzip_threshold: Option<usize>,
    /// Most bytes a client `gzip_packed` may inflate to.
    pub max_inflate: usize,
    /// Most body bytes in one outgoing container; a bigger message goes alone.
    pub max_container_bytes: usize,
    /// How far in the past a client msg_id may lie (seconds; the spec's 300).
    pub max_past_secs: u64,
    /// How far in the future a client msg_id may lie (seconds; the spec's 30).
    pub max_future_secs: u64,
    /// Most salts one `get_future_salts` returns.
    pub max_future_salts: usize,
}

impl Default for ServerSessionConfig {
    fn default() -> Self {
        Self {
            max_kept: 1024,
            max_outbox: 1024,
            max_running: 1024,
            max_pending_acks: MAX_IDS_PER_SERVICE_MESSAGE,
            ack_threshold: 16,
            ack_delay_micros: 500_000,
            gzip_threshold: Some(16 * 1024),
            max_inflate: 4 * 1024 * 1024,
            max_container_bytes: 1024 * 1024,
            max_past_secs: 300,
            max_future_secs: 30,
            max_future_salts: 64,
        }
    }
}

/// How close (seconds) to the end of a salt period the next period's salt is accepted already.
pub const NEXT_SALT_MARGIN_SECS: i64 = 30;

/// The server salts of one auth key: one per period of `period_secs`, derived from a secret seed
/// (`SHA-256(seed ‖ period index)`), so that `get_future_salts` can name them ahead of time and
/// no list needs storing. The salt of the previous period stays accepted during the current one,
/// and the handshake's first salt during the key's first period.
#[derive(Clone)]
pub struct ServerSalts {
    seed: [u8; 32],
    initial: i64,
    initial_until: i64,
    period: i64,
}

impl fmt::Debug for ServerSalts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSalts")
            .field("period_secs", &self.period)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerSalts {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl ServerSalts {
    /// Salts from `seed`, with the handshake's `initial` salt accepted until
    /// `created_secs + period_secs` (a period of 0 is taken as 1 s).
    pub fn new(seed: [u8; 32], initial: i64, created_secs: i64, period_secs: u32) -> Self {
        let period = i64::from(period_secs.max(1));
        Self {
            seed,
            initial,
            initial_until: created_secs.saturating_add(period),
            period,
        }
    }

    /// Like [`ServerSalts::new`] with a seed drawn from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        initial: i64,
        created_secs: i64,
        period_secs: u32,
    ) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let s = Self::new(seed, initial, created_secs, period_secs);
        seed.zeroize();
        s
    }

    fn index(&self, secs: i64) -> i64 {
        secs.div_euclid(self.period)
    }

    fn salt_of(&self, index: i64) -> i64 {
        let h = sha256(&[&self.seed, &index.to_le_bytes()]);
        let [a, b, c, d, e, f, g, h, ..] = h;
        i64::from_le_bytes([a, b, c, d, e, f, g, h])
    }

    /// The salt valid at unix time `secs`.
    pub fn current(&self, secs: i64) -> i64 {
        self.salt_of(self.index(secs))
    }

    /// Whether a client may use `salt` at unix time `secs`: the current period's salt, the
    /// previous one's, the next one's within [`NEXT_SALT_MARGIN_SECS`] of the boundary (a
    /// client whose clock runs slightly ahead switches early), and the handshake's salt during
    /// the key's first period.
    pub fn is_valid(&self, salt: i64, secs: i64) -> bool {
        let i = self.index(secs);
        let next_soon = self.index(secs.saturating_add(NEXT_SALT_MARGIN_SECS)) > i;
        salt == self.salt_of(i)
            || salt == self.salt_of(i.saturating_sub(1))
            || (next_soon && salt == self.salt_of(i.saturating_add(1)))
            || (salt == self.initial && secs < self.initial_until)
    }

    /// `num` salts from the current one on, with their validity windows.
    pub fn future(&self, secs: i64, num: usize) -> Vec<types::FutureSalt> {
        let first = self.index(secs);
        let to_i32 = |x: i64| i32::try_from(x).unwrap_or(i32::MAX);
        (0..num)
            .map_while(|k| {
                let i = first.checked_add(i64::try_from(k).ok()?)?;
                let since = i.saturating_mul(self.period);
                Some(types::FutureSalt {
                    valid_since: to_i32(since),
                    valid_until: to_i32(since.saturating_add(self.period)),
                    salt: self.salt_of(i),
                })
            })
            .collect()
    }
}

/// A decrypted client message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IncomingMessage<'a> {
    /// The salt it was sent with.
    pub salt: i64,
    /// Its session.
    pub session_id: i64,
    /// Its msg_id.
    pub msg_id: i64,
    /// Its seq_no.
    pub seq_no: i32,
    /// Its TL body.
    pub body: &'a [u8],
}

impl fmt::Debug for IncomingMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingMessage")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A message ready to be encrypted and sent.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Its msg_id (odd).
    pub msg_id: i64,
    /// Its seq_no.
    pub seq_no: i32,
    /// Its TL body (a single message or a `msg_container`).
    pub body: Vec<u8>,
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why a client message was not processed (it is dropped; the session goes on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// A `bad_msg_notification` (or `bad_server_salt`, code 48) with this code was sent.
    BadMsg(i32),
    /// Already received: ignored.
    Duplicate,
    /// Not valid TL where the session needs to read it (a service message, a container entry).
    Malformed(TlError),
    /// A `gzip_packed` that does not inflate within the cap.
    Gzip(gzip::GzipError),
    /// The message belongs to another session.
    WrongSession,
    /// More requests are running than [`ServerSessionConfig::max_running`]: answered with
    /// `FLOOD_WAIT_1`.
    TooManyRunning,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMsg(c) => write!(f, "bad_msg_notification {c}"),
            Self::Duplicate => f.write_str("duplicate msg_id"),
            Self::Malformed(e) => write!(f, "malformed message: {e}"),
            Self::Gzip(e) => write!(f, "{e}"),
            Self::WrongSession => f.write_str("message for another session"),
            Self::TooManyRunning => f.write_str("too many running requests"),
        }
    }
}

/// What a [`ServerSession`] reports.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A request for the application (anything that is not a service message). `body` is owned
    /// (inflated if it came as `gzip_packed`): it outlives the input buffer.
    Request {
        /// The request's msg_id (what [`ServerSession::respond`] takes).
        msg_id: i64,
        /// The TL body.
        body: Vec<u8>,
    },
    /// The session accepted its first message; `new_session_created` is queued.
    Started {
        /// The `unique_id` it carries.
        unique_id: i64,
    },
    /// `ping_delay_disconnect`: close the connection `delay_secs` from now unless another one
    /// arrives (each one replaces the previous timer).
    DisconnectAfter {
        /// Seconds.
        delay_secs: i32,
    },
    /// `destroy_session` for another session: the caller destroys it and answers with
    /// [`ServerSession::answer_destroy_session`].
    DestroySession {
        /// The request's msg_id.
        req_msg_id: i64,
        /// The session to destroy.
        session_id: i64,
    },
    /// `destroy_auth_key`: the caller destroys the key and answers with
    /// [`ServerSession::answer_destroy_auth_key`].
    DestroyAuthKey {
        /// The request's msg_id.
        req_msg_id: i64,
    },
    /// A message was dropped.
    Rejected {
        /// Its msg_id.
        msg_id: i64,
        /// Why.
        reason: Rejection,
    },
}

impl fmt::Debug for SessionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request { msg_id, body } => f
                .debug_struct("Request")
                .field("msg_id", msg_id)
                .field("body_len", &body.len())
                .finish(),
            Self::Started { unique_id } => f
                .debug_struct("Started")
                .field("unique_id", unique_id)
                .finish(),
            Self::DisconnectAfter { delay_secs } => f
                .debug_struct("DisconnectAfter")
                .field("delay_secs", delay_secs)
                .finish(),
            Self::DestroySession {
                req_msg_id,
                session_id,
            } => f
                .debug_struct("DestroySession")
                .field("req_msg_id", req_msg_id)
                .field("session_id", session_id)
                .finish(),
            Self::DestroyAuthKey { req_msg_id } => f
                .debug_struct("DestroyAuthKey")
                .field("req_msg_id", req_msg_id)
                .finish(),
            Self::Rejected { msg_id, reason } => f
                .debug_struct("Rejected")
                .field("msg_id", msg_id)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// Why an answer or update could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such request is waiting for an answer (already answered, dropped by the client with
    /// `rpc_drop_answer`, or never received).
    UnknownRequest,
    /// The outbox is full ([`ServerSessionConfig::max_outbox`]); try again after sending.
    OutboxFull,
    /// The body is not a multiple of 4 bytes (TL always is) or too large for TL.
    BadBody,
    /// The session (or connection) is not available: unknown, or the connection is closed.
    Unavailable,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownRequest => "no such request is waiting for an answer",
            Self::OutboxFull => "outbox full",
            Self::BadBody => "body is not valid TL (length not a multiple of 4, or too large)",
            Self::Unavailable => "session or connection not available",
        })
    }
}

impl core::error::Error for SendError {}

/// An outgoing message before it gets its msg_id.
#[derive(Clone)]
struct Pending {
    body: Vec<u8>,
    /// An answer to a client message (msg_id ≡ 1 mod 4) rather than another message (≡ 3).
    answer: bool,
    /// Content-related: odd seq_no, kept until acknowledged.
    content: bool,
    /// For `rpc_result`: the request it answers.
    req_msg_id: Option<i64>,
}

/// A sent content-related message, kept until acknowledged.
#[derive(Clone)]
struct Kept {
    seq_no: i32,
    body: Vec<u8>,
    answer: bool,
    req_msg_id: Option<i64>,
}

/// How a client message's seq_no must look.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SeqClass {
    Content,
    NonContent,
    Either,
}

fn constructor(body: &[u8]) -> Option<u32> {
    body.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

fn classify(body: &[u8]) -> SeqClass {
    match constructor(body) {
        Some(types::MsgsAck::CONSTRUCTOR_ID) => SeqClass::NonContent,
        Some(
            functions::Ping::CONSTRUCTOR_ID
            | functions::PingDelayDisconnect::CONSTRUCTOR_ID
            | types::MsgsStateReq::CONSTRUCTOR_ID
            | types::MsgResendReq::CONSTRUCTOR_ID
            | types::MsgResendAnsReq::CONSTRUCTOR_ID
            | functions::GetFutureSalts::CONSTRUCTOR_ID
            | functions::DestroySession::CONSTRUCTOR_ID
            | functions::RpcDropAnswer::CONSTRUCTOR_ID
            | functions::DestroyAuthKey::CONSTRUCTOR_ID,
        ) => SeqClass::Either,
        Some(id) if is_ignored(id) => SeqClass::Either,
        _ => SeqClass::Content,
    }
}

/// Messages a client may send that need no answer from a server: `msg_copy` (deprecated),
/// `http_wait` (recorded, see [`ServerSession::take_http_wait`]) and the informational answers (`msgs_state_info`,
/// `msgs_all_info`, `msg_detailed_info`, `msg_new_detailed_info`) to requests this server never
/// makes. They are accepted (acknowledged when content-related) and dropped, never passed on to
/// the application.
fn is_ignored(id: u32) -> bool {
    matches!(
        id,
        types::MsgCopy::CONSTRUCTOR_ID
            | HTTP_WAIT_ID
            | types::MsgsStateInfo::CONSTRUCTOR_ID
            | types::MsgsAllInfo::CONSTRUCTOR_ID
            | types::MsgDetailedInfo::CONSTRUCTOR_ID
            | types::MsgNewDetailedInfo::CONSTRUCTOR_ID
    )
}

fn tl<T: Serialize>(v: &T) -> Option<Vec<u8>> {
    v.to_vec().ok()
}

fn unix_secs(now: Now) -> i64 {
    i64::try_from(now.unix.as_secs()).unwrap_or(i64::MAX)
}

fn unix_nanos(now: Now) -> i64 {
    i64::try_from(now.unix.as_nanos()).unwrap_or(i64::MAX)
}

/// The server side of one MTProto session. See the [module docs](self).
#[derive(Clone)]
pub struct ServerSession {
    config: ServerSessionConfig,
    session_id: i64,
    unique_id: i64,
    started: bool,
    ids: MsgIdGen,
    seq: SeqNo,
    replay: ReplayWindow,
    /// msg_id and seq_no of the accepted client message with the highest msg_id.
    last_in: Option<(i64, i32)>,
    outbox: VecDeque<Pending>,
    kept: BTreeMap<i64, Kept>,
    /// `req_msg_id` → msg_id of the kept `rpc_result` answering it (an index into `kept`).
    kept_by_req: BTreeMap<i64, i64>,
    /// [`ServerSession::resume`] was called: kept messages go out again after the next
    /// accepted client message (whose acknowledgements are applied first).
    resume_pending: bool,
    /// Client messages accepted and acted upon (wrapping).
    accepted: u64,
    /// The connection that carries the session now (see [`ServerSession::carrier`]).
    carrier: Option<u64>,
    running: BTreeSet<i64>,
    acks: VecDeque<i64>,
    ack_deadline: Option<Instant>,
    events: VecDeque<SessionEvent>,
    /// The last `http_wait` received and not yet taken by the connection.
    http_wait: Option<HttpWaitConfig>,
}

impl fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("session_id", &self.session_id)
            .field("started", &self.started)
            .field("outbox", &self.outbox.len())
            .field("kept", &self.kept.len())
            .field("running", &self.running.len())
            .field("acks", &self.acks.len())
            .finish_non_exhaustive()
    }
}

/// Where a message sits: top level, inside a container, or inflated from `gzip_packed`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    Top,
    Inner,
    Gzip,
}

impl ServerSession {
    /// A new session `session_id`; `unique_id` goes into its `new_session_created`.
    pub fn new(config: ServerSessionConfig, session_id: i64, unique_id: i64) -> Self {
        Self {
            config,
            session_id,
            unique_id,
            started: false,
            ids: MsgIdGen::new(),
            seq: SeqNo::new(),
            replay: ReplayWindow::new(),
            last_in: None,
            outbox: VecDeque::new(),
            kept: BTreeMap::new(),
            kept_by_req: BTreeMap::new(),
            resume_pending: false,
            accepted: 0,
            carrier: None,
            running: BTreeSet::new(),
            acks: VecDeque::new(),
            ack_deadline: None,
            events: VecDeque::new(),
            http_wait: None,
        }
    }

    /// The parameters of the last `http_wait` handled since the previous call (several in one
    /// container: the last wins, as the spec says the server does). The HTTP connection takes
    /// it after each request body; `None`: the request had none (the defaults apply).
    pub fn take_http_wait(&mut self) -> Option<HttpWaitConfig> {
        self.http_wait.take()
    }

    /// The HTTP transport's answer to a held request: what [`ServerSession::poll_message`]
    /// gives, with every pending acknowledgement flushed into it, or, with nothing at all to
    /// send, an empty `msg_container` (`mtproto_service_messages.md`: "If a message never
    /// appears, an empty container is transmitted").
    pub fn http_response(&mut self, now: Now) -> OutgoingMessage {
        if !self.acks.is_empty() {
            self.ack_deadline = Some(now.mono);
        }
        if let Some(m) = self.poll_message(now) {
            return m;
        }
        let mut body = Vec::new();
        write_container_header(&mut body, 0);
        OutgoingMessage {
            msg_id: self.ids.next(unix_nanos(now), 3),
            seq_no: self.seq.next(false),
            body,
        }
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Whether a first message was accepted (`new_session_created` queued).
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Sent content-related messages not acknowledged yet.
    pub fn kept_len(&self) -> usize {
        self.kept.len()
    }

    /// Messages waiting to be sent.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Requests waiting for an answer from the application.
    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    /// Acknowledgements waiting to be sent.
    pub fn pending_acks(&self) -> usize {
        self.acks.len()
    }

    /// Whether `req_msg_id` is a request waiting for an answer.
    pub fn is_running(&self, req_msg_id: i64) -> bool {
        self.running.contains(&req_msg_id)
    }

    /// The next event, if any. Drain after each [`ServerSession::handle`].
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`ServerSession::poll_message`] has something to send even without new input
    /// (pending acknowledgements).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ack_deadline
    }

    /// Marks the session as continuing on a new connection: every kept (unacknowledged)
    /// message is queued for re-sending, with a fresh msg_id, **after the next client message
    /// has been accepted and processed**. That first message usually carries the client's
    /// acknowledgements of what it did receive before the old connection broke; applying them
    /// first keeps those messages from going out twice under ids the client cannot recognize
    /// as duplicates. An unacknowledged `new_session_created` is not repeated (the session
    /// continues, and a second notice would make the client assume a gap that did not happen),
    /// nor are pongs (a ping from an earlier connection is of no use to the client any more).
    pub fn resume(&mut self) {
        self.resume_pending = true;
    }

    /// The opaque id of the connection that last received a message of this session (set by
    /// the connection layer with [`ServerSession::set_carrier`]): the session's messages go
    /// out on that connection. Several connections may serve one session
    /// (`mtproto_description.md`: an answer need not return on the connection that carried the
    /// request); the newest one to hear from the client carries it.
    pub fn carrier(&self) -> Option<u64> {
        self.carrier
    }

    /// Makes connection `token` the carrier; whether that changed it.
    pub fn set_carrier(&mut self, token: u64) -> bool {
        let changed = self.carrier != Some(token);
        self.carrier = Some(token);
        changed
    }

    /// Whether [`ServerSession::resume`] was called and its re-sending is still to come.
    pub fn is_resume_pending(&self) -> bool {
        self.resume_pending
    }

    fn resend_kept(&mut self) {
        self.resume_pending = false;
        let kept = core::mem::take(&mut self.kept);
        self.kept_by_req.clear();
        let again = kept.into_iter().filter(|(_, k)| {
            !matches!(
                constructor(&k.body),
                Some(types::NewSessionCreated::CONSTRUCTOR_ID | types::Pong::CONSTRUCTOR_ID)
            )
        });
        for (i, (_, k)) in again.enumerate() {
            let p = Pending {
                body: k.body,
                answer: k.answer,
                content: true,
                req_msg_id: k.req_msg_id,
            };
            self.outbox.insert(i.min(self.outbox.len()), p);
        }
    }

    fn kept_remove(&mut self, id: i64) -> Option<Kept> {
        let k = self.kept.remove(&id)?;
        if let Some(req) = k.req_msg_id
            && self.kept_by_req.get(&req) == Some(&id)
        {
            self.kept_by_req.remove(&req);
        }
        Some(k)
    }

    /// The kept answer to request `req`, O(log n).
    fn kept_for_req(&self, req: i64) -> Option<i64> {
        self.kept_by_req.get(&req).copied()
    }

    fn event(&mut self, e: SessionEvent) {
        self.events.push_back(e);
    }

    fn reject(&mut self, msg_id: i64, reason: Rejection) {
        self.event(SessionEvent::Rejected { msg_id, reason });
    }

    /// Queues a service message; dropped if the outbox is full.
    fn push_service(&mut self, body: Option<Vec<u8>>, answer: bool, content: bool) {
        let Some(body) = body else { return };
        if self.outbox.len() < self.config.max_outbox {
            self.outbox.push_back(Pending {
                body,
                answer,
                content,
                req_msg_id: None,
            });
        }
    }

    fn bad_msg(&mut self, msg_id: i64, seq_no: i32, code: i32) {
        let body = tl(&types::BadMsgNotification {
            bad_msg_id: msg_id,
            bad_msg_seqno: seq_no,
            error_code: code,
        });
        self.push_service(body, true, false);
        self.reject(msg_id, Rejection::BadMsg(code));
    }

    fn queue_ack(&mut self, now: Now, msg_id: i64) {
        if self.acks.len() >= self.config.max_pending_acks.max(1) {
            self.acks.pop_front();
        }
        self.acks.push_back(msg_id);
        if self.ack_deadline.is_none() {
            self.ack_deadline = Some(now.mono.saturating_add_micros(self.config.ack_delay_micros));
        }
    }

    /// Processes one decrypted client message. `salts` are its auth key's. Results: queued
    /// outgoing messages ([`ServerSession::poll_message`]) and events
    /// ([`ServerSession::poll_event`]).
    pub fn handle(&mut self, now: Now, salts: &ServerSalts, msg: IncomingMessage<'_>) {
        let before = self.accepted;
        self.handle_message(now, salts, msg);
        if self.resume_pending && self.accepted != before {
            self.resend_kept();
        }
    }

    fn handle_message(&mut self, now: Now, salts: &ServerSalts, msg: IncomingMessage<'_>) {
        if msg.session_id != self.session_id {
            self.reject(msg.msg_id, Rejection::WrongSession);
            return;
        }
        let is_container = constructor(msg.body) == Some(types::MsgContainer::CONSTRUCTOR_ID);
        if !self.check_id(now, msg.msg_id, msg.seq_no) {
            return;
        }
        if !salts.is_valid(msg.salt, unix_secs(now)) {
            let body = tl(&types::BadServerSalt {
                bad_msg_id: msg.msg_id,
                bad_msg_seqno: msg.seq_no,
                error_code: bad_msg::BAD_SALT,
                new_server_salt: salts.current(unix_secs(now)),
            });
            self.push_service(body, true, false);
            self.reject(msg.msg_id, Rejection::BadMsg(bad_msg::BAD_SALT));
            return;
        }
        if is_container {
            self.handle_container(now, salts, msg);
            return;
        }
        if !self.check_seq(msg.msg_id, msg.seq_no, msg.body) {
            return;
        }
        if self.replay.insert(msg.msg_id) != Replay::Fresh {
            self.duplicate(msg.msg_id);
            return;
        }
        self.start(msg.msg_id, salts.current(unix_secs(now)));
        self.dispatch(now, salts, msg.msg_id, msg.seq_no, msg.body, Depth::Top);
    }

    /// msg_id checks: low bits, time window, replay window (without recording).
    fn check_id(&mut self, now: Now, msg_id: i64, seq_no: i32) -> bool {
        if msg_id & 3 != 0 {
            self.bad_msg(msg_id, seq_no, bad_msg::MSG_ID_BAD_BITS);
            return false;
        }
        let skew = msg_id_time_nanos(msg_id).saturating_sub(unix_nanos(now));
        let past = i64::try_from(self.config.max_past_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000);
        let future = i64::try_from(self.config.max_future_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000);
        if skew < past.saturating_neg() {
            self.bad_msg(msg_id, seq_no, bad_msg::MSG_ID_TOO_LOW);
            return false;
        }
        if skew > future {
            self.bad_msg(msg_id, seq_no, bad_msg::MSG_ID_TOO_HIGH);
            return false;
        }
        match self.replay.check(msg_id) {
            Replay::Fresh => true,
            Replay::Duplicate => {
                self.duplicate(msg_id);
                false
            }
            Replay::TooOld => {
                self.bad_msg(msg_id, seq_no, bad_msg::MSG_ID_TOO_LOW);
                false
            }
        }
    }

    /// A duplicate: ignored, but a kept answer to it is sent again (its first copy was lost).
    fn duplicate(&mut self, msg_id: i64) {
        if let Some(id) = self.kept_for_req(msg_id) {
            self.requeue(id);
        }
        self.reject(msg_id, Rejection::Duplicate);
    }

    /// Moves kept message `id` back to the outbox (to be sent with a fresh msg_id).
    fn requeue(&mut self, id: i64) -> bool {
        match self.kept_remove(id) {
            Some(k) => {
                self.outbox.push_back(Pending {
                    body: k.body,
                    answer: k.answer,
                    content: true,
                    req_msg_id: k.req_msg_id,
                });
                true
            }
            None => false,
        }
    }

    /// seq_no rules 32–35 against the accepted message with the highest msg_id; records it.
    fn check_seq(&mut self, msg_id: i64, seq_no: i32, body: &[u8]) -> bool {
        let odd = seq_no & 1 == 1;
        let code = match classify(body) {
            SeqClass::Content if !odd => Some(bad_msg::EXPECTED_ODD),
            SeqClass::NonContent if odd => Some(bad_msg::EXPECTED_EVEN),
            _ => None,
        }
        .or_else(|| {
            let (last_id, last_seq) = self.last_in?;
            // After a content-related message (odd) the next seq_no is at least one higher;
            // before it, at most one lower.
            let floor = last_seq.saturating_add(last_seq & 1);
            let ceiling = last_seq.saturating_sub(last_seq & 1);
            if msg_id > last_id && seq_no < floor {
                Some(bad_msg::SEQ_NO_TOO_LOW)
            } else if msg_id < last_id && seq_no > ceiling {
                Some(bad_msg::SEQ_NO_TOO_HIGH)
            } else {
                None
            }
        });
        if let Some(code) = code {
            self.bad_msg(msg_id, seq_no, code);
            return false;
        }
        if self.last_in.is_none_or(|(id, _)| msg_id > id) {
            self.last_in = Some((msg_id, seq_no));
        }
        true
    }

    /// The first accepted message of the session: `new_session_created` (naming the current
    /// salt) goes out first.
    fn start(&mut self, first_msg_id: i64, salt: i64) {
        if self.started {
            return;
        }
        self.started = true;
        let body = tl(&types::NewSessionCreated {
            first_msg_id,
            unique_id: self.unique_id,
            server_salt: salt,
        });
        if let Some(body) = body {
            self.outbox.push_front(Pending {
                body,
                answer: false,
                content: true,
                req_msg_id: None,
            });
        }
        self.event(SessionEvent::Started {
            unique_id: self.unique_id,
        });
    }

    fn handle_container(&mut self, now: Now, salts: &ServerSalts, msg: IncomingMessage<'_>) {
        let Some(after) = msg.body.get(4..) else {
            return;
        };
        // Validate the whole container before processing anything in it.
        let mut inner: Vec<types::Message<'_>> = Vec::new();
        let salt = salts.current(unix_secs(now));
        let valid = match ContainerIter::new(after) {
            Err(_) => false,
            Ok(it) => {
                let mut ok = true;
                let mut seen = BTreeSet::new();
                for m in it {
                    match m {
                        Ok(m)
                            if m.msg_id < msg.msg_id
                                && seen.insert(m.msg_id)
                                && constructor(m.body)
                                    != Some(types::MsgContainer::CONSTRUCTOR_ID) =>
                        {
                            inner.push(m);
                        }
                        _ => {
                            ok = false;
                            break;
                        }
                    }
                }
                ok && inner.len() <= MAX_CONTAINER_MESSAGES
            }
        };
        if !valid {
            self.bad_msg(msg.msg_id, msg.seq_no, bad_msg::BAD_CONTAINER);
            return;
        }
        let inner_min = inner.iter().map(|m| m.msg_id).min();
        // The container itself is recorded so that a replayed container is a duplicate.
        self.replay.insert(msg.msg_id);
        for m in inner {
            if !self.check_id(now, m.msg_id, m.seqno) || !self.check_seq(m.msg_id, m.seqno, m.body)
            {
                continue;
            }
            if self.replay.insert(m.msg_id) != Replay::Fresh {
                self.duplicate(m.msg_id);
                continue;
            }
            // first_msg_id: the lowest id of the container, so nothing in it looks lost.
            let first = inner_min.unwrap_or(m.msg_id);
            self.start(first, salt);
            self.dispatch(now, salts, m.msg_id, m.seqno, m.body, Depth::Inner);
        }
    }

    /// Acts on one accepted message.
    fn dispatch(
        &mut self,
        now: Now,
        salts: &ServerSalts,
        msg_id: i64,
        seq_no: i32,
        body: &[u8],
        depth: Depth,
    ) {
        self.accepted = self.accepted.wrapping_add(1);
        // http_wait "does not require a response or an acknowledgement", whatever its seq_no.
        if seq_no & 1 == 1 && constructor(body) != Some(HTTP_WAIT_ID) {
            self.queue_ack(now, msg_id);
        }
        let result = match constructor(body) {
            Some(types::MsgContainer::CONSTRUCTOR_ID) => {
                // Only reachable through gzip_packed (containers are handled before and do not
                // nest).
                self.bad_msg(msg_id, seq_no, bad_msg::BAD_CONTAINER);
                Ok(())
            }
            Some(types::GzipPacked::CONSTRUCTOR_ID) if depth != Depth::Gzip => {
                self.gzip(now, salts, msg_id, body);
                Ok(())
            }
            Some(types::GzipPacked::CONSTRUCTOR_ID) => {
                // gzip in gzip: refused (no recursion on attacker data).
                Err(TlError::ValueTooLarge)
            }
            Some(types::MsgsAck::CONSTRUCTOR_ID) => types::MsgsAck::from_bytes(body).map(|a| {
                for id in a.msg_ids {
                    self.kept_remove(id);
                }
            }),
            Some(functions::Ping::CONSTRUCTOR_ID) => functions::Ping::from_bytes(body).map(|p| {
                let pong = tl(&types::Pong {
                    msg_id,
                    ping_id: p.ping_id,
                });
                // "These messages do not require acknowledgments": not content-related.
                self.push_service(pong, true, false);
            }),
            Some(functions::PingDelayDisconnect::CONSTRUCTOR_ID) => {
                functions::PingDelayDisconnect::from_bytes(body).map(|p| {
                    let pong = tl(&types::Pong {
                        msg_id,
                        ping_id: p.ping_id,
                    });
                    self.push_service(pong, true, false);
                    self.event(SessionEvent::DisconnectAfter {
                        delay_secs: p.disconnect_delay,
                    });
                })
            }
            Some(functions::GetFutureSalts::CONSTRUCTOR_ID) => {
                functions::GetFutureSalts::from_bytes(body).map(|g| {
                    let num = usize::try_from(g.num)
                        .unwrap_or(0)
                        .min(self.config.max_future_salts);
                    let secs = unix_secs(now);
                    let salts = tl(&types::FutureSalts {
                        req_msg_id: msg_id,
                        now: i32::try_from(secs).unwrap_or(i32::MAX),
                        salts: salts.future(secs, num),
                    });
                    // future_salts is an answer of its own, not wrapped in rpc_result
                    // (Telethon and Pyrogram read it that way; its req_msg_id names the
                    // request), and "does not require an acknowledgment itself".
                    self.push_service(salts, true, false);
                })
            }
            Some(types::MsgsStateReq::CONSTRUCTOR_ID) => {
                types::MsgsStateReq::from_bytes(body).map(|q| {
                    let info: Vec<u8> = q
                        .msg_ids
                        .iter()
                        .take(MAX_IDS_PER_SERVICE_MESSAGE)
                        .map(|&id| self.state_of(id))
                        .collect();
                    let body = tl(&types::MsgsStateInfo {
                        req_msg_id: msg_id,
                        info: &info,
                    });
                    self.push_service(body, true, false);
                })
            }
            Some(types::MsgResendReq::CONSTRUCTOR_ID) => {
                types::MsgResendReq::from_bytes(body).map(|q| {
                    for id in q.msg_ids.into_iter().take(MAX_IDS_PER_SERVICE_MESSAGE) {
                        self.requeue(id);
                    }
                })
            }
            Some(types::MsgResendAnsReq::CONSTRUCTOR_ID) => {
                types::MsgResendAnsReq::from_bytes(body).map(|q| {
                    for req in q.msg_ids.into_iter().take(MAX_IDS_PER_SERVICE_MESSAGE) {
                        if let Some(id) = self.kept_for_req(req) {
                            self.requeue(id);
                        }
                    }
                })
            }
            Some(functions::DestroySession::CONSTRUCTOR_ID) => {
                functions::DestroySession::from_bytes(body).map(|d| {
                    if d.session_id == self.session_id {
                        // The session in use is not destroyed under the client's feet.
                        self.answer_destroy_session(d.session_id, false);
                    } else {
                        self.event(SessionEvent::DestroySession {
                            req_msg_id: msg_id,
                            session_id: d.session_id,
                        });
                    }
                })
            }
            Some(functions::DestroyAuthKey::CONSTRUCTOR_ID) => {
                functions::DestroyAuthKey::from_bytes(body).map(|_| {
                    self.event(SessionEvent::DestroyAuthKey { req_msg_id: msg_id });
                })
            }
            Some(functions::RpcDropAnswer::CONSTRUCTOR_ID) => {
                functions::RpcDropAnswer::from_bytes(body).map(|d| self.drop_answer(msg_id, d))
            }
            Some(HTTP_WAIT_ID) => types::HttpWait::from_bytes(body).map(|w| {
                self.http_wait = Some(HttpWaitConfig {
                    max_delay: w.max_delay,
                    wait_after: w.wait_after,
                    max_wait: w.max_wait,
                });
            }),
            Some(id) if is_ignored(id) => Ok(()),
            _ => {
                if self.running.len() >= self.config.max_running {
                    let body = rpc_error_result(msg_id, 420, "FLOOD_WAIT_1");
                    self.push_service(body, true, true);
                    self.reject(msg_id, Rejection::TooManyRunning);
                } else {
                    self.running.insert(msg_id);
                    self.event(SessionEvent::Request {
                        msg_id,
                        body: body.to_vec(),
                    });
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            self.reject(msg_id, Rejection::Malformed(e));
        }
    }

    fn gzip(&mut self, now: Now, salts: &ServerSalts, msg_id: i64, body: &[u8]) {
        let packed = match types::GzipPacked::from_bytes(body) {
            Ok(p) => p,
            Err(e) => return self.reject(msg_id, Rejection::Malformed(e)),
        };
        let inner = match gzip::inflate(packed.packed_data, self.config.max_inflate) {
            Ok(b) => b,
            Err(e) => return self.reject(msg_id, Rejection::Gzip(e)),
        };
        // The ack was queued for the outer message: dispatch the content as non-content-related
        // so that it is not queued twice.
        self.dispatch(now, salts, msg_id, 0, &inner, Depth::Gzip);
    }

    /// `msgs_state_info` byte for one msg_id (`mtproto_service_messages_about_messages.md`).
    fn state_of(&self, id: i64) -> u8 {
        match self.replay.check(id) {
            Replay::TooOld => 1,
            Replay::Duplicate => {
                let mut b = 4u8;
                if self.running.contains(&id) {
                    b |= 32;
                }
                if self.kept_for_req(id).is_some() {
                    b |= 32 | 64;
                }
                b
            }
            Replay::Fresh => {
                if self.last_in.is_none_or(|(max, _)| id > max) {
                    3
                } else {
                    2
                }
            }
        }
    }

    fn drop_answer(&mut self, msg_id: i64, d: functions::RpcDropAnswer) {
        let req = d.req_msg_id;
        let answer = if self.running.remove(&req) {
            // "the same rpc_answer_dropped_running is also returned in response to the
            // original query" (mtproto_service_messages.md).
            let dropped = tl(&types::RpcAnswerDroppedRunning);
            if let Some(d) = &dropped {
                let original = tl(&types::RpcResult {
                    req_msg_id: req,
                    result: d,
                });
                self.push_service(original, true, true);
            }
            dropped
        } else if let Some(id) = self.kept_for_req(req) {
            let k = self.kept_remove(id);
            let (seq_no, bytes) = k.map_or((0, 0), |k| {
                (k.seq_no, i32::try_from(k.body.len()).unwrap_or(i32::MAX))
            });
            tl(&types::RpcAnswerDropped {
                msg_id: id,
                seq_no,
                bytes,
            })
        } else if let Some(pos) = self.outbox.iter().position(|p| p.req_msg_id == Some(req)) {
            // Answered but not sent yet: drop it before it goes out.
            self.outbox.remove(pos);
            tl(&types::RpcAnswerDroppedRunning)
        } else {
            tl(&types::RpcAnswerUnknown)
        };
        if let Some(answer) = answer {
            let body = tl(&types::RpcResult {
                req_msg_id: msg_id,
                result: &answer,
            });
            self.push_service(body, true, true);
        }
    }

    /// Answers a `destroy_session` reported by [`SessionEvent::DestroySession`]: `destroyed`
    /// says whether that session existed (and is now gone).
    pub fn answer_destroy_session(&mut self, session_id: i64, destroyed: bool) {
        let body = if destroyed {
            tl(&types::DestroySessionOk { session_id })
        } else {
            tl(&types::DestroySessionNone { session_id })
        };
        self.push_service(body, true, true);
    }

    /// Answers a `destroy_auth_key` reported by [`SessionEvent::DestroyAuthKey`]:
    /// `destroy_auth_key_ok` if the key was destroyed, `destroy_auth_key_none` if it was not
    /// known, `destroy_auth_key_fail` (`destroyed == None`) if it could not be.
    pub fn answer_destroy_auth_key(&mut self, destroyed: Option<bool>) {
        let body = match destroyed {
            Some(true) => tl(&types::DestroyAuthKeyOk),
            Some(false) => tl(&types::DestroyAuthKeyNone),
            None => tl(&types::DestroyAuthKeyFail),
        };
        self.push_service(body, true, true);
    }

    fn push_answer(&mut self, req_msg_id: i64, body: Vec<u8>) -> Result<(), SendError> {
        if self.outbox.len() >= self.config.max_outbox {
            return Err(SendError::OutboxFull);
        }
        self.outbox.push_back(Pending {
            body,
            answer: true,
            content: true,
            req_msg_id: Some(req_msg_id),
        });
        Ok(())
    }

    /// Answers request `req_msg_id` with `rpc_result` carrying `body` (a TL object; gzipped
    /// above [`ServerSessionConfig::gzip_threshold`] when that is smaller).
    pub fn respond(&mut self, req_msg_id: i64, body: &[u8]) -> Result<(), SendError> {
        if !body.len().is_multiple_of(4) {
            return Err(SendError::BadBody);
        }
        if !self.running.contains(&req_msg_id) {
            return Err(SendError::UnknownRequest);
        }
        if self.outbox.len() >= self.config.max_outbox {
            return Err(SendError::OutboxFull);
        }
        let packed = self
            .config
            .gzip_threshold
            .filter(|&t| body.len() > t)
            .and_then(|_| {
                let data = gzip::deflate(body);
                tl(&types::GzipPacked { packed_data: &data })
            })
            .filter(|g| g.len() < body.len());
        let result = tl(&types::RpcResult {
            req_msg_id,
            result: packed.as_deref().unwrap_or(body),
        })
        .ok_or(SendError::BadBody)?;
        self.push_answer(req_msg_id, result)?;
        self.running.remove(&req_msg_id);
        Ok(())
    }

    /// Answers request `req_msg_id` with `rpc_result` carrying `rpc_error`.
    pub fn respond_error(
        &mut self,
        req_msg_id: i64,
        code: i32,
        message: &str,
    ) -> Result<(), SendError> {
        if !self.running.contains(&req_msg_id) {
            return Err(SendError::UnknownRequest);
        }
        let body = rpc_error_result(req_msg_id, code, message).ok_or(SendError::BadBody)?;
        self.push_answer(req_msg_id, body)?;
        self.running.remove(&req_msg_id);
        Ok(())
    }

    /// Queues a message that answers nothing (an update), content-related.
    pub fn push_update(&mut self, body: &[u8]) -> Result<(), SendError> {
        if !body.len().is_multiple_of(4) {
            return Err(SendError::BadBody);
        }
        if self.outbox.len() >= self.config.max_outbox {
            return Err(SendError::OutboxFull);
        }
        self.outbox.push_back(Pending {
            body: body.to_vec(),
            answer: false,
            content: true,
            req_msg_id: None,
        });
        Ok(())
    }

    fn keep(&mut self, msg_id: i64, seq_no: i32, p: Pending) {
        if self.config.max_kept == 0 {
            return;
        }
        while self.kept.len() >= self.config.max_kept {
            // Oldest first: msg_ids increase.
            if let Some(&first) = self.kept.keys().next() {
                self.kept_remove(first);
            }
        }
        if let Some(req) = p.req_msg_id {
            self.kept_by_req.insert(req, msg_id);
        }
        self.kept.insert(
            msg_id,
            Kept {
                seq_no,
                body: p.body,
                answer: p.answer,
                req_msg_id: p.req_msg_id,
            },
        );
    }

    /// The next message to send, if any: everything ready, packed into one `msg_container`
    /// when there are several (acknowledgements included), within the container limits.
    pub fn poll_message(&mut self, now: Now) -> Option<OutgoingMessage> {
        let server_nanos = unix_nanos(now);
        let ack_due = !self.acks.is_empty()
            && (!self.outbox.is_empty()
                || self.acks.len() >= self.config.ack_threshold
                || self.ack_deadline.is_some_and(|d| now.mono >= d));
        if self.outbox.is_empty() && !ack_due {
            return None;
        }
        // Pick messages for this packet.
        let mut picked: Vec<Pending> = Vec::new();
        let mut bytes = 0usize;
        while let Some(front) = self.outbox.front() {
            let len = front.body.len().saturating_add(16);
            let fits = picked.len() < MAX_CONTAINER_MESSAGES.saturating_sub(1)
                && bytes.saturating_add(len) <= self.config.max_container_bytes;
            if !picked.is_empty() && !fits {
                break;
            }
            if let Some(p) = self.outbox.pop_front() {
                bytes = bytes.saturating_add(len);
                picked.push(p);
            }
            if bytes > self.config.max_container_bytes {
                break; // a big message goes alone
            }
        }
        let acks = if ack_due && (picked.len() < MAX_CONTAINER_MESSAGES.saturating_sub(1)) {
            let n = self.acks.len().min(MAX_IDS_PER_SERVICE_MESSAGE);
            let ids: Vec<i64> = self.acks.drain(..n).collect();
            if self.acks.is_empty() {
                self.ack_deadline = None;
            }
            tl(&types::MsgsAck { msg_ids: ids })
        } else {
            None
        };
        let mut out: Vec<OutgoingMessage> = Vec::new();
        let mut any_answer = false;
        for p in picked {
            let msg_id = self.ids.next(server_nanos, if p.answer { 1 } else { 3 });
            let seq_no = self.seq.next(p.content);
            any_answer |= p.answer;
            out.push(OutgoingMessage {
                msg_id,
                seq_no,
                body: p.body.clone(),
            });
            if p.content {
                self.keep(msg_id, seq_no, p);
            }
        }
        if let Some(body) = acks {
            let msg_id = self.ids.next(server_nanos, 3);
            let seq_no = self.seq.next(false);
            out.push(OutgoingMessage {
                msg_id,
                seq_no,
                body,
            });
        }
        if out.len() <= 1 {
            return out.pop();
        }
        let mut body = Vec::new();
        write_container_header(&mut body, out.len());
        for m in &out {
            write_inner(
                &mut body,
                &OutMessage {
                    msg_id: m.msg_id,
                    seq_no: m.seq_no,
                    body: &m.body,
                },
            );
        }
        let msg_id = self.ids.next(server_nanos, if any_answer { 1 } else { 3 });
        let seq_no = self.seq.next(false);
        Some(OutgoingMessage {
            msg_id,
            seq_no,
            body,
        })
    }
}

fn rpc_error_result(req_msg_id: i64, code: i32, message: &str) -> Option<Vec<u8>> {
    let err = tl(&types::RpcError {
        error_code: code,
        error_message: message.as_bytes(),
    })?;
    tl(&types::RpcResult {
        req_msg_id,
        result: &err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::msgid::msg_id_for_nanos;
    use crate::time::UnixTime;
    use crate::tl::schema::Object;
    use alloc::vec;

    const T0: u64 = 1_764_000_000;
    const INITIAL_SALT: i64 = 0x1122_3344_5566_7788;
    const SID: i64 = 0x5e55_1011;

    fn at(secs: u64) -> Now {
        Now {
            mono: Instant::from_millis(secs.saturating_sub(T0) * 1000),
            unix: UnixTime::from_secs(secs),
        }
    }

    fn salts() -> ServerSalts {
        ServerSalts::new([7; 32], INITIAL_SALT, T0 as i64, 3600)
    }

    /// A hand-driven client: increasing msg_ids from its clock, seq_nos by content-relatedness.
    struct Client {
        last: i64,
        seq: SeqNo,
        salt: i64,
    }

    impl Client {
        fn new() -> Self {
            Self {
                last: 0,
                seq: SeqNo::new(),
                salt: INITIAL_SALT,
            }
        }
        fn id_at(&mut self, now: Now) -> i64 {
            let id = (msg_id_for_nanos(now.unix.as_nanos() as i64) & !3).max(self.last + 4);
            self.last = id;
            id
        }
        fn msg<'a>(&mut self, now: Now, body: &'a [u8], content: bool) -> IncomingMessage<'a> {
            IncomingMessage {
                salt: self.salt,
                session_id: SID,
                msg_id: self.id_at(now),
                seq_no: self.seq.next(content),
                body,
            }
        }
    }

    fn session() -> ServerSession {
        ServerSession::new(ServerSessionConfig::default(), SID, 0x0abc)
    }

    /// Every message sent, containers flattened: (msg_id, seq_no, body).
    fn sent(s: &mut ServerSession, now: Now) -> Vec<(i64, i32, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(m) = s.poll_message(now) {
            match Object::from_bytes(&m.body).unwrap() {
                Object::MsgContainer(c) => {
                    for inner in &c.messages {
                        assert!(inner.msg_id < m.msg_id, "container id above its messages");
                        out.push((inner.msg_id, inner.seqno, inner.body.to_vec()));
                    }
                }
                _ => out.push((m.msg_id, m.seq_no, m.body.clone())),
            }
        }
        out
    }

    fn events(s: &mut ServerSession) -> Vec<SessionEvent> {
        core::iter::from_fn(|| s.poll_event()).collect()
    }

    fn bad_msgs(out: &[(i64, i32, Vec<u8>)]) -> Vec<(i64, i32)> {
        out.iter()
            .filter_map(|(_, _, b)| match Object::from_bytes(b).ok()? {
                Object::BadMsgNotification(n) => Some((n.bad_msg_id, n.error_code)),
                Object::BadServerSalt(n) => Some((n.bad_msg_id, n.error_code)),
                _ => None,
            })
            .collect()
    }

    fn ping(id: i64) -> Vec<u8> {
        functions::Ping { ping_id: id }.to_vec().unwrap()
    }

    #[test]
    fn ping_with_an_even_seq_no_gets_a_pong_after_new_session_created() {
        let now = at(T0 + 5);
        let mut s = session();
        let mut c = Client::new();
        let body = ping(77);
        let m = c.msg(now, &body, false); // Pyrogram: ping as non-content-related
        assert_eq!(m.seq_no, 0);
        s.handle(now, &salts(), m);
        assert_eq!(
            events(&mut s),
            [SessionEvent::Started { unique_id: 0x0abc }]
        );
        let out = sent(&mut s, now);
        assert_eq!(out.len(), 2, "new_session_created then pong");
        let Object::NewSessionCreated(n) = Object::from_bytes(&out[0].2).unwrap() else {
            panic!("first is not new_session_created")
        };
        assert_eq!(
            (n.first_msg_id, n.unique_id, n.server_salt),
            (m.msg_id, 0x0abc, salts().current(T0 as i64 + 5))
        );
        assert_eq!(out[0].0 & 3, 3, "not an answer: msg_id ≡ 3 mod 4");
        let Object::Pong(p) = Object::from_bytes(&out[1].2).unwrap() else {
            panic!("not a bare pong")
        };
        assert_eq!((p.msg_id, p.ping_id), (m.msg_id, 77));
        assert_eq!(out[1].0 & 3, 1, "an answer: msg_id ≡ 1 mod 4");
        assert!(out[0].0 < out[1].0);
        assert_eq!(
            (out[0].1, out[1].1),
            (1, 2),
            "new_session_created needs an ack, pong does not"
        );
        // The server's ids carry the server's time.
        assert_eq!(out[1].0 >> 32, (T0 + 5) as i64);
    }

    #[test]
    fn ping_with_an_odd_seq_no_is_fine_too_and_acks_are_not_required_for_pong() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let body = ping(1);
        s.handle(now, &salts(), c.msg(now, &body, true));
        assert!(bad_msgs(&sent(&mut s, now)).is_empty());
    }

    #[test]
    fn msg_id_checks_give_16_17_18() {
        let now = at(T0 + 1000);
        let mut s = session();
        let body = ping(1);
        let base = msg_id_for_nanos(now.unix.as_nanos() as i64) & !3;
        let secs = |n: i64| n << 32;
        let cases = [
            (base - secs(301), bad_msg::MSG_ID_TOO_LOW),
            (base + secs(31), bad_msg::MSG_ID_TOO_HIGH),
            (base + 2, bad_msg::MSG_ID_BAD_BITS),
        ];
        for (id, code) in cases {
            let m = IncomingMessage {
                salt: INITIAL_SALT,
                session_id: SID,
                msg_id: id,
                seq_no: 0,
                body: &body,
            };
            s.handle(now, &salts(), m);
            let out = sent(&mut s, now);
            assert_eq!(bad_msgs(&out), [(id, code)]);
            // The notification's own id carries server time.
            assert_eq!(out[0].0 >> 32, (T0 + 1000) as i64);
        }
        // Just inside the window: accepted.
        for id in [base - secs(299), base + secs(29)] {
            let m = IncomingMessage {
                salt: INITIAL_SALT,
                session_id: SID,
                msg_id: id,
                seq_no: 0,
                body: &body,
            };
            s.handle(now, &salts(), m);
            assert!(bad_msgs(&sent(&mut s, now)).is_empty(), "{id:x}");
        }
        assert!(s.is_started());
    }

    #[test]
    fn seq_no_parity_mistakes_give_34_and_35() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        // A request (content-related) with an even seq_no: 35.
        let m = c.msg(now, &request, false);
        s.handle(now, &salts(), m);
        assert_eq!(
            bad_msgs(&sent(&mut s, now)),
            [(m.msg_id, bad_msg::EXPECTED_ODD)]
        );
        // msgs_ack (never content-related) with an odd seq_no: 34.
        let ack = types::MsgsAck { msg_ids: vec![1] }.to_vec().unwrap();
        let m = c.msg(now, &ack, true);
        s.handle(now, &salts(), m);
        assert_eq!(
            bad_msgs(&sent(&mut s, now)),
            [(m.msg_id, bad_msg::EXPECTED_EVEN)]
        );
        assert!(
            events(&mut s)
                .iter()
                .all(|e| !matches!(e, SessionEvent::Request { .. }))
        );
    }

    #[test]
    fn seq_no_order_mistakes_give_32_and_33() {
        let now = at(T0);
        let mut s = session();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let base = msg_id_for_nanos(now.unix.as_nanos() as i64) & !3;
        let send = |s: &mut ServerSession, id: i64, seq: i32| {
            s.handle(
                now,
                &salts(),
                IncomingMessage {
                    salt: INITIAL_SALT,
                    session_id: SID,
                    msg_id: id,
                    seq_no: seq,
                    body: &request,
                },
            );
            bad_msgs(&sent(s, now))
        };
        assert!(send(&mut s, base + 40, 7).is_empty());
        // A later msg_id with the same (or a lower) seq_no: too low.
        assert_eq!(send(&mut s, base + 44, 7), [(base + 44, 32)]);
        assert_eq!(send(&mut s, base + 48, 5), [(base + 48, 32)]);
        // An earlier msg_id with a higher seq_no: too high.
        assert_eq!(send(&mut s, base + 36, 9), [(base + 36, 33)]);
        // Earlier id, lower seq_no (a message overtaken on the way): fine.
        assert!(send(&mut s, base + 32, 5).is_empty());
        assert!(send(&mut s, base + 52, 9).is_empty());
    }

    fn container(id_seq_body: &[(i64, i32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        write_container_header(&mut out, id_seq_body.len());
        for &(msg_id, seq_no, body) in id_seq_body {
            write_inner(
                &mut out,
                &OutMessage {
                    msg_id,
                    seq_no,
                    body,
                },
            );
        }
        out
    }

    #[test]
    fn bad_containers_give_64_and_nothing_inside_is_processed() {
        let now = at(T0);
        let base = msg_id_for_nanos(now.unix.as_nanos() as i64) & !3;
        let request: &[u8] = &[0x11, 0x22, 0x33, 0x44];
        let nested = container(&[(base + 4, 1, request)]);
        let bad: [(&str, Vec<u8>); 3] = [
            (
                "nested",
                container(&[(base + 8, 1, request), (base + 12, 2, &nested)]),
            ),
            ("inner id above", container(&[(base + 20, 1, request)])),
            (
                "duplicate inner ids",
                container(&[(base + 8, 1, request), (base + 8, 3, request)]),
            ),
        ];
        for (what, body) in bad {
            let mut s = session();
            let m = IncomingMessage {
                salt: INITIAL_SALT,
                session_id: SID,
                msg_id: base + 16,
                seq_no: 4,
                body: &body,
            };
            s.handle(now, &salts(), m);
            let out = sent(&mut s, now);
            assert_eq!(bad_msgs(&out), [(base + 16, 64)], "{what}");
            assert!(
                events(&mut s)
                    .iter()
                    .all(|e| !matches!(e, SessionEvent::Request { .. }))
            );
            assert!(!s.is_started(), "{what}");
        }
        // A good one: both requests reach the application, new_session_created names the
        // lowest inner id, both are acknowledged.
        let mut s = session();
        let body = container(&[(base + 8, 1, request), (base + 12, 3, request)]);
        let m = IncomingMessage {
            salt: INITIAL_SALT,
            session_id: SID,
            msg_id: base + 16,
            seq_no: 4,
            body: &body,
        };
        s.handle(now, &salts(), m);
        let ev = events(&mut s);
        let reqs: Vec<i64> = ev
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Request { msg_id, .. } => Some(*msg_id),
                _ => None,
            })
            .collect();
        assert_eq!(reqs, [base + 8, base + 12]);
        let out = sent(&mut s, at(T0 + 1));
        let Object::NewSessionCreated(n) = Object::from_bytes(&out[0].2).unwrap() else {
            panic!()
        };
        assert_eq!(n.first_msg_id, base + 8);
        let acked: Vec<i64> = out
            .iter()
            .filter_map(|(_, _, b)| match Object::from_bytes(b).ok()? {
                Object::MsgsAck(a) => Some(a.msg_ids),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(acked, [base + 8, base + 12]);
    }

    #[test]
    fn a_wrong_salt_gets_bad_server_salt_with_the_current_salt() {
        let now = at(T0 + 2 * 3600 + 10);
        let mut s = session();
        let mut c = Client::new();
        let body = ping(5);
        // The handshake salt expired with the key's first period.
        let m = c.msg(now, &body, true);
        s.handle(now, &salts(), m);
        let out = sent(&mut s, now);
        let Object::BadServerSalt(b) = Object::from_bytes(&out[0].2).unwrap() else {
            panic!("no bad_server_salt")
        };
        let current = salts().current(now.unix.as_secs() as i64);
        assert_eq!(
            (b.bad_msg_id, b.error_code, b.new_server_salt),
            (m.msg_id, 48, current)
        );
        assert!(!s.is_started());
        // With the new salt the same ping (new msg_id) goes through.
        c.salt = b.new_server_salt;
        s.handle(now, &salts(), c.msg(now, &body, true));
        assert!(bad_msgs(&sent(&mut s, now)).is_empty());
    }

    #[test]
    fn the_next_periods_salt_is_accepted_just_before_the_boundary() {
        let s = salts();
        let boundary = 490_001 * 3600;
        let next = s.current(boundary);
        assert_ne!(next, s.current(boundary - 1));
        assert!(s.is_valid(next, boundary - 20), "client clock 20 s ahead");
        assert!(s.is_valid(next, boundary - NEXT_SALT_MARGIN_SECS));
        assert!(!s.is_valid(next, boundary - NEXT_SALT_MARGIN_SECS - 1));
        assert!(
            !s.is_valid(s.current(boundary + 3600), boundary - 1),
            "not two ahead"
        );
    }

    #[test]
    fn salts_follow_sha256_of_seed_and_period() {
        // Independent computation (Python):
        //   hashlib.sha256(bytes([7]*32) + (490000).to_bytes(8,'little')).digest()[:8]
        //   read as a little-endian signed 64-bit integer.
        let s = salts();
        let expected = i64::from_le_bytes(
            crate::crypto::sha256(&[&[7u8; 32], &490_000i64.to_le_bytes()])[..8]
                .try_into()
                .unwrap(),
        );
        assert_eq!(s.current(490_000 * 3600 + 5), expected);
        assert!(s.is_valid(expected, 490_000 * 3600 + 5));
        assert!(
            s.is_valid(expected, 490_001 * 3600 + 5),
            "previous period's salt"
        );
        assert!(!s.is_valid(expected, 490_002 * 3600 + 5));
        let f = s.future(490_000 * 3600 + 5, 3);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].salt, expected);
        assert_eq!(f[1].valid_since, f[0].valid_until);
    }

    #[test]
    fn get_future_salts_is_answered_with_future_salts() {
        let now = at(T0 + 7);
        let mut s = session();
        let mut c = Client::new();
        let body = functions::GetFutureSalts { num: 1000 }.to_vec().unwrap();
        let m = c.msg(now, &body, true);
        s.handle(now, &salts(), m);
        let out = sent(&mut s, now);
        let fs = out
            .iter()
            .find_map(|(id, _, b)| match Object::from_bytes(b).ok()? {
                Object::FutureSalts(f) => Some((*id, f)),
                _ => None,
            })
            .expect("future_salts");
        assert_eq!(fs.0 & 3, 1);
        let seq = out.iter().find(|m| m.0 == fs.0).unwrap().1;
        assert_eq!(seq & 1, 0, "future_salts needs no acknowledgment");
        assert_eq!(fs.1.req_msg_id, m.msg_id);
        assert_eq!(fs.1.now, (T0 + 7) as i32);
        assert_eq!(fs.1.salts.len(), 64, "capped");
        assert_eq!(fs.1.salts[0].salt, salts().current((T0 + 7) as i64));
    }

    fn rpc_results(out: &[(i64, i32, Vec<u8>)]) -> Vec<(i64, Vec<u8>)> {
        out.iter()
            .filter_map(|(_, _, b)| match Object::from_bytes(b).ok()? {
                Object::RpcResult(r) => Some((r.req_msg_id, r.result.to_vec())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rpc_drop_answer_running_sent_and_unknown() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        let b = c.msg(now, &request, true);
        s.handle(now, &salts(), b);
        s.respond(b.msg_id, &[1, 0, 0, 0]).unwrap();
        let out = sent(&mut s, now);
        let b_answer = out
            .iter()
            .find(|(_, _, body)| rpc_results(&[(0, 0, body.clone())]).len() == 1)
            .cloned()
            .unwrap();
        let drop = |id| {
            functions::RpcDropAnswer { req_msg_id: id }
                .to_vec()
                .unwrap()
        };
        let (da, db, dx) = (drop(a.msg_id), drop(b.msg_id), drop(12345 << 2));
        let ma = c.msg(now, &da, true);
        s.handle(now, &salts(), ma);
        let mb = c.msg(now, &db, true);
        s.handle(now, &salts(), mb);
        let mx = c.msg(now, &dx, true);
        s.handle(now, &salts(), mx);
        let results = rpc_results(&sent(&mut s, now));
        let by_req = |id| {
            results
                .iter()
                .find(|(r, _)| *r == id)
                .map(|(_, b)| Object::from_bytes(b).unwrap())
                .unwrap()
        };
        assert!(matches!(
            by_req(ma.msg_id),
            Object::RpcAnswerDroppedRunning(_)
        ));
        assert!(
            matches!(by_req(a.msg_id), Object::RpcAnswerDroppedRunning(_)),
            "the original query is answered too"
        );
        let Object::RpcAnswerDropped(d) = by_req(mb.msg_id) else {
            panic!("not rpc_answer_dropped")
        };
        assert_eq!((d.msg_id, d.seq_no), (b_answer.0, b_answer.1));
        assert_eq!(d.bytes as usize, b_answer.2.len());
        assert!(matches!(by_req(mx.msg_id), Object::RpcAnswerUnknown(_)));
        // The dropped running request can no longer be answered.
        assert_eq!(s.respond(a.msg_id, &[0; 4]), Err(SendError::UnknownRequest));
    }

    #[test]
    fn answers_are_kept_until_acked_and_resent_on_resume_with_fresh_ids() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        s.respond(a.msg_id, &[9, 0, 0, 0]).unwrap();
        let first = sent(&mut s, now);
        let first_id = first
            .iter()
            .find(|(_, _, b)| !rpc_results(&[(0, 0, b.clone())]).is_empty())
            .unwrap()
            .0;
        assert_eq!(s.kept_len(), 2, "new_session_created and the answer");
        s.resume();
        assert!(
            s.poll_message(at(T0 + 1)).is_none(),
            "nothing before the client speaks"
        );
        s.handle(at(T0 + 1), &salts(), c.msg(at(T0 + 1), &ping(1), false));
        let again = sent(&mut s, at(T0 + 1));
        let results: Vec<_> = again
            .iter()
            .filter(|(_, _, b)| !rpc_results(&[(0, 0, b.clone())]).is_empty())
            .collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].0 > first_id, "fresh msg_id");
        assert!(!s.is_resume_pending());
        assert_eq!(rpc_results(&again)[0], (a.msg_id, vec![9, 0, 0, 0]));
        // Acknowledging everything empties the kept set.
        let ack = types::MsgsAck {
            msg_ids: again.iter().map(|m| m.0).collect(),
        }
        .to_vec()
        .unwrap();
        s.handle(now, &salts(), c.msg(now, &ack, false));
        assert_eq!(s.kept_len(), 0);
    }

    #[test]
    fn on_resume_the_first_messages_acks_apply_before_kept_messages_go_out_again() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        s.respond(a.msg_id, &[9, 0, 0, 0]).unwrap();
        let update = types::RpcAnswerUnknown.to_vec().unwrap();
        s.push_update(&update).unwrap();
        let out = sent(&mut s, now);
        let id_of = |body: &[u8]| out.iter().find(|m| m.2 == body).unwrap().0;
        let answer_id = out
            .iter()
            .find(|(_, _, b)| !rpc_results(&[(0, 0, b.clone())]).is_empty())
            .unwrap()
            .0;
        let update_id = id_of(&update);
        // The connection breaks; the client got the answer but not the update, and its first
        // message on the new connection acknowledges what it got.
        s.resume();
        let later = at(T0 + 2);
        let ack = types::MsgsAck {
            msg_ids: vec![answer_id],
        }
        .to_vec()
        .unwrap();
        s.handle(later, &salts(), c.msg(later, &ack, false));
        let again = sent(&mut s, later);
        assert!(
            rpc_results(&again).is_empty(),
            "the acknowledged answer is not repeated"
        );
        let updates: Vec<_> = again.iter().filter(|m| m.2 == update).collect();
        assert_eq!(updates.len(), 1, "the unacknowledged update goes out again");
        assert!(updates[0].0 > update_id);
    }

    #[test]
    fn kept_answers_are_capped_oldest_first() {
        let now = at(T0);
        let config = ServerSessionConfig {
            max_kept: 3,
            ..ServerSessionConfig::default()
        };
        let mut s = ServerSession::new(config, SID, 1);
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let mut all = Vec::new();
        let mut reqs = Vec::new();
        for i in 0..10u8 {
            let m = c.msg(now, &request, true);
            s.handle(now, &salts(), m);
            s.respond(m.msg_id, &[i, 0, 0, 0]).unwrap();
            reqs.push(m.msg_id);
            all.extend(sent(&mut s, now).iter().map(|m| m.0));
        }
        assert_eq!(s.kept_len(), 3);
        // msg_resend_req for everything sent: only the newest three are still there.
        let q = types::MsgResendReq { msg_ids: all }.to_vec().unwrap();
        s.handle(now, &salts(), c.msg(now, &q, true));
        let again: Vec<i64> = rpc_results(&sent(&mut s, now))
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(again, reqs[7..], "the newest are kept");
    }

    #[test]
    fn a_duplicate_is_ignored_and_its_kept_answer_sent_again() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        s.respond(a.msg_id, &[3, 0, 0, 0]).unwrap();
        sent(&mut s, now);
        events(&mut s);
        s.handle(now, &salts(), a);
        let ev = events(&mut s);
        assert_eq!(
            ev,
            [SessionEvent::Rejected {
                msg_id: a.msg_id,
                reason: Rejection::Duplicate
            }]
        );
        assert_eq!(
            rpc_results(&sent(&mut s, now)),
            [(a.msg_id, vec![3, 0, 0, 0])]
        );
    }

    #[test]
    fn msgs_state_req_reports_received_running_and_unknown() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        let future = a.msg_id + (100 << 2);
        let q = types::MsgsStateReq {
            msg_ids: vec![a.msg_id, a.msg_id - 4, future],
        }
        .to_vec()
        .unwrap();
        let m = c.msg(now, &q, true);
        s.handle(now, &salts(), m);
        let info = sent(&mut s, now)
            .iter()
            .find_map(|(_, _, b)| match Object::from_bytes(b).ok()? {
                Object::MsgsStateInfo(i) => Some((i.req_msg_id, i.info.to_vec())),
                _ => None,
            })
            .unwrap();
        assert_eq!(info, (m.msg_id, vec![4 | 32, 2, 3]));
    }

    #[test]
    fn gzip_requests_are_inflated_and_bombs_refused() {
        let now = at(T0);
        let config = ServerSessionConfig {
            max_inflate: 1 << 16,
            ..ServerSessionConfig::default()
        };
        let mut s = ServerSession::new(config, SID, 1);
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44].repeat(100);
        let data = gzip::deflate(&request);
        let packed = types::GzipPacked { packed_data: &data }.to_vec().unwrap();
        let m = c.msg(now, &packed, true);
        s.handle(now, &salts(), m);
        assert!(events(&mut s).contains(&SessionEvent::Request {
            msg_id: m.msg_id,
            body: request.clone()
        }));
        let bomb = gzip::deflate(&vec![0u8; 1 << 20]);
        let packed = types::GzipPacked { packed_data: &bomb }.to_vec().unwrap();
        let m = c.msg(now, &packed, true);
        s.handle(now, &salts(), m);
        assert!(events(&mut s).iter().any(|e| matches!(
            e,
            SessionEvent::Rejected {
                reason: Rejection::Gzip(gzip::GzipError::TooLarge { .. }),
                ..
            }
        )));
    }

    #[test]
    fn large_answers_are_gzipped() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        let big = [0x55u8, 0, 0, 0].repeat(10_000);
        s.respond(a.msg_id, &big).unwrap();
        let (_, result) = rpc_results(&sent(&mut s, now)).remove(0);
        let Object::GzipPacked(g) = Object::from_bytes(&result).unwrap() else {
            panic!("not gzipped")
        };
        assert_eq!(gzip::inflate(g.packed_data, 1 << 20).unwrap(), big);
    }

    #[test]
    fn a_million_acks_and_a_full_outbox_stay_bounded() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let ack = types::MsgsAck {
            msg_ids: (0..1_000_000).collect(),
        }
        .to_vec()
        .unwrap();
        s.handle(now, &salts(), c.msg(now, &ack, false));
        assert_eq!(s.kept_len(), 0);
        // Nobody polls: pings, acks and requests pile up only to their caps.
        let body = ping(1);
        let request = [0x11u8, 0x22, 0x33, 0x44];
        for i in 0..5000 {
            let later = at(T0 + i / 100);
            s.handle(later, &salts(), c.msg(later, &body, true));
            s.handle(later, &salts(), c.msg(later, &request, true));
            events(&mut s);
        }
        let d = ServerSessionConfig::default();
        assert!(s.outbox_len() <= d.max_outbox);
        assert!(s.running_len() <= d.max_running);
        assert!(s.pending_acks() <= d.max_pending_acks);
        assert_eq!(s.push_update(&[0; 4]), Err(SendError::OutboxFull));
    }

    #[test]
    fn destroy_session_of_the_current_session_is_none_others_go_to_the_caller() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let own = functions::DestroySession { session_id: SID }
            .to_vec()
            .unwrap();
        let other = functions::DestroySession { session_id: 99 }
            .to_vec()
            .unwrap();
        s.handle(now, &salts(), c.msg(now, &own, true));
        let m = c.msg(now, &other, true);
        s.handle(now, &salts(), m);
        assert!(events(&mut s).contains(&SessionEvent::DestroySession {
            req_msg_id: m.msg_id,
            session_id: 99
        }));
        s.answer_destroy_session(99, true);
        let out = sent(&mut s, now);
        let kinds: Vec<_> = out
            .iter()
            .filter_map(|(_, _, b)| match Object::from_bytes(b).ok()? {
                Object::DestroySessionNone(d) => Some((false, d.session_id)),
                Object::DestroySessionOk(d) => Some((true, d.session_id)),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [(false, SID), (true, 99)]);
    }

    #[test]
    fn acks_wait_for_the_timer_or_a_piggyback() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        s.handle(now, &salts(), c.msg(now, &request, true));
        sent(&mut s, now); // new_session_created (and the ack piggybacked)
        let m = c.msg(now, &request, true);
        s.handle(now, &salts(), m);
        assert!(s.poll_message(now).is_none(), "a lone ack waits");
        let due = s.poll_timeout().unwrap();
        let later = Now {
            mono: due,
            unix: now.unix,
        };
        let out = sent(&mut s, later);
        let Object::MsgsAck(a) = Object::from_bytes(&out[0].2).unwrap() else {
            panic!()
        };
        assert_eq!(a.msg_ids, [m.msg_id]);
        assert_eq!(out[0].1 & 1, 0, "acks are not content-related");
        assert!(s.poll_timeout().is_none());
    }

    #[test]
    fn msg_resend_req_and_msg_resend_ans_req_resend_kept_messages() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let request = [0x11u8, 0x22, 0x33, 0x44];
        let a = c.msg(now, &request, true);
        s.handle(now, &salts(), a);
        s.respond(a.msg_id, &[5, 0, 0, 0]).unwrap();
        let out = sent(&mut s, now);
        let answer_id = out
            .iter()
            .find(|(_, _, b)| !rpc_results(&[(0, 0, b.clone())]).is_empty())
            .unwrap()
            .0;
        let by_server_id = types::MsgResendReq {
            msg_ids: vec![answer_id, 12345 << 2],
        }
        .to_vec()
        .unwrap();
        s.handle(now, &salts(), c.msg(now, &by_server_id, true));
        let again = sent(&mut s, now);
        assert_eq!(rpc_results(&again), [(a.msg_id, vec![5, 0, 0, 0])]);
        let by_request_id = types::MsgResendAnsReq {
            msg_ids: vec![a.msg_id],
        }
        .to_vec()
        .unwrap();
        s.handle(now, &salts(), c.msg(now, &by_request_id, true));
        assert_eq!(
            rpc_results(&sent(&mut s, now)),
            [(a.msg_id, vec![5, 0, 0, 0])]
        );
    }

    #[test]
    fn debug_hides_the_salt_seed() {
        let shown = alloc::format!("{:?} {:?}", salts(), session());
        assert!(!shown.contains("7, 7"), "{shown}");
    }

    #[test]
    fn http_wait_is_recorded_not_acked_with_either_seq_no_parity() {
        // The spec bars only msgs_ack, containers, msg_copy and gzip_packed from being
        // content-related; tdlib sends http_wait even, others may send it odd.
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let wait = |max_wait: i32| {
            let mut w = HTTP_WAIT_ID.to_le_bytes().to_vec();
            for v in [5i32, 7, max_wait] {
                w.extend_from_slice(&v.to_le_bytes());
            }
            w
        };
        for (content, max_wait) in [(true, 1000), (false, 2000)] {
            s.handle(now, &salts(), c.msg(now, &wait(max_wait), content));
            assert_eq!(s.pending_acks(), 0, "http_wait is not acknowledged");
        }
        // Recorded, the last one wins; taken once.
        let expected = HttpWaitConfig {
            max_delay: 5,
            wait_after: 7,
            max_wait: 2000,
        };
        assert_eq!(s.take_http_wait(), Some(expected));
        assert_eq!(s.take_http_wait(), None);
        let ev = events(&mut s);
        assert!(
            ev.iter().all(|e| matches!(e, SessionEvent::Started { .. })),
            "{ev:?}"
        );
        assert!(bad_msgs(&sent(&mut s, now)).is_empty());
    }

    #[test]
    fn msg_copy_and_informational_messages_do_not_reach_the_application() {
        let now = at(T0);
        let mut s = session();
        let mut c = Client::new();
        let info = types::MsgsStateInfo {
            req_msg_id: 4,
            info: &[1],
        }
        .to_vec()
        .unwrap();
        let mut copy = types::MsgCopy::CONSTRUCTOR_ID.to_le_bytes().to_vec();
        copy.extend_from_slice(&[0; 16]);
        for body in [info, copy] {
            for content in [true, false] {
                s.handle(now, &salts(), c.msg(now, &body, content));
            }
        }
        let ev = events(&mut s);
        assert!(
            ev.iter().all(|e| matches!(e, SessionEvent::Started { .. })),
            "{ev:?}"
        );
        assert!(bad_msgs(&sent(&mut s, now)).is_empty());
    }
}
