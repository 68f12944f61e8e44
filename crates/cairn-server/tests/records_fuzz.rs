//! Replays the keyspace record fuzz target's property (`records_fuzz_check`) in the gate, on
//! valid records of every kind with bits flipped, bytes cut and bytes inserted, and on random
//! bytes.

mod records_fuzz_check;

use cairn_server::keyspace::{
    encode, encode_group, encode_pending, encode_stream_fields, member_prefix, Collection, Kind,
    ListChunk, StreamHeader, StreamId,
};
use cairn_testkit::SplitMix64;
use records_fuzz_check::check_records;

fn seeds() -> Vec<Vec<u8>> {
    let header = Collection::new(42).encode();
    let stream = StreamHeader {
        version: 9,
        count: 3,
        last_id: StreamId { ms: 5, seq: 1 },
    }
    .encode();
    let mut element = member_prefix(1, b"key", 42);
    element.extend_from_slice(&StreamId { ms: 5, seq: 1 }.to_key_bytes());
    vec![
        encode(Kind::String, None, b"value"),
        encode(Kind::Hash, Some(1_700_000_000_000), &header),
        encode(Kind::Stream, None, &stream),
        header.to_vec(),
        stream.to_vec(),
        element,
        encode_stream_fields(&[&b"field"[..], b"value", b"", b"x"]),
        encode_group(StreamId { ms: 1, seq: 2 }).to_vec(),
        encode_pending(1_700_000_000_000, 3, b"consumer"),
        ListChunk::of([&b"first"[..], b"", b"third"])
            .map(|chunk| chunk.as_bytes().to_vec())
            .unwrap_or_default(),
    ]
}

#[test]
fn every_record_decoder_keeps_its_properties_on_mutated_and_random_input() {
    let seeds = seeds();
    for seed in &seeds {
        check_records(seed);
    }
    let mut rng = SplitMix64::new(0x7265_636f);
    for round in 0..20_000 {
        let mut input: Vec<u8> = if round % 5 == 0 {
            (0..rng.below(48))
                .map(|_| u8::try_from(rng.below(256)).unwrap_or(0))
                .collect()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..rng.below(4) {
            if input.is_empty() {
                break;
            }
            let at = rng.below(input.len());
            match rng.below(3) {
                0 => input[at] ^= 1 << rng.below(8),
                1 => input.truncate(at),
                _ => input.insert(at, u8::try_from(rng.below(256)).unwrap_or(0)),
            }
        }
        check_records(&input);
    }
}
