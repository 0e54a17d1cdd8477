//! What a record's payload says, and its postcard encoding.
//!
//! Every write the store accepts becomes one record, in the order it was submitted; replaying
//! the records of all segments in order rebuilds the vote, the committed and purged log ids and
//! the log itself. Each segment starts with a [`Record::Header`] that repeats the state the
//! earlier segments left, so a segment is self-sufficient once the ones before it are purged.
//!
//! The enum is generic over the entry, vote and log id types so that the writer can encode
//! borrowed values (`Record<&Entry, ..>`) and recovery can decode owned ones with one
//! definition: serde encodes a reference exactly like the value.

use serde::Deserialize;
use serde::Serialize;

use crate::error::LogError;
use crate::frame;

/// One record payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Record<E, V, L> {
    /// First record of every segment: the state left by all earlier segments.
    Header {
        /// This segment's sequence number (also in its file name).
        seq: u64,
        /// The last log id at the start of this segment.
        last_log_id: Option<L>,
        /// The vote at the start of this segment.
        vote: Option<V>,
        /// The committed log id at the start of this segment.
        committed: Option<L>,
        /// The purged log id at the start of this segment.
        purged: Option<L>,
    },
    /// A log entry, appended after the current last one.
    Entry(E),
    /// `save_vote`.
    Vote(V),
    /// `save_committed`.
    Committed(Option<L>),
    /// `truncate_after`: entries after this log id are gone.
    TruncateAfter(Option<L>),
    /// `purge`: entries up to and including this log id are gone.
    Purge(L),
}

/// Appends `record`, framed, to `buf`.
pub(crate) fn append_record<E, V, L>(
    buf: &mut Vec<u8>,
    record: &Record<E, V, L>,
) -> Result<(), LogError>
where
    E: Serialize,
    V: Serialize,
    L: Serialize,
{
    frame::append_frame(buf, |out| {
        postcard::to_extend(record, out).map_err(|e| LogError::Encode(e.to_string()))
    })
}

/// Decodes a record payload; the whole payload must be consumed.
pub(crate) fn decode_record<E, V, L>(payload: &[u8]) -> Result<Record<E, V, L>, String>
where
    E: for<'de> Deserialize<'de>,
    V: for<'de> Deserialize<'de>,
    L: for<'de> Deserialize<'de>,
{
    let (record, rest) = postcard::take_from_bytes(payload).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes after the record", rest.len()));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type R = Record<Vec<u8>, (u64, u64), (u64, u64)>;

    fn roundtrip(r: &R) -> R {
        let mut buf = Vec::new();
        append_record(&mut buf, r).unwrap();
        let f = frame::read_frame(&buf, 0).unwrap();
        assert_eq!(f.end, buf.len());
        decode_record(f.payload).unwrap()
    }

    #[test]
    fn a_borrowed_record_decodes_as_the_owned_one() {
        let data = vec![1u8, 2, 3];
        let borrowed: Record<&Vec<u8>, &(u64, u64), &(u64, u64)> = Record::Entry(&data);
        let mut buf = Vec::new();
        append_record(&mut buf, &borrowed).unwrap();
        let f = frame::read_frame(&buf, 0).unwrap();
        let owned: R = decode_record(f.payload).unwrap();
        assert!(matches!(owned, Record::Entry(d) if d == data));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut buf = Vec::new();
        append_record(&mut buf, &R::Purge((1, 2))).unwrap();
        let f = frame::read_frame(&buf, 0).unwrap();
        let mut payload = f.payload.to_vec();
        payload.push(0);
        assert!(decode_record::<Vec<u8>, (u64, u64), (u64, u64)>(&payload).is_err());
    }

    proptest! {
        #[test]
        fn records_roundtrip(data in prop::collection::vec(any::<u8>(), 0..64), a in any::<u64>(), b in any::<u64>(), seq in any::<u64>()) {
            let header = R::Header { seq, last_log_id: Some((a, b)), vote: Some((b, a)), committed: None, purged: Some((a, a)) };
            match roundtrip(&header) {
                Record::Header { seq: s, last_log_id, vote, committed, purged } => {
                    prop_assert_eq!(s, seq);
                    prop_assert_eq!(last_log_id, Some((a, b)));
                    prop_assert_eq!(vote, Some((b, a)));
                    prop_assert_eq!(committed, None);
                    prop_assert_eq!(purged, Some((a, a)));
                }
                other => prop_assert!(false, "decoded {:?}", other),
            }
            prop_assert!(matches!(roundtrip(&R::Entry(data.clone())), Record::Entry(d) if d == data));
            prop_assert!(matches!(roundtrip(&R::TruncateAfter(None)), Record::TruncateAfter(None)));
            prop_assert!(matches!(roundtrip(&R::Committed(Some((a, b)))), Record::Committed(Some(x)) if x == (a, b)));
        }

        #[test]
        fn arbitrary_payloads_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record::<Vec<u8>, (u64, u64), (u64, u64)>(&bytes);
        }
    }
}
