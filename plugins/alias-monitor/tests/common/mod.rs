//! An in-memory stand-in for authoritative servers, for driving the engine natively. Each
//! server holds zone-file-like records and answers the way an authoritative server does:
//! exact matches, a CNAME for other types (optionally chased within its own data),
//! wildcards, NODATA and NXDOMAIN with the zone's SOA in the authority section, REFUSED
//! outside its zones. A server can also be down, silent, flaky or failing.
//!
//! The real server on loopback is exercised by the end-to-end tests in the host's `tests/`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use alias_monitor::engine::{Answer, Failure, Fqdn, Lookup, Rcode, Record};

/// How a server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Answers from its records.
    Up,
    /// Connection refused.
    Down,
    /// Never answers.
    Silent,
    /// Times out this many times, then answers.
    Flaky(u32),
    /// Answers SERVFAIL to everything.
    ServFail,
    /// A resolver: answers from its records like [`Behavior::Up`], but never
    /// authoritatively (AA clear), as a recursive resolver does.
    Resolver,
    /// A resolver with nowhere to ask (no internet): NXDOMAIN, AA clear, for every name.
    NxdomainForAll,
}

/// One server.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its records.
    pub records: Vec<Record>,
    /// How it behaves.
    pub behavior: Behavior,
    /// Whether it follows CNAMEs within its own data (as BIND and hickory do), and lets a
    /// CNAME win over every type but NS and A at a name that has both (as a hickory
    /// in-memory zone forced to hold both does).
    pub chase: bool,
}

/// Servers by "ip:port"; the empty name is the default server.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    /// The servers.
    pub servers: BTreeMap<String, Server>,
    /// Queries received, per (name, type).
    pub asked: BTreeMap<(String, String), u32>,
}

/// Records from zone-file lines `name TTL TYPE data` (blank lines and `;` comments skipped).
pub fn records(text: &str) -> Vec<Record> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| {
            let mut parts = l.splitn(4, char::is_whitespace);
            let name = parts.next().expect("name");
            let ttl: u32 = parts.next().expect("ttl").parse().expect("ttl number");
            let rtype = parts.next().expect("type");
            let data = parts.next().unwrap_or("").trim();
            Record::new(name, rtype, ttl, data)
        })
        .collect()
}

/// The default world: healthy names, and one of each problem.
pub const WORLD: &str = r#"
example.test. 300 SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
example.test. 300 NS ns1.example.test.
example.test. 300 A 192.0.2.1
example.test. 300 MX 10 mail.example.test.
ns1.example.test. 300 A 192.0.2.53
mail.example.test. 300 A 192.0.2.25
www.example.test. 300 CNAME app.hosted.test.
mixed.example.test. 300 CNAME app.hosted.test.
mixed.example.test. 300 TXT "v=spf1 -all"
mixed.example.test. 300 MX 10 mail.example.test.
c1.example.test. 300 CNAME c2.example.test.
c2.example.test. 300 CNAME c3.example.test.
c3.example.test. 300 CNAME c4.example.test.
c4.example.test. 300 CNAME app.hosted.test.
loop1.example.test. 300 CNAME loop2.example.test.
loop2.example.test. 300 CNAME loop1.example.test.
dangling.example.test. 300 CNAME gone.hosted.test.
noaddr.example.test. 300 CNAME txtonly.hosted.test.
takeover.example.test. 300 CNAME myapp.herokuapp.com.
other.example.test. 300 CNAME other.hosted.test.
_sip._tcp.example.test. 300 SRV 0 5 5060 sipalias.example.test.
sipalias.example.test. 300 CNAME app.hosted.test.
_xmpp._tcp.example.test. 300 SRV 0 5 5222 mail.example.test.
*.wild.example.test. 300 CNAME app.hosted.test.
*.wildgone.example.test. 300 CNAME gone.hosted.test.

hosted.test. 300 SOA ns.hosted.test. ops.hosted.test. 7 7200 3600 1209600 300
hosted.test. 300 NS ns.hosted.test.
ns.hosted.test. 300 A 198.51.100.53
app.hosted.test. 300 A 198.51.100.10
app.hosted.test. 300 AAAA 2001:db8::10
other.hosted.test. 300 A 198.51.100.11
txtonly.hosted.test. 300 TXT "nothing here"

