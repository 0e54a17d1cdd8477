//! `keepr-wire`: the ZooKeeper client wire protocol.
//!
//! Pure encoding and decoding, no I/O, no clocks: [`frame`] cuts a byte stream into frames,
//! [`four_letter`] recognises the text commands sent instead of a handshake, [`jute`] is the
//! record encoding, [`records`] holds the records of `zookeeper.jute` that clients and
//! servers exchange (the handshake included), [`request`], [`response`] and [`multi`] are
//! the messages built from them, and [`codes`] the numbers of the protocol.
//!
//! Decoding takes untrusted bytes and must return an error, never panic, and never allocate
//! more than the frame it was given allows: every length and count is checked against the
//! bytes actually left before anything is reserved for it. Decoded buffers are slices of
//! the frame, not copies.

pub mod codes;
pub mod four_letter;
pub mod frame;
pub mod jute;
pub mod multi;
pub mod records;
pub mod request;
pub mod response;

pub use codes::ErrorCode;
pub use four_letter::FourLetterWord;
pub use frame::{FrameDecoder, FrameError};
pub use multi::{MultiOp, MultiReadOp, MultiReadRequest, MultiRequest, MultiResponse, MultiResult};
pub use records::*;
pub use request::{Request, RequestBody};
pub use response::{Response, ResponseBody};

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {what}: needed {needed} bytes, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("negative length {len} for {what}")]
    NegativeLength { what: &'static str, len: i32 },
    #[error("{extra} unexpected bytes after {record}")]
    TrailingBytes { record: &'static str, extra: usize },
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: i64 },
}

#[cfg(test)]
pub(crate) mod test_util {
    use bytes::Bytes;

    /// Bytes from hex digits; whitespace is ignored so that tests can group fields.
    pub fn hex(s: &str) -> Bytes {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| {
                let text = std::str::from_utf8(pair).expect("ascii");
                u8::from_str_radix(text, 16).expect("hex digit pair")
            })
            .collect::<Vec<u8>>()
            .into()
    }
}
