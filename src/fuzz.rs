//! Property tests of every parser that reads text from outside: packs, key
//! intake, the host's envelope and error shapes, and the account-test SSE
//! stream. Arbitrary input must give an answer or an error, never a panic,
//! and in bounded time.

use proptest::prelude::*;
use std::time::{Duration, Instant};

/// Text that looks a little like what each parser expects, mixed with noise.
fn texty() -> impl Strategy<Value = String> {
    let pieces = prop::collection::vec(
        prop_oneof![
            Just("schema: 1\n".to_string()),
            Just("providers:\n  ds:\n".to_string()),
            Just("  - ".to_string()),
            Just("&a [*a, *a]\n".to_string()),
            Just("{\"code\":0,\"data\":".to_string()),
            Just("data: {\"type\":\"error\"}\n\n".to_string()),
            Just("[[[[".to_string()),
            Just("sk-".to_string()),
            Just("\n".to_string()),
            Just(",".to_string()),
            any::<String>(),
            "[ -~]{0,40}",
        ],
        0..24,
    );
    pieces.prop_map(|p| p.concat())
}

fn quick<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a parser took {:?}",
        t.elapsed()
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_pack_parser_answers_any_text(text in texty()) {
        let _ = quick(|| crate::pack::parse(&text, None));
        let _ = quick(|| crate::pack::parse(&text, Some(crate::pack::Format::Toml)));
    }

    #[test]
    fn key_intake_answers_any_text(text in texty()) {
        if let Ok((keys, skipped)) = quick(|| crate::ops::import::read_keys(&text)) {
            // Nothing is invented: every key and refusal comes from a line.
            prop_assert!(keys.len() + skipped.len() <= text.lines().count().max(1) * 2);
        }
    }

    #[test]
    fn the_envelope_parser_answers_any_body(body in texty(), status in 100u16..600) {
        let _ = quick(|| crate::host::parse_envelope("GET", "/x", status, None, body.as_bytes()));
    }

    #[test]
    fn the_sse_parser_answers_any_stream(text in texty()) {
        let _ = quick(|| crate::host::parse_sse(&text));
    }
}
