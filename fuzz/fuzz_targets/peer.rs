//! What a member decodes from its peers' gRPC payloads (`peer/service.rs` and the replies
//! `peer/client.rs` reads): openraft's messages as postcard, with keepr's log commands
//! inside. The first byte picks the message type. Decoding must never panic (a member or an
//! impostor on the peer port may send anything); what decodes must re-encode, decode again
//! and keep a stable encoding, as a member forwards and stores what it received.
#![no_main]

use keepr_server::peer::client::{decode, encode};
use keepr_server::raft::types::{SnapshotMeta, TypeConfig};
use libfuzzer_sys::fuzz_target;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, StreamAppendResult, TransferLeaderRequest,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::VoteOf;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn check<T: Serialize + DeserializeOwned>(data: &[u8]) {
    let Ok(value) = decode::<T>(data) else {
        return;
    };
    let bytes = encode(&value).expect("a decoded message encodes");
    let again: T = decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(
        encode(&again).expect("encodes again"),
        bytes,
        "encoding is stable"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => check::<AppendEntriesRequest<TypeConfig>>(payload),
        1 => check::<VoteRequest<TypeConfig>>(payload),
        2 => check::<TransferLeaderRequest<TypeConfig>>(payload),
        3 => check::<(VoteOf<TypeConfig>, SnapshotMeta)>(payload),
        4 => check::<StreamAppendResult<TypeConfig>>(payload),
        5 => check::<VoteResponse<TypeConfig>>(payload),
        // The header of a snapshot fetched from a peer at start-up (`member/repair.rs`).
        6 => check::<SnapshotMeta>(payload),
        _ => check::<AppendEntriesResponse<TypeConfig>>(payload),
    }
});
