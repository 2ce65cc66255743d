//! Client side of onelaunch: a typed HTTP client for the TestOps API subset
//! ([`ApiClient`]) with authentication, retries and error classification, and
//! the concurrent Allure results uploader ([`upload::Uploader`]).

pub mod api;

pub use api::{ApiClient, AttachmentPart, ClientConfig, ClientError, PlanItem, Secret};
pub mod upload;

pub use upload::{FileProblem, SessionTarget, UploadError, UploadOptions, UploadReport, Uploader};

#[cfg(test)]
mod tests;
