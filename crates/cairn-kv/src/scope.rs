//! `Scope`: the tenant and namespace every call is confined to.
//!
//! A scope is encoded once, when it is made, into a key prefix that every backend stores in
//! front of the caller's key:
//!
//! ```text
//! "{" escape(tenant) ":" escape(namespace) "}" key
//! ```
//!
//! `escape` keeps ASCII letters, digits, `_`, `.` and `-`, and writes every other byte as `%XX`
//! (upper-case hex). So `:`, `{`, `}` and `%` never appear raw inside the braces, which makes
//! the encoding unambiguous whatever the names hold: the first `:` ends the tenant, the first
//! `}` ends the scope, and no scope's prefix is a prefix of another's. A prefix scan, a
//! `clear_prefix` or a watch under one scope therefore never reaches another.
//!
//! The braces are also a Redis Cluster hash tag: every key of one scope hashes to one slot,
//! which is what lets `multi_put`, `cas` and `clear_prefix` run as one atomic script there.

use std::fmt;
use std::sync::Arc;

use crate::error::{KvError, KvResult};
use crate::limits::SCOPE_NAME_BYTES_MAX;

/// The tenant and namespace a call works in. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    tenant: Arc<str>,
    namespace: Arc<str>,
    key_prefix: Arc<[u8]>,
}

impl Scope {
    /// A scope for `tenant` and `namespace`: each 1 to
    /// [`SCOPE_NAME_BYTES_MAX`](crate::limits::SCOPE_NAME_BYTES_MAX) bytes of any text.
    pub fn new(tenant: &str, namespace: &str) -> KvResult<Scope> {
        check_name("tenant", tenant)?;
        check_name("namespace", namespace)?;
        let mut key_prefix = Vec::with_capacity(tenant.len() + namespace.len() + 3);
        key_prefix.push(b'{');
        escape_into(tenant.as_bytes(), &mut key_prefix);
        key_prefix.push(b':');
        escape_into(namespace.as_bytes(), &mut key_prefix);
        key_prefix.push(b'}');
        Ok(Scope {
            tenant: tenant.into(),
            namespace: namespace.into(),
            key_prefix: key_prefix.into(),
        })
    }

    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The encoded scope that every stored key of this scope starts with.
    pub fn key_prefix(&self) -> &[u8] {
        &self.key_prefix
    }

    /// The key as stored: the scope's prefix, then `key`.
    pub fn stored_key(&self, key: &[u8]) -> Vec<u8> {
        let mut stored = Vec::with_capacity(self.key_prefix.len() + key.len());
        stored.extend_from_slice(&self.key_prefix);
        stored.extend_from_slice(key);
        stored
    }

    /// The caller's key inside a stored key, or `None` when `stored` is not in this scope.
    pub fn user_key<'stored>(&self, stored: &'stored [u8]) -> Option<&'stored [u8]> {
        stored.strip_prefix(&*self.key_prefix)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Scope")
            .field("tenant", &self.tenant)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn check_name(what: &str, name: &str) -> KvResult<()> {
    if name.is_empty() {
        return Err(KvError::InvalidScope {
            reason: format!("the {what} name is empty"),
        });
    }
    if name.len() > SCOPE_NAME_BYTES_MAX {
        return Err(KvError::InvalidScope {
            reason: format!(
                "the {what} name is {} bytes; the limit is {SCOPE_NAME_BYTES_MAX}",
                name.len()
            ),
        });
    }
    Ok(())
}

fn escape_into(name: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in name {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-') {
            out.push(byte);
        } else {
            #[expect(clippy::indexing_slicing, reason = "a nibble indexes 16 digits")]
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(tenant: &str, namespace: &str) -> Vec<u8> {
        Scope::new(tenant, namespace)
            .map(|scope| scope.key_prefix().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn encoding_is_exact() {
        assert_eq!(prefix("acme", "orders"), b"{acme:orders}");
        assert_eq!(prefix("a:b", "c}"), b"{a%3Ab:c%7D}");
        assert_eq!(prefix("é", "%"), b"{%C3%A9:%25}");
    }

    #[test]
    fn names_that_differ_never_share_a_prefix() {
        let names = [
            "a", "b", "a:b", "b:", ":", "a}", "{", "%", "%3A", "ab", "a.b", "a b",
        ];
        let mut prefixes = Vec::new();
        for tenant in names {
            for namespace in names {
                prefixes.push(((tenant, namespace), prefix(tenant, namespace)));
            }
        }
        for (left_names, left) in &prefixes {
            for (right_names, right) in &prefixes {
                if left_names != right_names {
                    assert!(
                        !right.starts_with(left),
                        "{left_names:?} is a prefix of {right_names:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(matches!(
            Scope::new("", "n"),
            Err(KvError::InvalidScope { .. })
        ));
        assert!(matches!(
            Scope::new("t", ""),
            Err(KvError::InvalidScope { .. })
        ));
        let long = "x".repeat(SCOPE_NAME_BYTES_MAX + 1);
        assert!(matches!(
            Scope::new(&long, "n"),
            Err(KvError::InvalidScope { .. })
        ));
        assert!(Scope::new(&"x".repeat(SCOPE_NAME_BYTES_MAX), "n").is_ok());
    }

    #[test]
    fn stored_keys_round_trip() -> KvResult<()> {
        let scope = Scope::new("t", "n")?;
        let other = Scope::new("t", "n2")?;
        let stored = scope.stored_key(b"k\x00}");
        assert_eq!(scope.user_key(&stored), Some(&b"k\x00}"[..]));
        assert_eq!(other.user_key(&stored), None);
        Ok(())
    }
}
