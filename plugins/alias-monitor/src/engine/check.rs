//! One check of one name: the queries, and the findings drawn from their answers.
//!
//! Every configured server is asked whether the name is an alias; the first that answers
//! is the one whose answers are analysed in full (the others are compared with it, and
//! asked for flattened addresses). At the name it asks CNAME, SOA, A, AAAA and MX; NS when
//! the name is a zone apex or an alias; TXT when it is an alias (to prove data beside the
//! CNAME); SRV for `_service._proto` names. The alias chain is walked with explicit CNAME
//! queries, and each MX/NS/SRV target and the SOA MNAME is asked whether it is an alias.

use std::collections::{BTreeMap, BTreeSet};

use super::findings::{Finding, Kind, Severity};
use super::lookup::{Answer, Failure, Lookup, Rcode, Record, Resolver};
use super::name::Fqdn;
use super::resolve::{self, Chain, End};
use super::suffixes::{self, TABLE_DATE};

/// How a check is run: which servers to ask and how long a chain may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// Servers to ask, "ip:port"; empty means the host's default server.
    pub servers: Vec<String>,
    /// CNAME links allowed before a chain is reported as too long.
    pub max_chain: usize,
}

impl CheckSettings {
    /// The servers a check asks, in order: the configured ones, or the host's default
    /// server ("").
    pub fn servers_to_ask(&self) -> Vec<String> {
        if self.servers.is_empty() {
            vec![String::new()]
        } else {
            self.servers.clone()
        }
    }
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            max_chain: 3,
        }
    }
}

/// The outcome of checking one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The name checked.
    pub name: Fqdn,
    /// The server whose answers were analysed ("ip:port"), if any answered.
    pub server: Option<String>,
    /// Its response code for the name (NOERROR or NXDOMAIN when the picture is known).
    pub rcode: Option<Rcode>,
    /// Whether it answered authoritatively (AA): only then are TTLs the zone's own.
    pub authoritative: bool,
    /// Whether the name is a zone apex.
    pub apex: bool,
    /// The name's records as that server gives them: the records at the name (CNAME, A,
    /// AAAA, MX, NS at an apex, SRV), then the alias chain and the addresses at its end.
    /// SOA is left out (its serial changes with every edit of the zone) and so is TXT.
    pub records: Vec<Record>,
    /// What is wrong.
    pub findings: Vec<Finding>,
    /// Whether every question to the analysed server got an answer that says something
    /// (NOERROR or NXDOMAIN). When not, `records` is partial and a missing finding does not
    /// mean the problem is gone.
    pub reliable: bool,
}

impl Check {
    /// The worst severity among the findings, `None` when there are none.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(Finding::severity).max()
    }
}

