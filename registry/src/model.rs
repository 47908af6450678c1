//! The domain model: one [`Record`] per registry row, with nothing lost, and
//! the small value types it is made of.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The case folding used for name lookups and searches, the one rule every
/// place that compares names uses (the index's maps, the search text, the
/// client's cache): ASCII lowercase for ASCII text (nearly every registry
/// string, and the fast path), each character's Unicode lowercase
/// otherwise. Folding character by character, with no context, keeps the
/// fold of a substring a substring of the fold (unlike `str::to_lowercase`,
/// which lowercases a word-final `Σ` to `ς`), and folds a titlecase letter
/// such as `ǅ` like its lowercase and uppercase forms (`ǆ`, `Ǆ`).
pub fn fold_name(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.chars().flat_map(char::to_lowercase).collect()
    }
}

/// [`fold_name`] without a copy when `text` is already folded ASCII (the
/// common case of a lookup).
pub fn folded_name(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(fold_name(text))
    }
}

/// Whether `text` starts with the ASCII `prefix`, ignoring ASCII case.
fn starts_with_ignore_ascii_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `text` contains the ASCII `needle`, ignoring ASCII case.
fn contains_ignore_ascii_case(text: &str, needle: &str) -> bool {
    needle.is_empty()
        || text
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A port or an inclusive port range such as x11's `6000-6063`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (equal to `start` for a single port).
    pub end: u16,
}

impl PortRange {
    /// A single port.
    pub fn single(port: u16) -> Self {
        Self {
            start: port,
            end: port,
        }
    }

    /// A range; `None` when `start > end`.
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    /// Whether `port` lies inside the range.
    pub fn contains(&self, port: u16) -> bool {
        self.start <= port && port <= self.end
    }

    /// Whether the range overlaps `[min, max]`.
    pub fn overlaps(&self, min: u16, max: u16) -> bool {
        self.start <= max && min <= self.end
    }

    /// How many ports the range covers (never 0: a range holds at least
    /// one port, so there is no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Whether this is a single port.
    pub fn is_single(&self) -> bool {
        self.start == self.end
    }

    /// The RFC 6335 class of the range's ports.
    pub fn class(&self) -> PortClass {
        let (a, b) = (PortClass::of(self.start), PortClass::of(self.end));
        if a == b { a } else { PortClass::Mixed }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A transport protocol as a registry row names it.
///
/// A row that names no protocol is represented by `Option::<Protocol>::None`
/// and applies to every protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// DCCP.
    Dccp,
    /// Any other protocol a source names (e.g. `ddp` in `/etc/services`),
    /// lowercased.
    Other(Box<str>),
}

impl Protocol {
    /// Parses a protocol name, case-insensitively. Unknown names become
    /// [`Protocol::Other`]; an empty string is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let known = [Self::Tcp, Self::Udp, Self::Sctp, Self::Dccp];
        if text.is_empty() {
            return None;
        }
        Some(
            known
                .into_iter()
                .find(|p| p.as_str().eq_ignore_ascii_case(text))
                .unwrap_or_else(|| Self::Other(text.to_ascii_lowercase().into_boxed_str())),
        )
    }

