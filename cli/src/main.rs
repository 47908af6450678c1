//! The `portolan` CLI (being written).
fn main() {}
