//! DNS lookups against the servers the plugin's grants name
//! (`[plugins.NAME.grants] dns_servers = ["127.0.0.1:5353"]`, or `dns_system = true` for the
//! resolvers in /etc/resolv.conf).
//!
//! ```text
//! use roost_plugin::dns::{self, Rcode};
//!
//! let response = dns::lookup("www.example.org", "CNAME", "127.0.0.1:5353", true)?;
//! match response.rcode {
//!     Rcode::NxDomain => { /* the name does not exist */ }
//!     Rcode::NoError if response.answer.is_empty() => { /* NODATA */ }
//!     _ => for record in &response.answer { /* record.name, rtype, ttl, data */ },
//! }
//! ```
//!
//! Lookups are uncached: every call goes to the server, so the response keeps what a
//! checker needs and a caching resolver hides (the response code, the AA flag, all three
//! sections with their TTLs). A timeout or an unreachable server is a [`Failure`], never an
//! empty answer. The host caps how many lookups one plugin may send per minute.
//! [`lookup_many`] asks a list of questions at once, for a checker of many names.

use std::fmt;

use crate::__bindings::roost::plugin::dns as wit;

/// The response code of an answer. NOERROR with an empty answer section is NODATA (see
/// [`Response::is_nodata`]); the SDK's copy of the WIT `rcode` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    /// NOERROR: the name exists (the answer may still be empty: NODATA).
    NoError,
    /// FORMERR: the server could not read the query.
    FormErr,
    /// SERVFAIL: the server could not answer (a broken zone, a failed upstream).
    ServFail,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// NOTIMP: the server does not support the query.
    NotImp,
    /// REFUSED: the server will not answer (not authoritative and not recursive for us).
    Refused,
    /// Any other code.
    Other,
}

impl Rcode {
    /// The mnemonic as `dig` prints it: "NOERROR", "NXDOMAIN", "SERVFAIL", ….
    pub fn as_str(self) -> &'static str {
        match self {
            Rcode::NoError => "NOERROR",
            Rcode::FormErr => "FORMERR",
            Rcode::ServFail => "SERVFAIL",
            Rcode::NxDomain => "NXDOMAIN",
            Rcode::NotImp => "NOTIMP",
            Rcode::Refused => "REFUSED",
            Rcode::Other => "OTHER",
        }
    }

    /// Whether the answer says something about the name (NOERROR or NXDOMAIN), as opposed
    /// to the server declining or failing to say (SERVFAIL, REFUSED, …).
    pub fn is_definite(self) -> bool {
        matches!(self, Rcode::NoError | Rcode::NxDomain)
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Rcode> for Rcode {
    fn from(r: wit::Rcode) -> Self {
        match r {
            wit::Rcode::NoError => Rcode::NoError,
            wit::Rcode::FormErr => Rcode::FormErr,
            wit::Rcode::ServFail => Rcode::ServFail,
            wit::Rcode::NxDomain => Rcode::NxDomain,
            wit::Rcode::NotImp => Rcode::NotImp,
            wit::Rcode::Refused => Rcode::Refused,
            wit::Rcode::Other => Rcode::Other,
        }
    }
}

/// One resource record as it came over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Owner name, absolute, with its trailing dot ("www.example.org.").
    pub name: String,
    /// Type mnemonic: "A", "AAAA", "CNAME", "MX", "NS", "SOA", "SRV", "TXT", ….
    pub rtype: String,
    /// Time to live, in seconds, as the server sent it.
    pub ttl: u32,
    /// The data in presentation format: "192.0.2.1", "target.example.org.",
    /// "10 mail.example.org.", "ns1.example.org. hostmaster.example.org. 1 7200 …".
    pub data: String,
}

impl fmt::Display for Record {
    /// `name TTL TYPE data`, the way zone files and `dig` show a record.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

impl From<wit::ResourceRecord> for Record {
    fn from(r: wit::ResourceRecord) -> Self {
        Self {
            name: r.name,
            rtype: r.rtype,
            ttl: r.ttl,
            data: r.data,
        }
    }
}

/// What a server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response code.
    pub rcode: Rcode,
    /// The AA flag: the server is authoritative for the name.
    pub authoritative: bool,
    /// The answer section.
    pub answer: Vec<Record>,
    /// The authority section (the zone's SOA on a negative answer, NS on a referral).
    pub authority: Vec<Record>,
    /// The additional section.
    pub additional: Vec<Record>,
    /// The server that answered, "ip:port".
    pub server: String,
    /// Round trip, in milliseconds.
    pub elapsed_ms: u32,
}

impl Response {
    /// NXDOMAIN: the name does not exist.
    pub fn is_nxdomain(&self) -> bool {
        self.rcode == Rcode::NxDomain
    }

    /// NODATA: the name exists but has no records of the asked type (NOERROR with an empty
    /// answer section).
    pub fn is_nodata(&self) -> bool {
        self.rcode == Rcode::NoError && self.answer.is_empty()
    }
}

impl From<wit::Response> for Response {
    fn from(r: wit::Response) -> Self {
        let records = |rs: Vec<wit::ResourceRecord>| rs.into_iter().map(Record::from).collect();
        Self {
            rcode: r.rcode.into(),
            authoritative: r.authoritative,
            answer: records(r.answer),
            authority: records(r.authority),
            additional: records(r.additional),
            server: r.server,
            elapsed_ms: r.elapsed_ms,
        }
    }
}

