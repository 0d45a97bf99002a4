//! The roost plugin: config from `[plugins.alias-monitor.config]`, the `dns` and `check`
//! commands, and the watch timer that checks every watched name and posts what changed.
//! The analysis itself is [`crate::engine`]; this file is the glue to the host.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use roost_plugin::prelude::*;

use crate::engine::watch::{self, Baseline, Notice};
use crate::engine::{
    self, Answer, Check, CheckSettings, Failure, Fqdn, Kind, Lookup, Question, Record, Resolver,
    Severity, report,
};

/// Names whose first questions are asked at once (`engine::ask_ahead`) before they are
/// checked one by one.
const AHEAD: usize = 128;
/// Work done in one timer call before the rest of the round is handed to the next call, so
/// a long list of names neither holds the plugin's mailbox nor runs into the host's
/// per-call time limit.
const SLICE: Duration = Duration::from_millis(800);
/// Delay before the next slice of a round.
const NEXT_SLICE: Duration = Duration::from_millis(10);
/// Pause when the host's per-minute query budget is used up.
const BUDGET_PAUSE: Duration = Duration::from_secs(20);
/// Delay of the first round after `init`: it records the baseline.
const FIRST_ROUND: Duration = Duration::from_millis(200);
/// The timer tag of the periodic round.
const TICK: &str = "watch";
/// The timer tag of a round's continuation.
const MORE: &str = "watch:more";
/// kv key prefix of each watched name's state.
const STATE: &str = "state/";
/// The `check` option that turns problems into an error (exit status 1 from the shell).
const EXIT_CODE: &str = "--exit-code";

/// `[plugins.alias-monitor.config]`. Unknown keys are an error naming the key.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// Names to watch.
    names: Vec<String>,
    /// Servers to ask, "ip:port"; empty for the host's default.
    servers: Vec<String>,
    /// Seconds between rounds.
    interval_secs: u64,
    /// Channel alias for notices (granted in `channels`); without one they go to the log.
    channel: Option<String>,
    /// CNAME links allowed before a chain is a finding.
    max_chain: usize,
    /// Name → the target it should alias (or, flattened, whose addresses it should have).
    expect: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            names: Vec::new(),
            servers: Vec::new(),
            interval_secs: 300,
            channel: None,
            max_chain: 3,
            expect: BTreeMap::new(),
        }
    }
}

/// What is kept in kv for one watched name between checks (and across restarts).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    /// What the watch compares the next check with.
    baseline: Baseline,
    /// When the name was last checked (seconds since the epoch).
    checked_at: u64,
    /// The last time a server failed to answer, and how.
    last_error: Option<(u64, String)>,
}

impl Stored {
    fn worst(&self) -> Option<Severity> {
        self.baseline.problems.iter().map(|p| p.severity).max()
    }
}

/// The plugin's state: its settings, the round in progress, and each name's last state.
#[derive(Default)]
pub struct AliasMonitor {
    names: Vec<Fqdn>,
    expect: BTreeMap<Fqdn, Fqdn>,
    check: CheckSettings,
    channel: Option<String>,
    interval_secs: u64,
    /// Names left in the round in progress.
    round: VecDeque<Fqdn>,
    /// The round's resolver: answers are shared by the names of one round (many names
    /// alias the same target) and a server that stopped answering is not waited for again
    /// in the same round; dropped when the round ends, so nothing is cached across rounds.
    resolver: Option<Resolver<HostLookup>>,
    /// Names at the front of the round whose first questions the resolver has asked ahead.
    asked_ahead: usize,
    /// Each watched name's stored state, mirrored from kv for `!dns` and `status`.
    states: BTreeMap<Fqdn, Stored>,
}

/// The engine's [`Lookup`] over the host's `dns` capability. Recursion is always asked
/// for: a resolver needs it and an authoritative server ignores it.
struct HostLookup;

impl Lookup for HostLookup {
    fn lookup(&mut self, name: &Fqdn, rtype: &str, server: &str) -> Result<Answer, Failure> {
        answer(dns::lookup(name.as_str(), rtype, server, true))
    }

