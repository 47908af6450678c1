//! Feeds arbitrary text to `portolan_registry::parse::csv::parse_with_limits`
//! (with small [`ParseLimits`](portolan_registry::ParseLimits)): it must
//! return (Ok or Err) without panicking, overflowing or hanging.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The per-format parsers take `&str`; invalid UTF-8 is rejected before
    // them by `parse::as_utf8`, which the parse_detect target covers.
    if let Ok(text) = std::str::from_utf8(data) {
        // Small limits, so the fuzzer reaches the limit checks too.
        let limits = portolan_registry::ParseLimits {
            max_bytes: 1 << 20,
            max_records: 100,
            max_record_bytes: 4096,
            max_record_items: 16,
        };
        let _ = portolan_registry::parse::csv::parse_with_limits(text, &limits);
    }
});
