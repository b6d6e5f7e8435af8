//! `msg_container` on the wire (`mtproto_service_messages.md`, "Containers"): at most
//! [`MAX_CONTAINER_MESSAGES`] messages, each `msg_id:long seqno:int bytes:int body`, every inner
//! msg_id below the container's own.

use alloc::vec::Vec;

use crate::tl::schema::types::{Message, MsgContainer};
use crate::tl::{Reader, TlError};

/// The most messages one container may carry (`mtproto_service_messages.md`).
pub const MAX_CONTAINER_MESSAGES: usize = 1024;
/// The most ids one `msgs_ack`, `msgs_state_req` or `msg_resend_req` may carry.
pub const MAX_IDS_PER_SERVICE_MESSAGE: usize = 8192;
/// Bytes a container adds before its messages: constructor id and count.
pub const CONTAINER_HEADER_LEN: usize = 8;
/// Bytes each inner message adds before its body: msg_id, seqno, bytes.
pub const INNER_HEADER_LEN: usize = 16;

/// One message for a container (or on its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutMessage<'b> {
    /// Its msg_id.
    pub msg_id: i64,
    /// Its seq_no.
    pub seq_no: i32,
    /// The TL body (a multiple of 4 bytes).
    pub body: &'b [u8],
}

/// Appends the header of a container of `count` messages to `out`.
pub fn write_container_header(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&MsgContainer::CONSTRUCTOR_ID.to_le_bytes());
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
}

/// Appends one inner message (`msg_id seqno bytes body`) to `out`.
pub fn write_inner(out: &mut Vec<u8>, msg: &OutMessage<'_>) {
    out.extend_from_slice(&msg.msg_id.to_le_bytes());
    out.extend_from_slice(&msg.seq_no.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(msg.body.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(msg.body);
}

/// Iterates over the messages of a container body (after its constructor id), without
/// allocating. Yields an error once (then stops) on a malformed entry.
pub struct ContainerIter<'a> {
    reader: Option<Reader<'a>>,
    left: usize,
}

impl<'a> ContainerIter<'a> {
    /// Reads the count of a container body that starts right after the constructor id.
    /// More than [`MAX_CONTAINER_MESSAGES`] messages is an error.
    pub fn new(after_id: &'a [u8]) -> Result<Self, TlError> {
        let mut r = Reader::new(after_id)?;
        let count = usize::try_from(r.read_u32()?).map_err(|_| TlError::ValueTooLarge)?;
        if count > MAX_CONTAINER_MESSAGES {
            return Err(TlError::ValueTooLarge);
        }
        Ok(Self {
            reader: Some(r),
            left: count,
        })
    }

    /// Messages not yet read.
    pub fn remaining(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for ContainerIter<'a> {
    type Item = Result<Message<'a>, TlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            let r = self.reader.take()?;
            return match r.finish() {
                Ok(()) => None,
                Err(e) => Some(Err(e)),
            };
        }
        self.left = self.left.saturating_sub(1);
        let r = self.reader.as_mut()?;
        let item = (|| {
            let msg_id = r.read_i64()?;
            let seqno = r.read_i32()?;
            let len = usize::try_from(r.read_u32()?).map_err(|_| TlError::ValueTooLarge)?;
            let body = r.read_raw(len)?;
            Ok(Message {
                msg_id,
                seqno,
                body,
            })
        })();
        if item.is_err() {
            self.reader = None;
            self.left = 0;
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tl::Deserialize;
    use crate::tl::schema::Object;

    #[test]
    fn written_containers_decode_with_the_schema() {
        let mut out = Vec::new();
        write_container_header(&mut out, 2);
        write_inner(
            &mut out,
            &OutMessage {
                msg_id: 8,
                seq_no: 1,
                body: &[1, 2, 3, 4],
            },
        );
        write_inner(
            &mut out,
            &OutMessage {
                msg_id: 12,
                seq_no: 2,
                body: &[],
            },
        );
        // Byte layout from mtproto_service_messages.md: 73f1f8dc, count, then messages.
        assert_eq!(&out[..8], &[0xdc, 0xf8, 0xf1, 0x73, 2, 0, 0, 0]);
        let Object::MsgContainer(c) = Object::from_bytes(&out).unwrap() else {
            panic!("not a container")
        };
        assert_eq!(c.messages.len(), 2);
        assert_eq!((c.messages[0].msg_id, c.messages[0].seqno), (8, 1));
        assert_eq!(c.messages[0].body, &[1, 2, 3, 4]);
        assert_eq!(c.messages[1].msg_id, 12);
        let ours: Vec<_> = ContainerIter::new(&out[4..]).unwrap().collect();
        assert_eq!(ours.len(), 2);
        assert_eq!(ours[0].as_ref().unwrap().body, &[1, 2, 3, 4]);
    }

    #[test]
    fn malformed_containers_are_errors_not_panics() {
        let mut out = Vec::new();
        write_container_header(&mut out, 2);
        write_inner(
            &mut out,
            &OutMessage {
                msg_id: 8,
                seq_no: 1,
                body: &[1, 2, 3, 4],
            },
        );
        for cut in 0..out.len() {
            if let Ok(it) = ContainerIter::new(&out[4..cut.max(4)]) {
                let items: Vec<_> = it.collect();
                assert!(items.iter().any(|r| r.is_err()), "cut {cut}");
            }
        }
        let mut too_many = Vec::new();
        write_container_header(&mut too_many, MAX_CONTAINER_MESSAGES + 1);
        assert!(ContainerIter::new(&too_many[4..]).is_err());
    }
}
