//! Writing a registry back out: IANA CSV, services(5) and JSON (being written).
