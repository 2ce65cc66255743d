//! The fuzz targets on stable Rust in every `cargo test`: each target of
//! `fuzz/` gets its seeds (`fuzz/seeds/<target>`) and a bounded number of
//! deterministic mutations of them (bit flips, byte edits, truncation,
//! splices, duplicated chunks, JSON/XML tokens, deep nesting). A panic fails
//! the test and prints the input. `scripts/fuzz` runs the same targets under
//! libFuzzer with coverage guidance; this is the quick, always-on version.
//! `ONELAUNCH_FUZZ_ITERATIONS` changes the number of mutations per target.

use std::path::PathBuf;

use onelaunch_server::fuzz_targets as targets;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOKENS: [&[u8]; 16] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"\xff\xfe",
    b"<",
    b"/>",
    b"&amp;",
];

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/seeds/{target}"));
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn mutate(rng: &mut StdRng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = v.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] = rng.gen();
            }
            2 => {
                let i = rng.gen_range(0..=len);
                v.insert(i, rng.gen());
            }
            3 if len > 0 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - i).min(64));
                v.drain(i..i + n);
            }
            4 if len > 0 => v.truncate(rng.gen_range(0..len)),
            5 => {
                let i = rng.gen_range(0..=len);
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            6 if len > 1 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..len.min(a + 256));
                let chunk = v[a..=b].to_vec();
                let at = rng.gen_range(0..=len);
                v.splice(at..at, chunk);
            }
            7 => {
                let other = &others[rng.gen_range(0..others.len())];
                if !other.is_empty() {
                    let cut_v = rng.gen_range(0..=len);
                    let cut_o = rng.gen_range(0..other.len());
                    v.truncate(cut_v);
                    v.extend_from_slice(&other[cut_o..]);
                }
            }
            _ => {
                // Deep nesting at a random place.
                let i = rng.gen_range(0..=len);
                let depth = rng.gen_range(100..3000);
                let open: &[u8] = if rng.gen() { b"[" } else { b"{\"steps\":[" };
                let nested: Vec<u8> = open.repeat(depth);
                v.splice(i..i, nested);
            }
        }
    }
    v
}

fn iterations() -> usize {
    std::env::var("ONELAUNCH_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

fn run(target: &str, f: fn(&[u8])) {
    let seeds = seeds(target);
    for s in &seeds {
        f(s);
    }
    let mut rng = StdRng::seed_from_u64(0x00e1_a0c4 ^ target.len() as u64);
    for i in 0..iterations() {
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed, &seeds);
        let result = std::panic::catch_unwind(|| f(&input));
        if result.is_err() {
            panic!(
                "fuzz target {target} panicked on mutation {i}; input ({} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            );
        }
    }
}

#[test]
fn parse_result() {
    run("parse_result", targets::parse_result);
}

#[test]
fn parse_container() {
    run("parse_container", targets::parse_container);
}

#[test]
fn parse_junit() {
    run("parse_junit", targets::parse_junit);
}

#[test]
fn upload_json() {
    run("upload_json", targets::upload_json);
}

#[test]
fn upload_file() {
    run("upload_file", targets::upload_file);
}
