//! End-to-end tests: the real server on 127.0.0.1:0 with a temporary SQLite
//! database, driven by the real `onelaunch` binary.

mod api;
mod behaviour;
mod ci_led;
mod support;