/// Why a lookup has no response; the SDK's copy of the WIT `failure` variant. A timeout or
/// an unreachable server is never turned into an empty answer, so a checker can tell "the
/// server said the record is gone" from "the server did not say anything".
///
/// `?` turns it into the `String` error of the [`Plugin`](crate::Plugin) hooks, using the
/// `Display` text (e.g. "timeout: 127.0.0.1:53: no answer after 2 tries").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server is not granted, or the plugin used up its query budget.
    AccessDenied(String),
    /// Bad name, type or server syntax.
    InvalidArgument(String),
    /// No answer within the time limit (after the host's retries).
    Timeout(String),
    /// The server could not be reached (connection refused, network unreachable).
    Unreachable(String),
}

impl Failure {
    /// The host's explanation, without the kind.
    pub fn reason(&self) -> &str {
        match self {
            Failure::AccessDenied(r)
            | Failure::InvalidArgument(r)
            | Failure::Timeout(r)
            | Failure::Unreachable(r) => r,
        }
    }

    /// Whether asking again may help: a timeout or an unreachable server.
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Timeout(_) | Failure::Unreachable(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Failure::AccessDenied(_) => "access denied",
            Failure::InvalidArgument(_) => "invalid argument",
            Failure::Timeout(_) => "timeout",
            Failure::Unreachable(_) => "unreachable",
        };
        match self.reason() {
            "" => f.write_str(kind),
            reason => write!(f, "{kind}: {reason}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Lets `?` on a lookup work inside hooks that return `Result<_, String>`.
impl From<Failure> for String {
    fn from(e: Failure) -> Self {
        e.to_string()
    }
}

impl From<wit::Failure> for Failure {
    fn from(e: wit::Failure) -> Self {
        match e {
            wit::Failure::AccessDenied(r) => Failure::AccessDenied(r),
            wit::Failure::InvalidArgument(r) => Failure::InvalidArgument(r),
            wit::Failure::Timeout(r) => Failure::Timeout(r),
            wit::Failure::Unreachable(r) => Failure::Unreachable(r),
        }
    }
}

/// Asks `server` ("ip:port" from the grant; `""` for the first granted server) for the
/// records of type `rtype` ("A", "CNAME", "MX", …) at `name` (with or without the trailing
/// dot; non-ASCII names must be converted to punycode first). With `recurse`, the query
/// asks for recursion (RD), which a resolver needs and an authoritative server ignores.
///
/// The host retries a lost UDP query once and falls back to TCP for a truncated answer; a
/// server that is not granted, or a used-up query budget, is [`Failure::AccessDenied`].
pub fn lookup(name: &str, rtype: &str, server: &str, recurse: bool) -> Result<Response, Failure> {
    wit::lookup(name, rtype, server, recurse)
        .map(Response::from)
        .map_err(Failure::from)
}

/// Questions one host call carries; [`lookup_many`] splits longer lists.
pub const MAX_BATCH: usize = 256;

/// One question for [`lookup_many`]: the arguments of [`lookup`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// The owner name asked about.
    pub name: String,
    /// The record type ("A", "CNAME", …).
    pub rtype: String,
    /// The server ("ip:port" from the grant; `""` for the first granted server).
    pub server: String,
    /// Whether to ask for recursion (RD).
    pub recurse: bool,
}

/// Asks every question as [`lookup`] would, but several at a time: the host keeps up to 32
/// in flight at each server, so checking a thousand names waits for the server about once per 32
/// questions instead of once per question. The results come back in the order of the
/// questions; each question counts against the query budget as one lookup.
pub fn lookup_many(questions: &[Question]) -> Vec<Result<Response, Failure>> {
    let mut results = Vec::with_capacity(questions.len());
    for batch in questions.chunks(MAX_BATCH) {
        let wire: Vec<wit::Question> = batch
            .iter()
            .map(|q| wit::Question {
                name: q.name.clone(),
                rtype: q.rtype.clone(),
                server: q.server.clone(),
                recurse: q.recurse,
            })
            .collect();
        let answers = wit::lookup_many(&wire).into_iter();
        results.extend(answers.map(|r| r.map(Response::from).map_err(Failure::from)));
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_their_kind_and_say_whether_to_retry() {
        let t = Failure::Timeout("127.0.0.1:53: no answer".into());
        assert_eq!(t.to_string(), "timeout: 127.0.0.1:53: no answer");
        assert!(t.is_transient());
        assert!(Failure::Unreachable(String::new()).is_transient());
        assert!(!Failure::AccessDenied("budget".into()).is_transient());
        let s: String = Failure::InvalidArgument("name".into()).into();
        assert_eq!(s, "invalid argument: name");
    }

    #[test]
    fn responses_convert_and_tell_nodata_from_nxdomain() {
        let wire = wit::Response {
            rcode: wit::Rcode::NoError,
            authoritative: true,
            answer: vec![],
            authority: vec![wit::ResourceRecord {
                name: "example.org.".into(),
                rtype: "SOA".into(),
                ttl: 60,
                data: "ns. host. 1 2 3 4 5".into(),
            }],
            additional: vec![],
            server: "127.0.0.1:53".into(),
            elapsed_ms: 1,
        };
        let r = Response::from(wire);
        assert!(r.is_nodata() && !r.is_nxdomain());
        assert_eq!(
            r.authority[0].to_string(),
            "example.org. 60 SOA ns. host. 1 2 3 4 5"
        );
        assert_eq!(Rcode::from(wit::Rcode::NxDomain).to_string(), "NXDOMAIN");
    }
}
