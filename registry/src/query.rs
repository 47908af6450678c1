//! Query values and orderings shared by the index and its callers:
//! [`Filter`] (protocol, port range, states, layers), [`SearchQuery`] and its
//! ranking, [`SearchHits`] (a search walked lazily, best first, in bounded
//! steps), and the two record orders the index uses (canonical order for
//! point lookups, scan order for listings).

use std::cmp::Ordering;

use crate::diff::KeyedRecord;
use crate::index::Snapshot;
use crate::model::{Protocol, Record, RecordState, fold_name};

/// Filters shared by list and search. The default filter passes everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only records matching this protocol (records without a protocol
    /// match every protocol); `None` = any.
    pub protocol: Option<Protocol>,
    /// Only records with a port range overlapping `[port_min, port_max]`.
    /// When either bound is set, records without a port are left out.
    pub port_min: Option<u16>,
    /// See `port_min`.
    pub port_max: Option<u16>,
    /// Only records in one of these states; empty = every state. Each
    /// state should appear once (a filter built from a request is
    /// deduplicated by the server's validation), so checking a record
    /// costs at most four comparisons.
    pub states: Vec<RecordState>,
    /// Only records of one of these layers ([`Record::layer`]); empty =
    /// every layer.
    pub layers: Vec<String>,
}

impl Filter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &Record) -> bool {
        if !Protocol::matches(record.protocol.as_ref(), self.protocol.as_ref()) {
            return false;
        }
        if !self.states.is_empty() && !self.states.contains(&record.state) {
            return false;
        }
        if !self.layers.is_empty() && !self.layers.iter().any(|l| *l == *record.layer) {
            return false;
        }
        if self.port_min.is_some() || self.port_max.is_some() {
            let min = self.port_min.unwrap_or(0);
            let max = self.port_max.unwrap_or(u16::MAX);
            match record.ports {
                Some(p) if p.overlaps(min, max) => {}
                _ => return false,
            }
        }
        true
    }
}

/// A ranked search over names and descriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The text to find (case-insensitive).
    pub text: String,
    /// Filters applied before ranking.
    pub filter: Filter,
    /// At most this many results.
    pub limit: usize,
}

impl SearchQuery {
    /// Default number of results.
    pub const DEFAULT_LIMIT: usize = 100;

    /// A query with no filter and the default limit.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            filter: Filter::default(),
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// How well a record matches a search, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchRank {
    /// The name equals the query.
    ExactName,
    /// The name starts with the query.
    NamePrefix,
    /// The name contains the query.
    NameSubstring,
    /// The description contains the query as a phrase.
    DescriptionPhrase,
    /// Every word of the query occurs in the name or description.
    AllTokens,
}

/// Ranks a record for a lowercase needle, given its lowercase name and
/// description; `None` when it does not match.
pub fn rank(name_lower: &str, description_lower: &str, needle_lower: &str) -> Option<MatchRank> {
    if needle_lower.is_empty() {
        return None;
    }
    if !name_lower.is_empty() {
        if name_lower == needle_lower {
            return Some(MatchRank::ExactName);
        }
        if name_lower.starts_with(needle_lower) {
            return Some(MatchRank::NamePrefix);
        }
        if name_lower.contains(needle_lower) {
            return Some(MatchRank::NameSubstring);
        }
    }
    if description_lower.contains(needle_lower) {
        return Some(MatchRank::DescriptionPhrase);
    }
    let mut tokens = needle_lower.split_whitespace().peekable();
    if tokens.peek().is_some()
        && needle_lower.contains(char::is_whitespace)
        && tokens.all(|t| name_lower.contains(t) || description_lower.contains(t))
    {
        return Some(MatchRank::AllTokens);
    }
    None
}

/// Whether `rank(name_lower, description_lower, needle_lower)` would be
/// `Some(wanted)`, checking only what that needs: the name ranks look at
/// the name alone, so a pass over one rank never reads descriptions it
/// does not need. `tokens` are the needle's distinct words (see
/// [`needle_tokens`]).
fn rank_is(
    wanted: MatchRank,
    name_lower: &str,
    description_lower: &str,
    needle_lower: &str,
    tokens: &[Box<str>],
) -> bool {
    if needle_lower.is_empty() {
        return false;
    }
    let name_contains = || !name_lower.is_empty() && name_lower.contains(needle_lower);
    match wanted {
        MatchRank::ExactName => !name_lower.is_empty() && name_lower == needle_lower,
        MatchRank::NamePrefix => {
            !name_lower.is_empty()
                && name_lower != needle_lower
                && name_lower.starts_with(needle_lower)
        }
        MatchRank::NameSubstring => !name_lower.starts_with(needle_lower) && name_contains(),
        MatchRank::DescriptionPhrase => {
            !name_contains() && description_lower.contains(needle_lower)
        }
        MatchRank::AllTokens => {
            !tokens.is_empty()
                && needle_lower.contains(char::is_whitespace)
                && !name_contains()
                && !description_lower.contains(needle_lower)
                && tokens
                    .iter()
                    .all(|t| name_lower.contains(&**t) || description_lower.contains(&**t))
        }
    }
}

