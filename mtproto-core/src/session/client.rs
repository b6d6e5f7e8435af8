//! The client session: everything between "the application invokes a request" and "this
//! encrypted message's plaintext goes out / came in", with no crypto or transport of its own.
//!
//! Outgoing: requests and service messages wait in bounded queues; [`ClientSession::poll_message`]
//! packs whatever is ready into one message (a `msg_container` when there are several), with
//! msg_ids and seq_nos from one [`ServerClock`]. Every (re)transmission gets a fresh msg_id.
//!
//! Incoming: [`ClientSession::handle_message`] takes one decrypted message, applies the
//! session_id, replay and time-window checks, unpacks containers, `gzip_packed` and `msg_copy`,
//! matches `rpc_result`s to requests and acts on every service message of
//! `mtproto_service_messages.md` and `mtproto_service_messages_about_messages.md`.
//!
//! Nothing here is fatal but a pong timeout: bad salts, clock errors, duplicates and new server
//! sessions are repaired and at most reported.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use rand_core::{CryptoRng, Rng};

use super::container::{self, ContainerIter, MAX_CONTAINER_MESSAGES, MAX_IDS_PER_SERVICE_MESSAGE};
use super::{MsgIdGen, Replay, ReplayWindow, RpcError, SeqNo, ServerClock, gzip};
use crate::time::{Instant, Now};
use crate::tl::schema::{functions, types};
use crate::tl::{Reader, Serialize, TlError};
use crate::transport::HttpWaitConfig;

/// Identifies a request made with [`ClientSession::invoke`]; unique per session object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// No pong arrived within the deadline.
    PongTimeout,
    /// The handshake did not finish within its deadline.
    HandshakeTimeout,
    /// The handshake failed (the key was not created).
    HandshakeFailed,
    /// The server sent a transport error (`-404`, `-429`, …).
    TransportError(i32),
    /// The byte stream could not be decoded or an encrypted message failed its checks.
    Protocol,
    /// The application closed the connection.
    Local,
    /// Under PFS, `auth.bindTempAuthKey` failed.
    BindFailed {
        /// The server's answer.
        error: RpcError,
        /// `ENCRYPTED_MESSAGE_INVALID` for a permanent key older than 60 s: `api_pfs.md` says
        /// the permanent key is gone. The application decides whether to make a new one (the
        /// crate never does by itself).
        permanent_key_invalid: bool,
    },
}

/// What the connection tells the application. Bodies are **owned** (`Vec<u8>`): events are
/// queued and polled after the input buffer they came from has been reused, so a borrowed body
/// would force the application to handle each one before feeding more bytes. Exactly one
/// allocation per delivered body.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The auth key is ready (created now or imported) and requests flow.
    Ready,
    /// The answer to a request: the TL body of `rpc_result.result` (inflated if it was
    /// `gzip_packed`).
    RpcResult {
        /// The request.
        id: RequestId,
        /// Its result.
        body: Vec<u8>,
    },
    /// A request failed with `rpc_error`.
    RpcError {
        /// The request.
        id: RequestId,
        /// The error, with the number of e.g. `FLOOD_WAIT_31` parsed.
        error: RpcError,
    },
    /// A message that answers no request (updates and everything else the session does not
    /// consume).
    Update {
        /// Its TL body.
        body: Vec<u8>,
    },
    /// Updates may have been missed (new session, resends of state-unknown requests, dropped
    /// updates because the application did not poll): fetch the difference.
    UpdatesGapPossible,
    /// The server acknowledged the transport-level quick ack of a request.
    QuickAck {
        /// The request.
        id: RequestId,
    },
    /// The server time offset changed (persist it with the key).
    TimeSynced {
        /// Server time minus local time, seconds.
        offset_secs: i64,
    },
    /// A pong arrived.
    Pong {
        /// The ping's id.
        ping_id: i64,
        /// Round-trip time in microseconds (monotonic clock).
        rtt_micros: u64,
    },
    /// The server sent a transport error (the connection is closed after it).
    TransportError(i32),
    /// The server does not know our auth key (`-404`). Never answered by making a new key.
    AuthKeyUnknown,
    /// The server destroyed our auth key (`destroy_auth_key_ok`).
    AuthKeyDestroyed,
    /// The connection is closed; [`reconnect`](crate::connection::Connection::reconnect) to go on.
    Closed(CloseReason),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Ready => f.write_str("Ready"),
            Event::RpcResult { id, body } => write!(f, "RpcResult({id:?}, {} bytes)", body.len()),
            Event::RpcError { id, error } => write!(f, "RpcError({id:?}, {error:?})"),
            Event::Update { body } => write!(f, "Update({} bytes)", body.len()),
            Event::UpdatesGapPossible => f.write_str("UpdatesGapPossible"),
            Event::QuickAck { id } => write!(f, "QuickAck({id:?})"),
            Event::TimeSynced { offset_secs } => write!(f, "TimeSynced({offset_secs} s)"),
            Event::Pong {
                ping_id,
                rtt_micros,
            } => write!(f, "Pong({ping_id}, {rtt_micros} us)"),
            Event::TransportError(c) => write!(f, "TransportError({c})"),
            Event::AuthKeyUnknown => f.write_str("AuthKeyUnknown"),
            Event::AuthKeyDestroyed => f.write_str("AuthKeyDestroyed"),
            Event::Closed(r) => write!(f, "Closed({r:?})"),
        }
    }
}

/// Why [`ClientSession::invoke`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvokeError {
    /// [`SessionConfig::max_pending_requests`] requests are already pending: wait for answers.
    TooManyPending,
    /// The body is empty, not a multiple of 4 bytes, or larger than the message limit.
    BadBody,
    /// The request could not be serialized.
    Tl(TlError),
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvokeError::TooManyPending => f.write_str("too many pending requests"),
            InvokeError::BadBody => f.write_str("request body empty, unaligned or too large"),
            InvokeError::Tl(e) => write!(f, "request not serializable: {e}"),
        }
    }
}

impl core::error::Error for InvokeError {}

/// Limits and timers of a client session. Every queue is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Requests invoked and not yet answered (queued, in flight or awaiting their result).
    pub max_pending_requests: usize,
    /// Updates queued for [`poll_event`](ClientSession::poll_event) before new ones are dropped
    /// (with one [`Event::UpdatesGapPossible`] once the application catches up). Answers to
    /// requests are never dropped: they are bounded by `max_pending_requests`.
    pub max_queued_updates: usize,
    /// Largest request body; bigger ones are refused.
    pub max_body_len: usize,
    /// Acknowledgements wait at most this long (ms) before going out on their own.
    pub ack_delay_ms: u64,
    /// ... or until this many are pending.
    pub ack_threshold: usize,
    /// Pings (`ping_delay_disconnect`) go out this often (ms) while connected; 0 disables.
    pub ping_interval_ms: u64,
    /// The `disconnect_delay` (s) asked of the server with each ping.
    pub ping_disconnect_delay_secs: i32,
    /// A pong must arrive within this many ms, else the connection closes.
    pub pong_timeout_ms: u64,
    /// A request neither acknowledged nor answered this long (ms) after it went out is asked
    /// about with `msgs_state_req`.
    pub state_req_after_ms: u64,
    /// A request acknowledged but not answered this long (ms) is asked about too (its answer may
    /// have been lost: the state says so and `msg_resend_ans_req` fetches it). No request waits
    /// without a deadline.
    pub answer_check_after_ms: u64,
    /// A request the server reports as received but neither processing nor answered (its answer
    /// was forgotten) this many times ends with an [`Event::RpcError`] `-503 ANSWER_LOST`
    /// instead of waiting forever; it is not re-sent (that could run it twice).
    pub max_lost_answer_checks: u32,
    /// Messages packed into one container at most (the spec allows 1024).
    pub max_container_messages: usize,
    /// Bytes of bodies packed into one container at most; a larger request goes alone.
    pub max_container_bytes: usize,
    /// Request bodies at least this long are sent `gzip_packed` when that makes them smaller.
    pub gzip_min_len: Option<usize>,
    /// Largest inflated `gzip_packed` body accepted (a bomb is an error).
    pub max_inflated_len: usize,
    /// Ask for future salts when the known ones run out within this many seconds.
    pub future_salts_ahead_secs: i64,
    /// Authenticated messages outside the time window in a row before we conclude that our own
    /// clock jumped and re-synchronise.
    pub clock_jump_after: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_pending_requests: 4096,
            max_queued_updates: 4096,
            max_body_len: 1 << 20,
            ack_delay_ms: 500,
            ack_threshold: 64,
            ping_interval_ms: 60_000,
            ping_disconnect_delay_secs: 75,
            pong_timeout_ms: 30_000,
            state_req_after_ms: 15_000,
            answer_check_after_ms: 60_000,
            max_lost_answer_checks: 5,
            max_container_messages: MAX_CONTAINER_MESSAGES,
            max_container_bytes: 1 << 19,
            gzip_min_len: None,
            max_inflated_len: 16 << 20,
            future_salts_ahead_secs: 600,
            clock_jump_after: 3,
        }
    }
}

/// Counters of what the session dropped or repaired, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages for another session_id (the session is in use elsewhere?).
    pub wrong_session: u64,
    /// Duplicate msg_ids (re-acknowledged, not processed twice).
    pub duplicates: u64,
    /// msg_ids below the replay window.
    pub too_old: u64,
    /// Messages outside the −300 s/+30 s time window.
    pub out_of_window: u64,
    /// Malformed bodies (containers, gzip, TL) dropped.
    pub malformed: u64,
    /// `rpc_result`s for requests we do not know (cancelled or forgotten).
    pub unknown_results: u64,
    /// Updates dropped because the application did not poll.
    pub dropped_updates: u64,
    /// bad_msg_notifications / bad_server_salts acted upon.
    pub bad_msgs: u64,
    /// New sessions started by us.
    pub new_sessions: u64,
}

/// A future salt.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Salt {
    valid_since: i64,
    valid_until: i64,
    salt: i64,
}

