//! The engine's view of DNS: the [`Lookup`] trait one query at a time, the plain types it
//! answers with, and the [`Resolver`] that adds what one check run needs on top — a cache
//! (a run never asks the same question twice), retries of timeouts, and a server that
//! stopped answering is not asked again in the same run.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::name::Fqdn;

/// The response code: the SDK's, whose [`Rcode::is_definite`] keeps NXDOMAIN and NODATA
/// apart from a server declining or failing to say.
pub use roost_plugin::dns::Rcode;

/// One resource record, with its owner name lowercased and, for types whose data names
/// another domain, the data lowercased too, so records from different servers compare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    /// Owner name, absolute, lowercase ("www.example.org.").
    pub name: String,
    /// Type mnemonic ("CNAME").
    pub rtype: String,
    /// TTL in seconds, as the server sent it.
    pub ttl: u32,
    /// Data in presentation format ("app.hosted.example.").
    pub data: String,
}

impl Record {
    /// A record from what a server sent, normalized for comparison.
    pub fn new(name: &str, rtype: &str, ttl: u32, data: &str) -> Self {
        let rtype = rtype.to_ascii_uppercase();
        let names_in_data = matches!(
            rtype.as_str(),
            "CNAME" | "NS" | "PTR" | "DNAME" | "MX" | "SRV" | "SOA" | "ANAME"
        );
        Self {
            name: absolute(&ascii_name(name)),
            data: if names_in_data {
                data.split(' ')
                    .map(ascii_name)
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                data.to_string()
            },
            rtype,
            ttl,
        }
    }

    /// Whether the record is owned by `name` and of type `rtype`.
    pub fn is(&self, name: &Fqdn, rtype: &str) -> bool {
        self.name == name.as_str() && self.rtype == rtype
    }

    /// The domain name this record points at: a CNAME's or NS's data, an MX's exchange, an
    /// SRV's target, a SOA's MNAME. `None` for other types, and for the null target ".".
    pub fn target(&self) -> Option<Fqdn> {
        let field = match self.rtype.as_str() {
            "CNAME" | "NS" | "PTR" | "DNAME" | "ANAME" => self.data.split_whitespace().next(),
            "MX" => self.data.split_whitespace().nth(1),
            "SRV" => self.data.split_whitespace().nth(3),
            "SOA" => self.data.split_whitespace().next(),
            _ => None,
        }?;
        if field == "." {
            return None;
        }
        Fqdn::parse(field).ok()
    }
}

impl fmt::Display for Record {
    /// `name TTL TYPE data`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

/// A name (or any other field) in the ASCII, lowercase form: servers and libraries may
/// print IDN labels in Unicode ("bücher.test."), the engine compares punycode.
fn ascii_name(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let (bare, dot) = match text.strip_suffix('.') {
        Some(bare) => (bare, "."),
        None => (text, ""),
    };
    match idna::domain_to_ascii(bare) {
        Ok(ascii) => format!("{ascii}{dot}"),
        Err(_) => text.to_lowercase(),
    }
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// What a server answered to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response code.
    pub rcode: Rcode,
    /// The AA flag.
    pub authoritative: bool,
    /// The answer section.
    pub answer: Vec<Record>,
    /// The authority section (the zone's SOA on a negative answer).
    pub authority: Vec<Record>,
    /// The server that answered, "ip:port" (empty when unknown).
    pub server: String,
}

impl Answer {
    /// The answer-section records owned by `name` of type `rtype`.
    pub fn records(&self, name: &Fqdn, rtype: &str) -> Vec<Record> {
        self.answer
            .iter()
            .filter(|r| r.is(name, rtype))
            .cloned()
            .collect()
    }

    /// The SOA records owned by `name` in any section: proof that `name` is a zone apex.
    pub fn soa_of(&self, name: &Fqdn) -> Vec<Record> {
        self.answer
            .iter()
            .chain(&self.authority)
            .filter(|r| r.is(name, "SOA"))
            .cloned()
            .collect()
    }

    /// The zone the server says the answer came from: the owner of a SOA in the authority
    /// section (sent with NXDOMAIN and NODATA answers).
    pub fn zone(&self) -> Option<Fqdn> {
        self.authority
            .iter()
            .find(|r| r.rtype == "SOA")
            .and_then(|r| Fqdn::parse(&r.name).ok())
    }
}

/// Why a query has no answer. Timeouts and unreachable servers are failures, never an
/// empty answer: a check that sees one knows nothing new about the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer in time.
    Timeout(String),
    /// The server could not be reached.
    Unreachable(String),
    /// The host refused the query: server not granted, or the query budget is used up.
    Denied(String),
    /// The name, type or server was rejected.
    Invalid(String),
}

