//! Request parsing: RESP multibulk arrays (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
//! commands (`GET k\r\n`), read incrementally from a connection's input buffer.
//!
//! Guarantees:
//! - No input makes it panic, and no declared length makes it allocate more than the bytes
//!   that have arrived: a bulk is taken only once all of it is in the buffer, and the argument
//!   vector grows as arguments arrive, not to the declared count.
//! - Every length is checked against [`Limits`] before anything is buffered for it, with
//!   Redis's own error texts, so a client sees what it would see from Redis. Before a client
//!   authenticates, the limits are Redis's since CVE-2021-32675: at most 10 arguments of at
//!   most 16 KiB each.
//! - A multibulk request is parsed once, however many reads it takes to arrive: the parser
//!   keeps the arguments it has and resumes at the next one.
//! - Arguments are zero-copy slices of the input buffer (`Bytes`).

use bytes::{Buf, Bytes, BytesMut};

/// The longest line (inline command, or a `*`/`$` header) taken without its newline.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
/// Arguments per request once authenticated (Redis: 2^31 - 1; ours is lower and bounds the
/// vector a request can build).
pub const ARGS_MAX: usize = 1024 * 1024;
/// Arguments per request before the client authenticates.
pub const UNAUTHENTICATED_ARGS_MAX: usize = 10;
/// Bytes per argument before the client authenticates.
pub const UNAUTHENTICATED_BULK_BYTES_MAX: usize = 16 * 1024;

/// What a request may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Arguments per request.
    pub args_max: usize,
    /// Bytes per argument.
    pub bulk_bytes_max: usize,
    /// Bytes of arguments per request (Redis's `client-query-buffer-limit`).
    pub request_bytes_max: usize,
    /// Whether the client has authenticated (selects Redis's error texts).
    pub authenticated: bool,
}

impl Limits {
    /// The limits for a client that has authenticated (or needs no password).
    pub fn authenticated(bulk_bytes_max: usize, request_bytes_max: usize) -> Limits {
        Limits {
            args_max: ARGS_MAX,
            bulk_bytes_max,
            request_bytes_max,
            authenticated: true,
        }
    }

    /// The limits for a client that still has to authenticate.
    pub fn unauthenticated() -> Limits {
        Limits {
            args_max: UNAUTHENTICATED_ARGS_MAX,
            bulk_bytes_max: UNAUTHENTICATED_BULK_BYTES_MAX,
            request_bytes_max: UNAUTHENTICATED_ARGS_MAX * UNAUTHENTICATED_BULK_BYTES_MAX,
            authenticated: false,
        }
    }
}

/// A request the server cannot parse. The connection replies `-ERR Protocol error: <text>`
/// and closes, as Redis does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(text: impl Into<String>) -> ProtocolError {
        ProtocolError(text.into())
    }
}

/// The parser of one connection: the arguments of a multibulk request that has not fully
/// arrived yet.
#[derive(Debug, Default)]
pub struct RequestParser {
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    /// Arguments still to come.
    remaining: usize,
    args: Vec<Bytes>,
    /// The length of the next bulk, once its `$` header has been read.
    bulk_len: Option<usize>,
    /// The bytes of the arguments taken so far.
    bytes: usize,
}

impl RequestParser {
    /// A parser with nothing pending.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Takes the next complete request off the front of `input`: `Ok(Some(args))`, where
    /// `args` is empty for an empty request (a blank line, `*0`, `*-1`), which gets no reply;
    /// `Ok(None)` when more bytes are needed; or the protocol error that ends the connection.
    pub fn next(
        &mut self,
        input: &mut BytesMut,
        limits: Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.pending.is_none() {
            match input.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return parse_inline(input),
            }
            let Some((end, used)) = find_line(input, "too big mbulk count string")? else {
                return Ok(None);
            };
            let declared = parse_length(input.get(1..end).unwrap_or_default());
            input.advance(used);
            let count = match declared {
                Some(count) if count <= 0 => return Ok(Some(Vec::new())),
                Some(count) => usize::try_from(count).unwrap_or(usize::MAX),
                None => return Err(ProtocolError::new("invalid multibulk length")),
            };
            if count > limits.args_max {
                return Err(ProtocolError::new(if limits.authenticated {
                    "invalid multibulk length"
                } else {
                    "unauthenticated multibulk length"
                }));
            }
            self.pending = Some(Pending {
                remaining: count,
                args: Vec::with_capacity(count.min(16)),
                bulk_len: None,
                bytes: 0,
            });
        }
        let Some(pending) = self.pending.as_mut() else {
            return Ok(None);
        };
        while pending.remaining > 0 {
            let len = if let Some(len) = pending.bulk_len {
                len
            } else {
                {
                    match input.first() {
                        None => return Ok(None),
                        Some(b'$') => {}
                        Some(&other) => {
                            return Err(ProtocolError(format!(
                                "expected '$', got '{}'",
                                char::from(other)
                            )))
                        }
                    }
                    let Some((end, used)) = find_line(input, "too big bulk count string")? else {
                        return Ok(None);
                    };
                    let len = parse_length(input.get(1..end).unwrap_or_default())
                        .and_then(|len| usize::try_from(len).ok());
                    input.advance(used);
                    let len = match len {
                        Some(len) if len <= limits.bulk_bytes_max => len,
                        _ if !limits.authenticated => {
                            return Err(ProtocolError::new("unauthenticated bulk length"))
                        }
                        _ => return Err(ProtocolError::new("invalid bulk length")),
                    };
                    if pending.bytes.saturating_add(len) > limits.request_bytes_max {
                        return Err(ProtocolError::new("request exceeds the query buffer limit"));
                    }
                    pending.bulk_len = Some(len);
                    len
                }
            };
            // The bulk and its trailing CRLF (not checked, as Redis does not). Nothing is
            // reserved for it ahead of its bytes: a declared length costs no memory.
            if input.len() < len + 2 {
                return Ok(None);
            }
            pending.bytes += len;
            let arg = input.split_to(len).freeze();
            input.advance(2);
            pending.args.push(arg);
            pending.bulk_len = None;
            pending.remaining -= 1;
        }
        Ok(self.pending.take().map(|pending| pending.args))
    }
}

