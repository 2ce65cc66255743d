//! Exit codes. Stable and documented in the README so CI wrappers can choose
//! between failing and warning.

use onelaunch_client::{ClientError, UploadError};

/// Success.
pub const OK: u8 = 0;
/// Any other error (bad configuration, unexpected server answer, I/O).
pub const ERROR: u8 = 1;
/// Command-line usage error (clap).
pub const USAGE: u8 = 2;
/// Some input files were refused (malformed, unsafe); everything else was uploaded.
pub const FILES_REFUSED: u8 = 3;
/// The server could not be reached, even after retries.
pub const UNREACHABLE: u8 = 4;
/// The token is missing, wrong, or not allowed to do this.
pub const UNAUTHORIZED: u8 = 5;
/// The launch is closed (use --reopen-closed-launch).
pub const LAUNCH_CLOSED: u8 = 6;
/// The launch, job run or project does not exist (or is in another project).
pub const NOT_FOUND: u8 = 7;
/// The server stayed unreachable: what was not delivered is kept in a spool;
/// `onelaunch upload --resume` sends it.
pub const SPOOLED: u8 = 8;

/// An error that carries its own exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

/// The exit code for an error chain.
pub fn code_of(err: &anyhow::Error) -> u8 {
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

pub fn client_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Unreachable { .. } => UNREACHABLE,
        ClientError::Unauthorized(_) => UNAUTHORIZED,
        ClientError::NotFound(_) => NOT_FOUND,
        ClientError::LaunchClosed(_) => LAUNCH_CLOSED,
        _ => ERROR,
    }
}