    /// The protocol's name, lowercase.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
            Self::Dccp => "dccp",
            Self::Other(name) => name,
        }
    }

    /// Whether a record with protocol `record` answers a query for `query`
    /// (`None` on either side matches everything).
    pub fn matches(record: Option<&Protocol>, query: Option<&Protocol>) -> bool {
        match (record, query) {
            (_, None) | (None, _) => true,
            (Some(r), Some(q)) => r == q,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a registry row, derived from the row.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum RecordState {
    /// Assigned to someone (the default).
    #[default]
    Assigned,
    /// Reserved.
    Reserved,
    /// Unassigned.
    Unassigned,
    /// Removed or de-registered.
    Removed,
}

impl RecordState {
    /// Every state, in display order.
    pub const ALL: [RecordState; 4] = [
        Self::Assigned,
        Self::Reserved,
        Self::Unassigned,
        Self::Removed,
    ];

    /// Lowercase name: `assigned`, `reserved`, `unassigned`, `removed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Reserved => "reserved",
            Self::Unassigned => "unassigned",
            Self::Removed => "removed",
        }
    }

    /// Parses a lowercase or mixed-case state name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// Derives the state of a row from its name, description and notes.
    ///
    /// Rules, all case-insensitive:
    /// * a description or note saying "removed", "de-registered",
    ///   "deregistered", "de-assigned" or "decommissioned"/"decomissioned"
    ///   makes the row [`RecordState::Removed`] when it has no name, and
    ///   also when a named row's notes say it was removed (e.g.
    ///   `(Removed 2004-2-6)`);
    /// * a nameless row whose description starts with "unassigned" is
    ///   [`RecordState::Unassigned`], one starting with "reserved" is
    ///   [`RecordState::Reserved`] (a nameless row de-assigned back to
    ///   "Reserved" stays Reserved: its description wins);
    /// * a named row whose description starts with "reserved" is
    ///   [`RecordState::Reserved`];
    /// * everything else is [`RecordState::Assigned`].
    pub fn derive(name: Option<&str>, description: &str, notes: Option<&str>) -> Self {
        // Called for every row of every file: compare without allocating
        // lowercase copies.
        let desc = description.trim();
        let notes = notes.unwrap_or("");
        let says_removed = |text: &str| {
            [
                "removed",
                "de-registered",
                "deregistered",
                "decomissioned",
                "decommissioned",
            ]
            .iter()
            .any(|w| contains_ignore_ascii_case(text, w))
        };
        if starts_with_ignore_ascii_case(desc, "unassigned") {
            return if says_removed(desc) || says_removed(notes) {
                Self::Removed
            } else {
                Self::Unassigned
            };
        }
        if starts_with_ignore_ascii_case(desc, "reserved") {
            return Self::Reserved;
        }
        if name.is_none()
            && (says_removed(desc) || starts_with_ignore_ascii_case(desc, "deprecated"))
        {
            return Self::Removed;
        }
        if name.is_some() && says_removed(notes) && contains_ignore_ascii_case(notes, "(removed") {
            return Self::Removed;
        }
        if name.is_none() && desc.is_empty() {
            return Self::Unassigned;
        }
        Self::Assigned
    }
}

impl fmt::Display for RecordState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The RFC 6335 class of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortClass {
    /// System ports, 0-1023.
    System,
    /// User ports, 1024-49151.
    User,
    /// Dynamic and/or private ports, 49152-65535.
    Dynamic,
    /// A range crossing a class boundary.
    Mixed,
}

impl PortClass {
    /// The class of one port.
    pub fn of(port: u16) -> Self {
        match port {
            0..=1023 => Self::System,
            1024..=49151 => Self::User,
            _ => Self::Dynamic,
        }
    }

    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Dynamic => "dynamic",
            Self::Mixed => "mixed",
        }
    }
}

/// A date as the registry writes it: `2002-02` (month precision) and
/// `2013-08-27` (day precision) both occur, and unpadded forms such as
/// `2004-2-6` occur in notes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegistryDate {
    /// The text exactly as written.
    pub text: String,
    /// Year, month and optional day, when the text is a date.
    pub parsed: Option<(u16, u8, Option<u8>)>,
}

impl RegistryDate {
    /// Reads `YYYY-MM` or `YYYY-MM-DD` (padding optional). Text that is not
    /// such a date is kept with `parsed = None`. Empty text is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(Self {
            text: text.to_string(),
            parsed: parse_ymd(text),
        })
    }

    /// Whether `text` is a date this type can read.
    pub fn looks_like_date(text: &str) -> bool {
        parse_ymd(text).is_some()
    }
}

fn parse_ymd(text: &str) -> Option<(u16, u8, Option<u8>)> {
    let mut parts = text.split('-');
    let year = parts.next()?;
    let month = parts.next()?;
    let day = parts.next();
    if parts.next().is_some() || year.len() != 4 || !(1..=2).contains(&month.len()) {
        return None;
    }
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(year) || !all_digits(month) {
        return None;
    }
    let year: u16 = year.parse().ok()?;
    let month: u8 = month.parse().ok()?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let day = match day {
        None => None,
        Some(d) if all_digits(d) && d.len() <= 2 => {
            let d: u8 = d.parse().ok()?;
            if !(1..=31).contains(&d) {
                return None;
            }
            Some(d)
        }
        Some(_) => return None,
    };
    Some((year, month, day))
}

impl fmt::Display for RegistryDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A person or organisation named by a row, resolved through the source's
/// people/contact table where it has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Person {
    /// The registry ID without brackets, e.g. `Jon_Postel`.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Organisation.
    pub organization: Option<String>,
    /// Contact URI as written (`mailto:user&host`).
    pub uri: Option<String>,
    /// When the people-table entry was last updated, as written.
    pub updated: Option<String>,
}

