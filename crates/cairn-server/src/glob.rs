//! Redis's glob patterns (`KEYS`, `SCAN ... MATCH`): `*`, `?`, `[abc]`, `[^a-z]`, and `\x`
//! for a literal `x`, matched byte by byte as Redis's `stringmatchlen` does. Our own, because
//! the glob crates match paths (`/` is special, `[!...]` negates) and Redis's does not.
//!
//! Matching is iterative with one backtrack point per `*`, so it runs in O(pattern × text)
//! whatever the input (Redis needed a nesting limit for its recursive matcher).

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: the pattern after it and the next text position.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(&token) = pattern.get(p) {
            if token == b'*' {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            if let Some(&byte) = text.get(t) {
                if let Some(width) = match_one(pattern, p, byte) {
                    p += width;
                    t += 1;
                    continue;
                }
            }
        } else if t == text.len() {
            return true;
        }
        // Mismatch: let the last `*` take one more byte, or fail.
        match star {
            Some((after_star, start)) if start < text.len() => {
                star = Some((after_star, start + 1));
                p = after_star;
                t = start + 1;
            }
            _ => return false,
        }
    }
}

/// If the pattern token at `p` (not `*`) matches `byte`, the token's width in the pattern.
fn match_one(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern.get(p)? {
        b'?' => Some(1),
        b'\\' if p + 1 < pattern.len() => (pattern.get(p + 1) == Some(&byte)).then_some(2),
        b'[' => {
            let (matched, width) = match_class(pattern.get(p + 1..).unwrap_or_default(), byte);
            matched.then_some(width + 1)
        }
        &literal => (literal == byte).then_some(1),
    }
}

/// Matches `byte` against a class body (after its `[`): whether it matched and the body's
/// width including the closing `]` (an unclosed class runs to the pattern's end, as in Redis).
fn match_class(body: &[u8], byte: u8) -> (bool, usize) {
    let mut i = 0;
    let negate = body.first() == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while let Some(&token) = body.get(i) {
        if token == b']' {
            return (matched != negate, i + 1);
        }
        if token == b'\\' && i + 1 < body.len() {
            i += 1;
            matched |= body.get(i) == Some(&byte);
        } else if body.get(i + 1) == Some(&b'-') && i + 2 < body.len() {
            let (mut low, mut high) = (token, body.get(i + 2).copied().unwrap_or(token));
            if low > high {
                std::mem::swap(&mut low, &mut high);
            }
            matched |= (low..=high).contains(&byte);
            i += 2;
        } else {
            matched |= token == byte;
        }
        i += 1;
    }
    (matched != negate, i)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_as_in_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("user:*:name", "user:42:name", true),
            ("user:*:name", "user:42:email", false),
            (
                "*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("a", "ab", false),
            ("ab*", "a", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
