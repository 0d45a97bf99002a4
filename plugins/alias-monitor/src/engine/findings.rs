//! What a check can find: each [`Kind`] with its severity (the RFC's MUST is an error, its
//! SHOULD a warning), the RFC it cites and the usual fix; and [`Finding`], one occurrence
//! with the records that prove it.

use std::fmt;

/// How bad a finding is. `Info` is for changes the watch reports; a check's own findings
/// are warnings or errors.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A change worth knowing about, not a problem.
    Info,
    /// Against an RFC's SHOULD, or a problem that may be passing (an unreachable server).
    Warning,
    /// Against an RFC's MUST, or broken for users now.
    Error,
}

impl Severity {
    /// "info", "warning" or "error".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of problem a check reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A CNAME at a zone apex, where SOA and NS must be.
    ApexCname,
    /// A CNAME and other records at the same name.
    CnameBesideData,
    /// More than one CNAME at one name.
    SeveralCnames,
    /// An MX exchange that is an alias.
    MxAlias,
    /// An NS name server name that is an alias.
    NsAlias,
    /// An SRV target that is an alias.
    SrvAlias,
    /// A SOA MNAME that is an alias.
    MnameAlias,
    /// A CNAME chain longer than configured.
    LongChain,
    /// A CNAME chain that comes back on itself.
    Loop,
    /// An alias whose target does not exist.
    Dangling,
    /// An alias whose target exists but has no addresses.
    NoAddresses,
    /// A dangling alias into a hosted service where the name can be claimed.
    TakeoverRisk,
    /// Flattened (ALIAS/ANAME) addresses that differ from the target's current ones.
    Drift,
    /// Servers that give different answers for the same name.
    ServersDisagree,
    /// A target other than the configured expected one.
    UnexpectedTarget,
    /// The watched name itself does not exist (an authoritative NXDOMAIN).
    NameMissing,
    /// A resolver (not the zone's own server) answered NXDOMAIN for the name while it
    /// resolves the name's parent or the root: hearsay, not proof the name is gone.
    NotFoundByResolver,
    /// The resolver answers NXDOMAIN even for the root and the name's parent: it answers
    /// that for everything (no upstream, a captive portal), so nothing can be judged.
    ResolverNxdomain,
    /// A server answered SERVFAIL, REFUSED or another non-answer.
    Declined,
    /// A server did not answer at all (timeouts, unreachable), even after retries.
    Unreachable,
    /// The host refused to send the query (server not granted).
    Denied,
}

