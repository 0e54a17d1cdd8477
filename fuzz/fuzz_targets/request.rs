//! A request frame payload as a server receives it after the handshake. Decoding must never
//! panic; whatever decodes must survive encode → decode unchanged, and encoding must be
//! stable (decoding normalises: null strings become empty, any `done` header ends a multi).
#![no_main]

use bytes::{Bytes, BytesMut};
use keepr_wire::Request;
use libfuzzer_sys::fuzz_target;

fn encode(r: &Request) -> Bytes {
    let mut w = BytesMut::new();
    r.write(&mut w);
    w.freeze()
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = Request::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let bytes = encode(&req);
    let again = Request::decode(bytes.clone()).expect("a re-encoded request decodes");
    assert_eq!(again, req);
    assert_eq!(encode(&again), bytes);
});
