//! Asking ahead for a list of names: the questions the checks of all of them will ask
//! first, sent step by step in batches the host answers concurrently (`lookup-many`):
//! every name's CNAME on every server; then, on the server a check analyses, what is at
//! each name that exists and the first link of each alias; then each chain's next link or
//! the addresses at its end. A run over many names then waits for the server about once
//! per step instead of once per question; the checks that follow find the answers in the
//! [`Resolver`]'s cache and ask only what is left (targets of MX and NS, other servers'
//! views, SRV), one at a time as before. A server that does not answer the first name's
//! question is not asked ahead at all: the checks find it dead as they always did, so a
//! silent server costs one wait more, not one per batch.

use super::check::CheckSettings;
use super::lookup::{Lookup, Question, Rcode, Record, Resolver};
use super::name::Fqdn;
use super::resolve::MAX_LINKS;

/// What a check asks at a name that exists, besides its CNAME (`check::analyse`).
const AT_NAME: [&str; 4] = ["SOA", "A", "AAAA", "MX"];
/// What it asks besides at an alias: NS and TXT (data beside a CNAME).
const AT_ALIAS: [&str; 2] = ["NS", "TXT"];

/// Fills `res`'s cache with what checking each of `names` with `settings` asks first.
pub fn ask_ahead<L: Lookup>(res: &mut Resolver<L>, names: &[Fqdn], settings: &CheckSettings) {
    let Some(first) = names.first() else {
        return;
    };
    let servers = settings.servers_to_ask();
    // A server that does not answer the first name is left to the checks (their retries
    // and their memory of dead servers), so asking ahead never waits on it for a batch.
    let probes: Vec<Question> = servers
        .iter()
        .map(|s| question(s, first, "CNAME"))
        .collect();
    res.ask_ahead(&probes);
    let answering: Vec<&String> = servers
        .iter()
        .filter(|s| res.cached(s, first, "CNAME").is_some())
        .collect();
    let cnames: Vec<Question> = names
        .iter()
        .flat_map(|name| answering.iter().map(|s| question(s, name, "CNAME")))
        .collect();
    res.ask_ahead(&cnames);
    let mut chains: Vec<(String, Fqdn)> = Vec::new();
    let mut step = Vec::new();
    for name in names {
        let Some((server, alias)) = analysed(res, &servers, name) else {
            continue;
        };
        let also = if alias.is_some() { &AT_ALIAS[..] } else { &[] };
        for rtype in AT_NAME.iter().chain(also) {
            step.push(question(server, name, rtype));
        }
        chains.push((server.clone(), name.clone()));
    }
    for _ in 0..=MAX_LINKS {
        chains = next_links(res, chains, &mut step);
        if step.is_empty() {
            break;
        }
        res.ask_ahead(&step);
        step.clear();
    }
}

/// The server whose answers a check of `name` analyses (the first that answered), when it
/// says the name exists, and the name's CNAME target if it is an alias.
fn analysed<'s, L: Lookup>(
    res: &Resolver<L>,
    servers: &'s [String],
    name: &Fqdn,
) -> Option<(&'s String, Option<Fqdn>)> {
    let (server, answer) = servers
        .iter()
        .find_map(|s| res.cached(s, name, "CNAME").map(|a| (s, a)))?;
    (answer.rcode == Rcode::NoError).then(|| (server, cname_target(answer, name)))
}

/// For each chain whose last name's CNAME is known: the next link's CNAME question, or the
/// addresses at the end (added to `step`); returns the chains that go on.
fn next_links<L: Lookup>(
    res: &Resolver<L>,
    chains: Vec<(String, Fqdn)>,
    step: &mut Vec<Question>,
) -> Vec<(String, Fqdn)> {
    let mut next = Vec::new();
    for (server, name) in chains {
        let Some(answer) = res.cached(&server, &name, "CNAME") else {
            continue;
        };
        if answer.rcode != Rcode::NoError {
            continue;
        }
        match cname_target(answer, &name) {
            Some(target) => {
                step.push(question(&server, &target, "CNAME"));
                next.push((server, target));
            }
            None => {
                step.push(question(&server, &name, "A"));
                step.push(question(&server, &name, "AAAA"));
            }
        }
    }
    next
}

fn cname_target(answer: &super::lookup::Answer, name: &Fqdn) -> Option<Fqdn> {
    answer
        .records(name, "CNAME")
        .first()
        .and_then(Record::target)
}

fn question(server: &str, name: &Fqdn, rtype: &'static str) -> Question {
    Question {
        server: server.to_string(),
        name: name.clone(),
        rtype,
    }
}