impl Failure {
    /// Whether asking again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Timeout(_) | Failure::Unreachable(_))
    }

    /// Whether the host refused because the per-minute query budget is used up: the run
    /// should pause, not report the server as broken.
    pub fn is_budget(&self) -> bool {
        matches!(self, Failure::Denied(r) if r.contains("budget"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout(r) => write!(f, "timeout ({r})"),
            Failure::Unreachable(r) => write!(f, "unreachable ({r})"),
            Failure::Denied(r) => write!(f, "access denied ({r})"),
            Failure::Invalid(r) => write!(f, "invalid query ({r})"),
        }
    }
}

/// One DNS query to one server, uncached: the real implementation goes through the host's
/// `dns` capability; tests use an in-memory zone table. `server` is "ip:port", or empty
/// for the default server.
pub trait Lookup {
    /// Asks `server` for the `rtype` records at `name`.
    fn lookup(&mut self, name: &Fqdn, rtype: &str, server: &str) -> Result<Answer, Failure>;

    /// Asks every question, results in order; one after another unless the lookup can do
    /// better (the host's `lookup-many` asks them concurrently).
    fn lookup_many(&mut self, questions: &[Question]) -> Vec<Result<Answer, Failure>> {
        questions
            .iter()
            .map(|q| self.lookup(&q.name, q.rtype, &q.server))
            .collect()
    }
}

/// One question: `rtype` at `name`, asked of `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The server, as in the check's settings ("" for the first granted one).
    pub server: String,
    /// The name asked about.
    pub name: Fqdn,
    /// The record type.
    pub rtype: &'static str,
}

/// How often a timed-out or unreachable query is sent in all: once, and twice more.
pub const ATTEMPTS: u32 = 3;