struct Pending {
    body: Vec<u8>,
    /// The msg_id it was last sent with (`None`: waiting to be sent).
    msg_id: Option<i64>,
    sent_at: Option<Instant>,
    acked: bool,
    state_asked_at: Option<Instant>,
    /// How often the server said "received" without processing or answer.
    lost_checks: u32,
    /// Answered to the connection itself ([`ClientSession::take_internal_result`]), not as an
    /// event (e.g. `auth.bindTempAuthKey`).
    internal: bool,
    /// The body depends on its own msg_id: a resend is rebuilt by the connection
    /// ([`ClientSession::take_rebuild`]) instead of re-sent as is.
    rebuild: bool,
}

/// The outcome of an internal request: its result body or its error.
pub type InternalResult = (RequestId, Result<Vec<u8>, RpcError>);

/// What an outgoing msg_id carried.
enum Sent {
    Request(RequestId),
    Container(IdList),
    Ping { ping_id: i64, sent_at: Instant },
    StateReq(Vec<i64>),
    FutureSalts,
    Acks(IdList),
    DropAnswer,
    Resend(Vec<i64>),
    ResendAns(Vec<i64>),
    StateInfo,
}

/// How many msg_ids an [`IdList`] holds without a heap allocation.
const INLINE_IDS: usize = 4;

/// The msg_ids an ack message or a container carried. Up to [`INLINE_IDS`] are stored inline,
/// so the steady state (an ack or two; a container of an ack and a request or a ping) makes
/// no heap allocation; longer lists go on the heap.
enum IdList {
    Inline(u8, [i64; INLINE_IDS]),
    Heap(Vec<i64>),
}

impl IdList {
    fn collect(ids: impl ExactSizeIterator<Item = i64>) -> Self {
        let n = ids.len();
        if n <= INLINE_IDS {
            let mut inline = [0i64; INLINE_IDS];
            for (dst, id) in inline.iter_mut().zip(ids) {
                *dst = id;
            }
            IdList::Inline(u8::try_from(n).unwrap_or(0), inline)
        } else {
            IdList::Heap(ids.collect())
        }
    }

    fn as_slice(&self) -> &[i64] {
        match self {
            IdList::Inline(n, ids) => ids.get(..usize::from(*n)).unwrap_or_default(),
            IdList::Heap(ids) => ids,
        }
    }
}

/// Keys of a [`Ring`]: ordered, with a distance that tells which end of the ring a key lies
/// nearer to.
trait RingKey: Copy + Ord {
    fn gap(self, other: Self) -> u64;
}

impl RingKey for i64 {
    fn gap(self, other: Self) -> u64 {
        self.abs_diff(other)
    }
}

impl RingKey for RequestId {
    fn gap(self, other: Self) -> u64 {
        self.0.abs_diff(other.0)
    }
}

/// A map over keys handed out in increasing order (msg_ids, request ids), kept sorted in a ring
/// buffer: a new key goes at the back (the buffer is reused: no node allocations, where a
/// B-tree splits and merges nodes all the time). Lookups gallop from the end nearer the key
/// (then bisect): the usual ones are the newest entries (the answer to a recent request) and the
/// oldest (a service entry forgotten), found in a probe or two where a plain binary search walks
/// the whole buffer; any key costs O(log n) at most. An entry removed from the middle leaves a
/// tombstone, dropped once it reaches either end or when tombstones outnumber the live entries,
/// so the buffer stays within twice the live entries (plus a little).
struct Ring<K, V> {
    entries: VecDeque<(K, Option<V>)>,
    live: usize,
}

impl<K, V> Default for Ring<K, V> {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            live: 0,
        }
    }
}

/// The sent map: what each outgoing msg_id carried, in msg_id order.
type SentMap = Ring<i64, Sent>;

impl<K: RingKey, V> Ring<K, V> {
    fn key(&self, i: usize) -> Option<K> {
        self.entries.get(i).map(|e| e.0)
    }

    /// Where `k` is (`Ok`) or would go (`Err`), as a binary search of the buffer answers.
    fn find(&self, k: K) -> Result<usize, usize> {
        let len = self.entries.len();
        let (Some(first), Some(last)) = (self.key(0), self.key(len.saturating_sub(1))) else {
            return Err(0);
        };
        if k > last {
            return Err(len);
        }
        if k <= first {
            return if k == first { Ok(0) } else { Err(0) };
        }
        // first < k <= last. Gallop to a range [lo, hi] with key(lo) < k <= key(hi).
        let (mut lo, mut hi) = (0, len.saturating_sub(1));
        let mut step = 1usize;
        if last.gap(k) <= k.gap(first) {
            loop {
                let i = hi.saturating_sub(step).max(lo);
                if i == lo || self.key(i).is_none_or(|x| x < k) {
                    lo = i;
                    break;
                }
                hi = i;
                step = step.saturating_mul(2);
            }
        } else {
            loop {
                let i = lo.saturating_add(step).min(hi);
                if i == hi || self.key(i).is_none_or(|x| x >= k) {
                    hi = i;
                    break;
                }
                lo = i;
                step = step.saturating_mul(2);
            }
        }
        // Bisect: the answer is the first index in (lo, hi] whose key is >= k.
        while hi.saturating_sub(lo) > 1 {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            if self.key(mid).is_none_or(|x| x >= k) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        if self.key(hi) == Some(k) {
            Ok(hi)
        } else {
            Err(hi)
        }
    }

    fn get(&self, k: &K) -> Option<&V> {
        let i = self.find(*k).ok()?;
        self.entries.get(i)?.1.as_ref()
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.find(*k).ok()?;
        self.entries.get_mut(i)?.1.as_mut()
    }

    fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    /// Live entries.
    fn len(&self) -> usize {
        self.live
    }

    fn insert(&mut self, k: K, v: V) {
        // The usual case: a new key, above every other.
        if self.entries.back().is_none_or(|e| e.0 < k) {
            self.entries.push_back((k, Some(v)));
            self.live = self.live.saturating_add(1);
            return;
        }
        match self.find(k) {
            Ok(i) => {
                if let Some((_, slot)) = self.entries.get_mut(i)
                    && slot.replace(v).is_none()
                {
                    self.live = self.live.saturating_add(1);
                }
            }
            Err(i) => {
                if i == self.entries.len() {
                    self.entries.push_back((k, Some(v)));
                } else {
                    // Not reached while keys only grow; kept correct regardless.
                    self.entries.insert(i, (k, Some(v)));
                }
                self.live = self.live.saturating_add(1);
            }
        }
    }

    /// The entry at a position [`find`](Self::find) returned.
    fn get_at(&self, i: usize) -> Option<&V> {
        self.entries.get(i)?.1.as_ref()
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.find(*k).ok()?;
        self.remove_at(i)
    }

    /// Removes the entry at a position [`find`](Self::find) returned.
    fn remove_at(&mut self, i: usize) -> Option<V> {
        let old = self.entries.get_mut(i)?.1.take();
        if old.is_some() {
            self.live = self.live.saturating_sub(1);
            self.trim();
        }
        old
    }

    fn trim(&mut self) {
        while matches!(self.entries.front(), Some((_, None))) {
            self.entries.pop_front();
        }
        while matches!(self.entries.back(), Some((_, None))) {
            self.entries.pop_back();
        }
        if self.entries.len() > self.live.saturating_mul(2).saturating_add(16) {
            self.entries.retain(|e| e.1.is_some());
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(id, slot)| match slot {
            Some(s) => keep(id, s),
            None => false,
        });
        self.live = self.entries.len();
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.live = 0;
    }

    /// Live entries in key order.
    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries
            .iter()
            .filter_map(|(id, slot)| Some((id, slot.as_ref()?)))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries
            .iter_mut()
            .filter_map(|(id, slot)| Some((&*id, slot.as_mut()?)))
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.iter_mut().map(|(_, v)| v)
    }
}

/// Spare request-body buffers kept for reuse at most (each at most [`SPARE_BODY_CAPACITY`]
/// bytes): a request's copy of its body goes back here once it is answered.
const SPARE_BODIES: usize = 8;
const SPARE_BODY_CAPACITY: usize = 64 * 1024;

/// One item waiting to go out.
enum Item {
    Ping(i64),
    FutureSalts,
    StateReq(Vec<i64>),
    Resend(Vec<i64>),
    ResendAns(Vec<i64>),
    DropAnswer(i64),
    StateInfo { req_msg_id: i64, info: Vec<u8> },
}

/// The header of a message [`ClientSession::poll_message`] produced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OutHeader {
    /// Salt to put in the encrypted header.
    pub salt: i64,
    /// Session id.
    pub session_id: i64,
    /// The message's msg_id (the container's, if it is one).
    pub msg_id: i64,
    /// Its seq_no.
    pub seq_no: i32,
    /// The requests it carries, first one (for quick-ack bookkeeping), if any.
    pub first_request: Option<RequestId>,
}

impl fmt::Debug for OutHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutHeader")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .finish_non_exhaustive()
    }
}

/// The fields of a decrypted incoming message.
#[derive(Clone, Copy)]
pub struct Incoming<'a> {
    /// Salt of the message (informational for a client).
    pub salt: i64,
    /// Session id.
    pub session_id: i64,
    /// msg_id (odd: decryption checked the parity).
    pub msg_id: i64,
    /// seq_no.
    pub seq_no: i32,
    /// The TL body.
    pub body: &'a [u8],
}

/// What a saved session holds (see [`ClientSession::export`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// Session id.
    pub session_id: i64,
    /// Current salt.
    pub salt: i64,
    /// Server time minus local time, seconds.
    pub time_offset_secs: i64,
    /// The last msg_id we sent (the floor to continue above).
    pub last_msg_id: i64,
    /// Content-related messages sent so far.
    pub seq_count: i32,
}

impl fmt::Debug for SavedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedSession")
            .field("time_offset_secs", &self.time_offset_secs)
            .finish_non_exhaustive()
    }
}