impl Person {
    /// A person known only by ID.
    pub fn from_id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }
}

/// One registry row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Record {
    /// Service name as written (case kept); `None` for nameless rows.
    pub name: Option<String>,
    /// Port or range; `None` for rows without a port.
    pub ports: Option<PortRange>,
    /// Protocol; `None` when the row names none (applies to every protocol).
    pub protocol: Option<Protocol>,
    /// Description as written.
    pub description: String,
    /// Assignees (usually one; some rows list several).
    pub assignees: Vec<Person>,
    /// Contacts.
    pub contacts: Vec<Person>,
    /// Registration date.
    pub registration_date: Option<RegistryDate>,
    /// Modification date.
    pub modification_date: Option<RegistryDate>,
    /// References without brackets (`RFC6335`, URLs, free text).
    pub references: Vec<String>,
    /// Service code.
    pub service_code: Option<String>,
    /// "Unauthorized Use Reported" text.
    pub unauthorized_use: Option<String>,
    /// Assignment notes.
    pub notes: Option<String>,
    /// Alias names (`/etc/services`).
    pub aliases: Vec<String>,
    /// nmap open frequency.
    pub open_frequency: Option<f64>,
    /// Derived state.
    pub state: RecordState,
    /// The row's place among the source's rows with the same port range
    /// (rows without a port: the same folded name), counted from 0 in
    /// source order; [`crate::Registry::new`] sets it. Lookups order
    /// records that tie on everything else by it, so an answer's order
    /// follows from the records alone (a replica orders exactly as the
    /// server), and moving a row within its group is a change.
    #[serde(default)]
    pub position: u32,
    /// The layer the record comes from (`--data NAME=FILE`); empty for the
    /// one unnamed layer of a single-source registry.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub layer: Arc<str>,
    /// The layer's priority, 0 the highest: lookups answer the records of
    /// every layer, highest priority first ([`crate::query::canonical_cmp`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub layer_rank: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl Record {
    /// The class of the record's ports; `None` when it has no port.
    pub fn port_class(&self) -> Option<PortClass> {
        self.ports.map(|p| p.class())
    }

    /// Whether the record answers a lookup of `port` over `protocol`
    /// (`None` = any).
    pub fn covers(&self, port: u16, protocol: Option<&Protocol>) -> bool {
        self.ports.is_some_and(|p| p.contains(port))
            && Protocol::matches(self.protocol.as_ref(), protocol)
    }
}

/// The identity of a record within one registry, used by diffs.
///
/// Rows have no natural unique key (`rdp` without port or protocol appears
/// twice; hundreds of nameless Unassigned rows exist), so the key is
/// (name as written, port range, protocol, ordinal, layer), where `ordinal`
/// counts the earlier rows of the same layer with the same (name, ports,
/// protocol), starting at 0. A row keeps its key when other rows are added
/// or removed around it, which keeps diffs between editions small.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// Name as written. Shared, not copied: every version of the index
    /// holds each key more than once (snapshot, lookup maps, diffs).
    pub name: Option<Arc<str>>,
    /// Port range.
    pub ports: Option<PortRange>,
    /// Protocol.
    pub protocol: Option<Protocol>,
    /// Position among rows with the same (name, ports, protocol).
    pub ordinal: u32,
    /// The record's layer ([`Record::layer`]): records of different layers
    /// never share a key.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub layer: Arc<str>,
}

impl RecordKey {
    /// The key of `record` as the `ordinal`-th row with its (name, ports,
    /// protocol); [`crate::Registry::keys`] counts the ordinals.
    pub fn of(record: &Record, ordinal: u32) -> Self {
        Self {
            name: record.name.as_deref().map(Arc::from),
            ports: record.ports,
            protocol: record.protocol.clone(),
            ordinal,
            layer: Arc::clone(&record.layer),
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name.as_deref().unwrap_or("-"))?;
        match self.ports {
            Some(p) => write!(f, " {p}")?,
            None => f.write_str(" -")?,
        }
        match &self.protocol {
            Some(p) => write!(f, "/{p}")?,
            None => f.write_str("/any")?,
        }
        if self.ordinal > 0 {
            write!(f, " #{}", self.ordinal)?;
        }
        Ok(())
    }
}