/// Checks `name` (expected to be an alias of, or flattened from, `expect` when given).
pub fn check<L: Lookup>(
    name: &Fqdn,
    expect: Option<&Fqdn>,
    settings: &CheckSettings,
    res: &mut Resolver<L>,
) -> Check {
    let servers = settings.servers_to_ask();
    let before: Vec<u64> = servers.iter().map(|s| res.failures_at(s)).collect();
    let mut run = Run {
        res,
        name,
        findings: Vec::new(),
        server: String::new(),
        label: String::new(),
        reliable: true,
    };

    // Every server: is the name an alias? The first that answers is analysed in full.
    let mut views: Vec<(String, Answer)> = Vec::new();
    for server in &servers {
        match run.res.ask(server, name, "CNAME") {
            Ok(answer) => views.push((server.clone(), answer)),
            Err(f) => {
                let finding = failure_finding(server, &label(server, ""), &f);
                run.findings.push(finding);
            }
        }
    }
    let Some((primary, first)) = views.first().cloned() else {
        return Check {
            name: name.clone(),
            server: None,
            rcode: None,
            authoritative: false,
            apex: false,
            records: Vec::new(),
            findings: dedup(run.findings),
            reliable: false,
        };
    };
    run.server = primary.clone();
    run.label = label(&primary, &first.server);

    let mut check = Check {
        name: name.clone(),
        server: Some(run.label.clone()),
        rcode: Some(first.rcode),
        authoritative: first.authoritative,
        apex: false,
        records: Vec::new(),
        findings: Vec::new(),
        reliable: true,
    };
    match first.rcode {
        Rcode::NoError => run.analyse(&first, expect, settings, &mut check),
        Rcode::NxDomain if !first.authoritative => {
            // Hearsay from a resolver: never proof that the name is gone.
            run.reliable = false;
            let finding = run.unconfirmed_nxdomain(&first);
            run.findings.push(finding);
        }
        Rcode::NxDomain => {
            let proof = first
                .authority
                .iter()
                .filter(|r| r.rtype == "SOA")
                .map(Record::to_string)
                .chain([format!("{name}: NXDOMAIN at {}", run.label)]);
            run.findings.push(
                Finding::new(
                    Kind::NameMissing,
                    name.as_str(),
                    format!("{} does not exist (NXDOMAIN)", name.display()),
                )
                .proof(proof),
            );
        }
        other => {
            run.reliable = false;
            run.findings
                .push(declined(name, &run.label, other, "CNAME"));
        }
    }

    if views.len() > 1 {
        run.compare_servers(&views);
    }
    let index = servers.iter().position(|s| *s == primary).unwrap_or(0);
    if run.res.failures_at(&primary) > before[index] {
        run.reliable = false;
    }
    check.reliable = run.reliable;
    check.findings = dedup(run.findings);
    check
}

/// Mutable state of one check.
struct Run<'a, L> {
    res: &'a mut Resolver<L>,
    name: &'a Fqdn,
    findings: Vec<Finding>,
    /// The analysed server as configured (the resolver's key).
    server: String,
    /// The analysed server as shown ("ip:port").
    label: String,
    reliable: bool,
}

