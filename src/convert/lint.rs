//! Kubernetes port specs and lint findings ([`portolan_lint`]) ⇄
//! `portolan.v1.LintPortsRequest` / `LintPortsResponse`.
//!
//! Both directions are used: the CLI's `portolan lint` against a server
//! sends the specs it read from YAML and renders the findings it gets
//! back; the server reads the specs and answers with findings. Domain →
//! protobuf never fails; protobuf → domain refuses unknown enum values and
//! unknown rule ids, naming the field. Empty strings of the wire are
//! `None` in the domain where the domain has an `Option`.

use std::collections::{BTreeMap, HashMap};

use portolan_lint::model::{
    ContainerPort, ContainerPorts, Field, Manifest, Object, PortValue, Position, ServicePort,
};
use portolan_lint::rules::{Finding, Mesh, Rule, Severity};

use super::{ConvertError, non_empty};
use crate::pb;

/// The wire value of a [`Mesh`].
pub fn mesh_to_pb(mesh: Mesh) -> pb::Mesh {
    match mesh {
        Mesh::Istio => pb::Mesh::Istio,
        Mesh::Linkerd => pb::Mesh::Linkerd,
    }
}

/// A [`Mesh`] from its wire value; UNSPECIFIED and unknown values are
/// errors.
pub fn mesh_from_pb(value: i32) -> Result<Mesh, ConvertError> {
    match pb::Mesh::try_from(value) {
        Ok(pb::Mesh::Istio) => Ok(Mesh::Istio),
        Ok(pb::Mesh::Linkerd) => Ok(Mesh::Linkerd),
        Ok(pb::Mesh::Unspecified) => Err(ConvertError::new(
            "meshes",
            "MESH_UNSPECIFIED names no mesh (MESH_ISTIO or MESH_LINKERD)",
        )),
        Err(_) => Err(ConvertError::new(
            "meshes",
            format!("unknown value {value}"),
        )),
    }
}

/// The wire value of a [`Severity`].
pub fn severity_to_pb(severity: Severity) -> pb::LintSeverity {
    match severity {
        Severity::Info => pb::LintSeverity::Info,
        Severity::Warning => pb::LintSeverity::Warning,
        Severity::Error => pb::LintSeverity::Error,
    }
}

fn severity_from_pb(value: i32) -> Result<Severity, ConvertError> {
    match pb::LintSeverity::try_from(value) {
        Ok(pb::LintSeverity::Info) => Ok(Severity::Info),
        Ok(pb::LintSeverity::Warning) => Ok(Severity::Warning),
        Ok(pb::LintSeverity::Error) => Ok(Severity::Error),
        _ => Err(ConvertError::new(
            "findings.severity",
            format!("unknown value {value}"),
        )),
    }
}

fn position_to_pb(position: Position) -> Option<pb::SourcePosition> {
    Some(pb::SourcePosition {
        line: position.line,
        column: position.column,
    })
}

fn position_from_pb(position: Option<&pb::SourcePosition>) -> Position {
    position.map_or_else(Position::default, |p| Position {
        line: p.line,
        column: p.column,
    })
}

fn text_to_pb(field: Option<&Field<String>>) -> Option<pb::TextField> {
    field.map(|f| pb::TextField {
        value: f.value.clone(),
        position: position_to_pb(f.position),
    })
}

fn text_from_pb(field: Option<&pb::TextField>) -> Option<Field<String>> {
    field.map(|f| Field {
        value: f.value.clone(),
        position: position_from_pb(f.position.as_ref()),
    })
}

fn port_to_pb(field: Option<&Field<PortValue>>) -> Option<pb::PortField> {
    field.map(|f| pb::PortField {
        value: Some(match &f.value {
            PortValue::Number(n) => pb::port_field::Value::Number(*n),
            PortValue::Text(t) => pb::port_field::Value::Text(t.clone()),
        }),
        position: position_to_pb(f.position),
    })
}

fn port_from_pb(
    field: Option<&pb::PortField>,
    name: &'static str,
) -> Result<Option<Field<PortValue>>, ConvertError> {
    let Some(f) = field else { return Ok(None) };
    let value = match &f.value {
        Some(pb::port_field::Value::Number(n)) => PortValue::Number(*n),
        Some(pb::port_field::Value::Text(t)) => PortValue::Text(t.clone()),
        None => {
            return Err(ConvertError::new(
                name,
                "is set but holds neither number nor text",
            ));
        }
    };
    Ok(Some(Field {
        value,
        position: position_from_pb(f.position.as_ref()),
    }))
}

