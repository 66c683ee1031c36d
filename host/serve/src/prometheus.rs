//! `GET /metrics` of the admin listener: the server's counters in the Prometheus text format
//! (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::{AdmissionStats, ServerState};
use mixio_host::{Backend, Retirement};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Status codes a response may have (100..=999), one counter each.
const STATUSES: usize = 900;

/// The requests one component answered: by status, and a latency histogram. Lock-free.
pub(crate) struct RequestStats {
    by_status: Box<[AtomicU64]>,
    /// Per bucket (and a last one for larger), not cumulative: summed when rendered.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl RequestStats {
    pub(crate) fn new() -> RequestStats {
        RequestStats {
            by_status: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts a response with `status`, answered `elapsed` after the request arrived.
    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        if let Some(counter) = usize::from(status).checked_sub(100).and_then(|i| self.by_status.get(i)) {
            counter.fetch_add(1, Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS.iter().position(|&bound| secs <= bound).unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }
}

/// Status counted for a request whose client left before it was answered (as nginx does).
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// Records one request in its component's stats when dropped: with the status it was
/// [`answered`](Counted::answered) with, else as [`CLIENT_CLOSED`].
pub(crate) struct Counted<'a> {
    stats: &'a RequestStats,
    started: Instant,
    status: u16,
}

impl<'a> Counted<'a> {
    pub(crate) fn new(stats: &'a RequestStats) -> Counted<'a> {
        Counted { stats, started: Instant::now(), status: CLIENT_CLOSED }
    }

    pub(crate) fn answered(&mut self, status: u16) {
        self.status = status;
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.stats.record(self.status, self.started.elapsed());
    }
}

/// Renders every metric of the server `shared`.
pub(crate) fn render(shared: &ServerState) -> String {
    let mut out = String::new();
    let host = shared.host.metrics();

    header(&mut out, "mixio_requests_total", "counter", "Requests answered by a component, by status.");
    for served in &shared.components {
        for (i, counter) in served.requests.by_status.iter().enumerate() {
            let n = counter.load(Relaxed);
            if n > 0 {
                let name = label(served.component.name());
                let _ =
                    writeln!(out, "mixio_requests_total{{component=\"{name}\",status=\"{}\"}} {n}", i + 100);
            }
        }
    }

    header(
        &mut out,
        "mixio_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its response's head, by component.",
    );
    for served in &shared.components {
        let name = label(served.component.name());
        let stats = &served.requests;
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += stats.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "mixio_request_duration_seconds_bucket{{component=\"{name}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += stats.buckets[BUCKETS.len()].load(Relaxed);
        let sum = stats.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "mixio_request_duration_seconds_bucket{{component=\"{name}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "mixio_request_duration_seconds_sum{{component=\"{name}\"}} {sum}");
        let _ = writeln!(out, "mixio_request_duration_seconds_count{{component=\"{name}\"}} {cumulative}");
    }

    let admission =
        |out: &mut String, name: &str, kind: &str, help: &str, value: fn(AdmissionStats) -> u64| {
            header(out, name, kind, help);
            for served in &shared.components {
                let _ = writeln!(
                    out,
                    "{name}{{component=\"{}\"}} {}",
                    label(served.component.name()),
                    value(served.admission.stats())
                );
            }
        };
    admission(
        &mut out,
        "mixio_requests_in_flight",
        "gauge",
        "Instances running a request, by component.",
        |s| s.running as u64,
    );
    admission(
        &mut out,
        "mixio_queue_depth",
        "gauge",
        "Requests waiting for an instance, by component.",
        |s| s.queued as u64,
    );
    admission(
        &mut out,
        "mixio_requests_rejected_total",
        "counter",
        "Requests refused with 503: queue full.",
        |s| s.rejected,
    );

    gauge(&mut out, "mixio_instances", "Guest instances alive.", host.instances as u64);
    gauge(
        &mut out,
        "mixio_instances_idle",
        "Instances of reusing components waiting for their next request.",
        host.idle_instances as u64,
    );
    header(&mut out, "mixio_instance_reuses_total", "counter", "Requests served by a reused instance.");
    let _ = writeln!(out, "mixio_instance_reuses_total {}", host.reused);
    header(
        &mut out,
        "mixio_instance_retirements_total",
        "counter",
        "Instances of reusing components retired, by reason.",
    );
    for reason in Retirement::ALL {
        let _ = writeln!(
            out,
            "mixio_instance_retirements_total{{reason=\"{}\"}} {}",
            reason.name(),
            host.retired(reason)
        );
    }
    gauge(
        &mut out,
        "mixio_suspended_guests",
        "Guests suspended in a host call right now.",
        host.suspended as u64,
    );
    gauge(&mut out, "mixio_websocket_clients", "Websocket clients connected.", shared.hub.clients() as u64);
    gauge(
        &mut out,
        "mixio_websocket_channels",
        "Websocket channels with clients on this server (each holds a subscription).",
        shared.hub.channels() as u64,
    );
    gauge(
        &mut out,
        "mixio_pubsub_subjects",
        "Subjects the server is subscribed to on its pub/sub backend.",
        shared.host.pubsub_subjects() as u64,
    );
    let connections = &shared.connections;
    gauge(
        &mut out,
        "mixio_connections",
        "Client connections open (websockets included).",
        connections.open.load(Relaxed) as u64,
    );
    gauge(
        &mut out,
        "mixio_connections_max",
        "The most client connections kept open at once (max_connections).",
        shared.max_connections as u64,
    );
    header(&mut out, "mixio_connections_total", "counter", "Client connections accepted.");
    let _ = writeln!(out, "mixio_connections_total {}", connections.accepted.load(Relaxed));
    header(
        &mut out,
        "mixio_write_timeouts_total",
        "counter",
        "Connections cut because the client took less than 16 KiB of a response in write_idle_timeout.",
    );
    let _ = writeln!(out, "mixio_write_timeouts_total {}", connections.write_timeouts.load(Relaxed));
    gauge(
        &mut out,
        "mixio_body_memory_bytes",
        "Bytes of request bodies held in memory (at most max_body_memory).",
        shared.body_memory_used(),
    );
    header(
        &mut out,
        "mixio_body_memory_refused_total",
        "counter",
        "Requests refused with 503 because request bodies in memory were at max_body_memory.",
    );
    let _ = writeln!(out, "mixio_body_memory_refused_total {}", shared.body_memory_refused.load(Relaxed));
    header(&mut out, "mixio_guest_calls_total", "counter", "Guest calls started.");
    let _ = writeln!(out, "mixio_guest_calls_total {}", host.calls);

    let backends = [
        ("mixio_backend_calls_total", "Calls guests made to backends, by kind.", false),
        ("mixio_backend_errors_total", "Backend calls that returned an error, by kind.", true),
    ];
    for (name, help, errors) in backends {
        header(&mut out, name, "counter", help);
        for backend in Backend::ALL {
            let calls = host.backend(backend);
            let value = if errors { calls.errors } else { calls.calls };
            let _ = writeln!(out, "{name}{{backend=\"{}\"}} {value}", backend.name());
        }
    }
    out
}

/// `value` escaped for a label: backslash, double quote and newline.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_dropped_before_its_answer_counts_as_client_closed() {
        let stats = RequestStats::new();
        let mut answered = Counted::new(&stats);
        answered.answered(200);
        drop(answered);
        drop(Counted::new(&stats));
        assert_eq!(stats.by_status[100].load(Relaxed), 1);
        assert_eq!(stats.by_status[usize::from(CLIENT_CLOSED) - 100].load(Relaxed), 1);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_response_lands_in_its_status_and_latency_bucket() {
        let stats = RequestStats::new();
        stats.record(201, Duration::from_millis(3));
        stats.record(201, Duration::from_millis(3));
        stats.record(999, Duration::from_secs(60));
        stats.record(42, Duration::ZERO); // not a status: counted in the histogram only
        assert_eq!(stats.by_status[101].load(Relaxed), 2);
        assert_eq!(stats.by_status[899].load(Relaxed), 1);
        assert_eq!(stats.buckets[2].load(Relaxed), 2, "3 ms is in the 5 ms bucket");
        assert_eq!(stats.buckets[BUCKETS.len()].load(Relaxed), 1, "60 s is above every bound");
        assert_eq!(stats.buckets[0].load(Relaxed), 1);
        assert_eq!(stats.sum_micros.load(Relaxed), 60_006_000);
    }
}
