//! The property the RESP request fuzz target checks, shared with the corpus test
//! (`tests/resp_fuzz.rs`) so the gate replays it on every run.
//!
//! Beyond "never panics": the parser gives the same requests and the same final outcome (an
//! error, or waiting for more) whether the input arrives in one piece or split at any point;
//! and every request it returns re-encodes, as a multibulk array, to a request that parses
//! back to the same arguments.

use bytes::BytesMut;
use cairn_server::resp::parse::{Limits, ProtocolError, RequestParser};

/// Parses `chunks` in order, as reads from one connection: every request, and how it ended.
fn parse_chunks(chunks: &[&[u8]], limits: Limits) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    let mut parser = RequestParser::new();
    let mut input = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        input.extend_from_slice(chunk);
        loop {
            match parser.next(&mut input, limits) {
                Ok(Some(args)) => requests.push(args.iter().map(|arg| arg.to_vec()).collect()),
                Ok(None) => break,
                Err(error) => return (requests, Some(error)),
            }
        }
    }
    (requests, None)
}

/// Checks the properties on one input.
pub fn check_requests(bytes: &[u8]) {
    let limits = match bytes.first() {
        Some(first) if first % 2 == 0 => Limits::unauthenticated(),
        _ => Limits::authenticated(1 << 20, 4 << 20),
    };
    let whole = parse_chunks(&[bytes], limits);
    let split = bytes.get(1).map_or(0, |&byte| usize::from(byte)) % (bytes.len() + 1);
    let (head, tail) = bytes.split_at(split);
    assert_eq!(
        parse_chunks(&[head, tail], limits),
        whole,
        "split at {split}"
    );
    for request in &whole.0 {
        if request.is_empty() {
            continue;
        }
        let mut encoded = format!("*{}\r\n", request.len()).into_bytes();
        for arg in request {
            encoded.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            encoded.extend_from_slice(arg);
            encoded.extend_from_slice(b"\r\n");
        }
        let again = parse_chunks(&[&encoded], Limits::authenticated(1 << 20, 4 << 20));
        assert_eq!(again, (vec![request.clone()], None));
    }
}
