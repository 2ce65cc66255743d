//! Health, metrics and the request log: `/healthz` (the process answers),
//! `/readyz` ([`health`]: the database, its migrations, the blob store),
//! `/metrics` ([`scrape`]: the Prometheus exposition, gauges read at scrape
//! time) and one log line and one metrics sample per request
//! ([`requests::track`]). The handlers are in `api/observe.rs`; see
//! `docs/observability.md`.

use std::path::PathBuf;

pub(crate) mod health;
pub(crate) mod requests;
pub(crate) mod scrape;

/// What the observability endpoints need besides the database.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observe {
    /// The blob store's directory (`<data>/blobs`): probed by `/readyz`, its
    /// file system's free space shown by `/metrics`.
    pub blobs_dir: PathBuf,
    /// `/metrics` answers only an admin token (`--metrics-require-admin`).
    pub metrics_require_admin: bool,
}
