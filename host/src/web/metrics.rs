//! `/metrics`: the snapshot in Prometheus text format (version 0.0.4), written by hand:
//! a dozen families do not need a metrics library, and the text is checked by a real
//! parser in the end-to-end tests.

use std::fmt::Write;

use super::Counts;
use super::snapshot::Snapshot;
use crate::runtime::call_stats::BUCKETS;

/// The `Content-Type` Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders `snap` and the server's own request counts.
pub fn render(snap: &Snapshot, counts: &Counts) -> String {
    let mut m = Metrics::default();
    m.family(
        "roost_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    m.sample("roost_uptime_seconds", &[], snap.uptime_secs);

    m.family(
        "roost_plugin_up",
        "gauge",
        "1 when the plugin is running, else 0; the state label says what it is instead.",
    );
    for p in &snap.plugins {
        let up = u64::from(p.state == "running");
        m.sample(
            "roost_plugin_up",
            &[("plugin", &p.name), ("state", &p.state)],
            up,
        );
    }
    m.family(
        "roost_plugin_calls_total",
        "counter",
        "Commands and events a plugin served.",
    );
    for p in &snap.plugins {
        m.sample(
            "roost_plugin_calls_total",
            &[("plugin", &p.name)],
            p.stats.calls,
        );
    }
    m.family(
        "roost_plugin_crashes_total",
        "counter",
        "Calls that trapped, timed out or ran out of memory (the instance was rebuilt).",
    );
    for p in &snap.plugins {
        m.sample(
            "roost_plugin_crashes_total",
            &[("plugin", &p.name)],
            p.failures,
        );
    }
    let duration = "roost_plugin_call_duration_seconds";
    m.family(
        duration,
        "histogram",
        "Wall-clock time of a plugin's calls.",
    );
    for p in &snap.plugins {
        let mut cumulative = 0;
        for (i, n) in p.stats.buckets.iter().enumerate() {
            cumulative += n;
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            m.sample(
                &format!("{duration}_bucket"),
                &[("plugin", &p.name), ("le", &le)],
                cumulative,
            );
        }
        m.sample_f64(
            &format!("{duration}_sum"),
            &[("plugin", &p.name)],
            p.stats.sum_secs,
        );
        m.sample(
            &format!("{duration}_count"),
            &[("plugin", &p.name)],
            p.stats.calls,
        );
    }
    m.family(
        "roost_plugin_memory_bytes",
        "gauge",
        "Linear memory of the plugin's running instance.",
    );
    for p in &snap.plugins {
        m.sample(
            "roost_plugin_memory_bytes",
            &[("plugin", &p.name)],
            p.memory_bytes,
        );
    }
    m.family(
        "roost_plugin_kv_bytes",
        "gauge",
        "Keys plus values in the plugin's KV store.",
    );
    for p in &snap.plugins {
        m.sample("roost_plugin_kv_bytes", &[("plugin", &p.name)], p.kv_bytes);
    }

    m.family(
        "roost_gateway_connected",
        "gauge",
        "1 when the gateway is connected, else 0; the state label says what it is instead.",
    );
    for g in &snap.gateways {
        let s = &g.status;
        let labels = [
            ("gateway", s.name.as_str()),
            ("kind", s.kind),
            ("state", s.state),
        ];
        m.sample(
            "roost_gateway_connected",
            &labels,
            u64::from(s.state == "connected"),
        );
    }
    m.family(
        "roost_gateway_reconnects_total",
        "counter",
        "Times the gateway got its connection back since the daemon started.",
    );
    for g in &snap.gateways {
        let labels = [("gateway", g.status.name.as_str())];
        m.sample(
            "roost_gateway_reconnects_total",
            &labels,
            g.status.reconnects,
        );
    }
    m.family(
        "roost_outbox_messages",
        "gauge",
        "Messages waiting in the outbox for a target.",
    );
    for q in snap.gateways.iter().flat_map(|g| &g.queues) {
        m.sample(
            "roost_outbox_messages",
            &[("target", &q.target)],
            q.messages,
        );
    }
    m.family(
        "roost_outbox_bytes",
        "gauge",
        "Payload bytes waiting in the outbox for a target.",
    );
    for q in snap.gateways.iter().flat_map(|g| &g.queues) {
        m.sample("roost_outbox_bytes", &[("target", &q.target)], q.bytes);
    }

    m.family(
        "roost_http_requests_total",
        "counter",
        "Requests this HTTP server answered, by route and status.",
    );
    for ((route, status), n) in &counts.routes {
        let status = status.to_string();
        m.sample(
            "roost_http_requests_total",
            &[("route", route), ("status", &status)],
            *n,
        );
    }
    m.family(
        "roost_webhook_requests_total",
        "counter",
        "Webhooks handed to a plugin, by plugin and the status answered.",
    );
    for ((plugin, status), n) in &counts.webhooks {
        let status = status.to_string();
        m.sample(
            "roost_webhook_requests_total",
            &[("plugin", plugin), ("status", &status)],
            *n,
        );
    }
    m.out
}

#[derive(Default)]
struct Metrics {
    out: String,
}

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"{}\"", escape(v));
        }
        self.out.push('}');
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut m = Metrics::default();
        m.sample("x", &[("a", "q\"b\\c\nd")], 1);
        assert_eq!(m.out, "x{a=\"q\\\"b\\\\c\\nd\"} 1\n");
    }
}