    fn lookup_many(&mut self, questions: &[Question]) -> Vec<Result<Answer, Failure>> {
        let wire: Vec<dns::Question> = questions
            .iter()
            .map(|q| dns::Question {
                name: q.name.as_str().to_string(),
                rtype: q.rtype.to_string(),
                server: q.server.clone(),
                recurse: true,
            })
            .collect();
        dns::lookup_many(&wire).into_iter().map(answer).collect()
    }
}

/// The engine's form of what the host answered.
fn answer(got: Result<dns::Response, dns::Failure>) -> Result<Answer, Failure> {
    let records = |rs: &[dns::Record]| -> Vec<Record> {
        rs.iter()
            .map(|r| Record::new(&r.name, &r.rtype, r.ttl, &r.data))
            .collect()
    };
    match got {
        Ok(r) => Ok(Answer {
            rcode: r.rcode,
            authoritative: r.authoritative,
            answer: records(&r.answer),
            authority: records(&r.authority),
            server: r.server,
        }),
        Err(dns::Failure::Timeout(m)) => Err(Failure::Timeout(m)),
        Err(dns::Failure::Unreachable(m)) => Err(Failure::Unreachable(m)),
        Err(dns::Failure::AccessDenied(m)) => Err(Failure::Denied(m)),
        Err(dns::Failure::InvalidArgument(m)) => Err(Failure::Invalid(m)),
    }
}

fn valid_server(text: &str) -> bool {
    text.parse::<SocketAddr>().is_ok() || text.parse::<IpAddr>().is_ok()
}