const MSG_CONTAINER_ID: u32 = types::MsgContainer::CONSTRUCTOR_ID;
const GZIP_PACKED_ID: u32 = types::GzipPacked::CONSTRUCTOR_ID;
const MSG_COPY_ID: u32 = types::MsgCopy::CONSTRUCTOR_ID;
const RPC_RESULT_ID: u32 = types::RpcResult::CONSTRUCTOR_ID;
const RPC_ERROR_ID: u32 = types::RpcError::CONSTRUCTOR_ID;
const BAD_MSG_ID: u32 = types::BadMsgNotification::CONSTRUCTOR_ID;
const BAD_SALT_ID: u32 = types::BadServerSalt::CONSTRUCTOR_ID;
/// At most this many pings in flight; further pings wait.
const MAX_PINGS_IN_FLIGHT: usize = 4;
/// Service entries (non-request) remembered in the sent map at most.
const MAX_SENT_SERVICE: usize = 1024;
/// Seconds of the time window (`mtproto_security_guidelines.md`): 300 s old, 30 s ahead.
const WINDOW_PAST_NANOS: i64 = 300_000_000_000;
const WINDOW_FUTURE_NANOS: i64 = 30_000_000_000;

/// The client side of an MTProto session. See the [module docs](self).
pub struct ClientSession {
    config: SessionConfig,
    session_id: i64,
    salt: i64,
    future_salts: Vec<Salt>,
    salts_requested_at: Option<Instant>,
    clock: ServerClock,
    msg_ids: MsgIdGen,
    seq: SeqNo,
    replay: ReplayWindow,
    next_request: u64,
    requests: Ring<RequestId, Pending>,
    /// Requests waiting to be sent, in order.
    send_queue: VecDeque<RequestId>,
    services: VecDeque<Item>,
    sent: SentMap,
    sent_services: VecDeque<i64>,
    acks: Vec<i64>,
    ack_since: Option<Instant>,
    pings: usize,
    next_ping_at: Option<Instant>,
    pong_deadline: Option<Instant>,
    next_ping_id: i64,
    out_of_window_run: u32,
    events: VecDeque<Event>,
    queued_updates: usize,
    updates_dropped: bool,
    stats: SessionStats,
    closed: bool,
    hold_requests: bool,
    /// Reused by `poll_message` (no allocation per message for its bookkeeping).
    inner_scratch: Vec<(i64, i32, usize, usize)>,
    /// Buffers of answered requests' bodies, reused by the next requests.
    spare_bodies: Vec<Vec<u8>>,
    internal_results: VecDeque<InternalResult>,
    rebuilds: Vec<RequestId>,
}

impl fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("pending_requests", &self.requests.len())
            .field("events", &self.events.len())
            .field("time_offset_secs", &self.clock.offset_secs())
            .finish_non_exhaustive()
    }
}

fn random_i64<R: Rng + ?Sized>(rng: &mut R) -> i64 {
    let mut b = [0u8; 8];
    rng.fill_bytes(&mut b);
    i64::from_le_bytes(b)
}

fn ms(n: u64) -> u64 {
    n.saturating_mul(1_000)
}

