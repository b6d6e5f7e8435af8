//! The four MTProto framings (`mtproto_mtproto-transports.md`): abridged, intermediate, padded
//! intermediate and full, for both roles, with quick acks and transport errors.

use alloc::vec::Vec;

use super::{
    DEFAULT_MAX_FRAME_LEN, EncodeError, Frame, Framing, QuickAckToken, Role, Status,
    TransportError, fill_to,
};

/// Largest payload the abridged length field can describe: 2^24 - 1 words.
const ABRIDGED_MAX_WORDS: usize = (1 << 24) - 1;
/// Largest intermediate length field we write: 31 bits (the MSB is the quick-ack flag), and below
/// `0x7fff_0001` so that even with the quick-ack flag the word never reads as a small negative
/// int32 (a bare transport error, see [`bare_error`]).
const INTERMEDIATE_MAX: usize = 0x7fff_0000;
/// Full transport header: length + seqno; trailer: CRC32.
const FULL_OVERHEAD: usize = 12;
/// [`FULL_OVERHEAD`] as a `u32`, for the length field.
const FULL_OVERHEAD_U32: u32 = 12;
const _: () = assert!(FULL_OVERHEAD_U32 as usize == FULL_OVERHEAD);

/// Full transport: the largest total length we write, `i32::MAX`, so that the length word never
/// reads as a negative int32 (a bare transport error).
const FULL_MAX_TOTAL: usize = 0x7fff_ffff;

/// The transport error codes the spec names (`mtproto_mtproto-transports.md`, "Transport
/// errors"): 403, 404 (auth key not found), 429 (transport flood), 444 (invalid DC).
pub const KNOWN_TRANSPORT_ERRORS: [i32; 4] = [-403, -404, -429, -444];

/// A word that, at a frame boundary, can only be a bare (unframed) transport error: a small
/// negative int32, -65535..=-1 (the top 16 bits set). Used where no valid length word or
/// quick-ack token can take these values (full; padded in both roles; intermediate server side).
fn bare_error(word: u32) -> Option<i32> {
    let code = word.cast_signed();
    (-65535..=-1).contains(&code).then_some(code)
}

/// A word that is one of [`KNOWN_TRANSPORT_ERRORS`]. Used where a small negative word is also a
/// legitimate header (abridged: a length byte then payload bytes; intermediate client side: a
/// quick-ack token with the top 16 bits set, 1 token in 2^15), so only the named codes count.
fn known_error(word: u32) -> Option<i32> {
    let code = word.cast_signed();
    KNOWN_TRANSPORT_ERRORS.contains(&code).then_some(code)
}

/// The payload inside a padded-intermediate frame body: the body without the 0..=15 random bytes
/// the sender appended (`mtproto_mtproto-transports.md`, "Padded intermediate"). The framing
/// does not say how many there are; the MTProto message does (`mtproto_description.md`, message
/// layouts), so this reads it as tdlib does:
/// - every payload is whole 4-byte words, so `len % 4` trailing bytes are always padding (all
///   MTProxy and our server send: 0..=3);
/// - unencrypted (`auth_key_id == 0`): `8 + 8 + 4 + message_data_length` bytes, if that fits
///   the body with at most 15 bytes to spare (a declared length that is not whole words is
///   [`TransportError::Unaligned`]);
/// - encrypted: the 24-byte `auth_key_id ‖ msg_key` header plus the largest multiple of 16 that
///   fits (the encrypted part is whole AES blocks).
///
/// A body too short for either layout, or whose declared length does not fit, keeps its whole
/// words: the layer above rejects it with its own error.
fn padded_payload_len(body: &[u8]) -> Result<usize, TransportError> {
    const PLAIN_HEADER: usize = 20;
    const ENCRYPTED_HEADER: usize = 24;
    let words = body.len() & !3;
    let Some(auth_key_id) = body.get(..8) else {
        return Ok(words);
    };
    if auth_key_id.iter().all(|&b| b == 0) {
        let declared = body
            .get(16..20)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .and_then(|l| usize::try_from(u32::from_le_bytes(l)).ok())
            .and_then(|l| l.checked_add(PLAIN_HEADER))
            .filter(|&n| body.len().checked_sub(n).is_some_and(|slack| slack <= 15));
        return match declared {
            Some(n) if !n.is_multiple_of(4) => Err(TransportError::Unaligned(n)),
            Some(n) => Ok(n),
            None => Ok(words),
        };
    }
    Ok(body
        .len()
        .checked_sub(ENCRYPTED_HEADER)
        .and_then(|rest| ENCRYPTED_HEADER.checked_add(rest & !15))
        .unwrap_or(words))
}

