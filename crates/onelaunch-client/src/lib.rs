//! Client side of onelaunch.
//!
//! * [`ApiClient`] — typed calls to the Allure TestOps API subset that onelaunch
//!   speaks (launches, jobs and job runs, sessions, results, attachments,
//!   fixtures, projects). Every request carries `Authorization: api-token <token>`;
//!   connection errors, timeouts, 408, 429 and 5xx are retried with exponential
//!   backoff (honouring `Retry-After`); failures are classified in [`ClientError`]
//!   with messages naming the call and the server's message, never the token.
//! * [`Uploader`] — uploads an Allure results directory (and JUnit XML reports)
//!   into one test session, in batches with bounded concurrency, as the Allure 3
//!   TestOps plugin does; one-shot ([`Uploader::upload_paths`]) or while tests run
//!   ([`Uploader::upload_ready`], [`Uploader::finish`]).
//! * [`spool`] — when the server stays unreachable, what was not acknowledged is
//!   kept in a [`Spool`] directory ([`Uploader::save_spool`]) and sent later
//!   ([`Uploader::resume`]); nothing acknowledged is sent twice.
//!
//! ```no_run
//! use onelaunch_client::{ApiClient, ClientConfig, SessionTarget, UploadOptions, Uploader};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new("https://testops.example.com".parse()?, "api token");
//! let client = ApiClient::new(config)?;
//! let target = SessionTarget { launch_id: 42, job_run_id: None };
//! let mut uploader = Uploader::new(client, target, UploadOptions::default());
//! uploader.upload_paths(&["allure-results".into()]).await?;
//! for problem in &uploader.report().problems {
//!     eprintln!("skipped {problem}");
//! }
//! # Ok(())
//! # }
//! ```

pub mod api;
mod multipart;
pub mod spool;
pub mod upload;

pub use api::{certificate_problem, trust_roots, CaCertError};
pub use api::{ApiClient, AttachmentPart, ClientConfig, ClientError, GateOwner, PlanItem, Secret};
pub use spool::{Spool, SpoolError, SpoolManifest};
pub use upload::{
    FileProblem, ProgressCounts, SessionTarget, UploadError, UploadOptions, UploadProgress,
    UploadReport, Uploader,
};

#[cfg(test)]
mod tests;