herokuapp.com. 300 SOA ns.herokuapp.com. ops.herokuapp.com. 1 7200 3600 1209600 300
herokuapp.com. 300 NS ns.herokuapp.com.

apex.test. 300 SOA ns1.example.test. hostmaster.apex.test. 1 7200 3600 1209600 300
apex.test. 300 NS ns1.example.test.
apex.test. 300 CNAME app.hosted.test.

mxalias.test. 300 SOA ns1.mxalias.test. hostmaster.mxalias.test. 1 7200 3600 1209600 300
mxalias.test. 300 NS ns1.mxalias.test.
mxalias.test. 300 A 192.0.2.7
mxalias.test. 300 MX 10 mail.mxalias.test.
ns1.mxalias.test. 300 A 192.0.2.53
mail.mxalias.test. 300 CNAME app.hosted.test.

nsalias.test. 300 SOA primary.nsalias.test. hostmaster.nsalias.test. 1 7200 3600 1209600 300
nsalias.test. 300 NS dns.nsalias.test.
nsalias.test. 300 A 192.0.2.8
dns.nsalias.test. 300 CNAME ns.hosted.test.
primary.nsalias.test. 300 CNAME ns.hosted.test.

flat.test. 300 SOA ns1.example.test. hostmaster.flat.test. 1 7200 3600 1209600 300
flat.test. 300 NS ns1.example.test.
flat.test. 300 A 198.51.100.10
flat.test. 300 AAAA 2001:db8::10

drift.test. 300 SOA ns1.example.test. hostmaster.drift.test. 1 7200 3600 1209600 300
drift.test. 300 NS ns1.example.test.
drift.test. 300 A 198.51.100.99

xn--bcher-kva.test. 300 SOA ns1.example.test. hostmaster.xn--bcher-kva.test. 1 7200 3600 1209600 300
xn--bcher-kva.test. 300 NS ns1.example.test.
xn--bcher-kva.test. 300 A 192.0.2.9
www.xn--bcher-kva.test. 300 CNAME app.hosted.test.
"#;

/// The server address most tests use.
pub const S1: &str = "127.0.0.1:5353";
/// A second server.
pub const S2: &str = "127.0.0.1:5354";

impl Zones {
    /// One server at [`S1`] serving `text`.
    pub fn one(text: &str) -> Self {
        let mut z = Zones::default();
        z.add(S1, text, Behavior::Up);
        z
    }

    /// The default world at [`S1`].
    pub fn world() -> Self {
        Self::one(WORLD)
    }

    /// Adds (or replaces) a server.
    pub fn add(&mut self, addr: &str, text: &str, behavior: Behavior) {
        self.servers.insert(
            addr.to_string(),
            Server {
                records: records(text),
                behavior,
                chase: false,
            },
        );
    }

    /// The server at `addr`.
    pub fn server(&mut self, addr: &str) -> &mut Server {
        self.servers.get_mut(addr).expect("server exists")
    }

    /// Replaces the records of `name`/`rtype` on `addr` with `lines` (zone-file lines).
    pub fn set(&mut self, addr: &str, name: &str, rtype: &str, lines: &str) {
        let server = self.server(addr);
        let name = Fqdn::parse(name).expect("name");
        server.records.retain(|r| !r.is(&name, rtype));
        server.records.extend(records(lines));
    }

