//! Registries built in code for the server's unit tests.

use portolan_registry::{PortRange, Protocol, Record, Registry, SourceInfo};

/// `count` tcp records `svc1`…`svcN` on ports 1…N, all with `description`
/// (two calls with different descriptions differ in every record).
pub(crate) fn numbered_registry(count: u16, description: &str) -> Registry {
    let records = (1..=count)
        .map(|port| Record {
            name: Some(format!("svc{port}")),
            ports: Some(PortRange::single(port)),
            protocol: Some(Protocol::Tcp),
            description: description.to_string(),
            ..Record::default()
        })
        .collect();
    Registry::new(records, SourceInfo::default())
}
