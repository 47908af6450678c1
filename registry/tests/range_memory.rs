//! Issue #13, row 7: 65,536 rows of `0-65535` made the index expand every
//! range to its ports (2^32 entries: a u32 count overflowed and the build
//! panicked), and 2,000 such rows took 525 MB while loading. Here such
//! registries are indexed, looked up and reloaded; what the index holds is
//! counted ([`Index::footprint`]) and must grow with rows, not ports ×
//! rows. The process's peak resident memory is printed, and bounded
//! generously where Linux reports it (this binary holds this one test).

use portolan_registry::{Index, PortRange, Protocol, Record, Registry, ReloadGuard, SourceInfo};

fn whole_port_space(rows: usize, text: &str) -> Registry {
    let records = (0..rows)
        .map(|i| Record {
            name: Some(format!("svc{}", i % 100)),
            ports: PortRange::new(0, u16::MAX),
            protocol: Some([Protocol::Tcp, Protocol::Udp][i % 2].clone()),
            description: text.to_string(),
            ..Record::default()
        })
        .collect();
    Registry::new(records, SourceInfo::default())
}

/// Peak resident memory of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn whole_port_space_rows_are_held_as_intervals() {
    for rows in [2_000, 65_536] {
        let index = Index::new(whole_port_space(rows, "everything"));
        for port in [0, 1, 32768, u16::MAX] {
            let found = index.lookup_port(port, None);
            assert_eq!(found.entries.len(), rows, "port {port}");
        }
        let built = index.footprint();
        // Half the rows change: a reload touching every port.
        let mut next = whole_port_space(rows, "everything");
        for record in next.records.iter_mut().step_by(2) {
            record.description = "changed".into();
        }
        let change = index.apply(next, &ReloadGuard::default()).unwrap();
        assert_eq!(change.unwrap().diff.changed.len(), rows / 2);
        let found = index
            .lookup_port(40_000, Some(&Protocol::Udp))
            .into_records()
            .records;
        assert_eq!(found.len(), rows / 2);
        assert_eq!(
            found[0].description, "everything",
            "row 1 is udp, unchanged"
        );
        let reloaded = index.footprint();
        println!(
            "{rows} rows of 0-65535: built {built:?}; reloaded {reloaded:?}; peak RSS so far {:?} KiB",
            peak_rss_kib()
        );
        for footprint in [built, reloaded] {
            assert_eq!(footprint.ranges, rows);
            assert_eq!(footprint.range_blocks, rows, "one block per row");
            assert_eq!(footprint.range_segments, 1, "every port alike");
            assert_eq!((footprint.port_lists, footprint.port_entries), (0, 0));
            assert_eq!(footprint.name_entries, rows);
            // One list, shared by every port.
            assert_eq!(footprint.kept_range_entries, rows as u64);
        }
    }
    if let Some(peak) = peak_rss_kib() {
        // Before: 525 MB for 2,000 rows, 2^32 entries for 65,536.
        assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    }
}
