//! The first frame of a connection: the first byte chooses the direction (even: the
//! client's ConnectRequest, odd: the server's ConnectResponse), the rest is the payload.
//! Decoding must never panic; whatever decodes must survive encode → decode unchanged,
//! readOnly present or absent included.
#![no_main]

use bytes::Bytes;
use keepr_wire::jute::to_bytes;
use keepr_wire::{ConnectRequest, ConnectResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    if selector % 2 == 0 {
        if let Ok(req) = ConnectRequest::decode(payload) {
            let bytes = to_bytes(&req);
            let again = ConnectRequest::decode(bytes.clone()).expect("re-encoded request decodes");
            assert_eq!(again, req);
            assert_eq!(to_bytes(&again), bytes);
        }
    } else if let Ok(resp) = ConnectResponse::decode(payload) {
        let bytes = to_bytes(&resp);
        let again = ConnectResponse::decode(bytes.clone()).expect("re-encoded response decodes");
        assert_eq!(again, resp);
        assert_eq!(to_bytes(&again), bytes);
    }
});