fn peek_id(body: &[u8]) -> Option<u32> {
    body.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

impl ClientSession {
    /// A new session (random session_id) for a fresh key: `salt` from the handshake,
    /// `time_offset_secs` from the handshake's `server_time`.
    pub fn new<R: CryptoRng + ?Sized>(
        config: SessionConfig,
        salt: i64,
        time_offset_secs: i64,
        rng: &mut R,
    ) -> Self {
        let session_id = random_i64(rng);
        let ping_base = random_i64(rng) & 0x7fff_ffff_ffff_0000;
        Self::with_ids(config, salt, time_offset_secs, session_id, ping_base)
    }

    fn with_ids(
        config: SessionConfig,
        salt: i64,
        time_offset_secs: i64,
        session_id: i64,
        next_ping_id: i64,
    ) -> Self {
        Self {
            config,
            session_id,
            salt,
            future_salts: Vec::new(),
            salts_requested_at: None,
            clock: ServerClock::with_offset_secs(time_offset_secs),
            msg_ids: MsgIdGen::new(),
            seq: SeqNo::new(),
            replay: ReplayWindow::new(),
            next_request: 0,
            requests: Ring::default(),
            send_queue: VecDeque::new(),
            services: VecDeque::new(),
            sent: SentMap::default(),
            sent_services: VecDeque::new(),
            acks: Vec::new(),
            ack_since: None,
            pings: 0,
            next_ping_at: None,
            pong_deadline: None,
            next_ping_id,
            out_of_window_run: 0,
            events: VecDeque::new(),
            queued_updates: 0,
            updates_dropped: false,
            stats: SessionStats::default(),
            closed: false,
            hold_requests: false,
            inner_scratch: Vec::new(),
            spare_bodies: Vec::new(),
            internal_results: VecDeque::new(),
            rebuilds: Vec::new(),
        }
    }

    /// Continues a saved session: same session_id, salt and offset, msg_ids above the last one
    /// sent and seq_nos after the last. If the clock is off, the server's bad_msg 16/17 repairs
    /// it (a downward correction starts a new session).
    pub fn restore(config: SessionConfig, saved: &SavedSession) -> Self {
        let mut s = Self::with_ids(
            config,
            saved.salt,
            saved.time_offset_secs,
            saved.session_id,
            saved.last_msg_id & 0x7fff_ffff_ffff_0000,
        );
        s.msg_ids = MsgIdGen::above(saved.last_msg_id);
        s.seq = SeqNo::with_count(saved.seq_count);
        s
    }

    /// The handshake made a new key: messages go out with its first `salt`, on a clock offset by
    /// `time_offset_secs` (server − local).
    pub fn on_key_created(&mut self, salt: i64, time_offset_secs: i64) {
        self.salt = salt;
        self.future_salts.clear();
        self.clock = ServerClock::with_offset_secs(time_offset_secs);
        self.msg_ids.reset();
    }

    /// What to persist to continue this session later.
    pub fn export(&self) -> SavedSession {
        SavedSession {
            session_id: self.session_id,
            salt: self.salt,
            time_offset_secs: self.clock.offset_secs(),
            last_msg_id: self.msg_ids.last(),
            seq_count: self.seq.count(),
        }
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The salt messages are sent with now.
    pub fn salt(&self) -> i64 {
        self.salt
    }

    /// The server clock.
    pub fn clock(&self) -> &ServerClock {
        &self.clock
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Requests invoked and not yet answered.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Events not yet polled.
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// Whether the session closed itself (pong timeout).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---------------------------------------------------------------------------------- commands

    /// Queues a request (already serialized TL). Fails when too many are pending.
    pub fn invoke_raw(&mut self, body: &[u8]) -> Result<RequestId, InvokeError> {
        // The request's own copy, in a reused buffer when one is spare.
        let mut copy = self.spare_body();
        copy.extend_from_slice(body);
        self.invoke_owned(copy)
    }

    /// An empty buffer for a request body: a spare one if any.
    fn spare_body(&mut self) -> Vec<u8> {
        let mut b = self.spare_bodies.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Checks and queues a request body (gzip-packed if configured and shorter).
    fn invoke_owned(&mut self, body: Vec<u8>) -> Result<RequestId, InvokeError> {
        if self.requests.len() >= self.config.max_pending_requests {
            self.recycle_body(body);
            return Err(InvokeError::TooManyPending);
        }
        if body.is_empty() || !body.len().is_multiple_of(4) || body.len() > self.config.max_body_len
        {
            self.recycle_body(body);
            return Err(InvokeError::BadBody);
        }
        let body = match self.config.gzip_min_len {
            Some(min) if body.len() >= min => {
                let packed = gzip::deflate(&body);
                let wrapped = types::GzipPacked {
                    packed_data: &packed,
                }
                .to_vec();
                match wrapped {
                    Ok(w) if w.len() < body.len() => {
                        self.recycle_body(body);
                        w
                    }
                    Ok(_) => body,
                    Err(e) => {
                        self.recycle_body(body);
                        return Err(InvokeError::Tl(e));
                    }
                }
            }
            _ => body,
        };
        Ok(self.queue_request(body))
    }

    /// Queues a request whose body has passed the checks of [`invoke_raw`](Self::invoke_raw).
    fn queue_request(&mut self, body: Vec<u8>) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        self.requests.insert(
            id,
            Pending {
                body,
                msg_id: None,
                sent_at: None,
                acked: false,
                state_asked_at: None,
                internal: false,
                rebuild: false,
                lost_checks: 0,
            },
        );
        self.send_queue.push_back(id);
        id
    }

    /// Keeps an answered request's body buffer for the next request (bounded).
    fn recycle_body(&mut self, body: Vec<u8>) {
        if self.spare_bodies.len() < SPARE_BODIES && body.capacity() <= SPARE_BODY_CAPACITY {
            self.spare_bodies.push(body);
        }
    }

    /// Queues a typed request.
    pub fn invoke<F: Serialize>(&mut self, request: &F) -> Result<RequestId, InvokeError> {
        // Serialized straight into the request's own (reused) buffer, as `Serialize::to_vec`
        // would into a new one.
        let mut body = self.spare_body();
        let len = request.serialized_len();
        if body.try_reserve_exact(len).is_err() {
            return Err(InvokeError::Tl(TlError::ValueTooLarge));
        }
        body.resize(len, 0);
        match request.serialize_into(&mut body) {
            Ok(n) => body.truncate(n),
            Err(e) => {
                self.recycle_body(body);
                return Err(InvokeError::Tl(e));
            }
        }
        self.invoke_owned(body)
    }

    /// Cancels a request: a queued one is forgotten; one already sent is dropped on the server
    /// with `rpc_drop_answer` and its answer, if any still comes, is discarded. Returns whether
    /// the request was pending.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let Some(p) = self.requests.remove(&id) else {
            return false;
        };
        self.send_queue.retain(|q| *q != id);
        if let Some(msg_id) = p.msg_id {
            self.sent.remove(&msg_id);
            self.services.push_back(Item::DropAnswer(msg_id));
        }
        self.recycle_body(p.body);
        true
    }

    /// Sends a ping now (besides the periodic ones); the answer is an [`Event::Pong`].
    pub fn ping(&mut self) -> i64 {
        let id = self.next_ping_id;
        self.next_ping_id = self.next_ping_id.wrapping_add(1);
        self.services.push_back(Item::Ping(id));
        id
    }

    /// Starts a new session (new session_id, seq_no and msg_id floor); every unanswered request
    /// is sent again in it. Emits [`Event::UpdatesGapPossible`].
    pub fn new_session<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) {
        self.session_id = random_i64(rng);
        self.seq = SeqNo::new();
        self.msg_ids.reset();
        self.replay.clear();
        self.stats.new_sessions = self.stats.new_sessions.saturating_add(1);
        self.requeue_all();
        self.acks.clear();
        self.ack_since = None;
        self.push_event(Event::UpdatesGapPossible);
    }

    /// The transport was replaced (reconnect): pings in flight are forgotten, and requests whose
    /// fate is unknown are asked about with `msgs_state_req` on the new connection.
    pub fn on_reconnect(&mut self, now: Now) {
        self.pings = 0;
        self.pong_deadline = None;
        self.closed = false;
        self.sent.retain(|_, s| !matches!(s, Sent::Ping { .. }));
        self.next_ping_at = Some(
            now.mono
                .saturating_add_micros(ms(self.config.ping_interval_ms)),
        );
        let unknown: Vec<i64> = self
            .requests
            .values_mut()
            .filter_map(|p| {
                let id = p.msg_id?;
                p.state_asked_at = Some(now.mono);
                Some(id)
            })
            .collect();
        for chunk in unknown.chunks(MAX_IDS_PER_SERVICE_MESSAGE) {
            self.services.push_back(Item::StateReq(chunk.to_vec()));
        }
    }

    fn requeue_all(&mut self) {
        self.sent.clear();
        self.sent_services.clear();
        self.services
            .retain(|i| !matches!(i, Item::StateReq(_) | Item::Resend(_) | Item::ResendAns(_)));
        self.pings = 0;
        self.pong_deadline = None;
        let mut ids: Vec<RequestId> = Vec::new();
        let rebuild: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.rebuild)
            .map(|(id, _)| *id)
            .collect();
        for id in rebuild {
            self.requests.remove(&id);
            self.rebuilds.push(id);
        }
        for (id, p) in self.requests.iter_mut() {
            if p.msg_id.take().is_some() {
                p.sent_at = None;
                p.acked = false;
                p.state_asked_at = None;
                ids.push(*id);
            }
        }
        // Resent requests go before the ones never sent, in their original order.
        for id in ids.into_iter().rev() {
            self.send_queue.push_front(id);
        }
    }

    fn requeue_msg(&mut self, msg_id: i64) {
        match self.sent.remove(&msg_id) {
            Some(Sent::Request(id)) => {
                if self.requests.get(&id).is_some_and(|p| p.rebuild) {
                    self.requests.remove(&id);
                    self.rebuilds.push(id);
                    return;
                }
                if let Some(p) = self.requests.get_mut(&id) {
                    p.msg_id = None;
                    p.sent_at = None;
                    p.acked = false;
                    p.state_asked_at = None;
                    self.send_queue.push_front(id);
                }
            }
            Some(Sent::Container(members)) => {
                for &m in members.as_slice().iter().rev() {
                    self.requeue_msg(m);
                }
            }
            Some(Sent::Ping { ping_id, .. }) => {
                self.pings = self.pings.saturating_sub(1);
                self.services.push_back(Item::Ping(ping_id));
            }
            Some(Sent::StateReq(ids)) => self.services.push_back(Item::StateReq(ids)),
            Some(Sent::FutureSalts) => {
                self.salts_requested_at = None;
            }
            Some(Sent::Acks(ids)) => {
                for &id in ids.as_slice() {
                    self.queue_ack(id, None);
                }
            }
            Some(Sent::Resend(ids)) => self.services.push_back(Item::Resend(ids)),
            Some(Sent::ResendAns(ids)) => self.services.push_back(Item::ResendAns(ids)),
            Some(Sent::DropAnswer) | Some(Sent::StateInfo) | None => {}
        }
    }

    /// While held, requests stay queued (service messages still flow): a PFS temp key carries
    /// nothing but its binding until it is bound.
    pub fn set_hold_requests(&mut self, hold: bool) {
        self.hold_requests = hold;
    }

    /// The next answer to an internal request (see [`send_built`](Self::send_built)).
    pub fn take_internal_result(&mut self) -> Option<InternalResult> {
        self.internal_results.pop_front()
    }

    /// A request built with [`send_built`](Self::send_built) whose message must be sent again
    /// (bad_msg, new session): build it anew with a fresh msg_id.
    pub fn take_rebuild(&mut self) -> Option<RequestId> {
        self.rebuilds.pop()
    }

    /// Sends one internal, content-related request alone in a message whose body `build` makes
    /// from the message's own `(msg_id, session_id)` (as `auth.bindTempAuthKey` needs). Its
    /// answer comes from [`take_internal_result`](Self::take_internal_result); a resend comes
    /// back through [`take_rebuild`](Self::take_rebuild). `id` reuses the id of a rebuilt
    /// request. The body is appended to `out`.
    pub fn send_built(
        &mut self,
        now: Now,
        out: &mut Vec<u8>,
        id: Option<RequestId>,
        build: &mut dyn FnMut(i64, i64) -> Option<Vec<u8>>,
    ) -> Option<(OutHeader, RequestId)> {
        let salt = self.current_salt(now);
        let msg_id = self.next_msg_id(now);
        let body = build(msg_id, self.session_id)?;
        if body.is_empty() || !body.len().is_multiple_of(4) {
            return None;
        }
        let seq_no = self.seq.next(true);
        let id = id.unwrap_or_else(|| {
            let id = RequestId(self.next_request);
            self.next_request = self.next_request.wrapping_add(1);
            id
        });
        out.extend_from_slice(&body);
        self.requests.insert(
            id,
            Pending {
                body,
                msg_id: Some(msg_id),
                sent_at: Some(now.mono),
                acked: false,
                state_asked_at: None,
                internal: true,
                rebuild: true,
                lost_checks: 0,
            },
        );
        self.remember(msg_id, Sent::Request(id));
        Some((
            OutHeader {
                salt,
                session_id: self.session_id,
                msg_id,
                seq_no,
                first_request: Some(id),
            },
            id,
        ))
    }

    // ----------------------------------------------------------------------------------- events

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front()?;
        if matches!(e, Event::Update { .. }) {
            self.queued_updates = self.queued_updates.saturating_sub(1);
        }
        if self.updates_dropped && self.queued_updates == 0 {
            self.updates_dropped = false;
            self.events.push_back(Event::UpdatesGapPossible);
        }
        Some(e)
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        // Notices coalesce: at most one of each kind waits, so they cannot grow without bound.
        match e {
            Event::UpdatesGapPossible | Event::AuthKeyDestroyed if self.events.contains(&e) => {
                return;
            }
            Event::TimeSynced { .. } => {
                if let Some(old) = self
                    .events
                    .iter_mut()
                    .find(|q| matches!(q, Event::TimeSynced { .. }))
                {
                    *old = e;
                    return;
                }
            }
            _ => {}
        }
        if matches!(e, Event::Update { .. }) {
            if self.queued_updates >= self.config.max_queued_updates {
                self.updates_dropped = true;
                self.stats.dropped_updates = self.stats.dropped_updates.saturating_add(1);
                return;
            }
            self.queued_updates = self.queued_updates.saturating_add(1);
        }
        self.events.push_back(e);
    }

    // ----------------------------------------------------------------------------------- timers

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ack = self
            .ack_since
            .map(|t| t.saturating_add_micros(ms(self.config.ack_delay_ms)));
        let state = self
            .requests
            .values()
            .filter_map(|p| {
                let since = p.state_asked_at.or(p.sent_at)?;
                Some(since.saturating_add_micros(self.state_check_after(p)))
            })
            .min();
        [ack, state, self.next_ping_at, self.pong_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due at `now`. Extra calls are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.closed {
            return;
        }
        if self.pong_deadline.is_some_and(|d| now.mono >= d) {
            self.closed = true;
            self.pong_deadline = None;
            self.push_event(Event::Closed(CloseReason::PongTimeout));
            return;
        }
        if self.config.ping_interval_ms > 0 {
            match self.next_ping_at {
                None => {
                    self.next_ping_at = Some(
                        now.mono
                            .saturating_add_micros(ms(self.config.ping_interval_ms)),
                    )
                }
                Some(t) if now.mono >= t => {
                    self.ping();
                    self.next_ping_at = Some(
                        now.mono
                            .saturating_add_micros(ms(self.config.ping_interval_ms)),
                    );
                }
                Some(_) => {}
            }
        }
        // Requests unanswered for a while: ask the server about them.
        let mut ask = Vec::new();
        let (unacked, acked) = (
            ms(self.config.state_req_after_ms),
            ms(self.config.answer_check_after_ms),
        );
        for p in self.requests.values_mut() {
            let Some(msg_id) = p.msg_id else {
                continue;
            };
            let after = if p.acked { acked } else { unacked };
            let since = p.state_asked_at.or(p.sent_at);
            if since.is_some_and(|t| now.mono.saturating_micros_since(t) >= after) {
                p.state_asked_at = Some(now.mono);
                ask.push(msg_id);
            }
        }
        for chunk in ask.chunks(MAX_IDS_PER_SERVICE_MESSAGE) {
            self.services.push_back(Item::StateReq(chunk.to_vec()));
        }
    }

    // --------------------------------------------------------------------------------- outgoing

    fn state_check_after(&self, p: &Pending) -> u64 {
        ms(if p.acked {
            self.config.answer_check_after_ms
        } else {
            self.config.state_req_after_ms
        })
    }

    fn ack_due(&self, now: Now) -> bool {
        !self.acks.is_empty()
            && (self.acks.len() >= self.config.ack_threshold
                || self.ack_since.is_some_and(|t| {
                    now.mono.saturating_micros_since(t) >= ms(self.config.ack_delay_ms)
                }))
    }

    fn queue_ack(&mut self, msg_id: i64, now: Option<Now>) {
        if self.acks.len() >= MAX_IDS_PER_SERVICE_MESSAGE {
            // Bounded: the oldest ack is dropped (the server re-sends, and we ack again).
            self.acks.remove(0);
        }
        self.acks.push(msg_id);
        if self.ack_since.is_none() {
            self.ack_since = now.map(|n| n.mono).or(Some(Instant::from_micros(0)));
        }
    }

    /// Whether [`poll_message`](Self::poll_message) would produce a message now.
    pub fn wants_to_send(&self, now: Now) -> bool {
        (!self.send_queue.is_empty() && !self.hold_requests)
            || !self.services.is_empty()
            || self.ack_due(now)
    }

    fn current_salt(&mut self, now: Now) -> i64 {
        let server_secs = self.clock.server_nanos(now.unix) / 1_000_000_000;
        self.future_salts.retain(|s| s.valid_until > server_secs);
        if let Some(s) = self
            .future_salts
            .iter()
            .rev()
            .find(|s| s.valid_since <= server_secs)
        {
            self.salt = s.salt;
        }
        let last_until = self.future_salts.iter().map(|s| s.valid_until).max();
        let running_out = last_until
            .is_none_or(|u| u.saturating_sub(server_secs) < self.config.future_salts_ahead_secs);
        let retry = self.salts_requested_at.is_none_or(|t| {
            now.mono.saturating_micros_since(t) >= ms(self.config.state_req_after_ms)
        });
        if running_out && retry && !self.services.iter().any(|i| matches!(i, Item::FutureSalts)) {
            self.salts_requested_at = Some(now.mono);
            self.services.push_back(Item::FutureSalts);
        }
        self.salt
    }

    fn next_msg_id(&mut self, now: Now) -> i64 {
        self.msg_ids.next(self.clock.server_nanos(now.unix), 0)
    }

    fn remember(&mut self, msg_id: i64, sent: Sent) {
        if !matches!(sent, Sent::Request(_)) {
            self.sent_services.push_back(msg_id);
            while self.sent_services.len() > MAX_SENT_SERVICE {
                if let Some(old) = self.sent_services.pop_front()
                    && let Some(Sent::Ping { .. }) = self.sent.remove(&old)
                {
                    self.pings = self.pings.saturating_sub(1);
                }
            }
        }
        self.sent.insert(msg_id, sent);
    }

    /// Packs what is ready into one message: its body is appended to `out`, its header returned.
    /// `None`: nothing to send now.
    pub fn poll_message(&mut self, now: Now, out: &mut Vec<u8>) -> Option<OutHeader> {
        self.pack(now, out, None)
    }

    /// The HTTP transport's [`poll_message`](Self::poll_message): `http_wait` (with `wait`'s
    /// parameters) goes last into the message, at most once, non-content-related (as tdlib
    /// sends it; the spec asks neither an answer nor an ack). A request-lane message
    /// (`long_poll == false`) is what `poll_message` would send plus `http_wait`, `None` when
    /// there is nothing else to send. The long poll (`long_poll == true`) always produces a
    /// message: pending acknowledgements and `http_wait`, nothing else (requests and service
    /// messages go on the request lane, so a long poll that is lost or expires loses nothing).
    pub fn poll_message_http(
        &mut self,
        now: Now,
        out: &mut Vec<u8>,
        wait: HttpWaitConfig,
        long_poll: bool,
    ) -> Option<OutHeader> {
        self.pack(now, out, Some((wait, long_poll)))
    }

    /// A message was lost with its HTTP response (the request failed or timed out): the
    /// requests it carried are asked about now with `msgs_state_req` (re-sent if the server
    /// never got them, their answers fetched again if it did) instead of after
    /// [`SessionConfig::state_req_after_ms`].
    ///
    /// Pings it carried are forgotten (their pongs will never come): the pong deadline they
    /// armed is lifted when no other ping is in flight, so a lost POST never ends the session
    /// with [`CloseReason::PongTimeout`].
    pub fn on_message_lost(&mut self, now: Now, msg_id: i64) {
        let ids: Vec<i64> = match self.sent.get(&msg_id) {
            Some(Sent::Request(_) | Sent::Ping { .. }) => alloc::vec![msg_id],
            Some(Sent::Container(members)) => members.as_slice().to_vec(),
            _ => return,
        };
        let mut lost_pings = 0usize;
        for m in &ids {
            if let Some(Sent::Ping { .. }) = self.sent.get(m) {
                self.sent.remove(m);
                lost_pings = lost_pings.saturating_add(1);
            }
        }
        if lost_pings > 0 {
            self.pings = self.pings.saturating_sub(lost_pings);
            if self.pings == 0 {
                self.pong_deadline = None;
            }
        }
        let mut ask = Vec::new();
        for m in ids {
            if let Some(Sent::Request(id)) = self.sent.get(&m)
                && let Some(p) = self.requests.get_mut(id)
                && p.msg_id == Some(m)
            {
                p.state_asked_at = Some(now.mono);
                ask.push(m);
            }
        }
        for chunk in ask.chunks(MAX_IDS_PER_SERVICE_MESSAGE) {
            self.services.push_back(Item::StateReq(chunk.to_vec()));
        }
    }

    fn pack(
        &mut self,
        now: Now,
        out: &mut Vec<u8>,
        http: Option<(HttpWaitConfig, bool)>,
    ) -> Option<OutHeader> {
        if self.closed {
            return None;
        }
        let long_poll = http.is_some_and(|(_, l)| l);
        let salt = self.current_salt(now);
        let has_items =
            (!self.send_queue.is_empty() && !self.hold_requests) || !self.services.is_empty();
        if !has_items && !self.ack_due(now) && !long_poll {
            return None;
        }
        let start = out.len();
        let max_msgs = self
            .config
            .max_container_messages
            .clamp(1, MAX_CONTAINER_MESSAGES)
            // Room for the http_wait.
            .saturating_sub(usize::from(http.is_some()))
            .max(1);
        let max_bytes = self.config.max_container_bytes;
        // Collected inner messages: (msg_id, seq_no, body range in `out`). Each body is written
        // behind room for its 16-byte inner header, after room for the container header, so the
        // message is built in place: a container is finished by patching, a single message is
        // moved to the front. The list itself is a reused buffer.
        let mut inner = core::mem::take(&mut self.inner_scratch);
        inner.clear();
        let mut bytes = 0usize;
        let mut first_request = None;
        container::write_container_header(out, 0);

        // Acknowledgements ride along with anything else.
        if !self.acks.is_empty() {
            // Copied out (inline when short), so `acks` keeps its capacity.
            let ids = IdList::collect(self.acks.iter().copied());
            self.ack_since = None;
            let msg_id = self.next_msg_id(now);
            let seq_no = self.seq.next(false);
            let b = begin_inner(out);
            write_id_vector(out, types::MsgsAck::CONSTRUCTOR_ID, &self.acks);
            self.acks.clear();
            bytes = bytes.saturating_add(out.len().saturating_sub(b));
            inner.push(end_inner(out, b, msg_id, seq_no));
            self.remember(msg_id, Sent::Acks(ids));
        }
        // Service messages (never on the long poll).
        while !long_poll && inner.len() < max_msgs && bytes < max_bytes {
            let Some(item) = self.services.pop_front() else {
                break;
            };
            if let Item::Ping(_) = item
                && self.pings >= MAX_PINGS_IN_FLIGHT
            {
                self.services.push_front(item);
                break;
            }
            let msg_id = self.next_msg_id(now);
            let b = begin_inner(out);
            let (content, sent) = match item {
                Item::Ping(ping_id) => {
                    write_tl(
                        out,
                        &functions::PingDelayDisconnect {
                            ping_id,
                            disconnect_delay: self.config.ping_disconnect_delay_secs,
                        },
                    );
                    self.pings = self.pings.saturating_add(1);
                    if self.pong_deadline.is_none() {
                        self.pong_deadline = Some(
                            now.mono
                                .saturating_add_micros(ms(self.config.pong_timeout_ms)),
                        );
                    }
                    (
                        true,
                        Sent::Ping {
                            ping_id,
                            sent_at: now.mono,
                        },
                    )
                }
                Item::FutureSalts => {
                    write_tl(out, &functions::GetFutureSalts { num: 32 });
                    (true, Sent::FutureSalts)
                }
                Item::StateReq(ids) => {
                    write_id_vector(out, types::MsgsStateReq::CONSTRUCTOR_ID, &ids);
                    (true, Sent::StateReq(ids))
                }
                Item::Resend(ids) => {
                    write_id_vector(out, types::MsgResendReq::CONSTRUCTOR_ID, &ids);
                    (true, Sent::Resend(ids))
                }
                Item::ResendAns(ids) => {
                    write_id_vector(out, types::MsgResendAnsReq::CONSTRUCTOR_ID, &ids);
                    (true, Sent::ResendAns(ids))
                }
                Item::DropAnswer(req_msg_id) => {
                    write_tl(out, &functions::RpcDropAnswer { req_msg_id });
                    (true, Sent::DropAnswer)
                }
                Item::StateInfo { req_msg_id, info } => {
                    write_tl(
                        out,
                        &types::MsgsStateInfo {
                            req_msg_id,
                            info: &info,
                        },
                    );
                    (false, Sent::StateInfo)
                }
            };
            let seq_no = self.seq.next(content);
            bytes = bytes.saturating_add(out.len().saturating_sub(b));
            inner.push(end_inner(out, b, msg_id, seq_no));
            self.remember(msg_id, sent);
        }
        // Requests, in order, while they fit; one too big for a container goes alone.
        while !long_poll && inner.len() < max_msgs && !self.hold_requests {
            let Some(&id) = self.send_queue.front() else {
                break;
            };
            // One lookup; the msg_id comes from the fields beside `requests`.
            let Some(p) = self.requests.get_mut(&id) else {
                self.send_queue.pop_front();
                continue;
            };
            let len = p.body.len();
            if !inner.is_empty() && bytes.saturating_add(len) > max_bytes {
                break;
            }
            self.send_queue.pop_front();
            let msg_id = self.msg_ids.next(self.clock.server_nanos(now.unix), 0);
            let seq_no = self.seq.next(true);
            let b = begin_inner(out);
            out.extend_from_slice(&p.body);
            p.msg_id = Some(msg_id);
            p.sent_at = Some(now.mono);
            p.acked = false;
            bytes = bytes.saturating_add(len);
            inner.push(end_inner(out, b, msg_id, seq_no));
            self.remember(msg_id, Sent::Request(id));
            first_request.get_or_insert(id);
            if bytes >= max_bytes {
                break;
            }
        }
        // HTTP: one http_wait, last (it answers nothing and needs no ack: not remembered).
        if let Some((wait, _)) = http
            && (long_poll || !inner.is_empty())
        {
            let msg_id = self.next_msg_id(now);
            let seq_no = self.seq.next(false);
            let b = begin_inner(out);
            write_tl(
                out,
                &types::HttpWait {
                    max_delay: wait.max_delay,
                    wait_after: wait.wait_after,
                    max_wait: wait.max_wait,
                },
            );
            inner.push(end_inner(out, b, msg_id, seq_no));
        }

        let header = match inner.as_slice() {
            [] => {
                out.truncate(start);
                None
            }
            &[(msg_id, seq_no, b, e)] => {
                // One message: no container; move its body to the front.
                out.copy_within(b..e, start);
                out.truncate(start.saturating_add(e.saturating_sub(b)));
                Some(OutHeader {
                    salt,
                    session_id: self.session_id,
                    msg_id,
                    seq_no,
                    first_request,
                })
            }
            many => {
                // A container: its inner headers are in place; patch the count.
                let count = u32::try_from(many.len()).unwrap_or(u32::MAX).to_le_bytes();
                if let Some(dst) = out.get_mut(start.saturating_add(4)..start.saturating_add(8)) {
                    dst.copy_from_slice(&count);
                }
                let msg_id = self.next_msg_id(now);
                let seq_no = self.seq.next(false);
                let all = IdList::collect(many.iter().map(|m| m.0));
                self.remember(msg_id, Sent::Container(all));
                Some(OutHeader {
                    salt,
                    session_id: self.session_id,
                    msg_id,
                    seq_no,
                    first_request,
                })
            }
        };
        self.inner_scratch = inner;
        header
    }

    /// The request a msg_id carried, if it is still pending (for quick acks).
    pub fn request_of(&self, msg_id: i64) -> Option<RequestId> {
        match self.sent.get(&msg_id)? {
            Sent::Request(id) => Some(*id),
            Sent::Container(m) => m.as_slice().iter().find_map(|id| match self.sent.get(id) {
                Some(Sent::Request(r)) => Some(*r),
                _ => None,
            }),
            _ => None,
        }
    }

    // --------------------------------------------------------------------------------- incoming

    /// Handles one decrypted message from the server.
    pub fn handle_message<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        msg: Incoming<'_>,
        rng: &mut R,
    ) {
        if msg.session_id != self.session_id {
            self.stats.wrong_session = self.stats.wrong_session.saturating_add(1);
            return;
        }
        // Time window, against server time, once the clock is known (service notices exempt).
        let skew = self.clock.skew_of(now.unix, msg.msg_id);
        let in_window = (-WINDOW_PAST_NANOS..=WINDOW_FUTURE_NANOS).contains(&skew);
        let mut notices_only = false;
        let mut new_session_after = false;
        if self.clock.is_synced() && !in_window {
            self.stats.out_of_window = self.stats.out_of_window.saturating_add(1);
            self.out_of_window_run = self.out_of_window_run.saturating_add(1);
            if self.out_of_window_run >= self.config.clock_jump_after.max(1)
                || self.answers_pending_request(msg.body)
            {
                // A run of authenticated messages outside the window, or the answer to a request
                // we sent in this session (which no replay can carry): our clock jumped.
                self.out_of_window_run = 0;
                new_session_after = self.resync_clock(now, msg.msg_id);
            } else if contains_notice(msg.body) {
                notices_only = true;
            } else {
                return;
            }
        } else {
            self.out_of_window_run = 0;
        }
        if !self.admit(now, msg.msg_id, msg.seq_no) {
            return;
        }
        // An authenticated, fresh, in-window message from the future of our estimate: the
        // server's clock is ahead of what we thought (upward corrections only).
        if in_window && self.clock.learn_upward(skew) {
            self.push_event(Event::TimeSynced {
                offset_secs: self.clock.offset_secs(),
            });
        }
        self.process(now, msg.msg_id, msg.seq_no, msg.body, 0, notices_only, rng);
        if new_session_after {
            self.new_session(rng);
        }
    }

    /// The replay window's verdict on a message: fresh ones are recorded and go on; a duplicate
    /// is acknowledged again if content-related (our ack may have been lost) and dropped, as is
    /// one below the window.
    fn admit(&mut self, now: Now, msg_id: i64, seq_no: i32) -> bool {
        match self.replay.insert(msg_id) {
            Replay::Fresh => true,
            Replay::Duplicate => {
                self.stats.duplicates = self.stats.duplicates.saturating_add(1);
                if seq_no & 1 == 1 {
                    self.queue_ack(msg_id, Some(now));
                }
                false
            }
            Replay::TooOld => {
                self.stats.too_old = self.stats.too_old.saturating_add(1);
                false
            }
        }
    }

    /// Whether `body` is (or is a container holding) an `rpc_result` for a request of ours that
    /// is still waiting: proof that the message is fresh whatever our clock says.
    fn answers_pending_request(&self, body: &[u8]) -> bool {
        let answers = |b: &[u8]| {
            peek_id(b) == Some(RPC_RESULT_ID)
                && b.get(4..12)
                    .and_then(|r| <[u8; 8]>::try_from(r).ok())
                    .is_some_and(|r| {
                        matches!(
                            self.sent.get(&i64::from_le_bytes(r)),
                            Some(Sent::Request(id)) if self.requests.contains_key(id)
                        )
                    })
        };
        match peek_id(body) {
            Some(MSG_CONTAINER_ID) => ContainerIter::new(body.get(4..).unwrap_or_default())
                .map(|it| it.flatten().any(|m| answers(m.body)))
                .unwrap_or(false),
            _ => answers(body),
        }
    }

    /// Sets the clock to the server time carried by `server_msg_id` and reports it. Returns
    /// whether a new session is needed: after a backwards correction the msg_id floor must come
    /// down, and msg_ids must not go down within one session. The caller starts it once the
    /// message at hand has been processed (its answers still match the old session's requests).
    fn resync_clock(&mut self, now: Now, server_msg_id: i64) -> bool {
        let delta = self.clock.sync_to_msg_id(now.unix, server_msg_id);
        let next_would_be = super::msgid::msg_id_for_nanos(self.clock.server_nanos(now.unix));
        self.push_event(Event::TimeSynced {
            offset_secs: self.clock.offset_secs(),
        });
        delta < 0 || next_would_be <= self.msg_ids.last()
    }

    #[allow(clippy::too_many_arguments)]
    fn process<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        msg_id: i64,
        seq_no: i32,
        body: &[u8],
        depth: u8,
        notices_only: bool,
        rng: &mut R,
    ) {
        let Some(id) = peek_id(body) else {
            self.malformed();
            return;
        };
        let rest = body.get(4..).unwrap_or_default();
        if notices_only && id != BAD_MSG_ID && id != BAD_SALT_ID && id != MSG_CONTAINER_ID {
            return;
        }
        let content_related = seq_no & 1 == 1;
        match id {
            MSG_CONTAINER_ID => {
                if depth > 0 {
                    self.malformed(); // containers do not nest
                    return;
                }
                let Ok(iter) = ContainerIter::new(rest) else {
                    self.malformed();
                    return;
                };
                for m in iter {
                    let Ok(m) = m else {
                        self.malformed();
                        return;
                    };
                    if m.msg_id >= msg_id || m.msg_id & 1 == 0 {
                        self.malformed();
                        continue;
                    }
                    if !self.admit(now, m.msg_id, m.seqno) {
                        continue;
                    }
                    self.process(now, m.msg_id, m.seqno, m.body, 1, notices_only, rng);
                }
                return;
            }
            MSG_COPY_ID => {
                // Deprecated; handled as the message it carries (same rules, no nesting).
                let mut r = match Reader::new(rest) {
                    Ok(r) => r,
                    Err(_) => return self.malformed(),
                };
                let parsed = (|| {
                    r.expect_constructor(types::Message::CONSTRUCTOR_ID)?;
                    types::Message::deserialize_bare(&mut r)
                })();
                match parsed {
                    Ok(m) if depth < 2 => {
                        self.process(now, m.msg_id, m.seqno, m.body, 2, notices_only, rng);
                    }
                    _ => self.malformed(),
                }
                return;
            }
            GZIP_PACKED_ID => {
                let Ok(g) = types::GzipPacked::deserialize_bare(&mut match Reader::new(rest) {
                    Ok(r) => r,
                    Err(_) => return self.malformed(),
                }) else {
                    return self.malformed();
                };
                match gzip::inflate(g.packed_data, self.config.max_inflated_len) {
                    // gzip_packed does not nest; what it holds obeys the rules of its place
                    // (a container at the top level is fine, inside a container it is not).
                    Ok(inner) if peek_id(&inner) != Some(GZIP_PACKED_ID) => {
                        self.process(now, msg_id, seq_no, &inner, depth, notices_only, rng);
                    }
                    _ => self.malformed(),
                }
                return;
            }
            _ => {}
        }
        if content_related {
            self.queue_ack(msg_id, Some(now));
        }
        match id {
            RPC_RESULT_ID => self.on_rpc_result(now, rest),
            BAD_MSG_ID | BAD_SALT_ID => self.on_bad_msg(now, msg_id, id, rest, rng),
            types::NewSessionCreated::CONSTRUCTOR_ID => {
                let Ok(n) = decode_bare(rest, types::NewSessionCreated::deserialize_bare) else {
                    return self.malformed();
                };
                self.salt = n.server_salt;
                // Requests sent before first_msg_id may be lost with the old server session.
                let lost: Vec<i64> = self
                    .sent
                    .iter()
                    .filter(|(m, s)| **m < n.first_msg_id && matches!(s, Sent::Request(_)))
                    .map(|(m, _)| *m)
                    .collect();
                for m in lost {
                    self.requeue_msg(m);
                }
                self.push_event(Event::UpdatesGapPossible);
            }
            types::MsgsAck::CONSTRUCTOR_ID => {
                // The ids are read in place (what `MsgsAck::deserialize_bare` accepts, without
                // collecting them into a Vec): the count is checked against the input first.
                let Ok((n, mut r)) = msgs_ack_ids(rest) else {
                    return self.malformed();
                };
                for _ in 0..n {
                    let Ok(m) = r.read_i64() else { break };
                    self.mark_acked(m);
                }
            }
            types::Pong::CONSTRUCTOR_ID => {
                let Ok(p) = decode_bare(rest, types::Pong::deserialize_bare) else {
                    return self.malformed();
                };
                self.on_pong(now, p);
            }
            types::FutureSalts::CONSTRUCTOR_ID => {
                let Ok(f) = decode_bare(rest, types::FutureSalts::deserialize_bare) else {
                    return self.malformed();
                };
                self.on_future_salts(now, f);
            }
            types::MsgsStateInfo::CONSTRUCTOR_ID => {
                let Ok(i) = decode_bare(rest, types::MsgsStateInfo::deserialize_bare) else {
                    return self.malformed();
                };
                let ids = match self.sent.remove(&i.req_msg_id) {
                    Some(Sent::StateReq(ids)) => ids,
                    Some(other) => {
                        self.sent.insert(i.req_msg_id, other);
                        return;
                    }
                    None => return,
                };
                self.on_states(now, &ids, i.info);
            }
            types::MsgsAllInfo::CONSTRUCTOR_ID => {
                let Ok(i) = decode_bare(rest, types::MsgsAllInfo::deserialize_bare) else {
                    return self.malformed();
                };
                self.on_states(now, &i.msg_ids, i.info);
            }
            types::MsgDetailedInfo::CONSTRUCTOR_ID => {
                let Ok(i) = decode_bare(rest, types::MsgDetailedInfo::deserialize_bare) else {
                    return self.malformed();
                };
                self.mark_acked(i.msg_id);
                self.on_detailed(now, i.answer_msg_id);
            }
            types::MsgNewDetailedInfo::CONSTRUCTOR_ID => {
                let Ok(i) = decode_bare(rest, types::MsgNewDetailedInfo::deserialize_bare) else {
                    return self.malformed();
                };
                self.on_detailed(now, i.answer_msg_id);
            }
            types::MsgResendReq::CONSTRUCTOR_ID | types::MsgResendAnsReq::CONSTRUCTOR_ID => {
                let Ok(r) = decode_bare(rest, types::MsgResendReq::deserialize_bare) else {
                    return self.malformed();
                };
                // Re-send what we still have, each with a fresh msg_id.
                for m in r.msg_ids {
                    if matches!(
                        self.sent.get(&m),
                        Some(Sent::Request(_)) | Some(Sent::Container(_))
                    ) {
                        self.requeue_msg(m);
                    }
                }
            }
            types::MsgsStateReq::CONSTRUCTOR_ID => {
                let Ok(r) = decode_bare(rest, types::MsgsStateReq::deserialize_bare) else {
                    return self.malformed();
                };
                // Server asks about its messages: received (4) if in our window, else unknown.
                let info: Vec<u8> = r
                    .msg_ids
                    .iter()
                    .take(MAX_IDS_PER_SERVICE_MESSAGE)
                    .map(|m| match self.replay.check(*m) {
                        Replay::Duplicate => 4,
                        Replay::TooOld => 1,
                        Replay::Fresh => 3,
                    })
                    .collect();
                self.services.push_back(Item::StateInfo {
                    req_msg_id: msg_id,
                    info,
                });
            }
            types::DestroyAuthKeyOk::CONSTRUCTOR_ID => self.push_event(Event::AuthKeyDestroyed),
            types::DestroyAuthKeyNone::CONSTRUCTOR_ID
            | types::DestroyAuthKeyFail::CONSTRUCTOR_ID
            | types::DestroySessionOk::CONSTRUCTOR_ID
            | types::DestroySessionNone::CONSTRUCTOR_ID
            | types::HttpWait::CONSTRUCTOR_ID => {}
            _ => self.push_event(Event::Update {
                body: body.to_vec(),
            }),
        }
    }

    fn malformed(&mut self) {
        self.stats.malformed = self.stats.malformed.saturating_add(1);
    }

    fn mark_acked(&mut self, msg_id: i64) {
        match self.sent.get(&msg_id) {
            Some(Sent::Request(id)) => {
                if let Some(p) = self.requests.get_mut(id) {
                    p.acked = true;
                }
            }
            Some(Sent::Container(members)) => {
                for m in members.as_slice() {
                    if let Some(Sent::Request(id)) = self.sent.get(m)
                        && let Some(p) = self.requests.get_mut(id)
                    {
                        p.acked = true;
                    }
                }
            }
            _ => {}
        }
    }

    fn on_rpc_result(&mut self, _now: Now, rest: &[u8]) {
        let Some((req, result)) = rest.split_first_chunk::<8>() else {
            return self.malformed();
        };
        let req_msg_id = i64::from_le_bytes(*req);
        // Looked up once: the entry is removed by its position.
        let at = self.sent.find(req_msg_id).ok();
        let id = match at.and_then(|i| self.sent.get_at(i)) {
            Some(Sent::Request(id)) => *id,
            Some(Sent::FutureSalts) => {
                self.sent.remove(&req_msg_id);
                if let Ok(f) = decode_boxed(
                    result,
                    types::FutureSalts::CONSTRUCTOR_ID,
                    types::FutureSalts::deserialize_bare,
                ) {
                    self.on_future_salts(_now, f);
                }
                return;
            }
            Some(Sent::Ping { .. }) => {
                if let Ok(p) = decode_boxed(
                    result,
                    types::Pong::CONSTRUCTOR_ID,
                    types::Pong::deserialize_bare,
                ) {
                    self.on_pong(_now, p);
                }
                return;
            }
            Some(Sent::DropAnswer) => {
                self.sent.remove(&req_msg_id);
                return;
            }
            _ => {
                self.stats.unknown_results = self.stats.unknown_results.saturating_add(1);
                return;
            }
        };
        if let Some(i) = at {
            self.sent.remove_at(i);
        }
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        let internal = pending.internal;
        self.recycle_body(pending.body);
        let inflated;
        let mut result = result;
        if peek_id(result) == Some(GZIP_PACKED_ID) {
            let packed = decode_boxed(result, GZIP_PACKED_ID, types::GzipPacked::deserialize_bare)
                .ok()
                .and_then(|g| gzip::inflate(g.packed_data, self.config.max_inflated_len).ok());
            match packed {
                Some(v) => {
                    inflated = v;
                    result = &inflated;
                }
                None => {
                    self.malformed();
                    self.answer(
                        id,
                        internal,
                        Err(RpcError::new(-500, "GZIP_PACKED_INVALID")),
                    );
                    return;
                }
            }
        }
        if peek_id(result) == Some(RPC_ERROR_ID) {
            match decode_boxed(result, RPC_ERROR_ID, types::RpcError::deserialize_bare) {
                Ok(e) => {
                    let message =
                        core::str::from_utf8(e.error_message).unwrap_or("RPC_ERROR_NOT_UTF8");
                    let error = RpcError::new(e.error_code, message);
                    self.answer(id, internal, Err(error));
                }
                Err(_) => {
                    self.malformed();
                    self.answer(id, internal, Err(RpcError::new(-500, "RPC_ERROR_INVALID")));
                }
            }
            return;
        }
        self.answer(id, internal, Ok(result.to_vec()));
    }

    fn answer(&mut self, id: RequestId, internal: bool, result: Result<Vec<u8>, RpcError>) {
        if internal {
            self.internal_results.push_back((id, result));
            return;
        }
        self.push_event(match result {
            Ok(body) => Event::RpcResult { id, body },
            Err(error) => Event::RpcError { id, error },
        });
    }

    fn on_pong(&mut self, now: Now, p: types::Pong) {
        if let Some(Sent::Ping { ping_id, sent_at }) = self.sent.get(&p.msg_id) {
            if *ping_id != p.ping_id {
                return;
            }
            let rtt_micros = now.mono.saturating_micros_since(*sent_at);
            self.sent.remove(&p.msg_id);
            self.pings = self.pings.saturating_sub(1);
            if self.pings == 0 {
                self.pong_deadline = None;
            } else {
                self.pong_deadline = Some(
                    now.mono
                        .saturating_add_micros(ms(self.config.pong_timeout_ms)),
                );
            }
            self.push_event(Event::Pong {
                ping_id: p.ping_id,
                rtt_micros,
            });
        }
    }

    fn on_future_salts(&mut self, _now: Now, f: types::FutureSalts) {
        self.salts_requested_at = None;
        self.sent.remove(&f.req_msg_id);
        for s in f.salts.iter().take(64) {
            let salt = Salt {
                valid_since: i64::from(s.valid_since),
                valid_until: i64::from(s.valid_until),
                salt: s.salt,
            };
            if !self.future_salts.contains(&salt) {
                self.future_salts.push(salt);
            }
        }
        self.future_salts.sort_by_key(|s| s.valid_since);
        let excess = self.future_salts.len().saturating_sub(64);
        self.future_salts.drain(..excess);
    }

    fn on_states(&mut self, _now: Now, ids: &[i64], info: &[u8]) {
        let mut resend = Vec::new();
        let mut resend_ans = Vec::new();
        let mut lost = Vec::new();
        for (m, state) in ids.iter().zip(info.iter()) {
            let Some(Sent::Request(id)) = self.sent.get(m) else {
                continue;
            };
            let id = *id;
            match state & 7 {
                1..=3 => resend.push(*m),
                4 => {
                    // The answer was generated but never reached us: ask for it again.
                    if state & 64 != 0 {
                        resend_ans.push(*m);
                    }
                    let forgotten = state & (32 | 64) == 0;
                    let limit = self.config.max_lost_answer_checks;
                    if let Some(p) = self.requests.get_mut(&id) {
                        p.acked = true;
                        if forgotten {
                            p.lost_checks = p.lost_checks.saturating_add(1);
                        }
                        if p.lost_checks > limit {
                            lost.push((*m, id, p.internal));
                        }
                    }
                }
                _ => {}
            }
        }
        for m in resend {
            self.requeue_msg(m);
        }
        for (m, id, internal) in lost {
            self.sent.remove(&m);
            if let Some(p) = self.requests.remove(&id) {
                self.recycle_body(p.body);
            }
            self.answer(id, internal, Err(RpcError::new(-503, "ANSWER_LOST")));
        }
        if !resend_ans.is_empty() {
            self.services.push_back(Item::ResendAns(resend_ans));
        }
    }

    fn on_detailed(&mut self, now: Now, answer_msg_id: i64) {
        if self.replay.check(answer_msg_id) == Replay::Duplicate {
            self.queue_ack(answer_msg_id, Some(now));
        } else {
            self.services
                .push_back(Item::Resend(alloc::vec![answer_msg_id]));
        }
    }

    fn on_bad_msg<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        msg_id: i64,
        id: u32,
        rest: &[u8],
        rng: &mut R,
    ) {
        let (bad_msg_id, code, new_salt) = if id == BAD_SALT_ID {
            match decode_bare(rest, types::BadServerSalt::deserialize_bare) {
                Ok(b) => (b.bad_msg_id, b.error_code, Some(b.new_server_salt)),
                Err(_) => return self.malformed(),
            }
        } else {
            match decode_bare(rest, types::BadMsgNotification::deserialize_bare) {
                Ok(b) => (b.bad_msg_id, b.error_code, None),
                Err(_) => return self.malformed(),
            }
        };
        // Only for a message we really sent recently (mtproto_service_messages_about_messages.md).
        if !self.sent.contains_key(&bad_msg_id) {
            return;
        }
        self.stats.bad_msgs = self.stats.bad_msgs.saturating_add(1);
        if let Some(salt) = new_salt {
            // Always apply an authenticated new salt (telemt #582); stale future salts go.
            self.salt = salt;
            self.future_salts.clear();
            self.requeue_msg(bad_msg_id);
            return;
        }
        match code {
            16 | 17 => {
                // The notification's own msg_id carries the server's time.
                if self.resync_clock(now, msg_id) {
                    self.new_session(rng); // resends every unanswered request
                } else {
                    self.requeue_msg(bad_msg_id);
                }
            }
            32 | 33 => {
                // seq_no out of step: a new session rather than arithmetic on seq_nos.
                self.new_session(rng);
            }
            _ => {
                // 18, 19, 20, 34, 35, 48, 64 and anything new: send again with a fresh msg_id.
                self.requeue_msg(bad_msg_id);
            }
        }
    }
}

