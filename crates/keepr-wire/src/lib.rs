//! `keepr-wire`: the ZooKeeper client wire protocol.
//!
//! Pure encoding and decoding, no I/O: [`jute`] is the record encoding, [`records`] holds the
//! records of `zookeeper.jute` that clients and servers exchange, [`codes`] the numbers of
//! the protocol. Decoding takes untrusted bytes and must return an error, never panic, and
//! never allocate more than the frame it was given.

pub mod codes;
pub mod jute;
pub mod records;

pub use codes::ErrorCode;
pub use records::*;

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
