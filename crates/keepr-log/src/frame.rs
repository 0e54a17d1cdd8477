//! Record framing: `[u32 len][u32 crc32c][payload]`, both integers little-endian.
//!
//! The checksum covers the four length bytes and then the payload, so a damaged length is caught
//! as surely as a damaged payload, and a run of zero bytes (what a file extended but never
//! written reads as) is never a valid record: its length is zero, which is rejected, and the
//! checksum of four zero bytes is not zero anyway.

use crate::error::LogError;

/// Bytes before the payload: length and checksum.
pub(crate) const HEADER_LEN: usize = 8;

/// The checksum stored in a frame with these length bytes and payload.
fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// Appends one framed record to `buf`, with the payload produced by `write_payload`.
///
/// The payload is written in place after a placeholder header, then the header is filled in,
/// so a record is serialized once, straight into the buffer the writer will hand to the kernel.
pub(crate) fn append_frame(
    buf: &mut Vec<u8>,
    write_payload: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, LogError>,
) -> Result<(), LogError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    let mut out = write_payload(std::mem::take(buf))?;
    let payload_len = out
        .len()
        .checked_sub(start + HEADER_LEN)
        .ok_or_else(|| LogError::Encode("the encoder shrank the buffer".into()))?;
    let len = u32::try_from(payload_len).map_err(|_| LogError::TooLarge(payload_len))?;
    if len == 0 {
        return Err(LogError::Encode("empty record payload".into()));
    }
    let len_bytes = len.to_le_bytes();
    let (_, frame) = out.split_at_mut(start);
    let (header, payload) = frame.split_at_mut(HEADER_LEN);
    let crc = checksum(len_bytes, payload);
    header[..4].copy_from_slice(&len_bytes);
    header[4..].copy_from_slice(&crc.to_le_bytes());
    *buf = out;
    Ok(())
}

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// Fewer than [`HEADER_LEN`] bytes remain.
    ShortHeader,
    /// The length field is zero.
    ZeroLength,
    /// The length field points past the end of the data.
    PastEnd { len: u32, available: usize },
    /// The checksum does not match.
    Checksum,
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrame::ShortHeader => write!(f, "incomplete record header"),
            BadFrame::ZeroLength => write!(f, "record length is zero"),
            BadFrame::PastEnd { len, available } => {
                write!(
                    f,
                    "record length {len} exceeds the {available} bytes that follow"
                )
            }
            BadFrame::Checksum => write!(f, "checksum mismatch"),
        }
    }
}

/// One valid record found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// The payload bytes.
    pub payload: &'a [u8],
    /// Offset just past this record, where the next one starts.
    pub end: usize,
}

/// Reads the record that starts at `offset` in `buf`.
///
/// Never allocates and never reads outside `buf`, whatever the bytes say.
pub(crate) fn read_frame(buf: &[u8], offset: usize) -> Result<Frame<'_>, BadFrame> {
    let rest = buf.get(offset..).unwrap_or_default();
    let (Some(len_bytes), Some(crc_bytes)) = (rest.get(0..4), rest.get(4..HEADER_LEN)) else {
        return Err(BadFrame::ShortHeader);
    };
    let mut len_arr = [0u8; 4];
    len_arr.copy_from_slice(len_bytes);
    let mut crc_arr = [0u8; 4];
    crc_arr.copy_from_slice(crc_bytes);
    let len = u32::from_le_bytes(len_arr);
    if len == 0 {
        return Err(BadFrame::ZeroLength);
    }
    let available = rest.len() - HEADER_LEN;
    let Some(payload) = usize::try_from(len)
        .ok()
        .and_then(|l| rest.get(HEADER_LEN..HEADER_LEN + l))
    else {
        return Err(BadFrame::PastEnd { len, available });
    };
    if checksum(len_arr, payload) != u32::from_le_bytes(crc_arr) {
        return Err(BadFrame::Checksum);
    }
    Ok(Frame {
        payload,
        end: offset + HEADER_LEN + payload.len(),
    })
}