impl<L: Lookup> Run<'_, L> {
    /// The finding for a non-authoritative NXDOMAIN: whether the resolver can be believed
    /// at all is asked first (the name's parent or the root must resolve), so a resolver
    /// that answers NXDOMAIN for everything is blamed instead of the name.
    fn unconfirmed_nxdomain(&mut self, first: &Answer) -> Finding {
        let name = self.name;
        let mut probes: Vec<Fqdn> = name
            .parent()
            .into_iter()
            .chain(Fqdn::parse(".").ok())
            .collect();
        probes.dedup();
        let mut tried = Vec::new();
        for probe in probes {
            match self.res.ask(&self.server, &probe, "SOA") {
                Ok(a) if a.rcode == Rcode::NoError => {
                    let proof = first
                        .authority
                        .iter()
                        .map(Record::to_string)
                        .chain([format!(
                            "{name}: NXDOMAIN at {} (not authoritative); {probe}: resolves",
                            self.label
                        )]);
                    return Finding::new(
                        Kind::NotFoundByResolver,
                        name.as_str(),
                        format!(
                            "the resolver at {} says {} does not resolve (NXDOMAIN, not an authoritative answer)",
                            self.label,
                            name.display()
                        ),
                    )
                    .proof(proof);
                }
                Ok(a) => tried.push((probe, a.rcode.to_string())),
                Err(f) => tried.push((probe, f.to_string())),
            }
        }
        let proof = tried
            .iter()
            .map(|(probe, what)| format!("{probe}: {what} at {}", self.label))
            .chain([format!(
                "{name}: NXDOMAIN at {} (not authoritative)",
                self.label
            )]);
        Finding::new(
            Kind::ResolverNxdomain,
            self.label.clone(),
            format!(
                "the resolver at {} answers NXDOMAIN for everything; can't judge {}",
                self.label,
                name.display()
            ),
        )
        .proof(proof)
    }

    /// Asks the analysed server about the name; a failure or a non-answer is recorded as a
    /// finding and makes the check unreliable.
    fn at_name(&mut self, rtype: &'static str) -> Option<Answer> {
        let name = self.name;
        match self.res.ask(&self.server, name, rtype) {
            Ok(a) if a.rcode.is_definite() => Some(a),
            Ok(a) => {
                self.reliable = false;
                self.findings
                    .push(declined(name, &self.label, a.rcode, rtype));
                None
            }
            Err(f) => {
                self.reliable = false;
                self.findings
                    .push(failure_finding(&self.server, &self.label, &f));
                None
            }
        }
    }

    fn analyse(
        &mut self,
        first: &Answer,
        expect: Option<&Fqdn>,
        settings: &CheckSettings,
        check: &mut Check,
    ) {
        let name = self.name;
        let cnames = first.records(name, "CNAME");
        let has_cname = !cnames.is_empty();
        if cnames.len() > 1 {
            self.findings.push(
                Finding::new(
                    Kind::SeveralCnames,
                    name.as_str(),
                    format!(
                        "{} has {} CNAME records; a name may have only one",
                        name.display(),
                        cnames.len()
                    ),
                )
                .proof(&cnames),
            );
        }

        let mut own: BTreeMap<&'static str, Vec<Record>> = BTreeMap::new();
        let mut soa_proof: Vec<Record> = first.soa_of(name);
        for rtype in ["SOA", "A", "AAAA", "MX"] {
            if let Some(a) = self.at_name(rtype) {
                soa_proof.extend(a.soa_of(name));
                own.insert(rtype, a.records(name, rtype));
            }
        }
        let mut apex = !soa_proof.is_empty();
        if (apex || has_cname)
            && let Some(a) = self.at_name("NS")
        {
            let ns = a.records(name, "NS");
            apex |= !ns.is_empty();
            soa_proof.extend(a.soa_of(name));
            own.insert("NS", ns);
        }
        if has_cname && let Some(a) = self.at_name("TXT") {
            own.insert("TXT", a.records(name, "TXT"));
        }
        if name.is_service()
            && let Some(a) = self.at_name("SRV")
        {
            own.insert("SRV", a.records(name, "SRV"));
        }
        dedup_records(&mut soa_proof);
        check.apex = apex;

        // CNAME at the apex, CNAME beside other data.
        if has_cname {
            let others: Vec<Record> = own.values().flatten().cloned().collect();
            if apex {
                let zone_records: Vec<&Record> = soa_proof
                    .iter()
                    .chain(others.iter().filter(|r| r.rtype == "NS"))
                    .collect();
                self.findings.push(
                    Finding::new(
                        Kind::ApexCname,
                        name.as_str(),
                        format!(
                            "CNAME at the zone apex: {} is the apex of its zone (it has SOA/NS) and an alias of {}",
                            name.display(),
                            cnames[0].data
                        ),
                    )
                    .proof(cnames.iter().take(1))
                    .proof(zone_records),
                );
            }
            let beside: Vec<&Record> = others
                .iter()
                .filter(|r| !(apex && (r.rtype == "NS" || r.rtype == "SOA")))
                .collect();
            if !beside.is_empty() {
                let types: BTreeSet<&str> = beside.iter().map(|r| r.rtype.as_str()).collect();
                self.findings.push(
                    Finding::new(
                        Kind::CnameBesideData,
                        name.as_str(),
                        format!(
                            "CNAME beside other data at {}: CNAME with {}",
                            name.display(),
                            types.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .proof(cnames.iter().take(1))
                    .proof(beside),
                );
            }
        }

        // The alias chain.
        let mut records: Vec<Record> = cnames.clone();
        for rtype in ["A", "AAAA", "MX", "NS", "SRV"] {
            if rtype != "NS" || apex {
                records.extend(own.get(rtype).into_iter().flatten().cloned());
            }
        }
        if has_cname {
            let server = self.server.clone();
            let chain = resolve::follow(self.res, &server, name);
            self.chain_findings(&chain, settings);
            if let Some(expected) = expect {
                let targets = chain.targets();
                if !targets.contains(expected) {
                    let first = targets.first().map(Fqdn::to_string).unwrap_or_default();
                    self.findings.push(
                        Finding::new(
                            Kind::UnexpectedTarget,
                            name.as_str(),
                            format!("{} points to {first}, expected {expected}", name.display()),
                        )
                        .proof(&chain.links),
                    );
                }
            }
            records.extend(chain.links.iter().cloned());
            if let End::Addresses(addrs) = &chain.end {
                records.extend(addrs.iter().cloned());
            }
        }
        dedup_records(&mut records);
        check.records = records;

        // Targets that must not be aliases.
        let mut pointers: Vec<(Kind, &'static str, Record)> = Vec::new();
        for r in own.get("MX").into_iter().flatten() {
            pointers.push((Kind::MxAlias, "MX exchange", r.clone()));
        }
        if apex && !has_cname {
            for r in own.get("NS").into_iter().flatten() {
                pointers.push((Kind::NsAlias, "NS name server", r.clone()));
            }
            for r in soa_proof.iter().filter(|r| r.rtype == "SOA").take(1) {
                pointers.push((Kind::MnameAlias, "SOA MNAME", r.clone()));
            }
        }
        for r in own.get("SRV").into_iter().flatten() {
            pointers.push((Kind::SrvAlias, "SRV target", r.clone()));
        }
        for (kind, what, record) in pointers {
            self.pointer_finding(kind, what, &record);
        }

        // Flattened apex: its addresses against the expected target's current ones.
        if !has_cname && let Some(expected) = expect {
            let own_addresses = ["A", "AAAA"]
                .iter()
                .any(|t| own.get(t).is_some_and(|rs| !rs.is_empty()));
            if own_addresses {
                self.drift(expected, settings);
            } else {
                self.findings.push(Finding::new(
                    Kind::UnexpectedTarget,
                    name.as_str(),
                    format!(
                        "{} has neither a CNAME nor addresses, expected {expected}",
                        name.display()
                    ),
                ));
            }
        }
    }

    fn chain_findings(&mut self, chain: &Chain, settings: &CheckSettings) {
        let name = self.name;
        let path = chain.path(name);
        let subject = format!("{name}>{}", chain.last);
        match &chain.end {
            End::Loop(again) => self.findings.push(
                Finding::new(
                    Kind::Loop,
                    name.as_str(),
                    format!("CNAME loop: {path} (back at {again})"),
                )
                .proof(&chain.links),
            ),
            End::TooLong => self.findings.push(
                Finding::new(
                    Kind::LongChain,
                    name.as_str(),
                    format!(
                        "CNAME chain of more than {} links (the walk stopped): {path}",
                        resolve::MAX_LINKS
                    ),
                )
                .proof(&chain.links),
            ),
            End::NxDomain | End::NoAddresses => {
                let nx = chain.end == End::NxDomain;
                let what = if nx {
                    format!("{} is NXDOMAIN", chain.last)
                } else {
                    format!("{} has no addresses (no A/AAAA)", chain.last)
                };
                let note = if nx {
                    format!("{}: NXDOMAIN at {}", chain.last, self.label)
                } else {
                    format!("{}: no A/AAAA (NODATA) at {}", chain.last, self.label)
                };
                let finding = match suffixes::claimable(&chain.last) {
                    Some(s) => Finding::new(
                        Kind::TakeoverRisk,
                        subject,
                        format!(
                            "dangling alias: {path}; {what}: likely takeover risk ({} under {}, suffix table of {TABLE_DATE})",
                            s.service, s.pattern
                        ),
                    ),
                    None if nx => Finding::new(
                        Kind::Dangling,
                        subject,
                        format!("dangling alias: {path}; {what}"),
                    ),
                    None => Finding::new(
                        Kind::NoAddresses,
                        subject,
                        format!("dangling alias: {path}; {what}"),
                    ),
                };
                self.findings
                    .push(finding.proof(&chain.links).proof([note]));
            }
            End::Declined(rcode) => {
                self.findings
                    .push(declined(&chain.last, &self.label, *rcode, "A/AAAA"));
            }
            End::Failed(f) => {
                self.reliable = false;
                self.findings
                    .push(failure_finding(&self.server, &self.label, f));
            }
            End::Addresses(_) => {}
        }
        let links = chain.links.len();
        if links > settings.max_chain && chain.end != End::TooLong {
            self.findings.push(
                Finding::new(
                    Kind::LongChain,
                    name.as_str(),
                    format!(
                        "CNAME chain of {links} links (more than max_chain {}): {path}",
                        settings.max_chain
                    ),
                )
                .proof(&chain.links),
            );
        }
    }

    /// Asks whether the name `record` points at is an alias.
    fn pointer_finding(&mut self, kind: Kind, what: &str, record: &Record) {
        let Some(target) = record.target() else {
            return;
        };
        let answer = match self.res.ask(&self.server, &target, "CNAME") {
            Ok(a) => a,
            Err(f) => {
                self.reliable = false;
                self.findings
                    .push(failure_finding(&self.server, &self.label, &f));
                return;
            }
        };
        let aliases = answer.records(&target, "CNAME");
        if let Some(alias) = aliases.first() {
            self.findings.push(
                Finding::new(
                    kind,
                    format!("{}>{target}", self.name),
                    format!(
                        "{what} of {} is an alias: {target} is a CNAME of {}",
                        self.name.display(),
                        alias.data
                    ),
                )
                .proof([record, alias]),
            );
        }
    }

    /// Drift of a flattened name: on every configured server that answers, its A/AAAA
    /// set against the current addresses of `expected` (resolved on the first server that
    /// can say).
    fn drift(&mut self, expected: &Fqdn, settings: &CheckSettings) {
        let name = self.name.clone();
        let res = &mut *self.res;
        let servers = if settings.servers.is_empty() {
            vec![String::new()]
        } else {
            settings.servers.clone()
        };
        let mut target: Option<Chain> = None;
        for server in &servers {
            let chain = resolve::follow(res, server, expected);
            let done = matches!(
                chain.end,
                End::Addresses(_) | End::NxDomain | End::NoAddresses | End::Loop(_)
            );
            if done {
                target = Some(chain);
                break;
            }
        }
        let Some(target) = target else {
            return; // no server could say what the target has now; the check reports the servers
        };
        let want = target.addresses();
        let mut target_proof: Vec<String> = target.links.iter().map(Record::to_string).collect();
        match &target.end {
            End::Addresses(rs) => target_proof.extend(rs.iter().map(Record::to_string)),
            End::NxDomain => target_proof.push(format!("{}: NXDOMAIN", target.last)),
            _ => target_proof.push(format!("{}: no A/AAAA", target.last)),
        }
        let several = servers.len() > 1;
        for server in &servers {
            let mut have: BTreeSet<String> = BTreeSet::new();
            let mut have_proof: Vec<String> = Vec::new();
            let mut shown = label(server, "");
            let mut answered = true;
            for rtype in ["A", "AAAA"] {
                match res.ask(server, &name, rtype) {
                    Ok(a) if a.rcode.is_definite() => {
                        shown = label(server, &a.server);
                        for r in a.records(&name, rtype) {
                            have.insert(r.data.clone());
                            have_proof.push(r.to_string());
                        }
                    }
                    _ => answered = false,
                }
            }
            if !answered || have == want {
                continue;
            }
            let at = if several {
                format!(" at {shown}")
            } else {
                String::new()
            };
            let want_text = if want.is_empty() {
                "none".to_string()
            } else {
                want.iter().cloned().collect::<Vec<_>>().join(" ")
            };
            self.findings.push(
                Finding::new(
                    Kind::Drift,
                    format!(
                        "{name}@{}",
                        if server.is_empty() { "default" } else { server }
                    ),
                    format!(
                        "flattened apex drift{at}: {} has {} but {expected} has {want_text} now",
                        name.display(),
                        have.iter().cloned().collect::<Vec<_>>().join(" ")
                    ),
                )
                .proof(have_proof)
                .proof(target_proof.iter()),
            );
        }
    }

    /// Compares what each answering server says about the name, and for a flattened name
    /// with an expected target, each server's addresses against the target's.
    fn compare_servers(&mut self, views: &[(String, Answer)]) {
        let name = self.name;
        let mut seen: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (server, cname) in views {
            let shown = label(server, &cname.server);
            let mut view: Vec<String> = Vec::new();
            if cname.rcode != Rcode::NoError {
                view.push(cname.rcode.to_string());
            } else {
                view.extend(
                    cname
                        .records(name, "CNAME")
                        .iter()
                        .map(|r| format!("CNAME {}", r.data)),
                );
                for rtype in ["A", "AAAA"] {
                    match self.res.ask(server, name, rtype) {
                        Ok(a) if a.rcode == Rcode::NoError => view.extend(
                            a.records(name, rtype)
                                .iter()
                                .map(|r| format!("{rtype} {}", r.data)),
                        ),
                        Ok(a) => view.push(format!("{rtype}: {}", a.rcode)),
                        Err(f) => {
                            self.findings.push(failure_finding(server, &shown, &f));
                            view.push(format!("{rtype}: no answer"));
                        }
                    }
                }
            }
            view.sort();
            view.dedup();
            seen.entry(view).or_default().push(shown);
        }
        if seen.len() > 1 {
            let proof: Vec<String> = seen
                .iter()
                .map(|(view, servers)| {
                    let said = if view.is_empty() {
                        "nothing (NODATA)".to_string()
                    } else {
                        view.join(", ")
                    };
                    format!("{}: {said}", servers.join(", "))
                })
                .collect();
            self.findings.push(
                Finding::new(
                    Kind::ServersDisagree,
                    name.as_str(),
                    format!("servers disagree about {}", name.display()),
                )
                .proof(proof),
            );
        }
    }
}

/// "ip:port" to show for a server: what answered, else what was configured.
fn label(configured: &str, answered: &str) -> String {
    if !answered.is_empty() {
        answered.to_string()
    } else if configured.is_empty() {
        "the default server".to_string()
    } else {
        configured.to_string()
    }
}

fn failure_finding(server: &str, shown: &str, f: &Failure) -> Finding {
    let subject = if server.is_empty() { "default" } else { server };
    match f {
        Failure::Timeout(r) => Finding::new(
            Kind::Unreachable,
            subject,
            format!(
                "{shown} unreachable: no answer in time after {} attempts ({r})",
                super::lookup::ATTEMPTS
            ),
        ),
        Failure::Unreachable(r) => Finding::new(
            Kind::Unreachable,
            subject,
            format!(
                "{shown} unreachable after {} attempts ({r})",
                super::lookup::ATTEMPTS
            ),
        ),
        Failure::Denied(_) => {
            Finding::new(Kind::Denied, subject, format!("cannot ask {shown}: {f}"))
        }
        Failure::Invalid(_) => Finding::new(
            Kind::Declined,
            subject,
            format!("{shown} was not asked: {f}"),
        ),
    }
}

fn declined(name: &Fqdn, shown: &str, rcode: Rcode, rtype: &str) -> Finding {
    Finding::new(
        Kind::Declined,
        format!("{name}@{shown}"),
        format!(
            "{shown} answered {rcode} for {name} ({rtype}): it did not say whether the records exist"
        ),
    )
}

fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut seen = BTreeSet::new();
    findings
        .into_iter()
        .filter(|f| seen.insert(f.key()))
        .collect()
}

fn dedup_records(records: &mut Vec<Record>) {
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert((r.name.clone(), r.rtype.clone(), r.data.clone())));
}
