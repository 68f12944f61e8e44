//! The `KeyValueStore` trait: one async API in front of every backend.
//!
//! Semantics every backend keeps (the conformance suite in `tests/conformance` checks each):
//! - Every call works inside one [`Scope`]; nothing one scope does is visible from another.
//! - Keys are 1 to [`KEY_BYTES_MAX`] bytes, values up to [`VALUE_BYTES_MAX`] bytes, both any
//!   bytes. Bad input is refused with a typed error before anything is written.
//! - `put` replaces the value and clears any TTL; `increment` and `decrement` keep the TTL;
//!   `cas` writes like `put`.
//! - `multi_put` and `clear_prefix` are atomic: another caller sees all of it or none of it.
//! - An expired key is absent to every call at once, and the backend reclaims it later.
//! - `list` returns keys in byte order; `list_page` returns them a bounded page at a time,
//!   resuming after the last key of the previous page. `delete` of an absent key is not an
//!   error.
//! - Watchers see the writes made through the store, in commit order per scope, with a
//!   bounded buffer: one that falls behind receives [`KvEvent::Lagged`] with the number of
//!   events it lost (Redis, after a lost subscription is re-established, sends `Lagged(1)`
//!   meaning "some may have been lost"). A watcher never slows a writer. Expiry is not an
//!   event. `refresh_ttl` is reported as a `Put` of the unchanged value by Cairn and
//!   `SQLite`, and not at all by Redis (`PEXPIRE` is not a write there).
//!
//! The futures are `Send`, so a store can be used from any tokio task. The trait uses
//! `async fn`-style methods without boxing; code that must choose a backend at run time uses
//! [`AnyStore`](crate::AnyStore), which [`open`](crate::open) returns for a URL.

use std::future::Future;
use std::time::Duration;

use crate::error::{KvError, KvResult};
use crate::limits::{
    KEY_BYTES_MAX, LIST_PAGE_KEYS_MAX, MULTI_ENTRIES_MAX, TTL_MILLIS_MAX, TTL_MILLIS_MIN,
    VALUE_BYTES_MAX,
};
use crate::scope::Scope;
use crate::watch::KvWatcher;

/// A key's time to live, as `get_ttl` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvTtl {
    /// The key holds no live value.
    Absent,
    /// The key never expires.
    Persistent,
    /// The key expires after this long (millisecond resolution).
    Expires(Duration),
}

/// One page of [`KeyValueStore::list_page`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Live keys, in byte order, at most the `limit` asked for.
    pub keys: Vec<Vec<u8>>,
    /// `Some(last key of this page)` when more keys follow: pass it as `start_after` to get
    /// the next page. `None` when this page ends the listing.
    pub next: Option<Vec<u8>>,
}

impl Page {
    /// The page of `keys` (sorted, each after `start_after`) when `limit` were asked for and
    /// `keys` holds up to `limit + 1`: the extra one only tells that more follow.
    pub fn from_sorted(mut keys: Vec<Vec<u8>>, limit: usize) -> Self {
        debug_assert!(keys.is_sorted_by(|a, b| a < b));
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = if more { keys.last().cloned() } else { None };
        Page { keys, next }
    }
}

/// What a backend reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// The backend's name: `cairn`, `sqlite` or `redis`.
    pub backend: &'static str,
    /// Keys the backend holds across all scopes. It may count expired keys not yet
    /// reclaimed; for Redis it counts every key in the database.
    pub keys: u64,
    /// Backend-specific figures, by name (WAL syncs, purged rows, cluster nodes, ...).
    pub details: Vec<(String, u64)>,
}

/// The async key-value API every backend implements. See the module docs for the semantics.
pub trait KeyValueStore: Send + Sync {
    /// The value of `key`, or `None`.
    fn get(
        &self,
        scope: &Scope,
        key: &[u8],
    ) -> impl Future<Output = KvResult<Option<Vec<u8>>>> + Send;

    /// Sets `key` to `value`, clearing any TTL.
    fn put(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
    ) -> impl Future<Output = KvResult<()>> + Send;

    /// Deletes `key`; true when it held a live value. Deleting an absent key is not an error.
    fn delete(&self, scope: &Scope, key: &[u8]) -> impl Future<Output = KvResult<bool>> + Send;

    /// True when `key` holds a live value.
    fn exists(&self, scope: &Scope, key: &[u8]) -> impl Future<Output = KvResult<bool>> + Send;