/// Whether a body is (or is a container holding) a bad_msg_notification or bad_server_salt —
/// the service notices exempt from the time window at any container depth.
fn contains_notice(body: &[u8]) -> bool {
    match peek_id(body) {
        Some(BAD_MSG_ID | BAD_SALT_ID) => true,
        Some(MSG_CONTAINER_ID) => ContainerIter::new(body.get(4..).unwrap_or_default())
            .map(|it| {
                it.flatten()
                    .any(|m| matches!(peek_id(m.body), Some(BAD_MSG_ID | BAD_SALT_ID)))
            })
            .unwrap_or(false),
        _ => false,
    }
}

/// The bare `msgs_ack` body `rest`: its id count (checked against the bytes there, as
/// [`types::MsgsAck::deserialize_bare`] does) and a reader at the first id.
fn msgs_ack_ids(rest: &[u8]) -> Result<(usize, Reader<'_>), TlError> {
    let mut r = Reader::new(rest)?;
    let n = r.nested(|r| {
        r.nested(|r| {
            r.expect_constructor(crate::tl::VECTOR_ID)?;
            r.read_vector_len(8)
        })
    })?;
    Ok((n, r))
}

fn decode_bare<'a, T>(
    rest: &'a [u8],
    f: impl FnOnce(&mut Reader<'a>) -> Result<T, TlError>,
) -> Result<T, TlError> {
    let mut r = Reader::new(rest)?;
    f(&mut r)
}

