//! Feeds arbitrary bytes to `portolan_registry::parse::parse_with_limits`
//! (small limits), the entry point the server uses: gzip sniffing, UTF-8 check, format detection (or a
//! forced format) and the chosen parser. It must return without panicking.
//!
//! The first byte is a selector, so one target reaches every path:
//! * bits 0-2: 0 = detect the format, 1-5 = force `Format::ALL[n - 1]`,
//!   6-7 = detect;
//! * bit 3: gzip-compress the rest before parsing, so the fuzzer explores the
//!   parsers behind a *valid* gzip layer too (raw bytes starting with the
//!   gzip magic still exercise the decoder's error paths).
#![no_main]

use std::io::Write as _;

use libfuzzer_sys::fuzz_target;
use portolan_registry::parse::{Format, ParseLimits, parse_with_limits};

/// Small limits, so the fuzzer reaches the limit checks too.
const LIMITS: ParseLimits = ParseLimits {
    max_bytes: 1 << 20,
    max_records: 100,
    max_record_bytes: 4096,
    max_record_items: 16,
};

fuzz_target!(|data: &[u8]| {
    let parse = |bytes: &[u8], format| parse_with_limits(bytes, format, &LIMITS);
    let Some((&selector, rest)) = data.split_first() else {
        let _ = parse(data, None);
        return;
    };
    let format = match usize::from(selector & 0b111) {
        n @ 1..=5 => Some(Format::ALL[n - 1]),
        _ => None,
    };
    if selector & 0b1000 != 0 {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(rest)
            .expect("writing to a Vec cannot fail");
        let gz = encoder.finish().expect("writing to a Vec cannot fail");
        let _ = parse(&gz, format);
    } else {
        let _ = parse(rest, format);
    }
});
