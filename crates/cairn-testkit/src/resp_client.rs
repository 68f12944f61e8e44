//! A raw RESP client for tests: sends commands as multibulk arrays (or any bytes at all) and
//! reads replies back as [`Frame`]s, byte-exact, so a test can compare two servers' replies
//! or check an exact error text. It never interprets a reply beyond its framing.
//!
//! Every read has a timeout ([`READ_TIMEOUT`]), so a server that stops answering fails the
//! test instead of hanging it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read waits for the server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The deepest nesting a reply may have before the reader calls it malformed.
const DEPTH_MAX: usize = 64;

/// One RESP2 or RESP3 reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`
    Status(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` and bytes
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`
    Null,
    /// `*n` items (also RESP3 `~` sets and `>` pushes)
    Array(Vec<Frame>),
    /// RESP3 `%n` pairs
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `,x`, `#t`/`#f`, `(n`, `=n` and anything else with a text body, as its
    /// type byte and text
    Other(u8, String),
}

impl Frame {
    /// The bulk or status text, if this is one.
    pub fn text(&self) -> Option<String> {
        match self {
            Frame::Bulk(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Frame::Status(text) => Some(text.clone()),
            _ => None,
        }
    }
}

/// One connection.
#[derive(Debug)]
pub struct RespClient {
    reader: BufReader<TcpStream>,
}

impl RespClient {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> io::Result<RespClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(RespClient {
            reader: BufReader::new(stream),
        })
    }

    /// Sends any bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Sends one command without reading its reply (for pipelining).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send_raw(&encode(args))
    }

    /// Sends one command and reads its reply.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Frame> {
        self.send(args)?;
        self.read()
    }

    /// Reads the next reply.
    pub fn read(&mut self) -> io::Result<Frame> {
        read_frame(&mut self.reader, 0)
    }

    /// Whether the server has closed the connection (reads end-of-file within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// A command as a RESP multibulk array.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed reply: {what}"),
    )
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(malformed("a line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| malformed("a header that is not UTF-8"))
}

fn number(text: &str) -> io::Result<i64> {
    text.parse().map_err(|_| malformed("a bad length"))
}

fn read_frame(reader: &mut impl BufRead, depth: usize) -> io::Result<Frame> {
    if depth > DEPTH_MAX {
        return Err(malformed("nesting too deep"));
    }
    let line = read_line(reader)?;
    let mut chars = line.chars();
    let kind = chars.next().ok_or_else(|| malformed("an empty line"))?;
    let body = chars.as_str();
    let items = |reader: &mut _, count: i64| -> io::Result<Vec<Frame>> {
        (0..count).map(|_| read_frame(reader, depth + 1)).collect()
    };
    Ok(match kind {
        '+' => Frame::Status(body.to_owned()),
        '-' => Frame::Error(body.to_owned()),
        ':' => Frame::Integer(number(body)?),
        '_' => Frame::Null,
        '$' | '=' => {
            let length = number(body)?;
            if length < 0 {
                return Ok(Frame::Null);
            }
            let length = usize::try_from(length).map_err(|_| malformed("a bad length"))?;
            let mut bytes = vec![0u8; length + 2];
            reader.read_exact(&mut bytes)?;
            bytes.truncate(length);
            Frame::Bulk(bytes)
        }
        '*' | '~' | '>' => {
            let count = number(body)?;
            if count < 0 {
                return Ok(Frame::Null);
            }
            Frame::Array(items(reader, count)?)
        }
        '%' => {
            let count = number(body)?;
            let flat = items(reader, count.saturating_mul(2))?;
            let mut pairs = Vec::new();
            let mut flat = flat.into_iter();
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((key, value));
            }
            Frame::Map(pairs)
        }
        other => Frame::Other(u8::try_from(other).unwrap_or(b'?'), body.to_owned()),
    })
}
