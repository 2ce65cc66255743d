//! Entry points of the fuzz targets: arbitrary bytes through exactly the code
//! the CLI and the server run on untrusted input. `fuzz/` wraps each in a
//! cargo-fuzz (libFuzzer) target; `tests/fuzz_targets.rs` feeds them bounded
//! mutations of the seed corpus (`fuzz/seeds/`) on stable Rust in every
//! `cargo test`. Besides "no panic, no stack overflow", each checks what must
//! hold for any input:
//!
//! * a parsed result converts, bounds and round-trips through the wire type;
//! * every refusal of an API body is a 4xx, never a 5xx;
//! * a file name the server accepts has no control characters.

use onelaunch_api as api;

use crate::ingest::{decode, limits};

/// Names the `upload_file` target picks from with its first byte; a first
/// byte past the list takes the name from the input (up to a NUL).
pub const FILE_NAMES: [&str; 9] = [
    "a-result.json",
    "b-container.json",
    "TEST-suite.xml",
    "environment.properties",
    "executor.json",
    "shot-attachment.png",
    "bad\nname-result.json",
    "../../etc/x-result.json",
    "nul\0-result.json",
];

fn round_trip(r: &api::UploadTestResult) {
    let bytes = serde_json::to_vec(r).expect("a bounded result serialises");
    match serde_json::from_slice::<api::UploadTestResult>(&bytes) {
        Ok(back) => assert_eq!(&back, r, "wire round trip changed the result"),
        // The model parser allows 128 levels of nesting in the file; the wire
        // form of the same steps is as deep, and the server refuses it with 400.
        Err(e) => assert!(
            e.to_string().contains("recursion limit"),
            "the server could not read what the client sends: {e}"
        ),
    }
}

/// `*-result.json` as the CLI and `upload/file` read it.
pub fn parse_result(data: &[u8]) {
    if let Ok(r) = onelaunch_model::parse_result(data) {
        let _ = onelaunch_model::attachment_sources(&r);
        let mut up = onelaunch_model::to_upload(&r);
        if limits::bound_result(0, &mut up).is_ok() {
            round_trip(&up);
        }
    }
}

/// `*-container.json`: parse, then the fixtures the upload derives from it.
pub fn parse_container(data: &[u8]) {
    if let Ok(c) = onelaunch_model::parse_container(data) {
        for (_, mut fixtures) in onelaunch_model::fixtures_by_result(std::slice::from_ref(&c)) {
            for f in &fixtures {
                let _ = onelaunch_model::fixture_attachment_sources(f);
            }
            let _ = limits::bound_fixtures(&mut fixtures);
        }
    }
}

/// JUnit XML reports.
pub fn parse_junit(data: &[u8]) {
    if let Ok(results) = onelaunch_model::parse_junit(data, "fuzz.xml") {
        let mut ups: Vec<_> = results.iter().map(onelaunch_model::to_upload).collect();
        if limits::bound_results(&mut ups).is_ok() {
            ups.iter().for_each(round_trip);
        }
    }
}

fn client_error<T>(r: crate::ServerResult<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(e.status().is_client_error(), "{} for {e}", e.status());
            None
        }
    }
}

/// The JSON bodies of the upload endpoints, decoded and bounded as the
/// handlers do.
pub fn upload_json(data: &[u8]) {
    client_error(decode::upload_results(data));
    client_error(decode::upload_start(data));
    if let Some(mut f) = client_error(decode::json_body::<api::UploadFixtures>(data)) {
        client_error(limits::bound_fixtures(&mut f.fixtures));
    }
    if let Some(mut s) = client_error(decode::json_body::<api::SessionCreate>(data)) {
        limits::bound_environment(&mut s.environment);
        assert!(s.environment.iter().all(|kv| kv.key.len() <= 255));
    }
    if let Some(mut l) = client_error(decode::json_body::<api::LaunchCreate>(data)) {
        client_error(limits::bound_launch(&mut l));
    }
}

/// A raw file of `upload/file`: its name (first byte, see [`FILE_NAMES`]) and
/// its bytes, classified and parsed as the handler does.
pub fn upload_file(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (name, bytes): (String, &[u8]) = match FILE_NAMES.get(pick as usize) {
        Some(n) => (n.to_string(), rest),
        None => {
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let name = String::from_utf8_lossy(&rest[..end]).into_owned();
            (name, rest.get(end + 1..).unwrap_or_default())
        }
    };
    if let Ok(decode::RawFile::Results(results, _)) = decode::raw_file(&name, bytes) {
        assert!(!name.chars().any(char::is_control));
        results.iter().for_each(round_trip);
    }
}
