//! Replies and their encoding in RESP2 or RESP3 (chosen per connection by `HELLO`).
//!
//! A command builds one [`Reply`]; [`Reply::encode`] writes it in the connection's protocol.
//! RESP3-only types fall back as Redis does under RESP2: a map becomes a flat array of
//! key, value, ...; a set an array; a double a bulk string; a boolean the integer 1 or 0; a
//! null `$-1` (or `*-1` for a null array).

use std::fmt::Write as _;

use bytes::Bytes;

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, every connection's start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// One reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`-style status.
    Status(&'static str),
    /// A status built at run time (`+PONG`, a `TYPE` name).
    StatusText(String),
    /// `-ERR ...`: the text after the `-`, its first word the error code.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` and the bytes.
    Bulk(Bytes),
    /// The null bulk string (`$-1`, RESP3 `_`).
    Null,
    /// The null array (`*-1`, RESP3 `_`).
    NullArray,
    /// `*n` and the elements.
    Array(Vec<Reply>),
    /// RESP3 `%n`; a flat array under RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n`; an array under RESP2.
    Set(Vec<Reply>),
    /// RESP3 `,x`; a bulk string under RESP2.
    Double(f64),
    /// RESP3 `#t`/`#f`; `:1`/`:0` under RESP2.
    Boolean(bool),
    /// RESP3 `>n` (an out-of-band push: a pub/sub message); an array under RESP2.
    Push(Vec<Reply>),
    /// Several replies in a row, for a command that answers more than once (`SUBSCRIBE a b`
    /// answers once per channel).
    Many(Vec<Reply>),
    /// An array of bulk strings already encoded ([`BulkArray`]), which RESP2 and RESP3 write
    /// alike: a long range reply costs one buffer, not a `Reply` per element.
    Encoded(Vec<u8>),
}

/// The elements of an array of bulk strings as [`BulkArray`] encodes it; `None` if `bytes`
/// is not one.
pub(crate) fn decode_bulk_array(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    fn number(rest: &[u8], prefix: u8) -> Option<(usize, &[u8])> {
        let rest = rest.strip_prefix(&[prefix])?;
        let end = rest.windows(2).position(|pair| pair == b"\r\n")?;
        let value = std::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()?;
        Some((value, rest.get(end + 2..)?))
    }
    let (count, mut rest) = number(bytes, b'*')?;
    let mut items = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let (length, after) = number(rest, b'$')?;
        items.push(after.get(..length)?.to_vec());
        rest = after.get(length + 2..)?;
    }
    rest.is_empty().then_some(items)
}

/// Builds an array of bulk strings straight into its encoding ([`Reply::Encoded`]).
#[derive(Debug, Default)]
pub struct BulkArray {
    body: Vec<u8>,
    count: usize,
}

impl BulkArray {
    /// An empty array.
    pub fn new() -> BulkArray {
        BulkArray::default()
    }

    /// Appends one bulk string.
    pub fn push(&mut self, bytes: &[u8]) {
        bulk(&mut self.body, bytes);
        self.count += 1;
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished reply: the array's header, then its elements.
    pub fn finish(self) -> Reply {
        let mut out = Vec::with_capacity(self.body.len() + 16);
        header(&mut out, b'*', self.count);
        out.extend_from_slice(&self.body);
        Reply::Encoded(out)
    }
}

/// `+OK`.
pub const OK: Reply = Reply::Status("OK");

impl Reply {
    /// Whether this is a pub/sub push (`Push`, or several in a row), which a client gets even
    /// with its replies off (`CLIENT REPLY`).
    pub fn is_push(&self) -> bool {
        match self {
            Reply::Push(_) => true,
            Reply::Many(replies) => !replies.is_empty() && replies.iter().all(Reply::is_push),
            _ => false,
        }
    }
}

impl Reply {
    /// An error reply with the code `ERR`.
    pub fn err(text: impl AsRef<str>) -> Reply {
        Reply::Error(format!("ERR {}", text.as_ref()))
    }

    /// A bulk string copied from `bytes`.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(bytes.as_ref()))
    }

