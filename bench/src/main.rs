//! `portolan-bench` (being written).
fn main() {}