fn decode_boxed<'a, T>(
    body: &'a [u8],
    id: u32,
    f: impl FnOnce(&mut Reader<'a>) -> Result<T, TlError>,
) -> Result<T, TlError> {
    let mut r = Reader::new(body)?;
    r.expect_constructor(id)?;
    f(&mut r)
}

/// Leaves room for an inner message header (msg_id, seqno, bytes) and returns where the body
/// starts.
fn begin_inner(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[0u8; container::INNER_HEADER_LEN]);
    out.len()
}

/// Fills in the inner header in front of the body `out[b..]`; returns the body's entry.
fn end_inner(out: &mut [u8], b: usize, msg_id: i64, seq_no: i32) -> (i64, i32, usize, usize) {
    let e = out.len();
    let len = u32::try_from(e.saturating_sub(b)).unwrap_or(u32::MAX);
    if let Some(h) = out.get_mut(b.saturating_sub(container::INNER_HEADER_LEN)..b) {
        let mut w = h.chunks_exact_mut(4);
        let mut put = |bytes: [u8; 4]| {
            if let Some(c) = w.next() {
                c.copy_from_slice(&bytes);
            }
        };
        let id = msg_id.to_le_bytes();
        put([id[0], id[1], id[2], id[3]]);
        put([id[4], id[5], id[6], id[7]]);
        put(seq_no.to_le_bytes());
        put(len.to_le_bytes());
    }
    (msg_id, seq_no, b, e)
}

