//! The top-level integration tests' helpers: the shared ones of
//! `portolan-test-support` (a real server in the test process or as the
//! binary, polling with a deadline), under one name for `mod support;`.
#![allow(unused_imports)]

pub use portolan_test_support::eventually;
pub use portolan_test_support::server::*;
