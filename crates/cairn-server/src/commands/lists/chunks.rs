//! A list's chunks, as the list commands read and change them.
//!
//! A list's elements are held in chunks ([`ListChunk`]), each an element record keyed by its
//! chunk id (8 bytes, big-endian). The header's `head` is the first chunk's id and `tail` the
//! id after the last; every id between is a chunk, and none is empty. A push at an end adds
//! to the chunk there until it is full ([`keyspace::LIST_CHUNK_ELEMENTS`],
//! [`keyspace::LIST_CHUNK_BYTES`]), then starts a new one; a pop takes from the chunk at its
//! end and drops it once empty. So either end is one record and the header, however many
//! elements a command pushes, and several pushes in one commit rewrite that record once.
//!
//! Finding the element at an index walks the chunks' counts from the nearer end: O(n / 32)
//! record reads, where Redis's own `LINDEX` walks its nodes too. An edit in the middle
//! rewrites the chunks from the first one it changes to the tail ([`rewrite_from`]).

use std::ops::Bound;

use super::super::collection::Opened;
use super::super::{Ctx, Writes};
use crate::keyspace::{chunk_count, chunk_elements, ListChunk};
use crate::resp::Reply;

/// The engine key of chunk `id` of an opened list.
pub(super) fn chunk_key(opened: &Opened, db: u8, id: u64) -> Vec<u8> {
    opened.member_key(db, &id.to_be_bytes())
}

/// The error for a chunk that is not where the header says, or does not decode.
pub(super) fn damaged() -> Reply {
    Reply::err("cairn: a list chunk is damaged or missing")
}

fn too_long() -> Reply {
    Reply::err("cairn: a list element is longer than 4 GiB")
}

/// The chunk id at the end of `key`, an element record's engine key.
fn id_of(key: &[u8]) -> Option<u64> {
    key.last_chunk::<8>().map(|id| u64::from_be_bytes(*id))
}

/// The chunks one command changes at a list's ends: each read once, changed in memory, and
/// written back (or deleted, once empty) by [`Chunks::write`].
#[derive(Default)]
pub(super) struct Chunks {
    /// Chunk id, the chunk, whether it changed, and its engine key once built.
    loaded: Vec<(u64, ListChunk, bool, Option<Vec<u8>>)>,
}

impl Chunks {
    /// Chunk `id`, read on first use.
    fn load(&mut self, ctx: &Ctx<'_>, opened: &Opened, id: u64) -> Result<usize, Reply> {
        if let Some(at) = self.loaded.iter().position(|(loaded, ..)| *loaded == id) {
            return Ok(at);
        }
        let key = chunk_key(opened, ctx.client.db, id);
        let value = ctx.element(&key)?.ok_or_else(damaged)?;
        let chunk = ListChunk::decode(value.as_bytes()).ok_or_else(damaged)?;
        self.loaded.push((id, chunk, false, Some(key)));
        Ok(self.loaded.len() - 1)
    }

    /// Adds a new chunk under `id`, in place of an emptied one there.
    fn put_new(&mut self, id: u64, chunk: ListChunk) {
        self.loaded.retain(|(loaded, ..)| *loaded != id);
        self.loaded.push((id, chunk, true, None));
    }

    /// Puts `element` at the head (`left`) or the tail of the list.
    pub(super) fn push(
        &mut self,
        ctx: &Ctx<'_>,
        opened: &mut Opened,
        left: bool,
        element: &[u8],
    ) -> Result<(), Reply> {
        let header = &mut opened.header;
        if header.count > 0 {
            let id = if left {
                header.head
            } else {
                header.tail.checked_sub(1).ok_or_else(damaged)?
            };
            let at = self.load(ctx, opened, id)?;
            let header = &mut opened.header;
            if let Some((_, chunk, changed, _)) = self.loaded.get_mut(at) {
                if chunk.has_room_for(element) {
                    let pushed = if left {
                        chunk.push_front(element)
                    } else {
                        chunk.push_back(element)
                    };
                    if !pushed {
                        return Err(too_long());
                    }
                    *changed = true;
                    header.count += 1;
                    return Ok(());
                }
            }
        }
        let header = &mut opened.header;
        let id = if left {
            header.head = header
                .head
                .checked_sub(1)
                .ok_or_else(|| Reply::err("cairn: the list has no room at its head"))?;
            header.head
        } else {
            let id = header.tail;
            header.tail = id
                .checked_add(1)
                .ok_or_else(|| Reply::err("cairn: the list has no room at its tail"))?;
            id
        };
        self.put_new(id, ListChunk::of([element]).ok_or_else(too_long)?);
        header.count += 1;
        Ok(())
    }

