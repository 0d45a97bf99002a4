//! Following an alias: the CNAME chain from a name to where it ends, asked of one server
//! with explicit CNAME queries (so the walk does not depend on whether a server chases
//! aliases itself), and the addresses at the end.

use std::collections::BTreeSet;

use super::lookup::{Failure, Lookup, Rcode, Record, Resolver};
use super::name::Fqdn;

/// The walk stops here even when `max_chain` is larger: no real chain is this long, and a
/// loop through many names must still end.
pub const MAX_LINKS: usize = 16;

/// Where a chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The last name has addresses: its A and AAAA records.
    Addresses(Vec<Record>),
    /// The last name exists but has no A or AAAA records (NODATA for both).
    NoAddresses,
    /// The last name does not exist.
    NxDomain,
    /// The chain comes back to a name it passed: this one.
    Loop(Fqdn),
    /// The walk gave up after [`MAX_LINKS`] links.
    TooLong,
    /// The server would not say (SERVFAIL, REFUSED, …) for the last name.
    Declined(Rcode),
    /// No answer for the last name (timeout, unreachable, denied).
    Failed(Failure),
}

/// A name's alias chain on one server: the CNAME records in order and where they end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The CNAME records, first the one owned by the start name.
    pub links: Vec<Record>,
    /// The name the chain ends at (the start name when it is not an alias).
    pub last: Fqdn,
    /// What is at the end.
    pub end: End,
}

impl Chain {
    /// The names the chain passes through after the start, in order.
    pub fn targets(&self) -> Vec<Fqdn> {
        self.links.iter().filter_map(Record::target).collect()
    }

    /// The path written out: "www.example.test. → a.test. → b.test.".
    pub fn path(&self, start: &Fqdn) -> String {
        let mut names = vec![start.to_string()];
        names.extend(self.targets().iter().map(Fqdn::to_string));
        names.join(" → ")
    }

    /// The address data at the end ("192.0.2.1", "2001:db8::1"), sorted; empty unless
    /// the chain ends in addresses.
    pub fn addresses(&self) -> BTreeSet<String> {
        match &self.end {
            End::Addresses(records) => records.iter().map(|r| r.data.clone()).collect(),
            _ => BTreeSet::new(),
        }
    }
}

/// Follows `start`'s CNAMEs on `server` to the end and asks the end for its addresses.
pub fn follow<L: Lookup>(res: &mut Resolver<L>, server: &str, start: &Fqdn) -> Chain {
    let mut links = Vec::new();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut current = start.clone();
    let end = loop {
        let answer = match res.ask(server, &current, "CNAME") {
            Ok(a) => a,
            Err(f) => break End::Failed(f),
        };
        match answer.rcode {
            Rcode::NoError => {}
            Rcode::NxDomain => break End::NxDomain,
            other => break End::Declined(other),
        }
        let Some(link) = answer.records(&current, "CNAME").into_iter().next() else {
            break addresses(res, server, &current);
        };
        let Some(next) = link.target() else {
            // A CNAME to the root or to unparsable data leads nowhere.
            links.push(link);
            break End::NxDomain;
        };
        links.push(link);
        if !seen.insert(next.clone()) {
            current = next.clone();
            break End::Loop(next);
        }
        current = next;
        if links.len() >= MAX_LINKS {
            break End::TooLong;
        }
    };
    Chain {
        links,
        last: current,
        end,
    }
}

/// The A and AAAA records at `name`, which is not an alias.
fn addresses<L: Lookup>(res: &mut Resolver<L>, server: &str, name: &Fqdn) -> End {
    let mut found = Vec::new();
    for rtype in ["A", "AAAA"] {
        match res.ask(server, name, rtype) {
            Err(f) => return End::Failed(f),
            Ok(a) if a.rcode == Rcode::NxDomain => return End::NxDomain,
            Ok(a) if !a.rcode.is_definite() => return End::Declined(a.rcode),
            Ok(a) => found.extend(a.records(name, rtype)),
        }
    }
    if found.is_empty() {
        End::NoAddresses
    } else {
        End::Addresses(found)
    }
}
