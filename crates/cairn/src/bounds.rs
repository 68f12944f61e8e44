//! Key-range bounds shared by scans, transactions and the commit path: building them from a
//! prefix or any `RangeBounds`, borrowing them as byte slices, and recognising an empty range
//! before an ordered index is asked for it. A leaf: it depends only on `types` and `error`.

use std::ops::{Bound, RangeBounds};

use crate::error::{Error, Result};
use crate::types::Key;

/// The range of keys starting with `prefix`: `[prefix, successor(prefix))`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Key>, Bound<Key>) {
    let lower = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(Key::from_slice(prefix))
    };
    let mut successor = prefix.to_vec();
    while successor.last() == Some(&u8::MAX) {
        successor.pop();
    }
    let upper = match successor.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(Key::from_slice(&successor))
        }
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// Owned bounds from any `RangeBounds` over byte strings; a reversed range is an error.
pub(crate) fn owned_bounds<K: AsRef<[u8]>>(
    range: &impl RangeBounds<K>,
) -> Result<(Bound<Key>, Bound<Key>)> {
    let own = |bound: Bound<&K>| match bound {
        Bound::Included(key) => Bound::Included(Key::from_slice(key.as_ref())),
        Bound::Excluded(key) => Bound::Excluded(Key::from_slice(key.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    };
    let lower = own(range.start_bound());
    let upper = own(range.end_bound());
    if let (
        Bound::Included(start) | Bound::Excluded(start),
        Bound::Included(end) | Bound::Excluded(end),
    ) = (&lower, &upper)
    {
        if start > end {
            return Err(Error::InvalidArgument(format!(
                "range start {start:?} is after its end {end:?}"
            )));
        }
    }
    Ok((lower, upper))
}

pub(crate) fn as_slice_bound(bound: &Bound<Key>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_bytes()),
        Bound::Excluded(key) => Bound::Excluded(key.as_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// True when no key can lie between the bounds (so a range call must not be made: ordered
/// collections panic on some of these).
pub(crate) fn bounds_are_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(start), Bound::Included(end)) => start > end,
        (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
        | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefix() {
        let (lower, upper) = prefix_bounds(b"ab");
        assert_eq!(lower, Bound::Included(Key::from("ab")));
        assert_eq!(upper, Bound::Excluded(Key::from("ac")));
        let (_, upper) = prefix_bounds(&[b'a', 0xff, 0xff]);
        assert_eq!(upper, Bound::Excluded(Key::from_slice(b"b")));
        let (lower, upper) = prefix_bounds(&[0xff]);
        assert_eq!(lower, Bound::Included(Key::from_slice(&[0xff])));
        assert_eq!(upper, Bound::Unbounded);
        assert_eq!(prefix_bounds(b""), (Bound::Unbounded, Bound::Unbounded));
    }

    #[test]
    fn empty_and_reversed_bounds_are_recognised() {
        let a: &[u8] = b"a";
        let b: &[u8] = b"b";
        assert!(bounds_are_empty(Bound::Included(b), Bound::Included(a)));
        assert!(bounds_are_empty(Bound::Excluded(a), Bound::Excluded(a)));
        assert!(bounds_are_empty(Bound::Included(a), Bound::Excluded(a)));
        assert!(!bounds_are_empty(Bound::Included(a), Bound::Included(a)));
        assert!(!bounds_are_empty(Bound::Unbounded, Bound::Excluded(a)));
        assert!(owned_bounds(&(b"b".as_slice()..b"a".as_slice())).is_err());
        assert!(owned_bounds(&(b"a".as_slice()..b"a".as_slice())).is_ok());
    }
}
