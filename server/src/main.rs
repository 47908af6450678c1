//! `portolan-server` (being written).
fn main() {}