/// The distinct words of a needle, in first-seen order: a query repeating
/// one word many times costs one check per record, not one per repeat.
fn needle_tokens(needle_lower: &str) -> Vec<Box<str>> {
    let mut tokens: Vec<Box<str>> = Vec::new();
    for token in needle_lower.split_whitespace() {
        if !tokens.iter().any(|t| &**t == token) {
            tokens.push(token.into());
        }
    }
    tokens
}

/// Every rank, best first: the order of [`SearchHits`]' passes.
const RANKS: [MatchRank; 5] = [
    MatchRank::ExactName,
    MatchRank::NamePrefix,
    MatchRank::NameSubstring,
    MatchRank::DescriptionPhrase,
    MatchRank::AllTokens,
];

/// Most records [`SearchHits::step`] examines before it returns
/// [`SearchStep::Pause`]: a few hundred microseconds of work, so a caller
/// on an async runtime can yield between steps however rare the hits are.
pub const SEARCH_STEP_RECORDS: usize = 1024;

/// One step of [`SearchHits`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchStep<'a> {
    /// The next hit, in result order.
    Hit(MatchRank, &'a KeyedRecord),
    /// [`SEARCH_STEP_RECORDS`] records were examined without a hit; call
    /// again to go on.
    Pause,
    /// No more hits (or the limit was reached).
    Done,
}

/// A ranked search over one [`Snapshot`], walked lazily: hits come out in
/// result order (best rank first, ties in scan order) without collecting
/// them, so what a search holds does not grow with its results or its
/// limit. It makes one pass over the snapshot per rank, each pass checking
/// only what its rank needs (`rank_is`); the whole walk reads each
/// record's name a few times and its description at most twice.
#[derive(Debug)]
pub struct SearchHits<'a> {
    snapshot: &'a Snapshot,
    filter: Filter,
    needle: String,
    /// The needle's distinct words.
    tokens: Vec<Box<str>>,
    /// Index into [`RANKS`] of the current pass.
    pass: usize,
    /// Next scan position in the current pass.
    pos: usize,
    /// Hits still allowed by the limit.
    left: usize,
}

impl<'a> SearchHits<'a> {
    /// The hits of `query` in `snapshot`.
    pub fn new(snapshot: &'a Snapshot, query: &SearchQuery) -> Self {
        let needle = fold_name(query.text.trim());
        Self {
            snapshot,
            filter: query.filter.clone(),
            tokens: needle_tokens(&needle),
            needle,
            pass: 0,
            pos: 0,
            left: query.limit,
        }
    }

    /// Examines at most [`SEARCH_STEP_RECORDS`] records and returns the
    /// next hit, a pause, or the end.
    pub fn step(&mut self) -> SearchStep<'a> {
        if self.left == 0 || self.needle.is_empty() {
            return SearchStep::Done;
        }
        let mut examined = 0;
        while let Some(&rank) = RANKS.get(self.pass) {
            while let Some((entry, name, description)) = self.snapshot.scan_text(self.pos) {
                self.pos += 1;
                if rank_is(rank, name, description, &self.needle, &self.tokens)
                    && self.filter.matches(&entry.1)
                {
                    self.left -= 1;
                    return SearchStep::Hit(rank, entry);
                }
                examined += 1;
                if examined == SEARCH_STEP_RECORDS {
                    return SearchStep::Pause;
                }
            }
            self.pass += 1;
            self.pos = 0;
        }
        SearchStep::Done
    }
}

impl<'a> Iterator for SearchHits<'a> {
    type Item = (MatchRank, &'a KeyedRecord);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                SearchStep::Hit(rank, entry) => return Some((rank, entry)),
                SearchStep::Pause => {}
                SearchStep::Done => return None,
            }
        }
    }
}

/// Rank of a state in canonical order: assigned rows answer first.
fn state_rank(state: RecordState) -> u8 {
    match state {
        RecordState::Assigned => 0,
        RecordState::Reserved => 1,
        RecordState::Unassigned => 2,
        RecordState::Removed => 3,
    }
}

/// Canonical order of records answering one lookup: layers by priority
/// ([`Record::layer_rank`], the highest first), then within a layer
/// assigned before other states, then exact ports before ranges (narrower
/// first, then the lower first port), then source order among rows with
/// the same port range
/// ([`Record::position`]; IANA lists the canonical name first: `http`
/// before `www` and `www-http`). It reads the records alone, so every
/// holder of the same records orders an answer alike.
pub fn canonical_cmp(a: &Record, b: &Record) -> Ordering {
    let width = |r: &Record| r.ports.map_or(u32::MAX, |p| p.len());
    let start = |r: &Record| r.ports.map_or(0, |p| p.start);
    a.layer_rank
        .cmp(&b.layer_rank)
        .then_with(|| state_rank(a.state).cmp(&state_rank(b.state)))
        .then_with(|| width(a).cmp(&width(b)))
        .then_with(|| start(a).cmp(&start(b)))
        .then_with(|| a.position.cmp(&b.position))
}

