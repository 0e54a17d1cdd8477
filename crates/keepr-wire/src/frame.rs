//! Framing: every message in both directions is a big-endian `i32` length and that many
//! bytes of payload.
//!
//! [`FrameDecoder`] cuts complete frames out of a connection's read buffer without copying
//! them (each frame is a [`Bytes`] that shares the buffer's memory). A length that is
//! negative or above `jute.maxbuffer` is refused as soon as its four bytes have arrived,
//! before anything is buffered for it: ZooKeeper closes the connection in that case ("Len
//! error"), and so must the caller.
//!
//! Before the handshake, ZooKeeper first checks whether the four bytes are a four-letter
//! word; see [`crate::four_letter`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// ZooKeeper's default `jute.maxbuffer`: the largest payload either side accepts.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

/// The length prefix's size.
pub const LENGTH_PREFIX: usize = 4;

/// A length prefix that no frame may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} is negative")]
    NegativeLength { len: i32 },
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLong { len: usize, max: usize },
}

/// Splits a byte stream into frames of at most `max_frame` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that accepts payloads of up to `max_frame` bytes (`jute.maxbuffer`).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Takes the next complete frame's payload off the front of `buf`, or returns
    /// `Ok(None)` when more bytes are needed (having reserved room for the rest of the
    /// frame, which the length check bounds). After an error the stream is unusable.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX>() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(*prefix);
        let len = usize::try_from(len).map_err(|_| FrameError::NegativeLength { len })?;
        if len > self.max_frame {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        let total = LENGTH_PREFIX + len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        frame.advance(LENGTH_PREFIX);
        Ok(Some(frame.freeze()))
    }
}

/// Appends one frame whose payload `write_payload` appends, patching the length prefix in
/// afterwards so the payload is written in place, never copied.
#[inline]
pub fn write_frame(w: &mut BytesMut, write_payload: impl FnOnce(&mut BytesMut)) {
    let start = w.len();
    w.put_i32(0);
    write_payload(w);
    let len = w.len() - start - LENGTH_PREFIX;
    debug_assert!(len <= i32::MAX as usize, "frame of {len} bytes");
    let prefix = (len as i32).to_be_bytes();
    w[start..start + LENGTH_PREFIX].copy_from_slice(&prefix);
}

/// Appends `payload` as one frame.
pub fn encode_frame(w: &mut BytesMut, payload: &[u8]) {
    write_frame(w, |w| w.put_slice(payload));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    #[test]
    fn returns_nothing_until_a_whole_frame_arrived() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::new();
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&hex("000000"));
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&hex("03 aabb"));
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 6, "a partial frame stays in the buffer");
        buf.extend_from_slice(&hex("cc 00000001"));
        assert_eq!(d.decode(&mut buf), Ok(Some(hex("aabbcc"))));
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&hex("dd"));
        assert_eq!(d.decode(&mut buf), Ok(Some(hex("dd"))));
        assert!(buf.is_empty());
    }

    #[test]
    fn several_frames_in_one_read_come_out_in_order() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&hex("00000001 01 00000000 00000002 0203")[..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(hex("01"))));
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::new())));
        assert_eq!(d.decode(&mut buf), Ok(Some(hex("0203"))));
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn negative_length_is_refused() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&hex("ffffffff")[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::NegativeLength { len: -1 })
        );
    }

    #[test]
    fn length_above_max_is_refused_before_the_payload_arrives() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&hex("00100000")[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::TooLong {
                len: 0x100000,
                max: 0xfffff
            })
        );
        // Exactly jute.maxbuffer is still fine.
        let mut buf = BytesMut::from(&hex("000fffff")[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn max_frame_is_configurable() {
        let d = FrameDecoder::new(2);
        let mut buf = BytesMut::from(&hex("00000002 aabb 00000003 aabbcc")[..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(hex("aabb"))));
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::TooLong { len: 3, max: 2 })
        );
    }

    #[test]
    fn four_letter_words_are_too_long_to_be_frames() {
        // "ruok" read as a length is 0x72756f6b: the decoder refuses it, which is why the
        // server must look for four-letter words before framing.
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&b"ruok"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn written_frames_decode_back() {
        let mut w = BytesMut::new();
        encode_frame(&mut w, b"hello");
        write_frame(&mut w, |w| w.put_u8(7));
        encode_frame(&mut w, b"");
        assert_eq!(&w[..4], &hex("00000005")[..]);
        let d = FrameDecoder::default();
        assert_eq!(d.decode(&mut w), Ok(Some(Bytes::from_static(b"hello"))));
        assert_eq!(d.decode(&mut w), Ok(Some(hex("07"))));
        assert_eq!(d.decode(&mut w), Ok(Some(Bytes::new())));
    }

    #[test]
    fn frames_share_the_read_buffer_memory() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&hex("00000003 616263")[..]);
        let base = buf.as_ptr();
        let frame = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.as_ptr(), base.wrapping_add(4));
    }
}