    /// An array of bulk strings.
    pub fn bulks<I, B>(items: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        Reply::Array(items.into_iter().map(Reply::bulk).collect())
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply to `out` in `protocol`.
    pub fn encode(&self, protocol: Protocol, out: &mut Vec<u8>) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Reply::Status(text) => line(out, b'+', text.as_bytes()),
            Reply::StatusText(text) => line(out, b'+', text.as_bytes()),
            Reply::Error(text) => line(out, b'-', text.as_bytes()),
            Reply::Integer(value) => header(out, b':', *value),
            Reply::Bulk(bytes) => bulk(out, bytes),
            Reply::Null | Reply::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                header(out, b'*', items.len());
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Set(items) => {
                header(out, if resp3 { b'~' } else { b'*' }, items.len());
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    header(out, b'%', pairs.len());
                } else {
                    header(out, b'*', pairs.len() * 2);
                }
                for (key, value) in pairs {
                    key.encode(protocol, out);
                    value.encode(protocol, out);
                }
            }
            Reply::Double(value) => {
                let text = format_g17(*value);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Boolean(value) if resp3 => {
                out.extend_from_slice(if *value { b"#t\r\n" } else { b"#f\r\n" });
            }
            Reply::Boolean(value) => header(out, b':', i64::from(*value)),
            Reply::Push(items) => {
                header(out, if resp3 { b'>' } else { b'*' }, items.len());
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Many(replies) => {
                for reply in replies {
                    reply.encode(protocol, out);
                }
            }
            Reply::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// A double as Redis prints one: `inf`, `-inf`, `nan`, an integer without a fraction when it
/// is one, else the shortest text that reads back as the same value.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// A double as Redis replies with one (a sorted set's score): C's `%.17g`, so 0.1 is
/// `0.10000000000000001` and 1e20 is `1e+20`; `inf`, `-inf` and `nan` as words.
pub fn format_g17(value: f64) -> String {
    if !value.is_finite() {
        return format_double(value);
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // 17 significant digits, rounded once, then laid out as `%g` lays them out.
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut text = String::with_capacity(24);
    if negative {
        text.push('-');
    }
    if !(-4..17).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        text.push_str(first);
        if !rest.is_empty() {
            text.push('.');
            text.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(text, "e{sign}{:02}", exponent.unsigned_abs());
    } else if exponent < 0 {
        text.push_str("0.");
        for _ in 0..(-exponent - 1) {
            text.push('0');
        }
        text.push_str(digits);
    } else {
        let whole = usize::try_from(exponent).unwrap_or(0) + 1;
        if digits.len() <= whole {
            text.push_str(digits);
            for _ in digits.len()..whole {
                text.push('0');
            }
        } else {
            let (integer, fraction) = digits.split_at(whole);
            text.push_str(integer);
            text.push('.');
            text.push_str(fraction);
        }
    }
    text
}

fn line(out: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    out.push(prefix);
    // A status or error may not hold a newline; Redis replaces them with spaces.
    out.extend(text.iter().map(|&byte| {
        if byte == b'\r' || byte == b'\n' {
            b' '
        } else {
            byte
        }
    }));
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, prefix: u8, number: impl itoa_like::Decimal) {
    out.push(prefix);
    number.write_to(out);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    header(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Decimal formatting straight into the output buffer, without a `String` per number.
mod itoa_like {
    pub trait Decimal {
        fn write_to(self, out: &mut Vec<u8>);
    }

    impl Decimal for usize {
        fn write_to(self, out: &mut Vec<u8>) {
            write_u64(out, u64::try_from(self).unwrap_or(u64::MAX));
        }
    }

    impl Decimal for i64 {
        fn write_to(self, out: &mut Vec<u8>) {
            if self < 0 {
                out.push(b'-');
            }
            write_u64(out, self.unsigned_abs());
        }
    }

    fn write_u64(out: &mut Vec<u8>, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            if let Some(slot) = digits.get_mut(start) {
                *slot = b'0' + u8::try_from(value % 10).unwrap_or(0);
            }
            value /= 10;
            if value == 0 || start == 0 {
                break;
            }
        }
        out.extend_from_slice(digits.get(start..).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scores_print_as_c_printf_g17() {
        // Each expected text is C's `%.17g` of the value.
        let cases: &[(f64, &str)] = &[
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (3.14159e-7, "3.1415899999999997e-07"),
            (0.429_943_867_227_967_8, "0.42994386722796779"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-1.7, "-1.7"),
            (123_456_789_012_345_678.0, "1.2345678901234568e+17"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (12345.678, "12345.678"),
            (-0.0, "-0"),
            (2.5e-300, "2.5e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for &(value, expected) in cases {
            assert_eq!(super::format_g17(value), expected, "{value:e}");
        }
    }

    use super::*;

    fn encoded(reply: &Reply, protocol: Protocol) -> String {
        let mut out = Vec::new();
        reply.encode(protocol, &mut out);
        String::from_utf8(out).expect("present")
    }

    #[test]
    fn resp3_types_fall_back_under_resp2() {
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Integer(-12))]);
        assert_eq!(encoded(&map, Protocol::Resp2), "*2\r\n$1\r\na\r\n:-12\r\n");
        assert_eq!(encoded(&map, Protocol::Resp3), "%1\r\n$1\r\na\r\n:-12\r\n");
        assert_eq!(encoded(&Reply::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(encoded(&Reply::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(encoded(&Reply::Null, Protocol::Resp3), "_\r\n");
        assert_eq!(
            encoded(&Reply::Double(1.5), Protocol::Resp2),
            "$3\r\n1.5\r\n"
        );
        assert_eq!(encoded(&Reply::Double(1.5), Protocol::Resp3), ",1.5\r\n");
        assert_eq!(encoded(&Reply::Boolean(true), Protocol::Resp2), ":1\r\n");
        assert_eq!(
            encoded(&Reply::Integer(i64::MIN), Protocol::Resp2),
            ":-9223372036854775808\r\n"
        );
    }

    #[test]
    fn an_error_text_cannot_break_the_framing() {
        assert_eq!(
            encoded(&Reply::err("a\r\nb"), Protocol::Resp2),
            "-ERR a  b\r\n"
        );
    }
}
