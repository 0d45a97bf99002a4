//! A [`Check`] in words: a one-line headline, then each finding with its proof, rule and
//! fix, then the records. A healthy name's report says so and uses neither "error" nor
//! "warning".

use super::check::Check;
use super::findings::{Finding, Severity};
use super::lookup::Rcode;

/// One line: the name, and either "ok" or how many problems of which severity.
pub fn headline(check: &Check) -> String {
    let name = check.name.display();
    let asked = match &check.server {
        Some(s) => format!("asked {s}"),
        None => "no server answered".to_string(),
    };
    if check.findings.is_empty() {
        return format!("{name}: ok, no problems found ({asked})");
    }
    format!("{name}: {}, {asked}", count(&check.findings))
}

/// "2 problems (1 error, 1 warning)".
pub fn count(findings: &[Finding]) -> String {
    let n = findings.len();
    let mut parts = Vec::new();
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        let k = findings.iter().filter(|f| f.severity() == severity).count();
        if k > 0 {
            parts.push(format!("{k} {}{}", severity, plural(k)));
        }
    }
    format!("{n} problem{} ({})", plural(n), parts.join(", "))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A finding as lines: `severity: title`, the proof indented, then the rule and the fix.
pub fn finding_lines(f: &Finding, lead: &str) -> Vec<String> {
    let mut lines = vec![format!("{lead}{}: {}", f.severity(), f.title)];
    lines.extend(f.proof.iter().map(|p| format!("  {p}")));
    let fix = f.kind.fix();
    lines.push(match f.kind.reference() {
        Some(rule) => format!("  {rule} · fix: {fix}"),
        None => format!("  fix: {fix}"),
    });
    lines
}

/// Everything after the headline: findings (worst first), then the records.
pub fn body(check: &Check) -> String {
    let mut findings: Vec<&Finding> = check.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity()));
    let mut lines: Vec<String> = findings.iter().flat_map(|f| finding_lines(f, "")).collect();
    if let Some(server) = &check.server {
        let mut heading = format!("records at {server}");
        if !check.authoritative {
            heading.push_str(" (not authoritative: TTLs may come from a cache)");
        }
        if !check.reliable {
            heading.push_str(" (partial: not every question was answered)");
        }
        lines.push(format!("{heading}:"));
        if check.records.is_empty() {
            lines.push(match check.rcode {
                Some(Rcode::NxDomain) => format!("  {}: NXDOMAIN", check.name),
                Some(Rcode::NoError) => format!("  {}: no records (NODATA)", check.name),
                Some(other) => format!("  {}: {other}", check.name),
                None => format!("  {}: no answer", check.name),
            });
        }
        lines.extend(check.records.iter().map(|r| format!("  {r}")));
    }
    lines.join("\n")
}

/// The whole report: headline, then the body.
pub fn render(check: &Check) -> String {
    format!("{}\n{}", headline(check), body(check))
}
