//! Behaviour tests against a real HTTP server on 127.0.0.1.

mod client;
mod server;
mod spool;
mod uploader;
