//! Jute, ZooKeeper's binary record encoding.
//!
//! Every field is big-endian and records are plain concatenations of their fields in
//! declaration order: no tags, no lengths, no padding. Strings and buffers carry an `i32`
//! length where `-1` means null; vectors carry an `i32` count where `-1` means null.
//!
//! Decoding reads untrusted bytes, so [`Reader`] checks every length against the bytes that
//! are actually left before it allocates: a frame can never make us allocate more than its
//! own size, and malformed input is an error, never a panic.

use bytes::{BufMut, Bytes, BytesMut};

use crate::DecodeError;

/// A value with a jute encoding.
pub trait Jute: Sized {
    /// Appends the encoding of `self` to `w`.
    fn write(&self, w: &mut BytesMut);
    /// Reads one value from `r`.
    fn read(r: &mut Reader) -> Result<Self, DecodeError>;
    /// The fewest bytes any encoding of this type takes; bounds vector pre-allocation.
    const MIN_LEN: usize;
}

/// A cursor over one frame's bytes. Buffers are handed out as zero-copy slices of the frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Position of the cursor from the start of the frame.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread rest of the frame, without consuming it.
    pub fn rest(&self) -> Bytes {
        self.buf.slice(self.pos..)
    }

    fn truncated(&self, what: &'static str, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            what,
            needed,
            available: self.remaining(),
        }
    }

    /// The next `n` bytes, or an error if the frame has fewer left.
    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        let end = self.pos.saturating_add(n);
        let Some(bytes) = self.buf.get(self.pos..end) else {
            return Err(self.truncated(what, n));
        };
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        bytes.try_into().map_err(|_| DecodeError::Truncated {
            what,
            needed: N,
            available: bytes.len(),
        })
    }

    #[inline]
    fn take_bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let start = self.pos;
        self.pos += n;
        Ok(self.buf.slice(start..self.pos))
    }

    #[inline]
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.take_array("int").map(i32::from_be_bytes)
    }

    #[inline]
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.take_array("long").map(i64::from_be_bytes)
    }

    #[inline]
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        // Java's readBoolean: any non-zero byte is true.
        self.take_array::<1>("boolean").map(|[b]| b != 0)
    }

    /// Reads a length prefix: `None` for null (-1), an error for other negative values or a
    /// length longer than what is left of the frame.
    fn read_len(&mut self, what: &'static str) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength { what, len });
        }
        let len = len as usize; // non-negative, checked above
        if len > self.remaining() {
            return Err(self.truncated(what, len));
        }
        Ok(Some(len))
    }

    /// A jute buffer; `None` is the null buffer (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take_bytes(n, "buffer")?)),
        }
    }

    /// A jute ustring. Null reads as the empty string. Invalid UTF-8 is replaced by U+FFFD,
    /// as Java's `new String(bytes, UTF_8)` does, so that path validation rejects it the way
    /// ZooKeeper does instead of the decoder failing the whole frame.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        match self.read_len("string")? {
            None => Ok(String::new()),
            Some(n) => {
                let b = self.take(n, "string")?;
                Ok(String::from_utf8_lossy(b).into_owned())
            }
        }
    }

    /// A jute vector; null reads as empty. Pre-allocation is bounded by what the rest of the
    /// frame could possibly hold.
    pub fn read_vec<T: Jute>(&mut self) -> Result<Vec<T>, DecodeError> {
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(Vec::new());
        }
        if count < 0 {
            return Err(DecodeError::NegativeLength {
                what: "vector",
                len: count,
            });
        }
        let count = count as usize; // non-negative, checked above
        let max_fit = self.remaining() / T::MIN_LEN.max(1);
        if count > max_fit {
            return Err(DecodeError::Truncated {
                what: "vector",
                needed: count.saturating_mul(T::MIN_LEN.max(1)),
                available: self.remaining(),
            });
        }
        // Reserve no more bytes than the frame has left; a vector whose elements really
        // decode grows past that as they arrive.
        let reserve = count.min(self.remaining() / std::mem::size_of::<T>().max(1));
        let mut v = Vec::with_capacity(reserve);
        for _ in 0..count {
            v.push(T::read(self)?);
        }
        Ok(v)
    }

    /// A jute ustring where null (-1) stays distinct from the empty string, for the few
    /// fields whose meaning depends on it (reconfig's member lists).
    pub fn read_nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_len("string")? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n, "string")?;
                Ok(Some(String::from_utf8_lossy(b).into_owned()))
            }
        }
    }

    /// Consumes and returns everything left of the frame (for bodies that are not jute
    /// records, such as deleteContainer's bare path).
    pub fn take_rest(&mut self) -> Bytes {
        let rest = self.rest();
        self.pos = self.buf.len();
        rest
    }

    /// Fails unless the whole frame was consumed.
    pub fn finish(&self, record: &'static str) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                record,
                extra: self.remaining(),
            });
        }
        Ok(())
    }
}

