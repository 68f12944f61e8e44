//! Replays the RESP request fuzz target's property (`resp_fuzz_check`) on generated inputs
//! in the gate: random bytes, and valid requests with bytes flipped, cut or repeated.

mod resp_fuzz_check;

use cairn_testkit::SplitMix64;
use resp_fuzz_check::check_requests;

const SEEDS: &[&[u8]] = &[
    b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$0\r\n\r\nPING\r\n",
    b"set a \"b\\x41\\n\" 'c\\'d'\r\n*0\r\n*-1\r\n\r\n",
    b"*1\r\n$16385\r\n",
    b"*11\r\n$1\r\na\r\n",
];

#[test]
fn the_request_parser_keeps_its_properties_on_mutated_and_random_input() {
    let mut rng = SplitMix64::new(0x7265_7370);
    for round in 0..20_000 {
        let mut input: Vec<u8> = if round % 4 == 0 {
            (0..rng.below(64))
                .map(|_| b"*$\r\n0123-abc \"'\\x"[rng.below(17)])
                .collect()
        } else {
            SEEDS[rng.below(SEEDS.len())].repeat(1 + rng.below(3))
        };
        for _ in 0..rng.below(4) {
            if input.is_empty() {
                break;
            }
            let at = rng.below(input.len());
            match rng.below(3) {
                0 => input[at] ^= 1 << rng.below(8),
                1 => input.truncate(at),
                _ => input.insert(at, b"*$\r\n9"[rng.below(5)]),
            }
        }
        check_requests(&input);
    }
}
