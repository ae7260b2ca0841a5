//! Bytes received from one peer, split into NUL-terminated strings as they complete.
//!
//! attr0 has no length prefixes: a string ends at its NUL. Requests may arrive one byte at a time, so
//! the buffer remembers where it stopped looking for a NUL and never searches the same byte twice.
//! It trusts nothing about its input except that it arrives in order; a string longer than the
//! configured bound is an error for the caller to act on (Postfix itself has no bound, spec §1.5).

use std::collections::VecDeque;

/// A string grew past the configured bound before its NUL arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringTooLong {
    pub limit: usize,
}

/// Spare room kept at the end of the buffer for the next read.
const READ_CHUNK: usize = 4096;

#[derive(Debug)]
pub struct AttrInput {
    buf: Vec<u8>,
    /// Offset of the first byte not yet consumed.
    start: usize,
    /// Offsets of the NULs that end complete, unconsumed strings.
    ends: VecDeque<usize>,
    /// Bytes before this offset have been searched for NULs.
    searched: usize,
    max_string: usize,
}

impl AttrInput {
    /// `max_string` bounds one name or value, NUL excluded.
    pub fn new(max_string: usize) -> Self {
        Self { buf: Vec::new(), start: 0, ends: VecDeque::new(), searched: 0, max_string }
    }

    /// Appends bytes as if they had been read.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), StringTooLong> {
        self.buf.extend_from_slice(bytes);
        self.split_new_bytes()
    }

    /// Lets `read` fill spare room at the end of the buffer, then splits what it read.
    /// `read` returns the number of bytes it wrote, as `read(2)` does.
    pub fn fill<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Result<usize, StringTooLong>, E> {
        self.compact();
        let old_len = self.buf.len();
        self.buf.resize(old_len + READ_CHUNK, 0);
        let result = read(&mut self.buf[old_len..]);
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old_len + n);
        let n = result?;
        Ok(self.split_new_bytes().map(|()| n))
    }

    /// The `index`-th complete string not yet consumed, without its NUL.
    pub fn string(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let begin = if index == 0 { self.start } else { self.ends[index - 1] + 1 };
        Some(&self.buf[begin..end])
    }

    /// Number of complete strings available.
    pub fn complete_strings(&self) -> usize {
        self.ends.len()
    }

    /// Bytes received after the last complete string.
    pub fn partial_len(&self) -> usize {
        self.buf.len() - self.ends.back().map_or(self.start, |end| end + 1)
    }

    /// True when no byte at all is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Drops the first `count` complete strings.
    pub fn consume(&mut self, count: usize) {
        debug_assert!(count <= self.ends.len());
        if count == 0 {
            return;
        }
        self.start = self.ends[count - 1] + 1;
        self.ends.drain(..count);
        if self.is_empty() {
            self.clear();
        }
    }

    /// Drops every waiting byte (complete or not).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.start = 0;
        self.searched = 0;
    }

    /// Drops the first waiting byte, whatever it is.
    pub fn consume_byte(&mut self) -> Option<u8> {
        let byte = *self.buf.get(self.start)?;
        if self.ends.front() == Some(&self.start) {
            self.ends.pop_front();
        }
        self.start += 1;
        if self.is_empty() {
            self.clear();
        }
        Some(byte)
    }

    fn split_new_bytes(&mut self) -> Result<(), StringTooLong> {
        let mut from = self.searched;
        while let Some(pos) = self.buf[from..].iter().position(|&b| b == 0) {
            let nul = from + pos;
            let begin = self.ends.back().map_or(self.start, |end| end + 1);
            if nul - begin > self.max_string {
                return Err(StringTooLong { limit: self.max_string });
            }
            self.ends.push_back(nul);
            from = nul + 1;
        }
        self.searched = self.buf.len();
        if self.partial_len() > self.max_string {
            return Err(StringTooLong { limit: self.max_string });
        }
        Ok(())
    }

    /// Moves unconsumed bytes to the front once they are outnumbered by consumed ones.
    fn compact(&mut self) {
        if self.start == 0 || self.start < self.buf.len() - self.start {
            return;
        }
        let shift = self.start;
        self.buf.drain(..shift);
        for end in &mut self.ends {
            *end -= shift;
        }
        self.searched -= shift;
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(input: &AttrInput) -> Vec<Vec<u8>> {
        (0..input.complete_strings()).map(|i| input.string(i).unwrap().to_vec()).collect()
    }

    #[test]
    fn splits_at_nuls_across_pushes() {
        let mut input = AttrInput::new(64);
        input.push(b"requ").unwrap();
        assert_eq!(input.complete_strings(), 0);
        assert_eq!(input.partial_len(), 4);
        input.push(b"est\0find_endp\0\0la").unwrap();
        assert_eq!(strings(&input), vec![b"request".to_vec(), b"find_endp".to_vec(), vec![]]);
        assert_eq!(input.partial_len(), 2);
        input.consume(2);
        assert_eq!(strings(&input), vec![Vec::<u8>::new()]);
        input.consume(1);
        assert_eq!(input.partial_len(), 2);
        assert!(!input.is_empty());
    }

    #[test]
    fn bounds_each_string() {
        let mut input = AttrInput::new(4);
        input.push(b"abcd\0").unwrap();
        assert_eq!(input.push(b"abcde"), Err(StringTooLong { limit: 4 }));
        let mut input = AttrInput::new(4);
        assert_eq!(input.push(b"abcdef\0"), Err(StringTooLong { limit: 4 }));
    }

    #[test]
    fn fill_reads_into_spare_room_and_compacts() {
        let mut input = AttrInput::new(64);
        for _ in 0..3 {
            let n = input
                .fill(|room| {
                    room[..6].copy_from_slice(b"dummy\0");
                    Ok::<_, ()>(6)
                })
                .unwrap()
                .unwrap();
            assert_eq!(n, 6);
            assert_eq!(input.string(0), Some(&b"dummy"[..]));
            input.consume(1);
            assert!(input.is_empty());
        }
    }

    #[test]
    fn consume_byte_keeps_string_offsets_right() {
        let mut input = AttrInput::new(64);
        input.push(b"\0ab\0c").unwrap();
        assert_eq!(input.consume_byte(), Some(0));
        assert_eq!(strings(&input), vec![b"ab".to_vec()]);
        assert_eq!(input.consume_byte(), Some(b'a'));
        assert_eq!(strings(&input), vec![b"b".to_vec()]);
        assert_eq!(input.partial_len(), 1);
    }
}