#[inline]
pub fn write_i32(w: &mut BytesMut, v: i32) {
    w.put_i32(v);
}

#[inline]
pub fn write_i64(w: &mut BytesMut, v: i64) {
    w.put_i64(v);
}

#[inline]
pub fn write_bool(w: &mut BytesMut, v: bool) {
    w.put_u8(v as u8);
}

/// A length prefix. Lengths beyond `i32::MAX` cannot be framed at all (frames are limited
/// to about a megabyte), so such a value is a bug in the caller, not in the input.
#[inline]
fn write_len(w: &mut BytesMut, len: usize) {
    debug_assert!(len <= i32::MAX as usize, "jute length {len} exceeds i32");
    w.put_i32(len as i32);
}

#[inline]
pub fn write_buffer(w: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => w.put_i32(-1),
        Some(b) => {
            write_len(w, b.len());
            w.put_slice(b);
        }
    }
}

#[inline]
pub fn write_string(w: &mut BytesMut, v: &str) {
    write_len(w, v.len());
    w.put_slice(v.as_bytes());
}

/// A ustring that may be null (length -1).
#[inline]
pub fn write_nullable_string(w: &mut BytesMut, v: Option<&str>) {
    match v {
        None => w.put_i32(-1),
        Some(s) => write_string(w, s),
    }
}

#[inline]
pub fn write_vec<T: Jute>(w: &mut BytesMut, v: &[T]) {
    write_len(w, v.len());
    for x in v {
        x.write(w);
    }
}

impl Jute for i32 {
    fn write(&self, w: &mut BytesMut) {
        write_i32(w, *self)
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i32()
    }
    const MIN_LEN: usize = 4;
}

impl Jute for i64 {
    fn write(&self, w: &mut BytesMut) {
        write_i64(w, *self)
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    const MIN_LEN: usize = 8;
}

impl Jute for bool {
    fn write(&self, w: &mut BytesMut) {
        write_bool(w, *self)
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    const MIN_LEN: usize = 1;
}

impl Jute for String {
    fn write(&self, w: &mut BytesMut) {
        write_string(w, self)
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_string()
    }
    const MIN_LEN: usize = 4;
}

impl Jute for Option<Bytes> {
    fn write(&self, w: &mut BytesMut) {
        write_buffer(w, self.as_deref())
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
    const MIN_LEN: usize = 4;
}

impl Jute for Option<String> {
    fn write(&self, w: &mut BytesMut) {
        write_nullable_string(w, self.as_deref())
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_nullable_string()
    }
    const MIN_LEN: usize = 4;
}

impl<T: Jute> Jute for Vec<T> {
    fn write(&self, w: &mut BytesMut) {
        write_vec(w, self)
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_vec()
    }
    const MIN_LEN: usize = 4;
}

/// Encodes a value into a fresh buffer.
pub fn to_bytes<T: Jute>(v: &T) -> Bytes {
    let mut w = BytesMut::new();
    v.write(&mut w);
    w.freeze()
}

/// Decodes exactly one value from `buf`; trailing bytes are an error.
pub fn from_bytes<T: Jute>(buf: Bytes, record: &'static str) -> Result<T, DecodeError> {
    let mut r = Reader::new(buf);
    let v = T::read(&mut r)?;
    r.finish(record)?;
    Ok(v)
}

/// Declares a jute record: the struct and its [`Jute`] impl, fields in wire order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn write(&self, w: &mut ::bytes::BytesMut) {
                $( $crate::jute::Jute::write(&self.$field, w); )*
            }
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader) -> Result<Self, $crate::DecodeError> {
                Ok($name { $($field: <$ty as $crate::jute::Jute>::read(r)?),* })
            }
            const MIN_LEN: usize = 0 $(+ <$ty as $crate::jute::Jute>::MIN_LEN)*;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    fn reader(s: &str) -> Reader {
        Reader::new(hex(s))
    }