/// What a complete frame in the buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ready {
    Payload {
        start: usize,
        end: usize,
        quick_ack: bool,
    },
    QuickAck(QuickAckToken),
    TransportError(i32),
}

/// Outcome of inspecting the buffer.
enum Step {
    /// The buffer must hold this many bytes before anything more can be decided.
    Need(usize),
    /// A frame is complete.
    Ready(Ready),
}

/// A plain (unobfuscated) framing codec for one connection and one role.
///
/// Decoding buffers at most one frame: the header, then the body once the header's length was
/// checked against [`Codec::max_frame_len`]. Encoding appends to a caller buffer.
pub struct Codec {
    framing: Framing,
    role: Role,
    max_frame_len: usize,
    /// Client: the protocol tag has not been written yet.
    send_tag: bool,
    /// Server: the protocol tag has not been read yet.
    expect_tag: bool,
    buf: Vec<u8>,
    ready: Option<Ready>,
    send_seq: u32,
    recv_seq: u32,
    poisoned: Option<TransportError>,
}

impl core::fmt::Debug for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Codec")
            .field("framing", &self.framing)
            .field("role", &self.role)
            .field("max_frame_len", &self.max_frame_len)
            .field("buffered", &self.buf.len())
            .field("send_seq", &self.send_seq)
            .field("recv_seq", &self.recv_seq)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec for a fresh plain connection: a client writes the protocol tag (`0xef`,
    /// `0xeeeeeeee`, `0xdddddddd`; none for full) before its first frame, a server expects it
    /// first.
    pub fn new(framing: Framing, role: Role) -> Self {
        let tagged = framing != Framing::Full;
        Self {
            framing,
            role,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            send_tag: tagged && role == Role::Client,
            expect_tag: tagged && role == Role::Server,
            buf: Vec::new(),
            ready: None,
            send_seq: 0,
            recv_seq: 0,
            poisoned: None,
        }
    }

    /// A codec whose protocol tag was already exchanged (or travels inside an obfuscation init).
    pub fn without_tag(framing: Framing, role: Role) -> Self {
        let mut c = Self::new(framing, role);
        c.send_tag = false;
        c.expect_tag = false;
        c
    }

    /// Sets the largest payload the decoder accepts (default [`DEFAULT_MAX_FRAME_LEN`]).
    #[must_use]
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    pub(crate) fn set_max_frame_len(&mut self, max: usize) {
        self.max_frame_len = max;
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The largest payload the decoder accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes currently buffered by the decoder (never more than one frame: header, payload and,
    /// for full, seqno and CRC).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Decodes at most one frame from `input`. Returns how many bytes were consumed and either the
    /// frame or [`Status::Partial`] (then all of `input` was consumed).
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<Frame<'_>>), TransportError> {
        let (n, done) = self.decode_with(input, &mut |_| {})?;
        Ok((
            n,
            if done {
                self.take_frame()
            } else {
                Status::Partial
            },
        ))
    }

    /// Like [`Codec::decode`], but runs `transform` over every byte as it enters the buffer
    /// (obfuscation decrypts here, so each byte is decrypted exactly once). Returns the count
    /// consumed and whether a frame is complete; [`Codec::take_frame`] then yields it.
    pub(crate) fn decode_with(
        &mut self,
        input: &[u8],
        transform: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(usize, bool), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        if self.ready.take().is_some() {
            self.buf.clear();
        }
        let mut consumed = 0usize;
        loop {
            match self.step() {
                Err(e) => {
                    self.poisoned = Some(e);
                    self.buf.clear();
                    return Err(e);
                }
                Ok(Step::Ready(r)) => {
                    self.ready = Some(r);
                    return Ok((consumed, true));
                }
                Ok(Step::Need(total)) => {
                    let fresh = fill_to(&mut self.buf, total, input, &mut consumed);
                    if fresh.is_empty() {
                        return Ok((consumed, false));
                    }
                    transform(fresh);
                }
            }
        }
    }

    /// The frame completed by the last `decode_with`, if any.
    pub(crate) fn take_frame(&self) -> Status<Frame<'_>> {
        match self.ready {
            None => Status::Partial,
            Some(Ready::QuickAck(t)) => Status::Complete(Frame::QuickAck(t)),
            Some(Ready::TransportError(c)) => Status::Complete(Frame::TransportError(c)),
            Some(Ready::Payload {
                start,
                end,
                quick_ack,
            }) => Status::Complete(Frame::Payload {
                data: self.buf.get(start..end).unwrap_or_default(),
                quick_ack,
            }),
        }
    }

    fn too_large(&self, len: u64) -> Result<usize, TransportError> {
        match usize::try_from(len) {
            Ok(l) if l <= self.max_frame_len => Ok(l),
            _ => Err(TransportError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            }),
        }
    }

    fn le32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    }

    /// Inspects the buffer: how many bytes are needed next, or which frame is complete.
    fn step(&mut self) -> Result<Step, TransportError> {
        if self.expect_tag {
            let tag_len = if self.framing == Framing::Abridged {
                1
            } else {
                4
            };
            let Some(tag) = self.buf.get(..tag_len) else {
                return Ok(Step::Need(tag_len));
            };
            let ok = match self.framing {
                Framing::Abridged => tag == [0xef],
                Framing::Intermediate => tag == [0xee; 4],
                Framing::PaddedIntermediate => tag == [0xdd; 4],
                Framing::Full => true,
            };
            if !ok {
                return Err(TransportError::BadTag);
            }
            self.expect_tag = false;
            self.buf.clear();
        }
        match self.framing {
            Framing::Abridged => self.step_abridged(),
            Framing::Intermediate | Framing::PaddedIntermediate => self.step_intermediate(),
            Framing::Full => self.step_full(),
        }
    }

    fn step_abridged(&mut self) -> Result<Step, TransportError> {
        let Some(&first) = self.buf.first() else {
            return Ok(Step::Need(1));
        };
        // A bare transport error: Telegram sometimes sends the 4-byte little-endian code without
        // framing. To an abridged decoder its first byte is a 1-byte length (-404 = `6c fe ff
        // ff`: 0x6c words, then payload `fe ff ff ...`), so it cannot be told from a frame by
        // its shape: only the known codes count, and a frame of 0x6c/0x6d/0x53/0x44 words
        // whose payload starts `fe ff ff` would be misread (an MTProto payload starts with its
        // auth_key_id: 1 key in 2^24, for frames of those four lengths only).
        if KNOWN_TRANSPORT_ERRORS
            .iter()
            .any(|c| c.to_le_bytes().first() == Some(&first))
        {
            let Some(word) = self.le32(0) else {
                return Ok(Step::Need(4));
            };
            if let Some(code) = known_error(word) {
                return Ok(Step::Ready(Ready::TransportError(code)));
            }
        }
        let client = self.role == Role::Client;
        // Client side: the server never sets the MSB of a length byte, so an MSB means a
        // standalone, byte-swapped quick-ack token ("Abridged", quick ack).
        if client && first & 0x80 != 0 {
            let Some(&[a, b, c, d]) = self.buf.get(..4) else {
                return Ok(Step::Need(4));
            };
            let token = u32::from_be_bytes([a, b, c, d]);
            return Ok(Step::Ready(Ready::QuickAck(QuickAckToken::new(token))));
        }
        let quick_ack = first & 0x80 != 0;
        let low = first & 0x7f;
        let (header, words) = if low == 0x7f {
            let Some(&[a, b, c]) = self.buf.get(1..4) else {
                return Ok(Step::Need(4));
            };
            (4usize, u32::from_le_bytes([a, b, c, 0]))
        } else {
            (1usize, u32::from(low))
        };
        let len = self.too_large(u64::from(words) * 4)?;
        self.body_ready(header, len, quick_ack)
    }

    fn step_intermediate(&mut self) -> Result<Step, TransportError> {
        let Some(raw) = self.le32(0) else {
            return Ok(Step::Need(4));
        };
        let msb = raw & 0x8000_0000 != 0;
        let padded = self.framing == Framing::PaddedIntermediate;
        let quick_ack = match (self.role, msb) {
            (Role::Client, true) if !padded => {
                // A standalone quick-ack token, never a valid length; or a bare transport error,
                // which only the known codes tell apart from a token.
                if let Some(code) = known_error(raw) {
                    return Ok(Step::Ready(Ready::TransportError(code)));
                }
                return Ok(Step::Ready(Ready::QuickAck(QuickAckToken::new(raw))));
            }
            // Padded: quick acks travel inside a frame, so a length with the MSB set is a bare
            // transport error or invalid.
            (Role::Client, true) => match bare_error(raw) {
                Some(code) => return Ok(Step::Ready(Ready::TransportError(code))),
                None => return Err(TransportError::InvalidLength(raw)),
            },
            // Server: the MSB requests a quick ack; lengths stop below 0x7fff_0001, so a word
            // with the top 16 bits set is a bare transport error.
            (Role::Server, _) => {
                if let Some(code) = bare_error(raw) {
                    return Ok(Step::Ready(Ready::TransportError(code)));
                }
                msb
            }
            (Role::Client, false) => false,
        };
        let declared = raw & 0x7fff_ffff;
        let len = self.too_large(u64::from(declared))?;
        // Payloads are whole 4-byte words. The padded length includes 0..=15 padding bytes, so
        // only the payload handed out (after stripping) is aligned there.
        if !padded && !len.is_multiple_of(4) {
            return Err(TransportError::Unaligned(len));
        }
        self.body_ready(4, len, quick_ack)
    }

    fn step_full(&mut self) -> Result<Step, TransportError> {
        let Some(total) = self.le32(0) else {
            return Ok(Step::Need(4));
        };
        // A bare transport error: the length word alone, no seqno nor CRC (Telethon has seen
        // `-429` as length, as seqno and as a 4-byte body: each word is then one event). A
        // length word is never negative: we write at most `i32::MAX`.
        if let Some(code) = bare_error(total) {
            return Ok(Step::Ready(Ready::TransportError(code)));
        }
        let Some(seq) = self.le32(4) else {
            return Ok(Step::Need(8));
        };
        let Some(payload_len) = (total as usize).checked_sub(FULL_OVERHEAD) else {
            return Err(TransportError::InvalidLength(total));
        };
        self.too_large(payload_len as u64)?;
        if !payload_len.is_multiple_of(4) {
            return Err(TransportError::Unaligned(payload_len));
        }
        if seq != self.recv_seq {
            return Err(TransportError::SeqMismatch {
                expected: self.recv_seq,
                got: seq,
            });
        }
        let total_len = total as usize;
        if self.buf.len() < total_len {
            return Ok(Step::Need(total_len));
        }
        let crc_at = total_len.saturating_sub(4);
        let (Some(signed), Some(crc)) = (self.buf.get(..crc_at), self.le32(crc_at)) else {
            return Err(TransportError::InvalidLength(total));
        };
        let expected = crc32fast::hash(signed);
        if expected != crc {
            return Err(TransportError::BadCrc { expected, got: crc });
        }
        self.recv_seq = self.recv_seq.wrapping_add(1);
        Ok(Step::Ready(self.classify(8, crc_at, false)?))
    }

    /// Header parsed: wait for the body, then classify it.
    fn body_ready(
        &self,
        header: usize,
        len: usize,
        quick_ack: bool,
    ) -> Result<Step, TransportError> {
        let total = header.saturating_add(len);
        if self.buf.len() < total {
            return Ok(Step::Need(total));
        }
        Ok(Step::Ready(self.classify(header, total, quick_ack)?))
    }

    /// A complete body at `start..end`: a payload (padded intermediate: without its padding), or
    /// (client side) a transport error or a padded quick ack.
    fn classify(&self, start: usize, end: usize, quick_ack: bool) -> Result<Ready, TransportError> {
        let padded = self.framing == Framing::PaddedIntermediate;
        let payload = || -> Result<Ready, TransportError> {
            let end = if padded {
                let body = self.buf.get(start..end).unwrap_or_default();
                start.saturating_add(padded_payload_len(body)?) // <= end
            } else {
                end
            };
            Ok(Ready::Payload {
                start,
                end,
                quick_ack,
            })
        };
        if self.role != Role::Client {
            return payload();
        }
        let len = end.saturating_sub(start);
        let first = self.le32(start);
        // Padded: "a 4-byte header with all bits set, followed by the ACK token, followed by 0 to
        // 8 random padding bytes"; never longer than 16, shorter than any MTProto packet.
        if padded
            && (8..=16).contains(&len)
            && first == Some(u32::MAX)
            && let Some(token) = self.le32(start.saturating_add(4))
        {
            return Ok(Ready::QuickAck(QuickAckToken::new(token)));
        }
        // Transport errors: a 4-byte negative int32 (plus up to 15 padding bytes when padded).
        let max_err_len = if padded { 4 + 15 } else { 4 };
        if (4..=max_err_len).contains(&len)
            && let Some(code) = first.map(u32::cast_signed)
            && code < 0
        {
            return Ok(Ready::TransportError(code));
        }
        payload()
    }

    /// Encodes one payload into `out`. A client may ask for a quick ack (abridged,
    /// intermediate, padded). The RNG is used for padding only.
    pub fn encode<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if quick_ack && self.role != Role::Client {
            return Err(EncodeError::WrongRole);
        }
        let len = payload.len();
        // MTProto payloads are whole 4-byte words, in every framing.
        if !len.is_multiple_of(4) {
            return Err(EncodeError::Unaligned(len));
        }
        match self.framing {
            Framing::Abridged => {
                if len / 4 > ABRIDGED_MAX_WORDS {
                    return Err(EncodeError::TooLarge(len));
                }
            }
            Framing::Intermediate | Framing::PaddedIntermediate => {
                if len > INTERMEDIATE_MAX - 15 {
                    return Err(EncodeError::TooLarge(len));
                }
            }
            Framing::Full => {
                if quick_ack {
                    return Err(EncodeError::QuickAckUnsupported);
                }
                // The length field covers the payload and the 12 bytes of overhead.
                if len
                    .checked_add(FULL_OVERHEAD)
                    .is_none_or(|total| total > FULL_MAX_TOTAL)
                {
                    return Err(EncodeError::TooLarge(len));
                }
            }
        }
        // Every framing's bound above is below u32::MAX, so this never fails.
        let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLarge(len))?;
        self.write_tag(out);
        let qa_bit: u32 = if quick_ack { 0x8000_0000 } else { 0 };
        match self.framing {
            Framing::Abridged => {
                let words = len32 / 4;
                match u8::try_from(words) {
                    Ok(w) if w < 0x7f => out.push(w | if quick_ack { 0x80 } else { 0 }),
                    _ => {
                        // words <= ABRIDGED_MAX_WORDS (checked above): 3 bytes hold it.
                        let [w0, w1, w2, _] = words.to_le_bytes();
                        let head = if quick_ack { 0xff } else { 0x7f };
                        out.extend_from_slice(&[head, w0, w1, w2]);
                    }
                }
                out.extend_from_slice(payload);
            }
            Framing::Intermediate => {
                out.extend_from_slice(&(len32 | qa_bit).to_le_bytes());
                out.extend_from_slice(payload);
            }
            Framing::PaddedIntermediate => {
                // The spec allows 0..=15 padding bytes (`mtproto_mtproto-transports.md`, "Padded
                // intermediate"), and clients send that many (tdlib). A server sends 0..=3, as
                // the official MTProxy does (`lrand48() & 3`): its clients (Telethon, GramJS)
                // drop only `len % 4` bytes and fail on more (found by tests/interop).
                let pad = match self.role {
                    Role::Client => rng.next_u32() % 16,
                    Role::Server => rng.next_u32() % 4,
                };
                // len <= INTERMEDIATE_MAX - 15 (checked above): never saturates.
                out.extend_from_slice(&(len32.saturating_add(pad) | qa_bit).to_le_bytes());
                out.extend_from_slice(payload);
                push_random(out, pad as usize, rng);
            }
            Framing::Full => {
                let start = out.len();
                // len + 12 fits a u32 (checked above): never saturates.
                out.extend_from_slice(&len32.saturating_add(FULL_OVERHEAD_U32).to_le_bytes());
                out.extend_from_slice(&self.send_seq.to_le_bytes());
                out.extend_from_slice(payload);
                let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
                out.extend_from_slice(&crc.to_le_bytes());
                self.send_seq = self.send_seq.wrapping_add(1);
            }
        }
        Ok(())
    }

    /// Server: encodes a quick-ack token in this framing's format (abridged: the 4 bytes
    /// byte-swapped; intermediate: the 4 raw bytes; padded: a frame of `0xffffffff`, the token and
    /// 0..=8 random bytes). The full transport has none.
    pub fn encode_quick_ack<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        token: QuickAckToken,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.role != Role::Server {
            return Err(EncodeError::WrongRole);
        }
        match self.framing {
            Framing::Abridged => out.extend_from_slice(&token.get().to_be_bytes()),
            Framing::Intermediate => out.extend_from_slice(&token.get().to_le_bytes()),
            Framing::PaddedIntermediate => {
                let pad = rng.next_u32() % 9;
                out.extend_from_slice(&pad.saturating_add(8).to_le_bytes()); // 8..=16
                out.extend_from_slice(&[0xff; 4]);
                out.extend_from_slice(&token.get().to_le_bytes());
                push_random(out, pad as usize, rng);
            }
            Framing::Full => return Err(EncodeError::QuickAckUnsupported),
        }
        Ok(())
    }

    /// Server: encodes a transport error, a 4-byte payload holding the negative `code`.
    pub fn encode_transport_error<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        code: i32,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.role != Role::Server {
            return Err(EncodeError::WrongRole);
        }
        if code >= 0 {
            return Err(EncodeError::NotAnError(code));
        }
        self.encode(&code.to_le_bytes(), false, rng, out)
    }

    fn write_tag(&mut self, out: &mut Vec<u8>) {
        if !self.send_tag {
            return;
        }
        self.send_tag = false;
        match self.framing {
            Framing::Abridged => out.push(0xef),
            Framing::Intermediate => out.extend_from_slice(&[0xee; 4]),
            Framing::PaddedIntermediate => out.extend_from_slice(&[0xdd; 4]),
            Framing::Full => {}
        }
    }
}