    /// Every live key starting with `prefix` (empty: the whole scope), in byte order.
    fn list(
        &self,
        scope: &Scope,
        prefix: &[u8],
    ) -> impl Future<Output = KvResult<Vec<Vec<u8>>>> + Send;

    /// At most `limit` (1 to [`LIST_PAGE_KEYS_MAX`]) live keys starting with `prefix`, in
    /// byte order, each after `start_after` when it is given. Pages are not a snapshot: a
    /// key written between two calls appears if it sorts after the cursor. Redis has no
    /// ordered index, so each of its pages reads every key under the prefix (see
    /// `RedisStore`); Cairn and `SQLite` read only the page.
    fn list_page(
        &self,
        scope: &Scope,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = KvResult<Page>> + Send;

    /// The values of `keys`, in the same order; at most [`MULTI_ENTRIES_MAX`] keys.
    fn multi_get(
        &self,
        scope: &Scope,
        keys: &[&[u8]],
    ) -> impl Future<Output = KvResult<Vec<Option<Vec<u8>>>>> + Send;

    /// Sets every `(key, value)` pair atomically, clearing their TTLs; at most
    /// [`MULTI_ENTRIES_MAX`] entries. A later entry for the same key wins.
    fn multi_put(
        &self,
        scope: &Scope,
        entries: &[(&[u8], &[u8])],
    ) -> impl Future<Output = KvResult<()>> + Send;

    /// Sets `key` to `value`, expiring after `ttl` (at least 1 ms; rounded up to whole ms).
    fn put_with_ttl(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = KvResult<()>> + Send;

    /// Makes a live `key` expire `ttl` from now; false when the key is absent.
    fn refresh_ttl(
        &self,
        scope: &Scope,
        key: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = KvResult<bool>> + Send;

    /// The time `key` has left.
    fn get_ttl(&self, scope: &Scope, key: &[u8]) -> impl Future<Output = KvResult<KvTtl>> + Send;

    /// Sets `key` to `new` only if it holds `expected` (`None`: only if it is absent).
    /// True when it swapped. Atomic with respect to every other write.
    fn cas(
        &self,
        scope: &Scope,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> impl Future<Output = KvResult<bool>> + Send;

    /// Adds `delta` to the decimal i64 at `key` (absent counts as 0) and returns the result.
    /// Overflow is [`KvError::Overflow`]; a value that is not a decimal i64 is
    /// [`KvError::NotAnInteger`]; neither writes anything. The TTL is kept.
    fn increment(
        &self,
        scope: &Scope,
        key: &[u8],
        delta: i64,
    ) -> impl Future<Output = KvResult<i64>> + Send;

    /// Subtracts `delta`, like [`increment`](KeyValueStore::increment) with `-delta`.
    fn decrement(
        &self,
        scope: &Scope,
        key: &[u8],
        delta: i64,
    ) -> impl Future<Output = KvResult<i64>> + Send {
        async move {
            let negated = delta.checked_neg().ok_or_else(|| KvError::Overflow {
                key: crate::error::KeyText::new(key),
                delta: -i128::from(delta),
            })?;
            self.increment(scope, key, negated).await
        }
    }

    /// Watches one key.
    fn watch(&self, scope: &Scope, key: &[u8]) -> impl Future<Output = KvResult<KvWatcher>> + Send;

    /// Watches every key starting with `prefix` in `scope`.
    fn watch_prefix(
        &self,
        scope: &Scope,
        prefix: &[u8],
    ) -> impl Future<Output = KvResult<KvWatcher>> + Send;

    /// Deletes every live key starting with `prefix` atomically; returns how many. More than
    /// [`CLEAR_PREFIX_KEYS_MAX`](crate::limits::CLEAR_PREFIX_KEYS_MAX) is refused.
    fn clear_prefix(
        &self,
        scope: &Scope,
        prefix: &[u8],
    ) -> impl Future<Output = KvResult<u64>> + Send;

    /// How many live keys start with `prefix`.
    fn count_prefix(
        &self,
        scope: &Scope,
        prefix: &[u8],
    ) -> impl Future<Output = KvResult<u64>> + Send;

    /// What the backend reports about itself.
    fn stats(&self) -> impl Future<Output = KvResult<StoreStats>> + Send;
}

// ----- input checks every backend runs first ---------------------------------------------------

/// Refuses an empty or too long key.
pub fn check_key(key: &[u8]) -> KvResult<()> {
    if key.is_empty() {
        return Err(KvError::KeyEmpty);
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(KvError::KeyTooLarge {
            len: key.len(),
            max: KEY_BYTES_MAX,
        });
    }
    Ok(())
}

/// Refuses a prefix longer than a key can be (an empty prefix is the whole scope).
pub fn check_prefix(prefix: &[u8]) -> KvResult<()> {
    if prefix.len() > KEY_BYTES_MAX {
        return Err(KvError::KeyTooLarge {
            len: prefix.len(),
            max: KEY_BYTES_MAX,
        });
    }
    Ok(())
}

/// Checks a `list_page` call: the prefix, the cursor and the page size.
pub fn check_list_page(prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> KvResult<()> {
    check_prefix(prefix)?;
    if let Some(after) = start_after {
        check_prefix(after)?;
    }
    if limit == 0 || limit > LIST_PAGE_KEYS_MAX {
        return Err(KvError::InvalidArgument(format!(
            "a page of {limit} keys; list_page takes 1 to {LIST_PAGE_KEYS_MAX} (LIST_PAGE_KEYS_MAX)"
        )));
    }
    Ok(())
}

/// Refuses a too large value.
pub fn check_value(value: &[u8]) -> KvResult<()> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(KvError::ValueTooLarge {
            len: value.len(),
            max: VALUE_BYTES_MAX,
        });
    }
    Ok(())
}

/// Checks a key and its value.
pub fn check_entry(key: &[u8], value: &[u8]) -> KvResult<()> {
    check_key(key)?;
    check_value(value)
}

/// Checks a `cas` call: the key, the new value, and the expected value if any.
pub fn check_cas(key: &[u8], expected: Option<&[u8]>, new: &[u8]) -> KvResult<()> {
    check_entry(key, new)?;
    expected.map_or(Ok(()), check_value)
}

/// Refuses more than [`MULTI_ENTRIES_MAX`] keys or entries in one call.
pub fn check_multi_len(len: usize) -> KvResult<()> {
    if len > MULTI_ENTRIES_MAX {
        return Err(KvError::InvalidArgument(format!(
            "{len} entries in one call; the limit is {MULTI_ENTRIES_MAX}"
        )));
    }
    Ok(())
}

/// The TTL in whole milliseconds, rounded up; refuses zero and anything over the limit.
pub fn ttl_millis(ttl: Duration) -> KvResult<u64> {
    if ttl.is_zero() {
        return Err(KvError::InvalidArgument(
            "a TTL must be at least 1 ms; delete the key instead".to_owned(),
        ));
    }
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    match u64::try_from(millis) {
        Ok(millis) if millis <= TTL_MILLIS_MAX => Ok(millis.max(TTL_MILLIS_MIN)),
        _ => Err(KvError::InvalidArgument(format!(
            "a TTL of {ttl:?} is over the limit of {TTL_MILLIS_MAX} ms"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_rounded_up_to_whole_milliseconds() -> KvResult<()> {
        assert_eq!(ttl_millis(Duration::from_nanos(1))?, 1);
        assert_eq!(ttl_millis(Duration::from_micros(1_500))?, 2);
        assert_eq!(ttl_millis(Duration::from_secs(3))?, 3_000);
        assert!(ttl_millis(Duration::ZERO).is_err());
        assert!(ttl_millis(Duration::from_millis(TTL_MILLIS_MAX + 1)).is_err());
        assert!(ttl_millis(Duration::MAX).is_err());
        Ok(())
    }

    #[test]
    fn input_checks_name_the_limit() {
        assert!(matches!(check_key(b""), Err(KvError::KeyEmpty)));
        assert!(matches!(
            check_key(&vec![0; KEY_BYTES_MAX + 1]),
            Err(KvError::KeyTooLarge {
                max: KEY_BYTES_MAX,
                ..
            })
        ));
        assert!(check_key(&vec![0; KEY_BYTES_MAX]).is_ok());
        assert!(check_prefix(b"").is_ok());
        assert!(check_multi_len(MULTI_ENTRIES_MAX).is_ok());
        assert!(check_multi_len(MULTI_ENTRIES_MAX + 1).is_err());
    }
}
