//! `rpc_error` messages as values (`api_errors.md`): the code, the message, and the number that
//! errors such as `FLOOD_WAIT_31` or `PHONE_MIGRATE_2` carry.

use alloc::string::String;
use core::fmt;

/// An `rpc_error` answer to a request.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcError {
    /// `error_code` (400, 401, 403, 420, 500, …; may be negative for internal errors).
    pub code: i32,
    /// The error message as sent, e.g. `FLOOD_WAIT_31`.
    pub message: String,
    /// The number at the end of the message, if it ends in `_<digits>` (`31` above).
    pub value: Option<u32>,
}

impl RpcError {
    /// Parses the message of an `rpc_error`.
    pub fn new(code: i32, message: &str) -> Self {
        Self {
            code,
            message: String::from(message),
            value: trailing_number(message),
        }
    }

    /// The message without its trailing number: `FLOOD_WAIT` for `FLOOD_WAIT_31`.
    pub fn name(&self) -> &str {
        match self.value {
            Some(_) => self
                .message
                .rsplit_once('_')
                .map_or(self.message.as_str(), |(name, _)| name),
            None => &self.message,
        }
    }

    /// Whether this is `name` (with or without a number): `e.is("FLOOD_WAIT")`.
    pub fn is(&self, name: &str) -> bool {
        self.name() == name
    }
}

fn trailing_number(message: &str) -> Option<u32> {
    let (_, digits) = message.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcError({} {})", self.code, self.message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc error {}: {}", self.code, self.message)
    }
}

impl core::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_parsed_from_the_message() {
        let e = RpcError::new(420, "FLOOD_WAIT_31");
        assert_eq!(e.value, Some(31));
        assert_eq!(e.name(), "FLOOD_WAIT");
        assert!(e.is("FLOOD_WAIT"));
        let e = RpcError::new(303, "PHONE_MIGRATE_2");
        assert_eq!((e.name(), e.value), ("PHONE_MIGRATE", Some(2)));
        let e = RpcError::new(400, "PEER_ID_INVALID");
        assert_eq!((e.name(), e.value), ("PEER_ID_INVALID", None));
        assert_eq!(RpcError::new(400, "X_").value, None);
        assert_eq!(RpcError::new(400, "X_99999999999").value, None, "overflow");
        assert_eq!(RpcError::new(400, "").name(), "");
    }
}
