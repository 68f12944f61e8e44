//! Little-endian binary encoding shared by every stored record: fixed-width integers and
//! length-prefixed byte strings. The reader never panics: a short or malformed input is an
//! [`Error::Corrupt`](crate::Error::Corrupt) naming the record.

use crate::error::{Error, Result};

/// Appends fields to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(capacity),
        }
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A byte string with a u32 length. Callers bound every length far below `u32::MAX`.
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(v);
        self
    }
    pub(crate) fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).bytes(v),
        }
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { rest: bytes, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| Error::corrupt(self.what, "truncated"))?;
        self.rest = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        let b = self.take(1)?;
        b.first()
            .copied()
            .ok_or_else(|| Error::corrupt(self.what, "truncated"))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let arr: [u8; 8] = b
            .try_into()
            .map_err(|_| Error::corrupt(self.what, "truncated"))?;
        Ok(u64::from_le_bytes(arr))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        let arr: [u8; 4] = b
            .try_into()
            .map_err(|_| Error::corrupt(self.what, "truncated"))?;
        Ok(u32::from_le_bytes(arr))
    }
    pub(crate) fn array32(&mut self) -> Result<[u8; 32]> {
        let b = self.take(32)?;
        b.try_into()
            .map_err(|_| Error::corrupt(self.what, "truncated"))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()?;
        let len = usize::try_from(len).map_err(|_| Error::corrupt(self.what, "length"))?;
        self.take(len)
    }
    pub(crate) fn string(&mut self) -> Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::corrupt(self.what, "not UTF-8"))
    }
    pub(crate) fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(Error::corrupt(self.what, "bad option tag")),
        }
    }
    /// A count that must be satisfiable by the remaining bytes (each item at least
    /// `min_item_bytes`), so a forged count never drives a huge allocation.
    pub(crate) fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = usize::try_from(self.u32()?).map_err(|_| Error::corrupt(self.what, "count"))?;
        if n.saturating_mul(min_item_bytes.max(1)) > self.rest.len() {
            return Err(Error::corrupt(self.what, "count past the end"));
        }
        Ok(n)
    }
    pub(crate) fn end(&self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::corrupt(self.what, "trailing bytes"))
        }
    }
}
