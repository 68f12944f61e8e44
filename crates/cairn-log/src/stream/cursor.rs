//! Replay cursors: [`Cursor`] reads a stream from a starting point to its head in bounded
//! batches, then follows the tail.
//!
//! Guarantees: a cursor yields every readable message from its start in offset order, each
//! once, with no gap it does not report: messages truncated away under it (by
//! `truncate_before` or retention) are either a typed [`StreamError::Truncated`] naming its
//! position and the new first offset ([`Truncation::Error`], the default; the cursor stays
//! where it is until [`Cursor::seek`]) or skipped, counted in [`Cursor::skipped`]
//! ([`Truncation::Skip`]). Messages already fetched into its batch are yielded even if they
//! were truncated since. A read fetches at most `batch_messages` messages and `batch_bytes`
//! bytes (the first message whatever its size), so memory per cursor is bounded by one
//! batch. [`Cursor::next_blocking`] waits on the stream's notifier, as
//! `Streams::read_blocking` does: the waiting thread reads the messages itself, nothing is
//! handed between threads per message. A cursor holds the store, not the stream: it finds
//! its stream by name at each read (so a stream released while idle reopens), and ends with
//! [`StreamError::NotFound`] once its stream is deleted, even if one of the same name is
//! created again.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::codec::BATCH_MESSAGES_MAX;
use super::error::StreamError;
use super::single::{StoredMessage, Stream};
use super::{deadline, Shared};

/// Default bound on the messages a cursor fetches per read.
pub const CURSOR_BATCH_MESSAGES_DEFAULT: usize = 1_000;
/// Default bound on the payload bytes a cursor fetches per read: 1 MiB.
pub const CURSOR_BATCH_BYTES_DEFAULT: usize = 1 << 20;

/// Where a cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At this offset (below the first readable offset: see [`Truncation`]).
    Offset(u64),
    /// At the first message stamped at or after this time (milliseconds since the Unix
    /// epoch); at the stream's end when every message is older.
    Time(u64),
}

/// What a cursor does when the messages at its position were truncated away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Truncation {
    /// Return [`StreamError::Truncated`] (position and first readable offset) and stay: the
    /// caller decides ([`Cursor::seek`] to the first offset to go on).
    #[default]
    Error,
    /// Move to the first readable offset and count the skipped offsets.
    Skip,
}

/// A replay cursor over one stream; see the module documentation. Created by
/// `Streams::cursor`.
#[derive(Debug)]
pub struct Cursor {
    shared: Arc<Shared>,
    name: String,
    stream_id: u64,
    position: u64,
    batch: VecDeque<StoredMessage>,
    batch_messages: usize,
    batch_bytes: usize,
    truncation: Truncation,
    skipped: u64,
}

impl Cursor {
    /// A cursor on `stream` at `start`.
    pub(super) fn new(
        shared: Arc<Shared>,
        stream: &Stream,
        name: &str,
        start: Start,
    ) -> Result<Cursor, StreamError> {
        let position = match start {
            Start::Offset(offset) => offset,
            Start::Time(timestamp_ms) => match stream.seek_time(timestamp_ms)? {
                Some(offset) => offset,
                None => stream.info().next_offset,
            },
        };
        Ok(Cursor {
            shared,
            name: name.to_owned(),
            stream_id: stream.id(),
            position,
            batch: VecDeque::new(),
            batch_messages: CURSOR_BATCH_MESSAGES_DEFAULT,
            batch_bytes: CURSOR_BATCH_BYTES_DEFAULT,
            truncation: Truncation::Error,
            skipped: 0,
        })
    }

    /// Bounds each read to `messages` (1 to [`BATCH_MESSAGES_MAX`], clamped) and `bytes`
    /// of payload (the first message of a read is returned whatever its size).
    #[must_use]
    pub fn with_batch(mut self, messages: usize, bytes: usize) -> Self {
        self.batch_messages = messages.clamp(1, BATCH_MESSAGES_MAX);
        self.batch_bytes = bytes;
        self
    }