impl AliasMonitor {
    /// Reads and checks the config.
    fn configure(&mut self, cfg: &Config) -> Result<(), String> {
        let settings: Settings = cfg.decode()?;
        if settings.interval_secs == 0 {
            return Err("config key `interval_secs` must be above 0".into());
        }
        let mut names = Vec::new();
        for text in &settings.names {
            let name = Fqdn::parse(text).map_err(|e| format!("config key `names`: {e}"))?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for server in &settings.servers {
            if !valid_server(server) {
                return Err(format!(
                    "config key `servers`: `{server}` is not ip:port (e.g. 127.0.0.1:53)"
                ));
            }
        }
        let mut expect = BTreeMap::new();
        for (from, to) in &settings.expect {
            let from = Fqdn::parse(from).map_err(|e| format!("config key `expect`: {e}"))?;
            let to = Fqdn::parse(to).map_err(|e| format!("config key `expect`: {e}"))?;
            expect.insert(from, to);
        }
        self.names = names;
        self.expect = expect;
        self.check = CheckSettings {
            servers: settings.servers,
            max_chain: settings.max_chain,
        };
        self.channel = settings.channel;
        self.interval_secs = settings.interval_secs;
        Ok(())
    }

    /// Checks one name now.
    fn check_now<L: Lookup>(&self, name: &Fqdn, res: &mut Resolver<L>) -> Check {
        engine::check(name, self.expect.get(name), &self.check, res)
    }

    /// `!dns check <name>…` and `!check <name>…`: the full report of each name, asked in
    /// one run (a target shared by several names is asked once); with several names, a
    /// closing line with the time per name.
    /// `check NAME… [--exit-code]`: the report of each name. With `--exit-code`, a check
    /// that finds a warning or an error answers with the report as its error, which makes
    /// `roost invoke` exit 1 (as db-diff's `--exit-code` does), for scripts and CI.
    fn check_command(&self, cmd: &Command, texts: &[String]) -> Result<Reply, String> {
        let exit_code = texts.iter().any(|t| t == EXIT_CODE);
        let texts: Vec<&String> = texts.iter().filter(|t| *t != EXIT_CODE).collect();
        if texts.is_empty() {
            return Err(format!("usage: {}", cmd.usage()));
        }
        let (reply, problems) = self.check_names(cmd, &texts)?;
        if exit_code && problems {
            return Err(reply.to_plain_text());
        }
        Ok(reply)
    }

    /// Checks `texts` (names as typed); the reply and whether any check found a warning
    /// or an error.
    fn check_names(&self, cmd: &Command, texts: &[&String]) -> Result<(Reply, bool), String> {
        let mut problems = false;
        let mut names = Vec::with_capacity(texts.len());
        for text in texts {
            let name = Fqdn::parse(text).map_err(|e| format!("cannot check {e}"))?;
            if !self.names.contains(&name) && cmd.role() < Role::Trusted {
                return Err(format!(
                    "{} is not a watched name; checking other names needs the trusted role",
                    name.display()
                ));
            }
            names.push(name);
        }
        let mut res = Resolver::new(HostLookup);
        let mut reply = Reply::new();
        let mut times = Vec::with_capacity(names.len());
        let started = Instant::now();
        for (i, name) in names.iter().enumerate() {
            if i % AHEAD == 0 {
                let next = &names[i..names.len().min(i + AHEAD)];
                engine::ask_ahead(&mut res, next, &self.check);
            }
            let one = Instant::now();
            let check = self.check_now(name, &mut res);
            problems |= check.worst() >= Some(Severity::Warning);
            times.push(one.elapsed());
            if res.budget_exhausted() {
                return Err(
                    "the DNS query budget for this minute is used up; try again in a minute".into(),
                );
            }
            reply = if cmd.from_shell() {
                reply.and_text(report::render(&check))
            } else {
                reply
                    .and_text(report::headline(&check))
                    .code("", report::body(&check))
            };
        }
        if names.len() > 1 {
            reply = reply.and_text(timing_line(&mut times, started.elapsed(), res.sent()));
        }
        Ok((reply, problems))
    }

    /// `!dns`: one line per watched name.
    fn list(&self) -> Reply {
        if self.names.is_empty() {
            return Reply::text(
                "no names are watched (set `names` in [plugins.alias-monitor.config])",
            );
        }
        let mut lines = vec![self.status_line()];
        for name in &self.names {
            let mut line = format!("{}: ", name.display());
            match self.states.get(name) {
                None => line.push_str("not checked yet"),
                Some(s) => {
                    let n = s.baseline.problems.len();
                    match s.worst() {
                        None => line.push_str("ok"),
                        Some(worst) => line.push_str(&format!(
                            "{n} finding{}, worst {worst}",
                            if n == 1 { "" } else { "s" }
                        )),
                    }
                    line.push_str(&format!(
                        " · last check {}",
                        clock::format_utc(s.checked_at)
                    ));
                    if let Some((at, text)) = &s.last_error {
                        line.push_str(&format!(" · last error {}: {text}", clock::format_utc(*at)));
                    }
                }
            }
            lines.push(line);
        }
        Reply::text(lines.join("\n"))
    }

    fn status_line(&self) -> String {
        let with_problems = self
            .states
            .iter()
            .filter(|(n, s)| self.names.contains(n) && !s.baseline.problems.is_empty())
            .count();
        let last = self.states.values().map(|s| s.checked_at).max();
        let mut line = format!(
            "watching {} name{}, {with_problems} with problems",
            self.names.len(),
            if self.names.len() == 1 { "" } else { "s" }
        );
        match last {
            Some(t) => line.push_str(&format!(", last check {}", clock::format_utc(t))),
            None => line.push_str(", not checked yet"),
        }
        line
    }

    /// Continues the round: checks names until the slice is used up, then hands the rest
    /// to the next call.
    fn work(&mut self) {
        let started = Instant::now();
        let mut res = self.resolver.take().unwrap_or_else(|| {
            self.asked_ahead = 0;
            Resolver::new(HostLookup)
        });
        while let Some(name) = self.round.front().cloned() {
            if started.elapsed() >= SLICE {
                self.resolver = Some(res);
                self.schedule(NEXT_SLICE);
                return;
            }
            if self.asked_ahead == 0 {
                let next: Vec<Fqdn> = self.round.iter().take(AHEAD).cloned().collect();
                engine::ask_ahead(&mut res, &next, &self.check);
                self.asked_ahead = next.len();
            }
            let check = self.check_now(&name, &mut res);
            if res.budget_exhausted() {
                // The budget refusal is not an answer: the name is asked again after the
                // pause, with a fresh resolver.
                log::warn(format!(
                    "DNS query budget used up; the round goes on in {} s",
                    BUDGET_PAUSE.as_secs()
                ));
                self.schedule(BUDGET_PAUSE);
                return;
            }
            self.round.pop_front();
            self.asked_ahead -= 1;
            self.record(&name, &check);
        }
    }

    fn schedule(&self, delay: Duration) {
        if let Err(e) = timer::after(delay, MORE) {
            log::error(format!("cannot continue the round: {e}"));
        }
    }

    /// Compares a periodic check with the name's stored state, posts what changed, and
    /// stores the new state.
    fn record(&mut self, name: &Fqdn, check: &Check) {
        let old = self.states.get(name).cloned();
        let (baseline, notice) = watch::update(old.as_ref().map(|s| &s.baseline), check);
        if let Some(notice) = notice {
            self.post(&notice);
        }
        let now = clock::now_secs();
        let failure = check.findings.iter().find(|f| {
            matches!(
                f.kind,
                Kind::Unreachable | Kind::Denied | Kind::Declined | Kind::ResolverNxdomain
            )
        });
        let last_error = match failure {
            Some(f) => Some((now, f.title.clone())),
            None => old.and_then(|s| s.last_error),
        };
        let stored = Stored {
            baseline,
            checked_at: now,
            last_error,
        };
        match serde_json::to_string(&stored) {
            Ok(json) => {
                if let Err(e) = kv::set_string(&format!("{STATE}{name}"), &json) {
                    log::warn(format!("cannot store the state of {name}: {e}"));
                }
            }
            Err(e) => log::warn(format!("cannot encode the state of {name}: {e}")),
        }
        self.states.insert(name.clone(), stored);
    }

    fn post(&self, notice: &Notice) {
        match &self.channel {
            Some(channel) => {
                let message = Reply::text(&notice.summary).code("", &notice.details);
                if let Err(e) = chat::send(channel, message) {
                    log::warn(format!(
                        "cannot post to `{channel}`: {e}; {}",
                        notice.summary
                    ));
                }
            }
            None => log::info(format!("{}\n{}", notice.summary, notice.details)),
        }
    }

    /// Loads each watched name's stored state.
    fn load_states(&mut self) {
        self.states.clear();
        for name in &self.names {
            match kv::get_string(&format!("{STATE}{name}")) {
                Ok(Some(json)) => match serde_json::from_str::<Stored>(&json) {
                    Ok(stored) => {
                        self.states.insert(name.clone(), stored);
                    }
                    Err(e) => log::warn(format!("ignoring the stored state of {name}: {e}")),
                },
                Ok(None) => {}
                Err(e) => log::warn(format!("cannot read the stored state of {name}: {e}")),
            }
        }
    }
}

impl Plugin for AliasMonitor {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        self.configure(&cfg)?;
        self.load_states();
        if !self.names.is_empty() {
            timer::every(Duration::from_secs(self.interval_secs), TICK)?;
            timer::after(FIRST_ROUND, TICK)?;
        }
        Ok(Manifest::new("alias-monitor", env!("CARGO_PKG_VERSION"))
            .command(CommandSpec::new(
                "dns",
                "!dns [check <name>… [--exit-code]]",
                "Watched DNS names and their state; `check <name>` checks one now",
            ))
            .command(
                CommandSpec::new(
                    "check",
                    "!check <name> [name…] [--exit-code]",
                    "Check DNS names now: apex CNAMEs, broken or dangling aliases, drift",
                )
                .role(Role::Trusted)
                .min_args(1),
            ))
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        match cmd.name() {
            "dns" => match cmd.args() {
                [] => Ok(self.list()),
                [sub, names @ ..] if sub == "check" && !names.is_empty() => {
                    self.check_command(&cmd, names)
                }
                _ => Err(format!("usage: {}", cmd.usage())),
            },
            "check" => self.check_command(&cmd, cmd.args()),
            other => Err(format!("alias-monitor does not serve `{other}`")),
        }
    }

