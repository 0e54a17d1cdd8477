//! The inbound side of a client connection as a pure state machine: bytes in, events out.
//!
//! A connection starts *unestablished*: its first four bytes are either a four-letter word
//! (answered in text, then closed) or the length of a ConnectRequest. After the handshake
//! every frame is a request. Frames that arrive while the handshake is still being answered
//! stay in the buffer until [`ConnDecoder::established`] is called, so a client that
//! pipelines its first requests behind the ConnectRequest (as the Java client does) loses
//! nothing.
//!
//! A request whose header decodes but whose body does not is not fatal: ZooKeeper answers it
//! with MARSHALLINGERROR and carries on. A frame too short for a header, a length outside
//! `0..=max_frame`, or a bad ConnectRequest ends the connection.

use bytes::{Bytes, BytesMut};
use keepr_wire::four_letter::FourLetterWord;
use keepr_wire::frame::{FrameDecoder, FrameError};
use keepr_wire::jute::{Jute, Reader};
use keepr_wire::request::{Request, RequestBody};
use keepr_wire::{ConnectRequest, DecodeError, RequestHeader};

/// What the bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    FourLetterWord(FourLetterWord),
    Connect(ConnectRequest),
    Request(Request),
    /// A request whose body could not be decoded: answer MARSHALLINGERROR.
    Malformed {
        header: RequestHeader,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad connect request: {0}")]
    Connect(DecodeError),
    #[error("request frame of {0} bytes is too short for a header")]
    ShortRequest(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing decoded yet.
    Start,
    /// ConnectRequest handed out; waiting for the server to answer it.
    Handshaking,
    Established,
}

#[derive(Debug)]
pub struct ConnDecoder {
    buf: BytesMut,
    frames: FrameDecoder,
    phase: Phase,
}

impl ConnDecoder {
    pub fn new(max_frame: usize) -> ConnDecoder {
        ConnDecoder {
            buf: BytesMut::with_capacity(8 * 1024),
            frames: FrameDecoder::new(max_frame),
            phase: Phase::Start,
        }
    }

    /// The buffer to read socket bytes into.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends bytes (for callers that do not read into [`Self::buffer`]).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The handshake was answered: requests may now be decoded.
    pub fn established(&mut self) {
        self.phase = Phase::Established;
    }

    /// The next event, `Ok(None)` when more bytes are needed (or, while handshaking, until
    /// [`Self::established`]). After an error the connection must be closed.
    pub fn next_inbound(&mut self) -> Result<Option<Inbound>, InboundError> {
        match self.phase {
            Phase::Handshaking => Ok(None),
            Phase::Start => {
                let Some(first) = self.buf.first_chunk::<4>() else {
                    return Ok(None);
                };
                if let Some(word) = FourLetterWord::from_prefix(*first) {
                    return Ok(Some(Inbound::FourLetterWord(word)));
                }
                let Some(frame) = self.frames.decode(&mut self.buf)? else {
                    return Ok(None);
                };
                let mut r = Reader::new(frame);
                let req = ConnectRequest::read(&mut r).map_err(InboundError::Connect)?;
                self.phase = Phase::Handshaking;
                Ok(Some(Inbound::Connect(req)))
            }
            Phase::Established => {
                let Some(frame) = self.frames.decode(&mut self.buf)? else {
                    return Ok(None);
                };
                Ok(Some(decode_request(frame)?))
            }
        }
    }
}

fn decode_request(frame: Bytes) -> Result<Inbound, InboundError> {
    let len = frame.len();
    let mut r = Reader::new(frame);
    let header = RequestHeader::read(&mut r).map_err(|_| InboundError::ShortRequest(len))?;
    match RequestBody::decode(header.op, &mut r) {
        Ok(body) => Ok(Inbound::Request(Request { header, body })),
        Err(_) => Ok(Inbound::Malformed { header }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepr_wire::codes::op;
    use keepr_wire::frame::encode_frame;
    use keepr_wire::PathWatchRequest;

    fn connect_frame(read_only: Option<bool>) -> BytesMut {
        let req = ConnectRequest::new_session(30_000, read_only);
        let mut payload = BytesMut::new();
        req.write(&mut payload);
        let mut out = BytesMut::new();
        encode_frame(&mut out, &payload);
        out
    }

    fn request_frame(xid: i32, body: RequestBody) -> BytesMut {
        let mut out = BytesMut::new();
        Request::new(xid, body).write_frame(&mut out);
        out
    }

    #[test]
    fn four_letter_word_is_recognised_before_any_frame() {
        let mut d = ConnDecoder::new(1024);
        d.feed(b"ru");
        assert_eq!(d.next_inbound(), Ok(None));
        d.feed(b"ok");
        assert_eq!(
            d.next_inbound(),
            Ok(Some(Inbound::FourLetterWord(FourLetterWord::Ruok)))
        );
    }

    #[test]
    fn requests_pipelined_behind_connect_wait_for_the_handshake() {
        let mut d = ConnDecoder::new(1 << 20);
        let mut bytes = connect_frame(Some(false));
        bytes.extend_from_slice(&request_frame(
            1,
            RequestBody::Exists(PathWatchRequest {
                path: "/a".into(),
                watch: false,
            }),
        ));
        d.feed(&bytes);
        assert!(
            matches!(d.next_inbound(), Ok(Some(Inbound::Connect(c))) if c.read_only == Some(false))
        );
        assert_eq!(
            d.next_inbound(),
            Ok(None),
            "nothing before the handshake is answered"
        );
        d.established();
        assert!(
            matches!(d.next_inbound(), Ok(Some(Inbound::Request(r))) if r.header.xid == 1 && r.header.op == op::EXISTS)
        );
        assert_eq!(d.next_inbound(), Ok(None));
    }

    #[test]
    fn connect_without_read_only_byte_is_accepted() {
        let mut d = ConnDecoder::new(1 << 20);
        d.feed(&connect_frame(None));
        assert!(matches!(d.next_inbound(), Ok(Some(Inbound::Connect(c))) if c.read_only.is_none()));
    }

    #[test]
    fn oversized_frame_is_refused_from_its_length_alone() {
        let mut d = ConnDecoder::new(100);
        d.feed(&1000i32.to_be_bytes());
        assert!(matches!(d.next_inbound(), Err(InboundError::Frame(_))));
    }

    #[test]
    fn undecodable_body_is_malformed_not_fatal() {
        let mut d = ConnDecoder::new(1 << 20);
        d.feed(&connect_frame(None));
        d.next_inbound().unwrap();
        d.established();
        let mut bytes = BytesMut::new();
        // getData header with a truncated path.
        encode_frame(&mut bytes, &[0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 9, b'/']);
        d.feed(&bytes);
        assert_eq!(
            d.next_inbound(),
            Ok(Some(Inbound::Malformed {
                header: RequestHeader {
                    xid: 7,
                    op: op::GET_DATA
                }
            }))
        );
    }

    #[test]
    fn frame_shorter_than_a_header_is_fatal() {
        let mut d = ConnDecoder::new(1 << 20);
        d.feed(&connect_frame(None));
        d.next_inbound().unwrap();
        d.established();
        let mut bytes = BytesMut::new();
        encode_frame(&mut bytes, &[0, 0, 0]);
        d.feed(&bytes);
        assert_eq!(d.next_inbound(), Err(InboundError::ShortRequest(3)));
    }
}