    /// Chooses what happens when messages are truncated under the cursor.
    #[must_use]
    pub fn with_truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = truncation;
        self
    }

    /// The offset of the next message the cursor yields.
    pub fn position(&self) -> u64 {
        self.batch.front().map_or(self.position, |next| next.offset)
    }

    /// Offsets skipped because they were truncated ([`Truncation::Skip`]).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Moves the cursor to `offset`, dropping what it fetched.
    pub fn seek(&mut self, offset: u64) {
        self.batch.clear();
        self.position = offset;
    }

    /// The next message, `None` at the head of the stream (call again later, or use
    /// [`Cursor::next_blocking`] to wait).
    pub fn next_message(&mut self) -> Result<Option<StoredMessage>, StreamError> {
        if self.batch.is_empty() {
            let stream = self.stream()?;
            self.fill(&stream)?;
        }
        Ok(self.batch.pop_front())
    }

    /// Up to one batch of messages (the cursor's bounds), empty at the head.
    pub fn next_batch(&mut self) -> Result<Vec<StoredMessage>, StreamError> {
        if self.batch.is_empty() {
            let stream = self.stream()?;
            return self.fetch(&stream);
        }
        Ok(self.batch.drain(..).collect())
    }

    /// The next message, waiting up to `timeout` at the head of the stream for one to be
    /// appended; `None` when none came. `LogError::Closed` (in [`StreamError::Log`]) when the
    /// store closes meanwhile, `NotFound` when the stream is deleted.
    pub fn next_blocking(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, StreamError> {
        let deadline = deadline(timeout)?;
        loop {
            if let Some(message) = self.batch.pop_front() {
                return Ok(Some(message));
            }
            if self.shared.closed.load(Ordering::SeqCst) {
                return Err(crate::error::LogError::Closed.into());
            }
            let stream = self.stream()?;
            self.fill(&stream)?;
            if !self.batch.is_empty() {
                continue;
            }
            if !stream.wait_readable(self.position, deadline, &self.shared.closed) {
                return Ok(None);
            }
        }
    }

    /// The cursor's stream, if it is still the one the cursor was created on.
    fn stream(&self) -> Result<Arc<Stream>, StreamError> {
        let not_found = || StreamError::NotFound {
            name: self.name.clone(),
        };
        let stream = match self.shared.get(&self.name) {
            Ok(stream) => stream,
            Err(StreamError::NotFound { .. }) => return Err(not_found()),
            Err(error) => return Err(error),
        };
        if stream.id() != self.stream_id || stream.is_deleted() {
            return Err(not_found());
        }
        Ok(stream)
    }

    /// Reads the next batch from the position; applies the truncation policy when the
    /// position is below the first readable offset.
    fn fill(&mut self, stream: &Stream) -> Result<(), StreamError> {
        let read = self.fetch(stream)?;
        self.batch.extend(read);
        Ok(())
    }

    /// Reads the next batch from the position, which moves past it.
    fn fetch(&mut self, stream: &Stream) -> Result<Vec<StoredMessage>, StreamError> {
        let read = stream.read_range(self.position, self.batch_messages, self.batch_bytes)?;
        // Offsets are dense: a first message past the position, or nothing while the first
        // readable offset is past it, means the messages at the position were truncated.
        let first_offset = match read.first() {
            Some(first) => first.offset,
            None => stream.info().first_offset,
        };
        if first_offset > self.position {
            match self.truncation {
                Truncation::Error => {
                    return Err(StreamError::Truncated {
                        offset: self.position,
                        first_offset,
                    })
                }
                Truncation::Skip => {
                    self.skipped = self.skipped.saturating_add(first_offset - self.position);
                    self.position = first_offset;
                }
            }
        }
        if let Some(last) = read.last() {
            self.position = last.offset.saturating_add(1);
        }
        Ok(read)
    }
}

impl Iterator for Cursor {
    type Item = Result<StoredMessage, StreamError>;

    /// The next message up to the head of the stream (`None` there; a later call may yield
    /// messages appended meanwhile).
    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}