/// Scan order used by listings: (port, protocol, name), records without a
/// port last, then source position ([`Record::position`]) for a total order.
pub fn scan_cmp(a: &Record, b: &Record) -> Ordering {
    let port_key = |r: &Record| match r.ports {
        Some(p) => (0u8, p.start, p.end),
        None => (1u8, 0, 0),
    };
    port_key(a)
        .cmp(&port_key(b))
        .then_with(|| a.protocol.cmp(&b.protocol))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.layer_rank.cmp(&b.layer_rank))
        .then_with(|| a.position.cmp(&b.position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortRange;

    fn rec(name: &str, port: u16, proto: Option<Protocol>) -> Record {
        Record {
            name: Some(name.into()),
            ports: Some(PortRange::single(port)),
            protocol: proto,
            ..Record::default()
        }
    }

    #[test]
    fn rank_orders_exact_prefix_substring_description_tokens() {
        assert_eq!(rank("ldap", "", "ldap"), Some(MatchRank::ExactName));
        assert_eq!(rank("ldaps", "", "ldap"), Some(MatchRank::NamePrefix));
        assert_eq!(rank("cldap", "", "ldap"), Some(MatchRank::NameSubstring));
        assert_eq!(
            rank("x", "lightweight ldap server", "ldap"),
            Some(MatchRank::DescriptionPhrase)
        );
        assert_eq!(
            rank("ssh", "the secure shell protocol", "shell secure"),
            Some(MatchRank::AllTokens)
        );
        assert_eq!(rank("ssh", "secure shell", "telnet"), None);
        assert_eq!(rank("ssh", "secure shell", ""), None);
    }

    /// Each pass of a search checks only what its rank needs; it must agree
    /// with the full ranking on every combination.
    #[test]
    fn rank_is_agrees_with_rank() {
        let texts = [
            ("", ""),
            ("ldap", ""),
            ("ldaps", "ldap over tls"),
            ("cldap", "connectionless ldap"),
            ("x", "lightweight ldap server"),
            ("ssh", "the secure shell protocol"),
            ("", "secure shell"),
            ("a a", "a"),
        ];
        let needles = [
            "ldap",
            "shell secure",
            "secure shell",
            "a  a",
            "a a",
            "x",
            "zz",
        ];
        for (name, description) in texts {
            for needle in needles {
                let tokens = needle_tokens(needle);
                let full = rank(name, description, needle);
                for wanted in RANKS {
                    assert_eq!(
                        rank_is(wanted, name, description, needle, &tokens),
                        full == Some(wanted),
                        "{name:?} {description:?} {needle:?} {wanted:?}"
                    );
                }
            }
        }
        assert_eq!(needle_tokens("a b a a b c").len(), 3);
    }

    #[test]
    fn filter_checks_protocol_ports_and_states() {
        let tcp = rec("a", 80, Some(Protocol::Tcp));
        let any = rec("b", 80, None);
        let f = Filter {
            protocol: Some(Protocol::Udp),
            ..Filter::default()
        };
        assert!(!f.matches(&tcp));
        assert!(
            f.matches(&any),
            "a row without protocol matches every protocol"
        );
        let f = Filter {
            port_min: Some(81),
            ..Filter::default()
        };
        assert!(!f.matches(&tcp));
        let mut portless = rec("c", 1, None);
        portless.ports = None;
        assert!(!f.matches(&portless));
        assert!(Filter::default().matches(&portless));
        let f = Filter {
            states: vec![RecordState::Unassigned],
            ..Filter::default()
        };
        assert!(!f.matches(&tcp));
    }

    #[test]
    fn canonical_order_puts_assigned_exact_and_earlier_first() {
        let http = rec("http", 80, Some(Protocol::Tcp));
        let www = rec("www", 80, Some(Protocol::Tcp));
        let mut range = rec("x11", 80, Some(Protocol::Tcp));
        range.ports = PortRange::new(60, 90);
        let mut unassigned = rec("u", 80, None);
        unassigned.name = None;
        unassigned.state = RecordState::Unassigned;
        let mut www = www;
        www.position = 1;
        assert_eq!(canonical_cmp(&http, &www), Ordering::Less);
        assert_eq!(canonical_cmp(&range, &www), Ordering::Greater);
        assert_eq!(canonical_cmp(&unassigned, &range), Ordering::Greater);
        // Ranges of one width: the lower first port first.
        let mut later = range.clone();
        later.ports = PortRange::new(61, 91);
        assert_eq!(canonical_cmp(&later, &range), Ordering::Greater);
    }
}