    fn on_timer(&mut self, tag: &str) {
        match tag {
            TICK if !self.round.is_empty() => {
                log::info("the previous round is still running; this tick is skipped")
            }
            TICK => {
                self.round = self.names.iter().cloned().collect();
                self.work();
            }
            MORE => self.work(),
            _ => {}
        }
    }

    fn status(&self) -> String {
        self.status_line()
    }
}

export_plugin!(AliasMonitor);

/// The closing line of a check of several names: how many, how long, the median and p99
/// time per name, and the queries sent (what the benchmark reads).
fn timing_line(times: &mut [Duration], total: Duration, queries: u64) -> String {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "checked {} names in {:.1} ms: {:.0} names/s, per name median {:.2} ms, p99 {:.2} ms; {queries} queries",
        times.len(),
        ms(total),
        times.len() as f64 / total.as_secs_f64().max(1e-9),
        ms(at(0.5)),
        ms(at(0.99)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(json: &str) -> Result<AliasMonitor, String> {
        let mut p = AliasMonitor::default();
        p.configure(&Config::parse(json)?)?;
        Ok(p)
    }

    #[test]
    fn config_reads_every_key_and_normalizes_names() {
        let p = configured(
            r#"{"names": ["WWW.Example.Test.", "bücher.test", "www.example.test"],
                "servers": ["127.0.0.1:5353"], "interval_secs": 5, "channel": "ops",
                "max_chain": 2, "expect": {"www.example.test": "App.Hosted.Test"}}"#,
        )
        .unwrap();
        let names: Vec<&str> = p.names.iter().map(Fqdn::as_str).collect();
        assert_eq!(names, ["www.example.test.", "xn--bcher-kva.test."]);
        assert_eq!(p.check.max_chain, 2);
        assert_eq!(p.interval_secs, 5);
        assert_eq!(p.channel.as_deref(), Some("ops"));
        let www = Fqdn::parse("www.example.test").unwrap();
        assert_eq!(p.expect[&www].as_str(), "app.hosted.test.");
    }

    #[test]
    fn defaults_apply_and_unknown_keys_are_named() {
        let p = configured("{}").unwrap();
        assert_eq!((p.interval_secs, p.check.max_chain), (300, 3));
        let err = configured(r#"{"names": [], "intervall": 5}"#)
            .err()
            .unwrap();
        assert!(err.contains("`intervall`"), "{err}");
        assert!(configured(r#"{"servers": ["localhost"]}"#).is_err());
        assert!(configured(r#"{"interval_secs": 0}"#).is_err());
        assert!(configured(r#"{"names": ["a..b"]}"#).is_err());
    }

    #[test]
    fn others_names_need_the_trusted_role() {
        let p = configured(r#"{"names": ["example.test"]}"#).unwrap();
        let cmd = Command::new("dns", ["check", "other.test"]);
        let err = p.check_command(&cmd, cmd.args()).err().unwrap();
        assert!(err.contains("trusted"), "{err}");
    }

    #[test]
    fn the_list_says_when_nothing_was_checked() {
        let p = configured(r#"{"names": ["example.test"]}"#).unwrap();
        let text = p.list().to_plain_text();
        assert!(text.contains("example.test: not checked yet"), "{text}");
        assert!(
            text.starts_with("watching 1 name, 0 with problems"),
            "{text}"
        );
    }

    #[test]
    fn the_timing_line_gives_median_and_p99() {
        let mut times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let line = timing_line(&mut times, Duration::from_secs(2), 500);
        assert_eq!(
            line,
            "checked 100 names in 2000.0 ms: 50 names/s, per name median 51.00 ms, p99 99.00 ms; 500 queries"
        );
    }
}