/// Appends `n` bytes from the RNG.
pub(crate) fn push_random<R: rand_core::CryptoRng + ?Sized>(
    out: &mut Vec<u8>,
    n: usize,
    rng: &mut R,
) {
    let start = out.len();
    out.resize(start.saturating_add(n), 0);
    if let Some(tail) = out.get_mut(start..) {
        rng.fill_bytes(tail);
    }
}

#[cfg(test)]
mod padded_payload_tests {
    use super::{TransportError, padded_payload_len};

    fn plain(body_len: u32, padding: usize) -> alloc::vec::Vec<u8> {
        let mut m = alloc::vec![0u8; 16];
        m.extend_from_slice(&body_len.to_le_bytes());
        m.extend(core::iter::repeat_n(0xAB, body_len as usize + padding));
        m
    }

    #[test]
    fn unencrypted_messages_keep_their_declared_length() {
        for padding in 0..=15 {
            let m = plain(40, padding);
            assert_eq!(padded_payload_len(&m), Ok(60), "padding {padding}");
        }
        // More than 15 extra bytes, or a length beyond the body: not padding, whole words kept.
        assert_eq!(padded_payload_len(&plain(40, 16)), Ok(76));
        assert_eq!(padded_payload_len(&plain(40, 19)), Ok(76));
        let mut short = plain(40, 0);
        short.truncate(50);
        assert_eq!(padded_payload_len(&short), Ok(48));
        // A declared length that is not whole words.
        assert_eq!(
            padded_payload_len(&plain(41, 3)),
            Err(TransportError::Unaligned(61))
        );
    }

    #[test]
    fn encrypted_messages_keep_whole_blocks() {
        for extra in 0..=15 {
            let mut m = alloc::vec![0x11u8; 24 + 64 + extra];
            m[0] = 1;
            assert_eq!(padded_payload_len(&m), Ok(24 + 64), "extra {extra}");
        }
    }

    #[test]
    fn short_bodies_keep_their_whole_words() {
        for n in 0..24 {
            let m = alloc::vec![0x22u8; n];
            assert_eq!(padded_payload_len(&m), Ok(n / 4 * 4));
        }
        assert_eq!(padded_payload_len(&[0u8; 19]), Ok(16));
    }
}
