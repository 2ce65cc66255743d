//! The process's Prometheus metrics: counters and histograms recorded where
//! the work is done (one call each in `ingest` and `integrations`, the request
//! middleware in `observe`), rendered in the Prometheus text format by
//! `observe::scrape`. Names and labels are documented in
//! `docs/observability.md`; no label carries a project, a launch or any other
//! id, so the exposition says nothing about who uploads what.
//!
//! The recorder is the process-wide `metrics` recorder (one server per
//! process), installed on first use.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub(crate) const HTTP_REQUESTS: &str = "onelaunch_http_requests_total";
pub(crate) const HTTP_DURATION: &str = "onelaunch_http_request_duration_seconds";
pub(crate) const RESULTS: &str = "onelaunch_results_ingested_total";
pub(crate) const ATTACHMENTS: &str = "onelaunch_attachments_ingested_total";
pub(crate) const ATTACHMENT_BYTES: &str = "onelaunch_attachment_bytes_ingested_total";
pub(crate) const TRIGGERS: &str = "onelaunch_triggers_total";

/// Upper bounds of the request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder's handle, installing the recorder on the first call.
pub(crate) fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
            .expect("latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows no counters");
        }
        describe();
        // Present (at 0) from the start, so `rate()` sees the first increase.
        for name in [RESULTS, ATTACHMENTS, ATTACHMENT_BYTES] {
            counter!(name).increment(0);
        }
        handle
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response head, by route template and method"
    );
    describe_counter!(
        RESULTS,
        "Test results stored by uploads (new ones; a re-sent result is not counted)"
    );
    describe_counter!(ATTACHMENTS, "Attachments stored by uploads");
    describe_counter!(
        ATTACHMENT_BYTES,
        "Bytes of the attachments stored by uploads"
    );
    describe_counter!(
        TRIGGERS,
        "CI triggers of server-led runs, by provider and outcome (ok or the error kind)"
    );
}

/// One answered request. `route` is the matched route template (or
/// `unmatched`), never the raw path.
pub(crate) fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    handle();
    let (route, method) = (route.to_string(), method.to_string());
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method).record(seconds);
}

/// Results stored by a committed upload transaction.
pub(crate) fn results_ingested(new: usize) {
    handle();
    counter!(RESULTS).increment(new as u64);
}

/// One attachment stored (its row committed), `bytes` long.
pub(crate) fn attachment_ingested(bytes: u64) {
    handle();
    counter!(ATTACHMENTS).increment(1);
    counter!(ATTACHMENT_BYTES).increment(bytes);
}

/// A raw upload file kept in its session: a `file` is an attachment, a
/// `container` is not.
pub(crate) fn session_file_ingested(kind: &str, bytes: u64) {
    if kind == "file" {
        attachment_ingested(bytes);
    }
}

/// The outcome of one trigger: `ok`, or the error's kind (its variant name
/// in snake case: `rejected`, `timeout`, `not_approved`, …), never its text.
pub(crate) fn trigger<E: std::fmt::Debug>(provider: &str, outcome: &Result<(), E>) {
    handle();
    let outcome = match outcome {
        Ok(()) => "ok".to_string(),
        Err(e) => error_kind(&format!("{e:?}")),
    };
    counter!(TRIGGERS, "provider" => provider.to_string(), "outcome" => outcome).increment(1);
}

/// `Rejected { provider: …` → `rejected`; `NotABaseUrl(…)` → `not_a_base_url`.
fn error_kind(debug: &str) -> String {
    let name: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    if out.is_empty() {
        "error".into()
    } else {
        out
    }
}

/// Sets a gauge read at scrape time.
pub(crate) fn set_gauge(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    handle();
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.to_string()))
        .collect();
    gauge!(name, labels).set(value);
}

/// Describes a gauge (once per name is enough; repeating is harmless).
pub(crate) fn describe_scraped(name: &'static str, help: &'static str) {
    handle();
    describe_gauge!(name, help);
}

/// The exposition, after draining recorded histogram samples.
pub(crate) fn render() -> String {
    let h = handle();
    h.run_upkeep();
    h.render()
}

/// Drains histogram samples (the recorder keeps them until a render or an
/// upkeep): run periodically so memory stays flat when nobody scrapes.
pub(crate) fn upkeep() {
    handle().run_upkeep();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_variant_names() {
        assert_eq!(error_kind("Rejected { provider: \"github\" }"), "rejected");
        assert_eq!(error_kind("NotABaseUrl(\"x\")"), "not_a_base_url");
        assert_eq!(error_kind("BadAnswer { .. }"), "bad_answer");
        assert_eq!(error_kind(""), "error");
    }
}