/// Takes one line (without its `\r\n` or `\n`) off the front of `input`, or `None` if its
/// newline has not arrived; `too_big` is the error for a line longer than
/// [`INLINE_BYTES_MAX`].
fn take_line(input: &mut BytesMut, too_big: &str) -> Result<Option<BytesMut>, ProtocolError> {
    let Some((end, used)) = find_line(input, too_big)? else {
        return Ok(None);
    };
    let mut line = input.split_to(used);
    line.truncate(end);
    Ok(Some(line))
}

/// Where the first line of `input` ends: the length of its text (without `\r\n` or `\n`)
/// and the bytes it takes with its newline, or `None` if the newline has not arrived. Length
/// lines are read in place through this, so they cost no split of the buffer.
fn find_line(input: &[u8], too_big: &str) -> Result<Option<(usize, usize)>, ProtocolError> {
    let Some(newline) = input.iter().position(|&byte| byte == b'\n') else {
        if input.len() > INLINE_BYTES_MAX {
            return Err(ProtocolError::new(too_big));
        }
        return Ok(None);
    };
    if newline > INLINE_BYTES_MAX {
        return Err(ProtocolError::new(too_big));
    }
    let end = match newline.checked_sub(1) {
        Some(before) if input.get(before) == Some(&b'\r') => before,
        _ => newline,
    };
    Ok(Some((end, newline + 1)))
}

/// A decimal length: [`parse_i64`]'s grammar.
fn parse_length(text: &[u8]) -> Option<i64> {
    parse_i64(text)
}

