//! Kubernetes YAML to [`Manifest`], with the position of every field.
//!
//! The input is a YAML stream of any number of documents (`kubectl
//! kustomize` and `helm template` output, `---`-separated files); `kind:
//! List` documents contribute their `items`. Each document is read into a
//! small positioned tree with `saphyr-parser`'s events (anchors and
//! aliases resolved, `<<` merge keys followed), then the port specs are
//! taken from it.
//!
//! A document that fails to parse becomes a [`DocumentError`] at the
//! parser's position and reading resumes at the next line starting with
//! `---`: the other documents are still linted. Input is bounded by
//! [`MAX_INPUT_BYTES`], the nodes aliases copy by [`MAX_ALIAS_NODES`],
//! and nesting by [`MAX_DEPTH`], checked here as events arrive:
//! `saphyr-parser` bounds only flow nesting, and a block sequence
//! 100,000 deep (`- - - ...`) would otherwise build a tree whose
//! recursive reading, cloning and dropping overflow the stack. A deeper
//! document is a [`DocumentError`] like a syntax error; no node deeper
//! than the bound is ever built.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Read;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::model::{
    ContainerPort, ContainerPorts, DocumentError, Field, Manifest, Object, PortValue, Position,
    ServicePort,
};

/// The largest input read: 16 MiB (a `kubectl kustomize` of a big
/// platform is a few MiB).
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Why an input could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The reader failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// More than [`MAX_INPUT_BYTES`].
    #[error("larger than {} MiB; split it", MAX_INPUT_BYTES / 1024 / 1024)]
    TooLarge,
    /// Not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// Reads at most [`MAX_INPUT_BYTES`] of UTF-8 text.
///
/// # Errors
/// The reader's error, an input over the bound, or bytes that are not
/// UTF-8.
pub fn read_bounded(reader: impl Read) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

/// A node of a document, with where it starts.
#[derive(Debug, Clone)]
enum Node {
    Scalar {
        text: String,
        plain: bool,
        at: Position,
    },
    Seq {
        items: Vec<Node>,
        at: Position,
    },
    Map {
        entries: Vec<(Node, Node)>,
        at: Position,
    },
}

impl Node {
    fn at(&self) -> Position {
        match self {
            Self::Scalar { at, .. } | Self::Seq { at, .. } | Self::Map { at, .. } => *at,
        }
    }

    /// The value of `key` in a mapping, following `<<` merge keys.
    fn get(&self, key: &str) -> Option<&Node> {
        let Self::Map { entries, .. } = self else {
            return None;
        };
        let direct = entries.iter().find_map(|(k, v)| match k {
            Self::Scalar { text, .. } if text == key => Some(v),
            _ => None,
        });
        direct.or_else(|| {
            entries.iter().find_map(|(k, v)| match (k, v) {
                (Self::Scalar { text, .. }, Self::Map { .. }) if text == "<<" => v.get(key),
                (Self::Scalar { text, .. }, Self::Seq { items, .. }) if text == "<<" => {
                    items.iter().find_map(|m| m.get(key))
                }
                _ => None,
            })
        })
    }

    fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    fn text(&self) -> Option<&str> {
        match self {
            Self::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A scalar that is not YAML null.
    fn string_field(&self) -> Option<Field<String>> {
        match self {
            Self::Scalar { text, plain, at } if !(*plain && is_null(text)) => Some(Field {
                value: text.clone(),
                position: *at,
            }),
            _ => None,
        }
    }

    fn port_field(&self) -> Option<Field<PortValue>> {
        match self {
            Self::Scalar { text, plain, at } if !(*plain && is_null(text)) => {
                let value = match text.parse::<i64>() {
                    Ok(n) if *plain => PortValue::Number(n),
                    _ => PortValue::Text(text.clone()),
                };
                Some(Field {
                    value,
                    position: *at,
                })
            }
            _ => None,
        }
    }

    fn items(&self) -> &[Node] {
        match self {
            Self::Seq { items, .. } => items,
            _ => &[],
        }
    }

    fn string_map(&self) -> BTreeMap<String, String> {
        let Self::Map { entries, .. } = self else {
            return BTreeMap::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| Some((k.text()?.to_string(), v.text()?.to_string())))
            .collect()
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// The most nodes aliases may copy in one input: a few anchors referring
/// to each other ("billion laughs") would otherwise expand a small input
/// into more nodes than memory holds.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// The deepest nesting of collections read: Kubernetes objects need
/// about 15 levels; deeper documents are refused before any node below
/// this depth exists, so every recursion over a tree (reading, `<<`
/// lookups, cloning an anchor, dropping) is at most this deep.
pub const MAX_DEPTH: usize = 128;

/// Builds document trees from parser events.
#[derive(Default)]
struct Builder {
    /// Open collections: the node and, for mappings, a pending key.
    stack: Vec<(Node, Option<Node>)>,
    /// Each anchor's node and its size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Anchor ids of the open collections and the node count at their
    /// start, parallel to `stack`.
    anchor_ids: Vec<(usize, usize)>,
    documents: Vec<Node>,
    /// Nodes made so far (aliases count the nodes they copy).
    nodes: usize,
    /// Nodes copied by aliases so far.
    alias_nodes: usize,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some((Node::Seq { items, .. }, _)) => items.push(node),
            Some((Node::Map { entries, .. }, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
            Some((Node::Scalar { .. }, _)) => {}
        }
    }

    /// Adds one event to the tree; `Err` when aliases copy more than
    /// [`MAX_ALIAS_NODES`] or collections nest deeper than [`MAX_DEPTH`].
    fn on_event(&mut self, event: Event<'_>, at: Position) -> Result<(), String> {
        match event {
            Event::Scalar(text, style, anchor, _) => {
                let node = Node::Scalar {
                    text: text.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    at,
                };
                self.nodes += 1;
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.push_value(node);
            }
            Event::Alias(id) => {
                // Counted before the copy is made.
                let size = self.anchors.get(&id).map_or(1, |(_, size)| *size);
                self.alias_nodes += size;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(format!("aliases copy more than {MAX_ALIAS_NODES} nodes"));
                }
                let node = self.anchors.get(&id).map_or_else(
                    || Node::Scalar {
                        text: String::new(),
                        plain: true,
                        at,
                    },
                    |(node, _)| node.clone(),
                );
                self.nodes += size;
                self.push_value(node);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                return Err(format!("collections nested deeper than {MAX_DEPTH} levels"));
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((Node::Seq { items: vec![], at }, None));
                self.anchor_ids.push((anchor, self.nodes));
                self.nodes += 1;
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((
                    Node::Map {
                        entries: vec![],
                        at,
                    },
                    None,
                ));
                self.anchor_ids.push((anchor, self.nodes));
                self.nodes += 1;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let (Some((node, _)), Some((anchor, start))) =
                    (self.stack.pop(), self.anchor_ids.pop())
                {
                    if anchor != 0 {
                        self.anchors
                            .insert(anchor, (node.clone(), self.nodes - start));
                    }
                    self.push_value(node);
                }
            }
            Event::DocumentStart(_) => {
                self.stack.clear();
                self.anchor_ids.clear();
                self.anchors.clear();
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }
}

fn position(span: &Span, line_offset: usize) -> Position {
    Position {
        line: u32::try_from(span.start.line() + line_offset).unwrap_or(u32::MAX),
        column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    }
}

/// Parses every document of `text`, resuming after a document that fails
/// at the next `---` line.
fn documents(text: &str) -> (Vec<Node>, Vec<DocumentError>) {
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    let mut rest = text;
    let mut line_offset = 0usize;
    let mut alias_nodes = 0;
    loop {
        let mut builder = Builder {
            alias_nodes,
            ..Builder::default()
        };
        let mut failed = None;
        for event in Parser::new_from_str(rest) {
            match event {
                Ok((event, span)) => {
                    let at = position(&span, line_offset);
                    if let Err(message) = builder.on_event(event, at) {
                        failed = Some((at, message));
                        break;
                    }
                }
                Err(e) => {
                    let at = Position {
                        line: u32::try_from(e.marker().line() + line_offset).unwrap_or(u32::MAX),
                        column: u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
                    };
                    failed = Some((at, e.info().to_string()));
                    break;
                }
            }
        }
        alias_nodes = builder.alias_nodes;
        nodes.append(&mut builder.documents);
        let Some((position, message)) = failed else {
            break;
        };
        let error_line = position.line as usize;
        errors.push(DocumentError { position, message });
        // Resume at the first `---` line from the error's on (the error
        // may be reported at the marker ending the broken document), never
        // at the line this pass started from.
        let mut line = line_offset;
        let mut offset = 0;
        let mut resume = None;
        for l in rest.split_inclusive('\n') {
            line += 1;
            if line >= error_line.max(line_offset + 2)
                && (l.starts_with("---") || l.starts_with("..."))
            {
                resume = Some((offset, line - 1));
                break;
            }
            offset += l.len();
        }
        match resume {
            Some((offset, before)) => {
                rest = &rest[offset..];
                line_offset = before;
            }
            None => break,
        }
    }
    (nodes, errors)
}

/// Reads every document of `text` into a [`Manifest`].
pub fn parse(text: &str) -> Manifest {
    let (nodes, errors) = documents(text);
    let mut manifest = Manifest {
        objects: Vec::new(),
        errors,
        documents: nodes.len(),
    };
    for node in &nodes {
        read_object(node, "", &mut manifest.objects);
    }
    manifest
}

/// The pod template (metadata and spec) of each workload kind.
fn pod_template<'n>(kind: &str, root: &'n Node) -> Option<(Option<&'n Node>, &'n Node, String)> {
    let template = match kind {
        "Pod" => return Some((root.get("metadata"), root.get("spec")?, "spec".into())),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => ("spec.template", root.path(&["spec", "template"])?),
        "CronJob" => (
            "spec.jobTemplate.spec.template",
            root.path(&["spec", "jobTemplate", "spec", "template"])?,
        ),
        _ => return None,
    };
    Some((
        template.1.get("metadata"),
        template.1.get("spec")?,
        format!("{}.spec", template.0),
    ))
}

fn read_object(root: &Node, path: &str, out: &mut Vec<Object>) {
    let Some(kind) = root.get("kind").and_then(Node::text) else {
        return;
    };
    if kind == "List" || kind.ends_with("List") {
        for (i, item) in root
            .get("items")
            .map(Node::items)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            read_object(item, &format!("{path}items[{i}]."), out);
        }
        return;
    }
    let metadata = root.get("metadata");
    let meta = |key: &str| metadata.and_then(|m| m.get(key));
    let mut object = Object {
        kind: kind.to_string(),
        name: meta("name").and_then(Node::text).map(str::to_string),
        namespace: meta("namespace").and_then(Node::text).map(str::to_string),
        position: root.at(),
        path: path.to_string(),
        annotations: meta("annotations")
            .map(Node::string_map)
            .unwrap_or_default(),
        ..Object::default()
    };
    if kind == "Service" {
        object.selector = root.path(&["spec", "selector"]).map(Node::string_map);
        for (i, port) in root
            .path(&["spec", "ports"])
            .map(Node::items)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let field = |key: &str| port.get(key).and_then(Node::string_field);
            object.service_ports.push(ServicePort {
                path: format!("{path}spec.ports[{i}]"),
                position: port.at(),
                name: field("name"),
                port: port.get("port").and_then(Node::port_field),
                target_port: port.get("targetPort").and_then(Node::port_field),
                protocol: field("protocol"),
                app_protocol: field("appProtocol"),
            });
        }
    } else if let Some((template_meta, spec, spec_path)) = pod_template(kind, root) {
        let tmeta = |key: &str| template_meta.and_then(|m| m.get(key));
        object.template_labels = tmeta("labels").map(Node::string_map).unwrap_or_default();
        object.template_annotations = tmeta("annotations")
            .map(Node::string_map)
            .unwrap_or_default();
        for (list, init) in [("initContainers", true), ("containers", false)] {
            for (c, container) in spec
                .get(list)
                .map(Node::items)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                let ports = container
                    .get("ports")
                    .map(Node::items)
                    .unwrap_or(&[])
                    .iter()
                    .enumerate()
                    .map(|(i, port)| ContainerPort {
                        path: format!("{path}{spec_path}.{list}[{c}].ports[{i}]"),
                        position: port.at(),
                        name: port.get("name").and_then(Node::string_field),
                        container_port: port.get("containerPort").and_then(Node::port_field),
                        protocol: port.get("protocol").and_then(Node::string_field),
                    })
                    .collect();
                object.containers.push(ContainerPorts {
                    name: container
                        .get("name")
                        .and_then(Node::text)
                        .map(str::to_string),
                    init,
                    ports,
                });
            }
        }
    } else if kind != "Namespace" {
        return;
    }
    out.push(object);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, column: u32) -> Position {
        Position { line, column }
    }

