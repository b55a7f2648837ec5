//! Server metrics, exposed in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters of one server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) requests_in_flight: AtomicU64,
}

impl Metrics {
    pub(crate) fn record(&self, route: &'static str, method: &'static str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((route, method, status)).or_insert(0) += 1;
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP asterope_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE asterope_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((route, method, status), count) in requests.iter() {
            let _ = writeln!(
                out,
                "asterope_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        drop(requests);
        let gauges = [
            (
                "asterope_bytes_received_total",
                "counter",
                "Request body bytes received.",
                &self.bytes_received,
            ),
            (
                "asterope_bytes_sent_total",
                "counter",
                "Response body bytes sent.",
                &self.bytes_sent,
            ),
            (
                "asterope_connections_total",
                "counter",
                "Connections accepted.",
                &self.connections_total,
            ),
            (
                "asterope_connections_open",
                "gauge",
                "Connections open now.",
                &self.connections_open,
            ),
            (
                "asterope_requests_in_flight",
                "gauge",
                "Requests being served now.",
                &self.requests_in_flight,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}
