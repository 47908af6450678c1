//! Query values and orderings shared by the index and its callers:
//! [`Filter`] (protocol, port range, states), [`SearchQuery`] and its
//! ranking, and the two record orders the index uses (canonical order for
//! point lookups, scan order for listings).

use std::cmp::Ordering;

use crate::model::{Protocol, Record, RecordState};

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
    /// Only records in one of these states; empty = every state.
    pub states: Vec<RecordState>,
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

/// Rank of a state in canonical order: assigned rows answer first.
fn state_rank(state: RecordState) -> u8 {
    match state {
        RecordState::Assigned => 0,
        RecordState::Reserved => 1,
        RecordState::Unassigned => 2,
        RecordState::Removed => 3,
    }
}

/// Canonical order of records answering one lookup: assigned before other
/// states, then exact ports before ranges (narrower first), then source
/// order (IANA lists the canonical name first: `http` before `www` and
/// `www-http`). `a.1` and `b.1` are the records' source positions.
pub fn canonical_cmp(a: (&Record, usize), b: (&Record, usize)) -> Ordering {
    let width = |r: &Record| r.ports.map_or(u32::MAX, |p| p.len());
    state_rank(a.0.state)
        .cmp(&state_rank(b.0.state))
        .then_with(|| width(a.0).cmp(&width(b.0)))
        .then_with(|| a.1.cmp(&b.1))
}

/// Scan order used by listings: (port, protocol, name), records without a
/// port last, then source position for a total order.
pub fn scan_cmp(a: (&Record, usize), b: (&Record, usize)) -> Ordering {
    let port_key = |r: &Record| match r.ports {
        Some(p) => (0u8, p.start, p.end),
        None => (1u8, 0, 0),
    };
    port_key(a.0)
        .cmp(&port_key(b.0))
        .then_with(|| a.0.protocol.cmp(&b.0.protocol))
        .then_with(|| a.0.name.cmp(&b.0.name))
        .then_with(|| a.1.cmp(&b.1))
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
        assert_eq!(canonical_cmp((&http, 5), (&www, 6)), Ordering::Less);
        assert_eq!(canonical_cmp((&range, 1), (&www, 6)), Ordering::Greater);
        assert_eq!(
            canonical_cmp((&unassigned, 0), (&range, 1)),
            Ordering::Greater
        );
    }
}