fn labels(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn sorted(map: &HashMap<String, String>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The annotations the rules read (Linkerd's: keys containing
/// `linkerd.io/`); the others (e.g. kubectl's last-applied-configuration)
/// would only use up the request's bytes.
fn linkerd_annotations(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter()
        .filter(|(k, _)| k.contains("linkerd.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The objects of a manifest as LintPorts' request objects (of their
/// annotations, Linkerd's only).
pub fn objects_to_pb(manifest: &Manifest) -> Vec<pb::PortObject> {
    manifest.objects.iter().map(object_to_pb).collect()
}

fn object_to_pb(object: &Object) -> pb::PortObject {
    pb::PortObject {
        kind: object.kind.clone(),
        name: object.name.clone().unwrap_or_default(),
        namespace: object.namespace.clone().unwrap_or_default(),
        position: position_to_pb(object.position),
        path: object.path.clone(),
        annotations: linkerd_annotations(&object.annotations),
        template_annotations: linkerd_annotations(&object.template_annotations),
        template_labels: labels(&object.template_labels),
        selector: object.selector.as_ref().map(|s| pb::LabelSelector {
            match_labels: labels(s),
        }),
        containers: object
            .containers
            .iter()
            .map(|c| pb::ContainerPorts {
                name: c.name.clone().unwrap_or_default(),
                init: c.init,
                ports: c
                    .ports
                    .iter()
                    .map(|p| pb::ContainerPortSpec {
                        path: p.path.clone(),
                        position: position_to_pb(p.position),
                        name: text_to_pb(p.name.as_ref()),
                        container_port: port_to_pb(p.container_port.as_ref()),
                        protocol: text_to_pb(p.protocol.as_ref()),
                    })
                    .collect(),
            })
            .collect(),
        service_ports: object
            .service_ports
            .iter()
            .map(|p| pb::ServicePortSpec {
                path: p.path.clone(),
                position: position_to_pb(p.position),
                name: text_to_pb(p.name.as_ref()),
                port: port_to_pb(p.port.as_ref()),
                target_port: port_to_pb(p.target_port.as_ref()),
                protocol: text_to_pb(p.protocol.as_ref()),
                app_protocol: text_to_pb(p.app_protocol.as_ref()),
            })
            .collect(),
    }
}

/// LintPorts' request objects as a manifest (no document errors: those
/// stay with whoever read the YAML).
pub fn manifest_from_pb(objects: &[pb::PortObject]) -> Result<Manifest, ConvertError> {
    let objects = objects
        .iter()
        .map(object_from_pb)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest {
        documents: objects.len(),
        objects,
        errors: Vec::new(),
    })
}

fn object_from_pb(object: &pb::PortObject) -> Result<Object, ConvertError> {
    let containers = object
        .containers
        .iter()
        .map(|c| {
            let ports = c
                .ports
                .iter()
                .map(|p| {
                    Ok(ContainerPort {
                        path: p.path.clone(),
                        position: position_from_pb(p.position.as_ref()),
                        name: text_from_pb(p.name.as_ref()),
                        container_port: port_from_pb(
                            p.container_port.as_ref(),
                            "objects.containers.ports.container_port",
                        )?,
                        protocol: text_from_pb(p.protocol.as_ref()),
                    })
                })
                .collect::<Result<Vec<_>, ConvertError>>()?;
            Ok(ContainerPorts {
                name: non_empty(&c.name),
                init: c.init,
                ports,
            })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    let service_ports = object
        .service_ports
        .iter()
        .map(|p| {
            Ok(ServicePort {
                path: p.path.clone(),
                position: position_from_pb(p.position.as_ref()),
                name: text_from_pb(p.name.as_ref()),
                port: port_from_pb(p.port.as_ref(), "objects.service_ports.port")?,
                target_port: port_from_pb(
                    p.target_port.as_ref(),
                    "objects.service_ports.target_port",
                )?,
                protocol: text_from_pb(p.protocol.as_ref()),
                app_protocol: text_from_pb(p.app_protocol.as_ref()),
            })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    Ok(Object {
        kind: object.kind.clone(),
        name: non_empty(&object.name),
        namespace: non_empty(&object.namespace),
        position: position_from_pb(object.position.as_ref()),
        path: object.path.clone(),
        annotations: sorted(&object.annotations),
        template_annotations: sorted(&object.template_annotations),
        template_labels: sorted(&object.template_labels),
        selector: object.selector.as_ref().map(|s| sorted(&s.match_labels)),
        containers,
        service_ports,
    })
}

/// A finding as LintPorts answers it.
pub fn finding_to_pb(finding: &Finding) -> pb::LintFinding {
    pb::LintFinding {
        rule: finding.rule.id().to_string(),
        severity: severity_to_pb(finding.severity).into(),
        object: finding.object.clone(),
        path: finding.path.clone(),
        position: position_to_pb(finding.position),
        message: finding.message.clone(),
        fix: finding.fix.clone().unwrap_or_default(),
    }
}

/// A finding from LintPorts' answer; an unknown rule id is an error (the
/// client is older than the server).
pub fn finding_from_pb(finding: &pb::LintFinding) -> Result<Finding, ConvertError> {
    let rule = Rule::ALL
        .iter()
        .copied()
        .find(|r| r.id() == finding.rule)
        .ok_or_else(|| {
            ConvertError::new("findings.rule", format!("unknown rule {:?}", finding.rule))
        })?;
    Ok(Finding {
        rule,
        severity: severity_from_pb(finding.severity)?,
        object: finding.object.clone(),
        path: finding.path.clone(),
        position: position_from_pb(finding.position.as_ref()),
        message: finding.message.clone(),
        fix: non_empty(&finding.fix),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: nats
  annotations:
    config.linkerd.io/opaque-ports: \"4222\"
spec:
  selector:
    app: nats
  ports:
    - name: client
      port: 4222
      targetPort: client
      appProtocol: TCP
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: nats
  namespace: messaging
spec:
  template:
    metadata:
      labels:
        app: nats
    spec:
      initContainers:
        - name: init
          ports: [{containerPort: \"8080\"}]
      containers:
        - name: nats
          ports:
            - name: client
              containerPort: 4222
              protocol: TCP
";

    #[test]
    fn a_manifest_survives_the_wire_whole() {
        let manifest = portolan_lint::yaml::parse(YAML);
        assert_eq!(manifest.objects.len(), 2, "{manifest:?}");
        let back = manifest_from_pb(&objects_to_pb(&manifest)).unwrap();
        assert_eq!(back.objects, manifest.objects);
        // The quoted port stays text, the selector and annotations stay.
        let sts = &back.objects[1];
        assert_eq!(
            sts.containers[0].ports[0]
                .container_port
                .as_ref()
                .unwrap()
                .value,
            PortValue::Text("8080".into())
        );
        assert_eq!(sts.namespace.as_deref(), Some("messaging"));
        assert_eq!(
            back.objects[0]
                .selector
                .as_ref()
                .unwrap()
                .get("app")
                .map(String::as_str),
            Some("nats")
        );
    }

    #[test]
    fn findings_survive_the_wire_and_unknown_rules_are_refused() {
        let finding = Finding {
            rule: Rule::ServerFirstUnhandled,
            severity: Severity::Error,
            object: "Service/nats".into(),
            path: "spec.ports[0].name".into(),
            position: Position {
                line: 11,
                column: 13,
            },
            message: "stalls".into(),
            fix: Some("name: tcp-nats".into()),
        };
        let wire = finding_to_pb(&finding);
        assert_eq!(wire.rule, "server-first-unhandled");
        assert_eq!(finding_from_pb(&wire).unwrap(), finding);
        let unknown = pb::LintFinding {
            rule: "no-such-rule".into(),
            ..wire
        };
        let err = finding_from_pb(&unknown).unwrap_err();
        assert_eq!(err.field, "findings.rule");
        assert!(err.reason.contains("no-such-rule"), "{err}");
    }

    #[test]
    fn meshes_must_be_named() {
        assert_eq!(
            mesh_from_pb(pb::Mesh::Linkerd.into()).unwrap(),
            Mesh::Linkerd
        );
        let err = mesh_from_pb(pb::Mesh::Unspecified.into()).unwrap_err();
        assert!(err.reason.contains("MESH_UNSPECIFIED"), "{err}");
        assert!(mesh_from_pb(99).is_err());
    }
}
