//! JSON documents: RFC 6901 pointers through the `jsonptr` crate (parse, resolve, assign with
//! creation of missing objects, delete), and the document limits. `serde_json`'s own
//! `Value::pointer_mut` was not enough: it resolves existing paths only, so it cannot create a
//! new member or append to an array (`/-`), and it does not report why a pointer is malformed.

use jsonptr::Pointer;
use serde_json::Value;

use crate::agent::check_len;
use crate::error::{Error, Result};
use crate::limits;

/// Parses a pointer, checking its length first.
pub(crate) fn parse_path(path: &str) -> Result<&Pointer> {
    check_len("JSON pointer", path.len(), limits::DOC_PATH_BYTES_MAX)?;
    Pointer::parse(path).map_err(|e| Error::BadPath {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The value at the pointer, if any.
pub(crate) fn resolve<'v>(doc: &'v Value, pointer: &Pointer) -> Option<&'v Value> {
    pointer.resolve(doc).ok()
}

/// Assigns at the pointer (creating missing objects and arrays as `jsonptr` does).
pub(crate) fn assign(doc: &mut Value, pointer: &Pointer, value: Value, name: &str) -> Result<()> {
    pointer
        .assign(doc, value)
        .map(|_| ())
        .map_err(|_| Error::PathNotFound {
            doc: name.to_owned(),
            path: pointer.as_str().to_owned(),
        })
}

/// Removes the value at the pointer; `None` if nothing was there (or the pointer is the root).
pub(crate) fn delete(doc: &mut Value, pointer: &Pointer) -> Option<Value> {
    if pointer.is_root() {
        return None;
    }
    pointer.delete(doc)
}

/// JSON text of a value, checked against the size limit.
pub(crate) fn to_text(value: &Value) -> Result<Vec<u8>> {
    let text = serde_json::to_vec(value).map_err(|e| Error::InvalidJson {
        what: "document",
        reason: e.to_string(),
    })?;
    check_len("document", text.len(), limits::DOC_BYTES_MAX)?;
    Ok(text)
}

/// Checks nesting depth (iteratively: no recursion on caller-sized input).
pub(crate) fn check_value(value: &Value) -> Result<()> {
    let mut stack = vec![(value, 1_usize)];
    let mut deepest = 0;
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(depth);
                stack.extend(items.iter().map(|i| (i, depth + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(depth);
                stack.extend(map.values().map(|i| (i, depth + 1)));
            }
            _ => {}
        }
        if deepest > limits::DOC_DEPTH_MAX {
            return Err(Error::TooLarge {
                what: "document depth",
                actual: deepest,
                limit: limits::DOC_DEPTH_MAX,
            });
        }
    }
    Ok(())
}