type Key = (String, String, &'static str);

/// The cache key of `rtype` at `name` asked of `server`.
fn key(server: &str, name: &Fqdn, rtype: &'static str) -> Key {
    (server.to_string(), name.as_str().to_string(), rtype)
}

/// A [`Lookup`] with what one check run needs: each question is asked once (answers are
/// kept for the run only — a new run starts with a new `Resolver`), a timeout or an
/// unreachable server is retried, and a server that still failed is not asked again in
/// this run (later questions get the same failure at once).
pub struct Resolver<L> {
    inner: L,
    cache: HashMap<Key, Answer>,
    dead: HashMap<String, Failure>,
    failures: HashMap<String, u64>,
    sent: u64,
    budget_exhausted: bool,
}

impl<L: Lookup> Resolver<L> {
    /// A resolver with an empty cache over `inner`.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            cache: HashMap::new(),
            dead: HashMap::new(),
            failures: HashMap::new(),
            sent: 0,
            budget_exhausted: false,
        }
    }

    /// The answer of `server` for `rtype` at `name`, from the cache when this run asked
    /// already.
    pub fn ask(
        &mut self,
        server: &str,
        name: &Fqdn,
        rtype: &'static str,
    ) -> Result<Answer, Failure> {
        let key = key(server, name, rtype);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        if let Some(failure) = self.dead.get(server) {
            let failure = failure.clone();
            self.count_failure(server);
            return Err(failure);
        }
        let mut last = None;
        for _ in 0..ATTEMPTS {
            self.sent += 1;
            match self.inner.lookup(name, rtype, server) {
                Ok(answer) => {
                    self.cache.insert(key, answer.clone());
                    return Ok(answer);
                }
                Err(f) if f.is_transient() => last = Some(f),
                Err(f) => {
                    if f.is_budget() {
                        self.budget_exhausted = true;
                    } else {
                        self.dead.insert(server.to_string(), f.clone());
                    }
                    self.count_failure(server);
                    return Err(f);
                }
            }
        }
        let failure = last.unwrap_or_else(|| Failure::Timeout(String::new()));
        self.dead.insert(server.to_string(), failure.clone());
        self.count_failure(server);
        Err(failure)
    }

    /// Asks `questions` at once and keeps the answers, so the checks that follow find them
    /// in the cache. Questions already answered, or for a server that stopped answering,
    /// are not sent. A failure is not kept: the check asks that question again itself,
    /// with its retries, and judges the failure then.
    pub fn ask_ahead(&mut self, questions: &[Question]) {
        let mut wanted: Vec<Question> = Vec::new();
        let mut keys = HashSet::new();
        for q in questions {
            let k = key(&q.server, &q.name, q.rtype);
            if !self.cache.contains_key(&k) && !self.dead.contains_key(&q.server) && keys.insert(k)
            {
                wanted.push(q.clone());
            }
        }
        if wanted.is_empty() || self.budget_exhausted {
            return;
        }
        self.sent += wanted.len() as u64;
        let answers = self.inner.lookup_many(&wanted);
        for (q, answer) in wanted.iter().zip(answers) {
            if let Ok(answer) = answer {
                self.cache.insert(key(&q.server, &q.name, q.rtype), answer);
            }
        }
    }

    /// The answer this run already has for `rtype` at `name` from `server`, if any.
    pub fn cached(&self, server: &str, name: &Fqdn, rtype: &'static str) -> Option<&Answer> {
        self.cache.get(&key(server, name, rtype))
    }

    fn count_failure(&mut self, server: &str) {
        *self.failures.entry(server.to_string()).or_default() += 1;
    }

    /// How many questions to `server` have failed in this run so far; a check compares
    /// the count before and after to know whether its picture is complete.
    pub fn failures_at(&self, server: &str) -> u64 {
        self.failures.get(server).copied().unwrap_or(0)
    }

    /// Queries sent in this run, retries included (cache hits are not).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether the host refused a query because the per-minute budget is used up.
    pub fn budget_exhausted(&self) -> bool {
        self.budget_exhausted
    }

    /// The lookup underneath.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The lookup underneath, mutably (tests change the zone between runs).
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        failures_left: u32,
        calls: u32,
    }

    impl Lookup for Flaky {
        fn lookup(&mut self, _: &Fqdn, _: &str, server: &str) -> Result<Answer, Failure> {
            self.calls += 1;
            if self.failures_left > 0 {
                self.failures_left -= 1;
                return Err(Failure::Timeout(server.into()));
            }
            Ok(Answer {
                rcode: Rcode::NoError,
                authoritative: true,
                answer: vec![],
                authority: vec![],
                server: server.into(),
            })
        }
    }

    fn name() -> Fqdn {
        Fqdn::parse("a.test").unwrap()
    }

    #[test]
    fn a_timeout_is_retried_twice_then_the_server_is_left_alone() {
        let mut r = Resolver::new(Flaky {
            failures_left: 2,
            calls: 0,
        });
        assert!(r.ask("s", &name(), "A").is_ok());
        assert_eq!(r.inner().calls, 3);
        let mut r = Resolver::new(Flaky {
            failures_left: 10,
            calls: 0,
        });
        assert!(matches!(r.ask("s", &name(), "A"), Err(Failure::Timeout(_))));
        assert!(r.ask("s", &name(), "AAAA").is_err());
        assert_eq!(r.inner().calls, ATTEMPTS);
        assert_eq!(r.failures_at("s"), 2);
    }

    #[test]
    fn answers_are_cached_within_a_run() {
        let mut r = Resolver::new(Flaky {
            failures_left: 0,
            calls: 0,
        });
        r.ask("s", &name(), "A").unwrap();
        r.ask("s", &name(), "A").unwrap();
        r.ask("t", &name(), "A").unwrap();
        assert_eq!((r.inner().calls, r.sent()), (2, 2));
    }

    #[test]
    fn records_normalize_names_and_find_targets() {
        let r = Record::new("WWW.Example.Test", "cname", 60, "App.Hosted.Test.");
        assert_eq!(r.to_string(), "www.example.test. 60 CNAME app.hosted.test.");
        assert_eq!(r.target().unwrap().as_str(), "app.hosted.test.");
        let mx = Record::new("example.test.", "MX", 60, "10 Mail.Example.Test.");
        assert_eq!(mx.target().unwrap().as_str(), "mail.example.test.");
        assert!(
            Record::new("example.test.", "MX", 60, "0 .")
                .target()
                .is_none()
        );
        let srv = Record::new(
            "_sip._tcp.example.test.",
            "SRV",
            60,
            "0 5 5060 sip.example.test.",
        );
        assert_eq!(srv.target().unwrap().as_str(), "sip.example.test.");
        let idn = Record::new("Bücher.test.", "CNAME", 60, "www.Bücher.test.");
        assert_eq!(
            idn.to_string(),
            "xn--bcher-kva.test. 60 CNAME www.xn--bcher-kva.test."
        );
        let txt = Record::new("example.test.", "TXT", 60, "Keep Case");
        assert_eq!(txt.data, "Keep Case");
    }
}
