//! A reply frame payload as a client receives it, decoded as the answer to the opcode given
//! by the first four bytes (big-endian), so that every reply shape is reached. Decoding
//! must never panic; whatever decodes must round-trip.
#![no_main]

use bytes::{Bytes, BytesMut};
use keepr_wire::Response;
use libfuzzer_sys::fuzz_target;

fn encode(r: &Response) -> Bytes {
    let mut w = BytesMut::new();
    r.write(&mut w);
    w.freeze()
}

fuzz_target!(|data: &[u8]| {
    let Some((op, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let op = i32::from_be_bytes(*op);
    let Ok(resp) = Response::decode(Bytes::copy_from_slice(payload), op) else {
        return;
    };
    let bytes = encode(&resp);
    let again = Response::decode(bytes.clone(), op).expect("a re-encoded reply decodes");
    assert_eq!(again, resp);
    assert_eq!(encode(&again), bytes);
});
