//! Feeds arbitrary text to `portolan_registry::parse::text::parse`: it must
//! return (Ok or Err) without panicking, overflowing or hanging.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The per-format parsers take `&str`; invalid UTF-8 is rejected before
    // them by `parse::as_utf8`, which the parse_detect target covers.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = portolan_registry::parse::text::parse(text);
    }
});