/// A decimal integer as Redis's `string2ll` reads it: an optional `-`, digits, no spaces or
/// `+`, no leading zeros (`0` alone is fine, `-0` is not), within `i64`.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if !digits
        .first()
        .is_some_and(|first| (b'1'..=b'9').contains(first))
    {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

fn parse_inline(input: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(line) = take_line(input, "too big inline request")? else {
        return Ok(None);
    };
    split_inline(&line)
        .map(|args| Some(args.into_iter().map(Bytes::from).collect()))
        .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
}

/// Splits an inline command into arguments as Redis's `sdssplitargs` does: words separated by
/// whitespace; `"..."` with the escapes `\n \r \t \b \a \\ \" \xHH`; `'...'` with `\'`. A
/// closing quote must be followed by whitespace or the end. `None` for unbalanced quotes.
pub fn split_inline(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut rest = line;
    loop {
        while let Some((first, tail)) = rest.split_first() {
            if first.is_ascii_whitespace() {
                rest = tail;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            return Some(args);
        }
        let mut arg = Vec::new();
        let mut quote = None;
        loop {
            let Some((&byte, tail)) = rest.split_first() else {
                if quote.is_some() {
                    return None;
                }
                break;
            };
            match quote {
                None if byte.is_ascii_whitespace() => break,
                None if byte == b'"' || byte == b'\'' => {
                    quote = Some(byte);
                    rest = tail;
                }
                Some(open) if byte == open => {
                    // The closing quote must end the argument.
                    if tail.first().is_some_and(|next| !next.is_ascii_whitespace()) {
                        return None;
                    }
                    rest = tail;
                    break;
                }
                Some(b'"') if byte == b'\\' => {
                    let (decoded, after) = unescape(tail);
                    arg.push(decoded);
                    rest = after;
                }
                Some(_) if byte == b'\\' && tail.first() == Some(&b'\'') => {
                    arg.push(b'\'');
                    rest = tail.get(1..).unwrap_or_default();
                }
                None | Some(_) => {
                    arg.push(byte);
                    rest = tail;
                }
            }
        }
        args.push(arg);
    }
}

/// One escape inside double quotes, after its backslash: the byte it stands for, and what
/// follows it.
fn unescape(after_backslash: &[u8]) -> (u8, &[u8]) {
    if let [b'x', high, low, rest @ ..] = after_backslash {
        if let (Some(high), Some(low)) = (hex(*high), hex(*low)) {
            return ((high << 4) | low, rest);
        }
    }
    match after_backslash.split_first() {
        Some((&code, rest)) => {
            let byte = match code {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'a' => 0x07,
                other => other,
            };
            (byte, rest)
        }
        None => (b'\\', after_backslash),
    }
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8], limits: Limits) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut input = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(args) = parser.next(&mut input, limits)? {
            out.push(args.iter().map(|arg| arg.to_vec()).collect());
        }
        Ok(out)
    }

    fn open() -> Limits {
        Limits::authenticated(512 * 1024 * 1024, 1024 * 1024 * 1024)
    }

    #[test]
    fn multibulk_and_inline_requests_parse_in_a_pipeline() {
        let got = parse_all(
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n",
            open(),
        );
        assert_eq!(
            got,
            Ok(vec![
                vec![b"GET".to_vec(), b"k".to_vec()],
                vec![b"PING".to_vec()],
                vec![b"set".to_vec(), b"a".to_vec(), b"b c".to_vec()],
            ])
        );
    }

    #[test]
    fn a_request_split_at_every_byte_parses_the_same() {
        let request = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$0\r\n\r\n*0\r\n";
        for cut in 0..request.len() {
            let mut parser = RequestParser::new();
            let mut input = BytesMut::new();
            let mut got = Vec::new();
            for part in [&request[..cut], &request[cut..]] {
                input.extend_from_slice(part);
                while let Some(args) = parser.next(&mut input, open()).expect("present") {
                    got.push(args);
                }
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0], vec![&b"SET"[..], b"hello", b""]);
            assert!(got[1].is_empty());
        }
    }

    #[test]
    fn bad_lengths_get_redis_error_texts() {
        let error = |bytes: &[u8], limits| parse_all(bytes, limits).expect_err("an error").0;
        assert_eq!(error(b"*x\r\n", open()), "invalid multibulk length");
        assert_eq!(error(b"*01\r\n", open()), "invalid multibulk length");
        assert_eq!(
            error(b"*9999999999\r\n", open()),
            "invalid multibulk length"
        );
        assert_eq!(error(b"*1\r\n:1\r\n", open()), "expected '$', got ':'");
        assert_eq!(error(b"*1\r\n$-1\r\n", open()), "invalid bulk length");
        assert_eq!(
            error(b"*1\r\n$600000000\r\n", open()),
            "invalid bulk length"
        );
        let locked = Limits::unauthenticated();
        assert_eq!(
            error(b"*11\r\n", locked),
            "unauthenticated multibulk length"
        );
        assert_eq!(
            error(b"*1\r\n$16385\r\n", locked),
            "unauthenticated bulk length"
        );
        assert_eq!(
            error(b"set a \"b\n", open()),
            "unbalanced quotes in request"
        );
        assert_eq!(
            error(b"set a \"b\"c\n", open()),
            "unbalanced quotes in request"
        );
    }

    #[test]
    fn an_endless_line_is_refused_once_it_passes_the_limit() {
        let mut parser = RequestParser::new();
        let mut input = BytesMut::from(&vec![b'a'; INLINE_BYTES_MAX][..]);
        assert_eq!(parser.next(&mut input, open()), Ok(None));
        input.extend_from_slice(b"aa");
        assert_eq!(
            parser.next(&mut input, open()).expect_err("an error").0,
            "too big inline request"
        );
        let mut input = BytesMut::from(&b"*1\r\n$"[..]);
        input.extend_from_slice(&vec![b'1'; INLINE_BYTES_MAX + 1]);
        let mut parser = RequestParser::new();
        assert_eq!(
            parser.next(&mut input, open()).expect_err("an error").0,
            "too big bulk count string"
        );
    }

    #[test]
    fn a_huge_declared_count_allocates_only_what_arrives() {
        let mut parser = RequestParser::new();
        let mut input = BytesMut::from(&b"*1048576\r\n$1\r\na\r\n"[..]);
        assert_eq!(parser.next(&mut input, open()), Ok(None));
        let pending = parser.pending.as_ref().expect("present");
        assert_eq!(pending.args.len(), 1);
        assert!(pending.args.capacity() <= 16);
        let mut input = BytesMut::from(&b"*3\r\n$4\r\nabcd\r\n$4\r\nefgh\r\n"[..]);
        let tight = Limits {
            request_bytes_max: 7,
            ..open()
        };
        assert_eq!(
            RequestParser::new()
                .next(&mut input, tight)
                .expect_err("an error")
                .0,
            "request exceeds the query buffer limit"
        );
    }

    #[test]
    fn integers_parse_as_redis_reads_them() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"",
            b"-",
            b"1x",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn inline_escapes_decode_as_redis_does() {
        assert_eq!(
            split_inline(br#"a "x\x41\n\"" 'it\'s'  "#),
            Some(vec![b"a".to_vec(), b"xA\n\"".to_vec(), b"it's".to_vec()])
        );
        assert_eq!(split_inline(b"   "), Some(Vec::new()));
    }
}