    /// How often `name`/`rtype` was asked.
    pub fn count(&self, name: &str, rtype: &str) -> u32 {
        let name = Fqdn::parse(name).expect("name");
        self.asked
            .get(&(name.to_string(), rtype.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// All queries received.
    pub fn total(&self) -> u32 {
        self.asked.values().sum()
    }
}

impl Server {
    fn zone_of(&self, name: &Fqdn) -> Option<Fqdn> {
        self.records
            .iter()
            .filter(|r| r.rtype == "SOA")
            .filter_map(|r| Fqdn::parse(&r.name).ok())
            .filter(|z| name.is_under(z))
            .max_by_key(|z| z.as_str().len())
    }

    fn at(&self, name: &Fqdn) -> Vec<Record> {
        self.records
            .iter()
            .filter(|r| r.name == name.as_str())
            .cloned()
            .collect()
    }

    fn exists(&self, name: &Fqdn) -> bool {
        self.records.iter().any(|r| {
            Fqdn::parse(&r.name)
                .map(|owner| owner.is_under(name))
                .unwrap_or(false)
        })
    }

    /// Records at `name`, synthesized from a wildcard when the name does not exist.
    fn node(&self, name: &Fqdn, zone: &Fqdn) -> Option<Vec<Record>> {
        if self.exists(name) {
            return Some(self.at(name));
        }
        let labels: Vec<&str> = name.labels().collect();
        for i in 1..labels.len() {
            let parent = Fqdn::parse(&labels[i..].join(".")).ok()?;
            if !parent.is_under(zone) {
                break;
            }
            let wild = Fqdn::parse(&format!("*.{parent}")).ok()?;
            let found = self.at(&wild);
            if !found.is_empty() {
                return Some(
                    found
                        .into_iter()
                        .map(|r| Record::new(name.as_str(), &r.rtype, r.ttl, &r.data))
                        .collect(),
                );
            }
            if self.exists(&parent) && parent != *zone {
                break;
            }
        }
        None
    }

    fn answer(&self, name: &Fqdn, rtype: &str, depth: usize) -> (Rcode, Vec<Record>, Vec<Record>) {
        let Some(zone) = self.zone_of(name) else {
            return (Rcode::Refused, vec![], vec![]);
        };
        let soa: Vec<Record> = self
            .at(&zone)
            .into_iter()
            .filter(|r| r.rtype == "SOA")
            .collect();
        let Some(node) = self.node(name, &zone) else {
            return (Rcode::NxDomain, vec![], soa);
        };
        let exact: Vec<Record> = node.iter().filter(|r| r.rtype == rtype).cloned().collect();
        let cname: Vec<Record> = node
            .iter()
            .filter(|r| r.rtype == "CNAME")
            .cloned()
            .collect();
        let cname_wins = self.chase && rtype != "NS" && rtype != "A" && rtype != "CNAME";
        let cname_hides_exact = cname_wins && !cname.is_empty();
        if !exact.is_empty() && !cname_hides_exact {
            return (Rcode::NoError, exact, vec![]);
        }
        if rtype != "CNAME" && !cname.is_empty() {
            let mut answer = cname.clone();
            if self.chase
                && depth < 8
                && let Some(target) = cname[0].target()
                && self.zone_of(&target).is_some()
            {
                let (rcode, more, auth) = self.answer(&target, rtype, depth + 1);
                answer.extend(more);
                return (rcode, answer, auth);
            }
            return (Rcode::NoError, answer, vec![]);
        }
        (Rcode::NoError, vec![], soa)
    }
}

impl Lookup for Zones {
    fn lookup(&mut self, name: &Fqdn, rtype: &str, server: &str) -> Result<Answer, Failure> {
        *self
            .asked
            .entry((name.to_string(), rtype.to_string()))
            .or_default() += 1;
        let Some(s) = self.servers.get_mut(server) else {
            return Err(Failure::Denied(format!("{server} is not granted")));
        };
        match s.behavior {
            Behavior::Down => {
                return Err(Failure::Unreachable(format!(
                    "{server}: connection refused"
                )));
            }
            Behavior::Silent => {
                return Err(Failure::Timeout(format!(
                    "{server}: no answer after 2 tries"
                )));
            }
            Behavior::Flaky(n) if n > 0 => {
                s.behavior = Behavior::Flaky(n - 1);
                return Err(Failure::Timeout(format!(
                    "{server}: no answer after 2 tries"
                )));
            }
            Behavior::ServFail => {
                return Ok(Answer {
                    rcode: Rcode::ServFail,
                    authoritative: false,
                    answer: vec![],
                    authority: vec![],
                    server: server.to_string(),
                });
            }
            Behavior::NxdomainForAll => {
                return Ok(Answer {
                    rcode: Rcode::NxDomain,
                    authoritative: false,
                    answer: vec![],
                    authority: vec![],
                    server: server.to_string(),
                });
            }
            Behavior::Up | Behavior::Flaky(_) | Behavior::Resolver => {}
        }
        let (rcode, answer, authority) = s.answer(name, rtype, 0);
        Ok(Answer {
            rcode,
            authoritative: rcode != Rcode::Refused && s.behavior != Behavior::Resolver,
            answer,
            authority,
            server: server.to_string(),
        })
    }
}
