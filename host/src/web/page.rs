//! `GET /`: the snapshot as a server-rendered HTML page, complete without JavaScript. The
//! shell, the stylesheet and the refresh script are assets built into the binary, so the
//! page works offline and loads nothing from elsewhere.

use std::fmt::Write;

use super::snapshot::{Plugin, Snapshot};

/// The page around `<main>`.
const SHELL: &str = include_str!("assets/page.html");
/// Served at `/assets/page.css`.
pub const CSS: &str = include_str!("assets/page.css");
/// Served at `/assets/live.js`: swaps in a fresh `<main>` every few seconds.
pub const SCRIPT: &str = include_str!("assets/live.js");

/// The whole page for `snap`; `now_ms` (Unix ms) dates the events.
pub fn render(snap: &Snapshot, now_ms: i64) -> String {
    SHELL.replace("<!--main-->", &main(snap, now_ms))
}

fn main(snap: &Snapshot, now_ms: i64) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<main>\n<h1>roost</h1>\n<p class=\"meta\">version {} · up {}</p>\n",
        esc(snap.version),
        ago(snap.uptime_secs)
    );
    if let Some(e) = &snap.store_error {
        let _ = writeln!(
            h,
            "<p class=\"error\">The host store could not be read: {}</p>",
            esc(e)
        );
    }
    gateways(&mut h, snap);
    plugins(&mut h, snap);
    events(&mut h, snap, now_ms);
    h.push_str("</main>");
    h
}

fn gateways(h: &mut String, snap: &Snapshot) {
    h.push_str("<section id=\"gateways\">\n<h2>Gateways</h2>\n");
    h.push_str("<table>\n<tr><th>gateway</th><th>state</th><th>reconnects</th><th>queued per target</th></tr>\n");
    for g in &snap.gateways {
        let s = &g.status;
        let class = match s.state {
            "connected" | "disabled" => "ok",
            _ => "bad",
        };
        let mut state = format!("{} for {}", s.state, ago(s.since_secs));
        if !s.reason.is_empty() {
            let _ = write!(state, ": {}", s.reason);
        }
        if !s.warning.is_empty() {
            let _ = write!(state, " (warning: {})", s.warning);
        }
        let queues = match g.queues.as_slice() {
            [] => "empty".to_string(),
            qs => qs
                .iter()
                .map(|q| format!("<code>{}</code>: {}", esc(&q.target), q.messages))
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{} <span class=\"muted\">({})</span></td><td class=\"state\">{}</td><td class=\"num\">{}</td><td>{queues}</td></tr>",
            esc(&s.name),
            esc(s.kind),
            esc(&state),
            s.reconnects
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn plugins(h: &mut String, snap: &Snapshot) {
    h.push_str("<section id=\"plugins\">\n<h2>Plugins</h2>\n<table>\n");
    h.push_str("<tr><th>plugin</th><th>state</th><th>status</th><th>calls</th><th>p50</th><th>p99</th><th>memory</th><th>kv</th></tr>\n");
    for p in &snap.plugins {
        plugin_row(h, p);
    }
    h.push_str("</table>\n</section>\n");
}

fn plugin_row(h: &mut String, p: &Plugin) {
    let class = if p.is_bad() { "bad" } else { "ok" };
    let mut status = esc(&p.status);
    if !p.last_error.is_empty() {
        let _ = write!(
            status,
            "\n<span class=\"error\">last error: {}</span>",
            esc(&p.last_error)
        );
    }
    if p.failures > 0 {
        let _ = write!(
            status,
            "\n<span class=\"muted\">{} failures</span>",
            p.failures
        );
    }
    let _ = writeln!(
        h,
        "<tr class=\"{class}\" id=\"plugin-{name}\"><td>{name} <span class=\"muted\">{version}</span></td><td class=\"state\">{state}</td><td class=\"status\">{status}</td><td class=\"num\">{calls}</td><td class=\"num\">{p50}</td><td class=\"num\">{p99}</td><td class=\"num\">{memory}</td><td class=\"num\">{kv}</td></tr>",
        name = esc(&p.name),
        version = esc(&p.version),
        state = esc(&p.state),
        calls = p.calls,
        p50 = millis(p.p50_ms),
        p99 = millis(p.p99_ms),
        memory = bytes(p.memory_bytes),
        kv = bytes(p.kv_bytes),
    );
}

fn events(h: &mut String, snap: &Snapshot, now_ms: i64) {
    h.push_str("<section id=\"events\">\n<h2>Recent events</h2>\n");
    if snap.events.is_empty() {
        h.push_str("<p class=\"muted\">none yet</p>\n");
    } else {
        h.push_str("<ul class=\"events\">\n");
        for e in &snap.events {
            let secs = u64::try_from(now_ms - e.at_ms).unwrap_or(0) / 1000;
            let _ = writeln!(
                h,
                "<li><span class=\"muted\">{} ago</span> {} <b>{}</b> {}</li>",
                ago(secs),
                esc(e.plugin.as_deref().unwrap_or("host")),
                esc(&e.kind),
                esc(&e.detail)
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

/// `≤ 1 ms`, `≤ 250 ms`, `> 10 s`: percentiles are histogram bucket bounds.
fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "–".into(),
        Some(ms) if ms.is_infinite() => "&gt; 10 s".into(),
        Some(ms) if ms >= 1000.0 => format!("≤ {} s", ms / 1000.0),
        Some(ms) => format!("≤ {ms} ms"),
    }
}

/// `0`, `12 KiB`, `3.1 MiB`.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => n.to_string(),
        1024..1_048_576 => format!("{} KiB", n / 1024),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// `42s`, `3m`, `2h`, `5d`.
fn ago(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Text made safe inside HTML elements and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_cannot_inject_markup() {
        assert_eq!(esc("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn the_page_is_the_shell_with_its_main() {
        let snap = Snapshot {
            version: "0.1.0",
            uptime_secs: 5,
            gateways: Vec::new(),
            plugins: Vec::new(),
            events: Vec::new(),
            store_error: None,
        };
        let page = render(&snap, 0);
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<main>\n<h1>roost</h1>"), "{page}");
        assert!(page.contains("none yet"));
        assert_eq!(millis(Some(0.25 * 1000.0)), "≤ 250 ms");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