    #[test]
    fn ports_and_positions_are_read() {
        let m = parse(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - name: http\n    port: 80\n    targetPort: \"8080\"\n",
        );
        assert_eq!(m.errors, vec![]);
        let p = &m.objects[0].service_ports[0];
        assert_eq!(p.path, "spec.ports[0]");
        assert_eq!(p.position, pos(8, 5));
        assert_eq!(
            p.name.as_ref().map(|n| (n.value.as_str(), n.position)),
            Some(("http", pos(8, 11)))
        );
        assert_eq!(
            p.port.as_ref().map(|n| &n.value),
            Some(&PortValue::Number(80))
        );
        assert_eq!(
            p.target_port.as_ref().map(|n| &n.value),
            Some(&PortValue::Text("8080".into()))
        );
        assert_eq!(
            m.objects[0].selector.as_ref().map(|s| s["app"].as_str()),
            Some("web")
        );
    }

    #[test]
    fn a_broken_document_does_not_hide_the_others() {
        let text = "kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n    ports:\n    - {containerPort: 1, name: one}\n---\nkind: Pod\nmetadata: [unclosed\n---\nkind: Pod\nmetadata:\n  name: c\nspec:\n  containers:\n  - ports:\n    - containerPort: 3\n";
        let m = parse(text);
        let names: Vec<_> = m.objects.iter().map(|o| o.name.clone()).collect();
        assert_eq!(names, vec![Some("a".into()), Some("c".into())]);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].position.line, 11);
        assert_eq!(m.objects[1].containers[0].ports[0].position, pos(18, 7));
    }

    #[test]
    fn lists_anchors_and_cronjobs() {
        let text = "kind: List\nitems:\n- kind: CronJob\n  metadata: {name: j}\n  spec:\n    jobTemplate:\n      spec:\n        template:\n          metadata:\n            labels: &l {app: x}\n          spec:\n            containers:\n            - ports: [{containerPort: 9, name: &n nine}]\n- kind: Service\n  metadata: {name: s}\n  spec:\n    selector: *l\n    ports: [{port: 9, targetPort: *n}]\n";
        let m = parse(text);
        assert_eq!(m.objects.len(), 2);
        assert_eq!(
            m.objects[0].containers[0].ports[0].path,
            "items[0].spec.jobTemplate.spec.template.spec.containers[0].ports[0]"
        );
        assert_eq!(
            m.objects[1].selector.as_ref().map(|s| s["app"].as_str()),
            Some("x")
        );
        assert_eq!(
            m.objects[1].service_ports[0]
                .target_port
                .as_ref()
                .map(|t| &t.value),
            Some(&PortValue::Text("nine".into()))
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("kind: Pod\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        text.push_str("---\nkind: Namespace\nmetadata: {name: next}\n");
        let m = parse(&text);
        assert_eq!(m.errors.len(), 1);
        assert!(
            m.errors[0]
                .message
                .contains("aliases copy more than 1000000 nodes")
        );
        assert_eq!(m.objects.len(), 1);
        assert_eq!(m.objects[0].name.as_deref(), Some("next"));
    }

    #[test]
    fn deep_nesting_is_a_document_error_not_a_crash() {
        let next = "---\nkind: Namespace\nmetadata: {name: next}\n";
        for (what, deep) in [
            ("block", "- ".repeat(100_000) + "x\n"),
            ("flow", "[".repeat(100_000) + "\n"),
            (
                "mapping",
                (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
            ),
        ] {
            let m = parse(&format!("kind: Pod\ndeep:\n{deep}{next}"));
            assert_eq!(m.errors.len(), 1, "{what}");
            assert_eq!(m.objects.len(), 1, "{what}");
            assert_eq!(m.objects[0].name.as_deref(), Some("next"), "{what}");
        }
        let m = parse(&("- ".repeat(100_000) + "x\n"));
        assert!(
            m.errors[0].message.contains("nested deeper than 128"),
            "{:?}",
            m.errors
        );
        assert_eq!(m.errors[0].position.line, 1);
        // 128 levels are read.
        let m = parse(&format!("{}x\n", "- ".repeat(MAX_DEPTH)));
        assert_eq!(m.errors, vec![]);
    }

    #[test]
    fn input_is_bounded() {
        let big = std::io::repeat(b'a').take(MAX_INPUT_BYTES + 10);
        assert!(matches!(read_bounded(big), Err(ReadError::TooLarge)));
        assert_eq!(
            read_bounded(&b"kind: Pod"[..]).ok().as_deref(),
            Some("kind: Pod")
        );
    }
}
