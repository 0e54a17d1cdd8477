//! A raw byte stream as it arrives on a socket. The first two bytes choose the maximum
//! frame size and how the stream is cut into reads; the rest is the stream. The decoder
//! must never panic, never return a frame above the maximum, and return the same frames and
//! the same error however the stream is cut. Each frame is then decoded as a request and as
//! a handshake, which must round-trip when they succeed.
#![no_main]

use bytes::{Bytes, BytesMut};
use keepr_wire::frame::FrameDecoder;
use keepr_wire::{ConnectRequest, FrameError, Request};
use libfuzzer_sys::fuzz_target;

/// Frames and the error that ended the stream, reading it `step` bytes at a time.
fn cut(decoder: FrameDecoder, stream: &[u8], step: usize) -> (Vec<Bytes>, Option<FrameError>) {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(f.len() <= decoder.max_frame());
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some(([max, step], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Small limits reach the too-long path; 255 stands for ZooKeeper's default.
    let max = if *max == 255 {
        keepr_wire::frame::DEFAULT_MAX_FRAME
    } else {
        usize::from(*max) * 4
    };
    let decoder = FrameDecoder::new(max);
    let whole = cut(decoder, stream, stream.len());
    let pieces = cut(decoder, stream, usize::from(*step));
    assert_eq!(whole, pieces);

    for frame in whole.0 {
        if let Ok(req) = Request::decode(frame.clone()) {
            let mut w = BytesMut::new();
            req.write(&mut w);
            assert_eq!(Request::decode(w.freeze()).ok(), Some(req));
        }
        if let Ok(c) = ConnectRequest::decode(frame) {
            let bytes = keepr_wire::jute::to_bytes(&c);
            assert_eq!(ConnectRequest::decode(bytes).ok(), Some(c));
        }
    }
});