    /// Takes the element at the head (`left`) or the tail of a non-empty list.
    pub(super) fn pop(
        &mut self,
        ctx: &Ctx<'_>,
        opened: &mut Opened,
        left: bool,
    ) -> Result<Vec<u8>, Reply> {
        debug_assert!(opened.header.count > 0, "a pop from an empty list");
        let header = &opened.header;
        let id = if left {
            header.head
        } else {
            header.tail.checked_sub(1).ok_or_else(damaged)?
        };
        let at = self.load(ctx, opened, id)?;
        let (_, chunk, changed, _) = self.loaded.get_mut(at).ok_or_else(damaged)?;
        let element = if left {
            chunk.pop_front()
        } else {
            chunk.pop_back()
        }
        .ok_or_else(damaged)?;
        *changed = true;
        let header = &mut opened.header;
        if chunk.count() == 0 {
            if left {
                header.head += 1;
            } else {
                header.tail -= 1;
            }
        }
        header.count -= 1;
        Ok(element)
    }

    /// Writes every changed chunk into `batch`, and deletes every emptied one.
    pub(super) fn write(self, ctx: &Ctx<'_>, opened: &Opened, batch: &mut Writes) {
        for (id, chunk, changed, key) in self.loaded {
            if !changed {
                continue;
            }
            let key = key.unwrap_or_else(|| chunk_key(opened, ctx.client.db, id));
            if chunk.count() == 0 {
                batch.delete(key);
            } else {
                batch.put(key, chunk.as_bytes());
            }
        }
    }
}

/// One stored chunk as a read finds it: its id, the index (from the head) of its first
/// element, and its record.
pub(super) struct Found {
    pub(super) id: u64,
    pub(super) start: u64,
    pub(super) value: cairn::Value,
}

impl Found {
    /// The chunk's elements; an error if it is damaged.
    pub(super) fn elements(&self) -> Result<Vec<&[u8]>, Reply> {
        chunk_elements(self.value.as_bytes()).ok_or_else(damaged)
    }
}

/// Calls `each` on the chunks of an opened list, head to tail (`forward`) or tail to head,
/// until it returns `false`.
pub(super) fn walk(
    ctx: &Ctx<'_>,
    opened: &Opened,
    forward: bool,
    mut each: impl FnMut(Found) -> Result<bool, Reply>,
) -> Result<(), Reply> {
    let header = &opened.header;
    if header.count == 0 {
        return Ok(());
    }
    let db = ctx.client.db;
    let lower = Bound::Included(chunk_key(opened, db, header.head));
    let upper = Bound::Excluded(chunk_key(opened, db, header.tail));
    // The index of the next chunk's first element (forward), or one past its last.
    let mut edge = if forward { 0 } else { header.count };
    let mut failed = None;
    let mut visit = |key: &[u8], value: &cairn::Value| {
        let mut step = || -> Result<bool, Reply> {
            let id = id_of(key).ok_or_else(damaged)?;
            let count = u64::from(chunk_count(value.as_bytes()).ok_or_else(damaged)?);
            let start = if forward {
                edge
            } else {
                edge.checked_sub(count).ok_or_else(damaged)?
            };
            edge = if forward { edge + count } else { start };
            each(Found {
                id,
                start,
                value: value.clone(),
            })
        };
        step().unwrap_or_else(|error| {
            failed = Some(error);
            false
        })
    };
    if forward {
        ctx.scan(lower, upper, &mut visit)?;
    } else {
        ctx.scan_rev(lower, upper, &mut visit)?;
    }
    failed.map_or(Ok(()), Err)
}

/// The chunks holding indexes `first..=last` of an opened list (`last` below its count), head
/// first, read from the nearer end.
pub(super) fn covering(
    ctx: &Ctx<'_>,
    opened: &Opened,
    first: u64,
    last: u64,
) -> Result<Vec<Found>, Reply> {
    debug_assert!(first <= last && last < opened.header.count);
    let forward = first <= opened.header.count - 1 - last;
    let mut found = Vec::new();
    walk(ctx, opened, forward, |chunk| {
        let count = u64::from(chunk_count(chunk.value.as_bytes()).unwrap_or(0));
        let end = chunk.start + count;
        let more = if forward {
            end <= last
        } else {
            chunk.start > first
        };
        if end > first && chunk.start <= last {
            found.push(chunk);
        }
        Ok(more)
    })?;
    if !forward {
        found.reverse();
    }
    Ok(found)
}

/// The chunk holding index `index` (below the list's count).
pub(super) fn locate(ctx: &Ctx<'_>, opened: &Opened, index: u64) -> Result<Found, Reply> {
    covering(ctx, opened, index, index)?
        .pop()
        .ok_or_else(damaged)
}

/// Replaces the list from chunk `from` on (a chunk of the list whose first element is at
/// index `start`) with `elements`, packed into full chunks with ids from `from` up, and
/// deletes the old chunks past them; the header's tail and count follow.
pub(super) fn rewrite_from(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    from: u64,
    start: u64,
    elements: &[&[u8]],
    batch: &mut Writes,
) -> Result<(), Reply> {
    let db = ctx.client.db;
    let mut id = from;
    let mut chunk: Option<ListChunk> = None;
    let room = || Reply::err("cairn: the list has no room at its tail");
    for element in elements {
        match &mut chunk {
            Some(open) if open.has_room_for(element) => {
                if !open.push_back(element) {
                    return Err(too_long());
                }
            }
            _ => {
                if let Some(full) = chunk.take() {
                    batch.put(chunk_key(opened, db, id), full.as_bytes());
                    id = id.checked_add(1).ok_or_else(room)?;
                }
                chunk = Some(ListChunk::of([*element]).ok_or_else(too_long)?);
            }
        }
    }
    if let Some(last) = chunk {
        batch.put(chunk_key(opened, db, id), last.as_bytes());
        id = id.checked_add(1).ok_or_else(room)?;
    }
    for stale in id..opened.header.tail {
        batch.delete(chunk_key(opened, db, stale));
    }
    let header = &mut opened.header;
    header.tail = id;
    header.count = start + u64::try_from(elements.len()).map_err(|_| room())?;
    if header.count == 0 {
        header.tail = header.head;
    }
    Ok(())
}