/// Writes a boxed `constructor msg_ids:Vector<long>` straight from a slice.
fn write_id_vector(out: &mut Vec<u8>, constructor: u32, ids: &[i64]) {
    out.extend_from_slice(&constructor.to_le_bytes());
    out.extend_from_slice(&crate::tl::VECTOR_ID.to_le_bytes());
    out.extend_from_slice(&u32::try_from(ids.len()).unwrap_or(u32::MAX).to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
}

fn write_tl<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    let at = out.len();
    out.resize(at.saturating_add(value.serialized_len()), 0);
    if let Some(dst) = out.get_mut(at..) {
        // Sizes come from serialized_len: cannot fail for the service types written here.
        let _ = value.serialize_into(dst);
    }
}

#[cfg(test)]
mod sent_map_tests {
    use super::*;
    use alloc::collections::BTreeMap;

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn find_answers_as_a_binary_search_does() {
        let mut x = 0x2545_f491_4f6c_dd1d;
        for len in [0usize, 1, 2, 3, 5, 8, 17, 100, 1000] {
            let mut m = SentMap::default();
            let mut k = -50i64;
            for _ in 0..len {
                k += 1 + (xorshift(&mut x) % 9) as i64;
                m.entries.push_back((k, Some(Sent::DropAnswer)));
            }
            let mut probes: Vec<i64> = m.entries.iter().map(|e| e.0).collect();
            probes.extend(probes.clone().iter().flat_map(|&p| [p - 1, p + 1]));
            probes.extend([i64::MIN, i64::MAX, 0, -51, k + 100]);
            for p in probes {
                assert_eq!(
                    m.find(p),
                    m.entries.binary_search_by_key(&p, |e| e.0),
                    "len {len}, probe {p}"
                );
            }
        }
    }

