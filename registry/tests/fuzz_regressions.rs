//! Replays every input saved under `fuzz/regressions/<target>/` (inputs that
//! once crashed, hung or blew up a fuzz target, minimised with
//! `cargo fuzz tmin`) through the same parser call the fuzz target makes,
//! and asserts that each one now returns (`Ok` or `Err`) without panicking
//! and within a time limit.
//!
//! The files are interpreted exactly as `fuzz/fuzz_targets/<target>.rs`
//! does (for `parse_detect`, the first byte selects the format and whether
//! to gzip the rest), so a crash artifact can be copied here unchanged. The
//! test also runs built-in inputs so it exercises every target's path even
//! while a directory is empty.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use portolan_registry::parse::{self, Format};

/// Longest a single input may take (a fuzz target run uses `-timeout=10`).
const LIMIT: Duration = Duration::from_secs(10);

/// The parser targets this test knows how to replay.
const TARGETS: [&str; 6] = [
    "parse_csv",
    "parse_xml",
    "parse_text",
    "parse_services",
    "parse_nmap",
    "parse_detect",
];

/// Decoding inputs are not parser inputs and need the protobuf types, which
/// this network-free crate does not have; replay one with
/// `cargo fuzz run decode_requests <file>` (see `fuzz/README.md`).
const OTHER_TARGETS: [&str; 2] = ["decode_requests", "decode_responses"];

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// What the fuzz target `target` does with `data`; `Ok(true)` when the
/// parser accepted the input, `Ok(false)` when it rejected it (or the input
/// is not UTF-8, which the per-format targets skip).
fn run_target(target: &str, data: &[u8]) -> bool {
    let text = std::str::from_utf8(data);
    match target {
        "parse_csv" => text.is_ok_and(|t| parse::csv::parse(t).is_ok()),
        "parse_xml" => text.is_ok_and(|t| parse::xml::parse(t).is_ok()),
        "parse_text" => text.is_ok_and(|t| parse::text::parse(t).is_ok()),
        "parse_services" => text.is_ok_and(|t| parse::services::parse(t).is_ok()),
        "parse_nmap" => text.is_ok_and(|t| parse::nmap::parse(t).is_ok()),
        "parse_detect" => {
            let Some((&selector, rest)) = data.split_first() else {
                return parse::parse(data, None).is_ok();
            };
            let format = match usize::from(selector & 0b111) {
                n @ 1..=5 => Some(Format::ALL[n - 1]),
                _ => None,
            };
            if selector & 0b1000 != 0 {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(rest).expect("gzip to a Vec");
                parse::parse(&encoder.finish().expect("gzip to a Vec"), format).is_ok()
            } else {
                parse::parse(rest, format).is_ok()
            }
        }
        other => panic!("no replay for fuzz target {other:?}"),
    }
}

/// Runs one input on its own thread so a panic or a hang is reported with
/// the input's name instead of taking the whole test binary down.
fn replay(target: &'static str, name: &str, data: Vec<u8>) -> bool {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let accepted = run_target(target, &data);
        let _ = tx.send(accepted);
    });
    match rx.recv_timeout(LIMIT) {
        Ok(accepted) => {
            worker.join().expect("worker finished");
            accepted
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = worker
                .join()
                .expect_err("the worker died without an answer");
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("{target}/{name}: the parser panicked: {message}");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{target}/{name}: the parser took longer than {LIMIT:?}")
        }
    }
}

#[test]
fn saved_fuzz_inputs_return_without_panicking() {
    let dir = regressions_dir();
    let mut replayed = 0usize;
    // The folder is committed (its README explains it): a missing one is a
    // broken checkout, not "nothing to replay".
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("read fuzz/regressions");
        if !entry.file_type().expect("file type").is_dir() {
            continue; // README and the like
        }
        let target_name = entry.file_name().to_string_lossy().into_owned();
        if OTHER_TARGETS.contains(&target_name.as_str()) {
            continue;
        }
        let target = *TARGETS
            .iter()
            .find(|t| **t == target_name)
            .unwrap_or_else(|| panic!("fuzz/regressions/{target_name}: unknown fuzz target"));
        for input in std::fs::read_dir(entry.path()).expect("read target directory") {
            let input = input.expect("read target directory");
            let name = input.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(input.path()).expect("read saved input");
            let accepted = replay(target, &name, data);
            eprintln!(
                "{target}/{name}: {}",
                if accepted { "accepted" } else { "rejected" }
            );
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved fuzz inputs");
}

/// Hand-made hostile inputs of the kinds the fuzzers mutate towards, so every
/// replay path runs even when no regression is saved for a target.
#[test]
fn hostile_inputs_return_without_panicking() {
    let header = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,\
                  Registration Date,Modification Date,Reference,Service Code,\
                  Unauthorized Use Reported,Assignment Notes\r\n";
    let cases: Vec<(&'static str, Vec<u8>)> = vec![
        ("parse_csv", Vec::new()),
        ("parse_csv", header.as_bytes().to_vec()),
        ("parse_csv", format!("{header}x,65536,tcp,,,,,,,,,\r\n").into_bytes()),
        ("parse_csv", format!("{header}x,5-4,tcp,,,,,,,,,\r\n").into_bytes()),
        ("parse_csv", format!("{header}x,1,tcp,\"open").into_bytes()),
        ("parse_csv", format!("{header}\u{fffd},1,tcp,,[,],,,[[,,,\r\n").into_bytes()),
        ("parse_xml", b"<".to_vec()),
        ("parse_xml", b"<registry><record><number>99999999999999999999</number></record></registry>".to_vec()),
        ("parse_xml", b"<registry><record><name>a</name><number>1-</number><protocol>tcp</protocol></record><people><person id=\"x\"></people></registry>".to_vec()),
        ("parse_text", b"Service Name and Transport Protocol Port Number Registry\nService Name Port Number\n".to_vec()),
        ("parse_services", b"a 0/tcp\nb 65536/udp\nc -1/tcp\nd 1/ x y z\n\x00\t/\n".to_vec()),
        ("parse_nmap", b"a\t1/tcp\tNaN\nb\t2/udp\t-inf\nc\t3/sctp\t1e999\n".to_vec()),
        ("parse_detect", vec![0x08]),
        ("parse_detect", [&[0u8][..], &[0x1f, 0x8b, 0x08, 0, 0, 0]].concat()),
        ("parse_detect", [&[0u8][..], b"\xEF\xBB\xBF\xff"].concat()),
        ("parse_detect", [&[3u8][..], b"a 1/tcp\n"].concat()),
    ];
    for (i, (target, data)) in cases.into_iter().enumerate() {
        replay(target, &format!("builtin-{i}"), data);
    }
}
