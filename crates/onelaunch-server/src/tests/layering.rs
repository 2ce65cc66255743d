//! The crate's shape, checked: dependencies between top-level modules point one
//! way (`api`, `ui` → `access`, `closing`, `server_led` → `ingest` → `db`,
//! `closing` → `gate` → `db`,
//! with `integrations` beside `db`), SQL is written only in `db/`, stored
//! bytes are read through `content`, and no source file grows past the size
//! a reader can hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each one may use (besides `error`, which all may).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "api",
        &[
            "access",
            "closing",
            "compare",
            "content",
            "db",
            "gate",
            "ingest",
            "observe",
            "lifecycle",
            "server_led",
            "throttle",
        ],
    ),
    (
        "ui",
        &[
            "access",
            "closing",
            "compare",
            "content",
            "db",
            "gate",
            "ingest",
            "lifecycle",
            "server_led",
            "throttle",
        ],
    ),
    ("server_led", &["access", "db", "ingest", "integrations"]),
    ("closing", &["db", "gate"]),
    ("lifecycle", &["blobs", "closing", "content", "db"]),
    ("compare", &["db", "ingest"]),
    ("gate", &["db"]),
    ("access", &["db"]),
    ("ingest", &["blobs", "content", "db", "metrics"]),
    ("content", &["blobs", "db"]),
    ("integrations", &["db", "metrics"]),
    ("observe", &["db", "metrics"]),
    ("metrics", &[]),
    ("db", &["secrets"]),
    ("fuzz_targets", &["ingest"]),
    ("blobs", &[]),
    ("backup", &["db", "secrets"]),
    ("secrets", &[]),
    ("redact", &[]),
    ("listen", &[]),
    ("throttle", &[]),
    ("error", &[]),
];

const MAX_LINES: usize = 800;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file except this test layer, with its text.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !rel.starts_with("tests/") {
                    out.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &src(), &mut out);
    out.sort();
    out
}

/// The text without unit-test modules (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

fn top_module(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

/// `crate::x` paths and `use crate::{x, y::…}` groups, as top-level names.
fn used_modules(text: &str, tops: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: after `{` or a comma at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        start = false;
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if tops.contains(name.as_str()) {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if tops.contains(name.as_str()) {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn top_level_modules_depend_one_way() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let tops: BTreeSet<&str> = allowed.keys().copied().collect();
    let mut wrong = Vec::new();
    for (rel, text) in sources() {
        let top = top_module(&rel);
        if top == "lib" {
            continue; // the wiring sees everything
        }
        let Some(may) = allowed.get(top) else {
            wrong.push(format!(
                "{rel}: module `{top}` is not in the layering table"
            ));
            continue;
        };
        for used in used_modules(without_tests(&text), &tops) {
            if used != top && used != "error" && !may.contains(used.as_str()) {
                wrong.push(format!("{rel}: `{top}` uses `{used}`"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_layering_table_has_no_cycle() {
    let allowed: BTreeMap<&str, Vec<&str>> =
        ALLOWED.iter().map(|(m, d)| (*m, d.to_vec())).collect();
    fn reaches(
        from: &str,
        to: &str,
        g: &BTreeMap<&str, Vec<&str>>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(from).into_iter().flatten() {
            if *next == to || (seen.insert(next.to_string()) && reaches(next, to, g, seen)) {
                return true;
            }
        }
        false
    }
    for m in allowed.keys() {
        assert!(
            !reaches(m, m, &allowed, &mut BTreeSet::new()),
            "{m} reaches itself"
        );
    }
}

#[test]
fn sql_is_written_only_in_db() {
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, text)| !rel.starts_with("db/") && text.contains("sqlx::query"))
        .map(|(rel, _)| rel)
        .collect();
    assert!(outside.is_empty(), "SQL outside db/: {outside:?}");
}

/// Attachment bytes may be in the database (small ones) or in a file: a
/// reader that asked the files alone would answer 404 for most attachments.
/// Only `content.rs` reads stored bytes from the files; `ingest` reads back
/// a body it has just received.
#[test]
fn stored_bytes_are_read_through_content() {
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, text)| {
            !(rel.starts_with("blobs") || matches!(rel.as_str(), "content.rs" | "ingest/mod.rs"))
                && (text.contains(".open_file(") || text.contains(".get_file("))
        })
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        outside.is_empty(),
        "blob files read outside content.rs: {outside:?}"
    );
}

/// `test_results` and `test_cases` have no foreign keys to the rows they
/// point at (on PostgreSQL migrations 0023 and 0024, nor the label rows,
/// which are no longer written, 0026; on SQLite 0028): the
/// data layer guards those rows instead, and that holds only while they are
/// deleted where it expects. Projects, jobs and test cases are never deleted;
/// results, sessions and job runs only with their launch, by
/// `db::launches::delete_launch_rows`, which locks the launch first
/// (`lock_for_delete`; `tests::owner_locks`).
#[test]
fn rows_without_keys_are_deleted_only_with_their_launch() {
    const TABLES: [&str; 6] = [
        "projects",
        "jobs",
        "test_cases",
        "test_results",
        "sessions",
        "job_runs",
    ];
    let mut deletes = Vec::new();
    for (rel, text) in sources() {
        let text = without_tests(&text).to_ascii_uppercase();
        for table in TABLES {
            let needle = format!("DELETE FROM {}", table.to_ascii_uppercase());
            for (at, _) in text.match_indices(&needle) {
                let next = text[at + needle.len()..].chars().next();
                if !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    deletes.push(format!("{rel}: {table}"));
                }
            }
        }
    }
    deletes.sort();
    assert_eq!(
        deletes,
        [
            "db/launches.rs: job_runs",
            "db/launches.rs: sessions",
            "db/launches.rs: test_results",
        ],
        "rows that no key guards any more are deleted somewhere new"
    );
}

#[test]
fn no_source_file_is_too_long_to_read() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(rel, text)| format!("{rel} ({} lines)", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "above {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_checker_sees_a_wrong_dependency() {
    let tops: BTreeSet<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    let used = used_modules(
        "use crate::{db::{self, Db}, server_led::x};\nlet a = crate::api::router();",
        &tops,
    );
    assert_eq!(
        used,
        ["api", "db", "server_led"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert_eq!(without_tests("a\n#[cfg(test)]\nmod tests {}"), "a\n");
}