    #[test]
    fn request_ids_in_a_ring_behave_as_in_a_btree_map() {
        let mut x = 0x853c_49e6_748f_ea9b;
        let (mut m, mut model) = (Ring::<RequestId, u64>::default(), BTreeMap::new());
        let mut next = 0u64;
        for step in 0..20_000u64 {
            let r = xorshift(&mut x);
            let old = RequestId(next.saturating_sub((r >> 8) % 40));
            match r % 5 {
                0 | 1 => {
                    // New ids, and now and then an old one again (a rebuilt request's id).
                    let id = if r % 32 == 1 { old } else { RequestId(next) };
                    next += 1;
                    m.insert(id, step);
                    model.insert(id, step);
                }
                2 => {
                    if let Some(v) = m.get_mut(&old) {
                        *v += 1_000_000;
                    }
                    if let Some(v) = model.get_mut(&old) {
                        *v += 1_000_000;
                    }
                }
                _ => assert_eq!(m.remove(&old), model.remove(&old), "{old:?}"),
            }
            assert_eq!(m.len(), model.len());
        }
        let got: Vec<(RequestId, u64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
        let want: Vec<(RequestId, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want, "same entries, in key order");
        assert_eq!(m.values().count(), model.len());
    }

    #[test]
    fn inserts_and_removes_agree_with_a_btree_map() {
        let mut x = 0x9e37_79b9_7f4a_7c15;
        let (mut m, mut model) = (SentMap::default(), BTreeMap::new());
        let mut next = 1_000i64;
        for _ in 0..20_000 {
            let r = xorshift(&mut x);
            match r % 4 {
                // Mostly new ids, now and then one below the newest.
                0 | 1 => {
                    next += 4;
                    let id = if r % 16 == 1 {
                        next - 4 * (r >> 8) as i64 % 64
                    } else {
                        next
                    };
                    m.insert(id, Sent::DropAnswer);
                    model.insert(id, ());
                }
                _ => {
                    let id = next - 4 * ((r >> 8) % 256) as i64;
                    assert_eq!(m.remove(&id).is_some(), model.remove(&id).is_some(), "{id}");
                }
            }
            assert_eq!(m.live, model.len());
        }
        let live: Vec<i64> = m.iter().map(|(id, _)| *id).collect();
        assert_eq!(live, model.keys().copied().collect::<Vec<_>>());
        for id in (900..next + 8).step_by(2) {
            assert_eq!(m.contains_key(&id), model.contains_key(&id), "{id}");
        }
    }
}