impl Kind {
    /// A short stable name, used in the keys that tell findings apart between checks.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::ApexCname => "apex-cname",
            Kind::CnameBesideData => "cname-and-other-data",
            Kind::SeveralCnames => "several-cnames",
            Kind::MxAlias => "mx-alias",
            Kind::NsAlias => "ns-alias",
            Kind::SrvAlias => "srv-alias",
            Kind::MnameAlias => "mname-alias",
            Kind::LongChain => "long-chain",
            Kind::Loop => "loop",
            Kind::Dangling => "dangling",
            Kind::NoAddresses => "no-addresses",
            Kind::TakeoverRisk => "takeover-risk",
            Kind::Drift => "drift",
            Kind::ServersDisagree => "servers-disagree",
            Kind::UnexpectedTarget => "unexpected-target",
            Kind::NameMissing => "nxdomain",
            Kind::NotFoundByResolver => "nxdomain-from-resolver",
            Kind::ResolverNxdomain => "resolver-nxdomain",
            Kind::Declined => "declined",
            Kind::Unreachable => "unreachable",
            Kind::Denied => "denied",
        }
    }

    /// The severity, following the cited RFC's words.
    pub fn severity(self) -> Severity {
        match self {
            Kind::ApexCname
            | Kind::CnameBesideData
            | Kind::SeveralCnames
            | Kind::MxAlias
            | Kind::NsAlias
            | Kind::SrvAlias
            | Kind::Loop
            | Kind::Dangling
            | Kind::TakeoverRisk
            | Kind::NameMissing => Severity::Error,
            Kind::MnameAlias
            | Kind::LongChain
            | Kind::NoAddresses
            | Kind::Drift
            | Kind::ServersDisagree
            | Kind::UnexpectedTarget
            | Kind::Declined
            | Kind::NotFoundByResolver
            | Kind::ResolverNxdomain
            | Kind::Unreachable
            | Kind::Denied => Severity::Warning,
        }
    }

    /// The rule the finding rests on; `None` for findings about this monitor's own config
    /// or about reaching the server.
    pub fn reference(self) -> Option<&'static str> {
        Some(match self {
            Kind::ApexCname => "RFC 1034 §3.6.2, RFC 2181 §10.1",
            Kind::CnameBesideData => "RFC 1034 §3.6.2, RFC 2181 §10.1, RFC 1912 §2.4",
            Kind::SeveralCnames => "RFC 2181 §10.1",
            Kind::MxAlias | Kind::NsAlias => "RFC 2181 §10.3",
            Kind::SrvAlias => "RFC 2782",
            Kind::MnameAlias => "RFC 1912 §2.4",
            Kind::LongChain => "RFC 1034 §3.6.2, RFC 1912 §2.4",
            Kind::Loop | Kind::Dangling | Kind::NoAddresses | Kind::TakeoverRisk => {
                "RFC 1034 §3.6.2"
            }
            Kind::Drift => "draft-ietf-dnsop-aname (ALIAS/ANAME)",
            Kind::ServersDisagree => "RFC 1034 §4.3.5",
            Kind::NameMissing | Kind::Declined => "RFC 1035 §4.1.1",
            Kind::NotFoundByResolver => "RFC 1035 §4.1.1 (AA clear)",
            Kind::UnexpectedTarget | Kind::ResolverNxdomain | Kind::Unreachable | Kind::Denied => {
                return None;
            }
        })
    }

    /// The usual fix, in one line.
    pub fn fix(self) -> &'static str {
        match self {
            Kind::ApexCname => {
                "use your provider's ALIAS/ANAME/flattening, or A/AAAA records, at the apex"
            }
            Kind::CnameBesideData => {
                "keep only the CNAME (move the other records to the target) or replace it with A/AAAA records"
            }
            Kind::SeveralCnames => "keep exactly one CNAME at the name",
            Kind::MxAlias => {
                "point the MX at the canonical name (the end of the alias chain), or give that name its own A/AAAA records"
            }
            Kind::NsAlias => {
                "point the NS at the server's canonical name, or give that name its own A/AAAA records"
            }
            Kind::SrvAlias => "point the SRV target at the canonical host name",
            Kind::MnameAlias => "put the primary server's canonical name in the SOA MNAME field",
            Kind::LongChain => "point the name straight at the final target",
            Kind::Loop => "break the loop: point one of the names at a host with addresses",
            Kind::Dangling => "remove the CNAME, or re-create its target",
            Kind::NoAddresses => {
                "give the target A/AAAA records, or point the alias at a name that has them"
            }
            Kind::TakeoverRisk => {
                "remove the CNAME now, or claim the name back at the hosting provider"
            }
            Kind::Drift => {
                "refresh the flattened A/AAAA records, or let the provider's ALIAS follow the target"
            }
            Kind::ServersDisagree => {
                "bring the lagging server up to date (check zone transfers, NOTIFY and the SOA serial)"
            }
            Kind::UnexpectedTarget => {
                "fix the record, or update `expect` in the config if the change is intended"
            }
            Kind::NameMissing => "re-create the name, or stop watching it",
            Kind::NotFoundByResolver => {
                "ask the zone's own name servers (list them in `servers`) to confirm before re-creating the name"
            }
            Kind::ResolverNxdomain => {
                "check the resolver (its upstream, the network), or ask the zone's own name servers (`servers`)"
            }
            Kind::Declined => "check the server's logs and its zone for this name",
            Kind::Unreachable => {
                "check that the server runs and that its address and port are right; the last known records are kept"
            }
            Kind::Denied => "grant the server in dns_servers of [plugins.alias-monitor.grants]",
        }
    }
}

/// One problem found by a check, with the records that prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem.
    pub kind: Kind,
    /// What it is about, for telling findings apart between checks ("www.example.test.",
    /// "www.example.test.>gone.test.", "127.0.0.1:53"); the title may change while the
    /// subject stays.
    pub subject: String,
    /// One line saying what is wrong.
    pub title: String,
    /// The records that prove it (`name TTL TYPE data`) and notes such as
    /// "gone.test.: NXDOMAIN".
    pub proof: Vec<String>,
}

impl Finding {
    /// A finding of `kind` about `subject`.
    pub fn new(kind: Kind, subject: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
            title: title.into(),
            proof: Vec::new(),
        }
    }

    /// Adds proof lines.
    pub fn proof<I, T>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: ToString,
    {
        self.proof.extend(lines.into_iter().map(|l| l.to_string()));
        self
    }

    /// The finding's identity across checks: kind and subject.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.slug(), self.subject)
    }

    /// The kind's severity.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}