    #[test]
    fn primitives_are_big_endian() {
        let mut r = reader("fffffffe 0000000000000100 01 00");
        assert_eq!(r.read_i32(), Ok(-2));
        assert_eq!(r.read_i64(), Ok(256));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.read_bool(), Ok(false));
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_primitives_are_errors() {
        assert_eq!(
            reader("000000").read_i32(),
            Err(DecodeError::Truncated {
                what: "int",
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            reader("00000000000000").read_i64(),
            Err(DecodeError::Truncated {
                what: "long",
                needed: 8,
                available: 7
            })
        );
        assert_eq!(
            reader("").read_bool(),
            Err(DecodeError::Truncated {
                what: "boolean",
                needed: 1,
                available: 0
            })
        );
    }

    #[test]
    fn lengths_beyond_the_frame_are_errors_before_any_allocation() {
        assert_eq!(
            reader("7fffffff 61").read_string(),
            Err(DecodeError::Truncated {
                what: "string",
                needed: i32::MAX as usize,
                available: 1
            })
        );
        assert_eq!(
            reader("00000002 61").read_buffer(),
            Err(DecodeError::Truncated {
                what: "buffer",
                needed: 2,
                available: 1
            })
        );
        assert!(matches!(
            reader("7fffffff 00000000").read_vec::<String>(),
            Err(DecodeError::Truncated { what: "vector", .. })
        ));
    }

    #[test]
    fn negative_lengths_other_than_minus_one_are_errors() {
        assert_eq!(
            reader("80000000").read_string(),
            Err(DecodeError::NegativeLength {
                what: "string",
                len: i32::MIN
            })
        );
        assert_eq!(
            reader("fffffffe").read_buffer(),
            Err(DecodeError::NegativeLength {
                what: "buffer",
                len: -2
            })
        );
        assert_eq!(
            reader("fffffffe").read_vec::<i32>(),
            Err(DecodeError::NegativeLength {
                what: "vector",
                len: -2
            })
        );
        assert_eq!(
            reader("fffffff0").read_nullable_string(),
            Err(DecodeError::NegativeLength {
                what: "string",
                len: -16
            })
        );
    }

    #[test]
    fn minus_one_is_null() {
        assert_eq!(reader("ffffffff").read_buffer(), Ok(None));
        assert_eq!(reader("ffffffff").read_string(), Ok(String::new()));
        assert_eq!(reader("ffffffff").read_nullable_string(), Ok(None));
        assert_eq!(reader("ffffffff").read_vec::<i64>(), Ok(Vec::new()));
    }

    #[test]
    fn vector_elements_that_run_out_are_an_error() {
        // Two longs announced, one present.
        assert!(matches!(
            reader("00000002 0000000000000001 00000000").read_vec::<i64>(),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            reader("00000002 0000000000000001 0000000000000002").read_vec::<i64>(),
            Ok(vec![1, 2])
        );
    }

    #[test]
    fn finish_reports_trailing_bytes() {
        let mut r = reader("00000001 0202");
        assert_eq!(r.read_i32(), Ok(1));
        assert_eq!(
            r.finish("thing"),
            Err(DecodeError::TrailingBytes {
                record: "thing",
                extra: 2
            })
        );
        assert_eq!(r.position(), 4);
        assert_eq!(r.take_rest(), hex("0202"));
        assert_eq!(r.finish("thing"), Ok(()));
    }

    #[test]
    fn from_bytes_rejects_trailing_bytes_and_to_bytes_round_trips() {
        assert_eq!(
            from_bytes::<i32>(hex("00000001 00"), "int"),
            Err(DecodeError::TrailingBytes {
                record: "int",
                extra: 1
            })
        );
        let v: Vec<Option<String>> = vec![None, Some(String::new()), Some("x".into())];
        assert_eq!(from_bytes::<Vec<Option<String>>>(to_bytes(&v), "v"), Ok(v));
    }
}