/// The offset of the first valid record that starts after `bad`, if there is one.
///
/// Recovery uses this to tell a torn tail (nothing valid after the damage: the last write never
/// completed) from corruption in the middle (valid records follow, so acknowledged data would
/// be dropped by cutting there). The record boundary that the damaged header claims is tried
/// first, since a flipped payload bit leaves the length intact; then every byte offset.
pub(crate) fn find_valid_after(buf: &[u8], bad: usize) -> Option<usize> {
    let claimed = buf
        .get(bad..bad + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| {
            bad.saturating_add(HEADER_LEN)
                .saturating_add(u32::from_le_bytes(b) as usize)
        });
    if let Some(next) = claimed.filter(|&n| n > bad && n < buf.len()) {
        if read_frame(buf, next).is_ok() {
            return Some(next);
        }
    }
    (bad + 1..buf.len()).find(|&at| read_frame(buf, at).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_bytes(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut buf = Vec::new();
        for p in payloads {
            append_frame(&mut buf, |mut out| {
                out.extend_from_slice(p);
                Ok(out)
            })
            .unwrap();
        }
        buf
    }

    fn scan(buf: &[u8]) -> (Vec<&[u8]>, Option<(usize, BadFrame)>) {
        let mut at = 0;
        let mut out = Vec::new();
        while at < buf.len() {
            match read_frame(buf, at) {
                Ok(f) => {
                    out.push(f.payload);
                    at = f.end;
                }
                Err(e) => return (out, Some((at, e))),
            }
        }
        (out, None)
    }

    #[test]
    fn zero_filled_bytes_are_never_a_record() {
        let zeros = vec![0u8; 64];
        assert_eq!(read_frame(&zeros, 0), Err(BadFrame::ZeroLength));
        assert_eq!(find_valid_after(&zeros, 0), None);
    }

    #[test]
    fn empty_payload_is_refused_when_encoding() {
        let mut buf = Vec::new();
        assert!(append_frame(&mut buf, Ok).is_err());
    }

    #[test]
    fn a_length_beyond_the_buffer_is_reported_without_reading_it() {
        let mut buf = frame_bytes(&[b"hello".to_vec()]);
        buf[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read_frame(&buf, 0), Err(BadFrame::PastEnd { .. })));
    }

    proptest! {
        #[test]
        fn framed_payloads_read_back_in_order(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..200), 0..20)) {
            let buf = frame_bytes(&payloads);
            let (read, bad) = scan(&buf);
            prop_assert!(bad.is_none());
            prop_assert_eq!(read.len(), payloads.len());
            for (r, p) in read.iter().zip(&payloads) {
                prop_assert_eq!(*r, p.as_slice());
            }
        }

        #[test]
        fn a_cut_buffer_reads_back_a_prefix_and_nothing_valid_after_the_cut(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 1..10),
            cut_frac in 0.0f64..1.0,
        ) {
            let buf = frame_bytes(&payloads);
            let cut = ((buf.len() as f64) * cut_frac) as usize;
            let cut_buf = &buf[..cut];
            let (read, bad) = scan(cut_buf);
            for (r, p) in read.iter().zip(&payloads) {
                prop_assert_eq!(*r, p.as_slice());
            }
            if let Some((at, _)) = bad {
                prop_assert_eq!(find_valid_after(cut_buf, at), None);
            }
        }

        #[test]
        fn a_flipped_bit_is_detected(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 1..10),
            which in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut buf = frame_bytes(&payloads);
            let at = which.index(buf.len());
            buf[at] ^= 1 << bit;
            let (read, bad) = scan(&buf);
            prop_assert!(bad.is_some(), "flip at {} went unnoticed", at);
            prop_assert!(read.len() < payloads.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_reader(bytes in prop::collection::vec(any::<u8>(), 0..300), at in 0usize..320) {
            let _ = read_frame(&bytes, at);
            let _ = find_valid_after(&bytes, at.min(bytes.len()));
        }
    }
}
