//! Exit codes. Stable and documented in the README so CI wrappers can choose
//! between failing and warning.

use onelaunch_client::{ClientError, UploadError};

/// Success.
pub(crate) const OK: u8 = 0;
/// Any other error (bad configuration, unexpected server answer, I/O).
pub(crate) const ERROR: u8 = 1;
/// Command-line usage error (clap).
pub(crate) const USAGE: u8 = 2;
/// Some input files were refused (malformed, unsafe); everything else was uploaded.
pub(crate) const FILES_REFUSED: u8 = 3;
/// The server could not be reached, even after retries.
pub(crate) const UNREACHABLE: u8 = 4;
/// The token is missing, wrong, or not allowed to do this.
pub(crate) const UNAUTHORIZED: u8 = 5;
/// The launch is closed (use --reopen-closed-launch).
pub(crate) const LAUNCH_CLOSED: u8 = 6;
/// The launch, job run or project does not exist (or is in another project).
pub(crate) const NOT_FOUND: u8 = 7;
/// The server stayed unreachable: what was not delivered is kept in a spool;
/// `onelaunch upload --resume` sends it.
pub(crate) const SPOOLED: u8 = 8;
/// The inputs hold no test results (an empty directory, a pattern that matches
/// nothing): nothing was created on the server. `--allow-empty` makes this 0.
pub(crate) const NO_RESULTS: u8 = 9;
/// `launch gate`: a quality-gate rule does not hold (each is printed with its
/// measured value).
pub(crate) const GATE_FAILED: u8 = 10;
/// The server's TLS certificate is not trusted (unknown CA, expired, wrong
/// host name). Not retried; fix with `--ca-cert`, `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// or (testing only) `--insecure`.
pub(crate) const TLS_CERTIFICATE: u8 = 11;

/// An error that carries its own exit code.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

impl Exit {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

/// The exit code for an error chain.
pub(crate) fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return client_code(e);
        }
        if let Some(UploadError::Client(e)) = cause.downcast_ref::<UploadError>() {
            return client_code(e);
        }
    }
    ERROR
}

pub(crate) fn client_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Unreachable { .. } => UNREACHABLE,
        ClientError::Certificate { .. } => TLS_CERTIFICATE,
        ClientError::Unauthorized(_) => UNAUTHORIZED,
        ClientError::NotFound(_) => NOT_FOUND,
        ClientError::LaunchClosed(_) => LAUNCH_CLOSED,
        _ => ERROR,
    }
}