/// Keeps indexes `first..=last` (below the count) of an opened list and drops the rest:
/// whole chunks outside them are deleted unread, and the two chunks at the edges rewritten.
pub(super) fn trim(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    first: u64,
    last: u64,
    batch: &mut Writes,
) -> Result<(), Reply> {
    let db = ctx.client.db;
    let low = locate(ctx, opened, first)?;
    let high = locate(ctx, opened, last)?;
    let header = opened.header;
    for id in (header.head..low.id).chain(high.id + 1..header.tail) {
        batch.delete(chunk_key(opened, db, id));
    }
    let keep = |chunk: &Found, from: u64, to: u64| -> Result<ListChunk, Reply> {
        let elements = chunk.elements()?;
        let kept = elements
            .iter()
            .enumerate()
            .filter(|(at, _)| {
                let index = chunk.start + u64::try_from(*at).unwrap_or(u64::MAX);
                (from..=to).contains(&index)
            })
            .map(|(_, element)| *element);
        ListChunk::of(kept).ok_or_else(damaged)
    };
    if low.id == high.id {
        batch.put(
            chunk_key(opened, db, low.id),
            keep(&low, first, last)?.as_bytes(),
        );
    } else {
        batch.put(
            chunk_key(opened, db, low.id),
            keep(&low, first, u64::MAX)?.as_bytes(),
        );
        batch.put(
            chunk_key(opened, db, high.id),
            keep(&high, 0, last)?.as_bytes(),
        );
    }
    let header = &mut opened.header;
    header.head = low.id;
    header.tail = high.id + 1;
    header.count = last - first + 1;
    Ok(())
}

/// Every element of an opened list, head first, with the chunks that hold them.
pub(super) fn all(ctx: &Ctx<'_>, opened: &Opened) -> Result<Vec<Found>, Reply> {
    let mut found = Vec::new();
    walk(ctx, opened, true, |chunk| {
        found.push(chunk);
        Ok(true)
    })?;
    let held: u64 = found
        .iter()
        .map(|chunk| u64::from(chunk_count(chunk.value.as_bytes()).unwrap_or(0)))
        .sum();
    if held != opened.header.count {
        return Err(Reply::err(
            "cairn: the list's chunks do not match its header",
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use crate::keyspace::{ListChunk, LIST_CHUNK_BYTES, LIST_CHUNK_ELEMENTS};

    #[test]
    fn a_chunk_edits_as_a_deque_does() {
        let mut model = std::collections::VecDeque::from([b"seed".to_vec()]);
        let mut chunk = ListChunk::of([&b"seed"[..]]).expect("a chunk");
        let mut state = 0x9e37_79b9_u64;
        for step in 0..2_000_u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let element = vec![u8::try_from(step % 251).expect("small"); (state >> 60) as usize];
            match (state >> 33) % 5 {
                0 => {
                    assert!(chunk.push_front(&element));
                    model.push_front(element);
                }
                1 => {
                    assert!(chunk.push_back(&element));
                    model.push_back(element);
                }
                2 => assert_eq!(chunk.pop_front(), model.pop_front()),
                3 => assert_eq!(chunk.pop_back(), model.pop_back()),
                _ => {
                    let index = (state >> 40) as usize % (model.len() + 1);
                    assert_eq!(chunk.set(index, &element), index < model.len());
                    if let Some(slot) = model.get_mut(index) {
                        *slot = element;
                    }
                }
            }
            assert_eq!(chunk.count() as usize, model.len());
            assert_eq!(
                chunk.elements(),
                model.iter().map(Vec::as_slice).collect::<Vec<_>>()
            );
            if !model.is_empty() {
                assert_eq!(ListChunk::decode(chunk.as_bytes()).as_ref(), Some(&chunk));
            }
        }
    }

    #[test]
    fn a_chunk_fills_to_its_limits() {
        let mut chunk = ListChunk::of([&b"a"[..]]).expect("a chunk");
        let mut count = 1;
        while chunk.has_room_for(b"a") {
            assert!(chunk.push_back(b"a"));
            count += 1;
        }
        assert_eq!(count, LIST_CHUNK_ELEMENTS);
        let big = vec![7_u8; LIST_CHUNK_BYTES];
        let alone = ListChunk::of([&big[..]]).expect("an element over the limit alone");
        assert!(!alone.has_room_for(b""));
        assert_eq!(alone.count(), 1);
    }
}
