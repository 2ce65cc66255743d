//! Test cases learned from uploads: a result's test-case identity (its
//! `ALLURE_ID`/`AS_ID` label, else `testCaseId`, else `fullName`, else name),
//! the labels worth keeping, and tracking the cases of newly stored results
//! inside the ingest transaction (the job that ran a case becomes its default
//! executor).

use std::collections::{BTreeMap, HashSet};

use onelaunch_api::{self as api, Id};

use crate::db::case_last::{note_attempts, Attempt};
use crate::db::test_cases::*;
use crate::db::{clip, clipped, cut, now_ms, MAX_NAME};
use crate::error::ServerResult;

/// Labels that change from run to run and say nothing about the test.
pub(crate) const VOLATILE_LABELS: [&str; 2] = ["host", "thread"];

/// The `ALLURE_ID` label value (allure-pytest writes it as `as_id`).
pub(crate) fn allure_id_of(labels: &[api::LabelDto]) -> Option<String> {
    ["ALLURE_ID", "AS_ID"].iter().find_map(|name| {
        labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| l.value.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

pub(crate) fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A result's test-case identity: `ALLURE_ID`, else `testCaseId`, else
/// `fullName`, else name.
pub(crate) fn identity_of(r: &api::UploadTestResult) -> String {
    identity_with(allure_id_of(&r.labels).as_deref(), r)
}

/// [`identity_of`] with the result's `ALLURE_ID` already read.
fn identity_with(allure_id: Option<&str>, r: &api::UploadTestResult) -> String {
    // Joined, not formatted: it runs once per result, and `format!`'s
    // machinery took about 1,200 instructions a call.
    let id = if let Some(a) = allure_id {
        ["allure:", a].concat()
    } else if let Some(t) = non_empty(&r.test_case_id) {
        ["tcid:", t].concat()
    } else if let Some(f) = non_empty(&r.full_name) {
        ["full:", f].concat()
    } else {
        ["name:", r.name.trim()].concat()
    };
    clipped(id, 2048)
}

/// A label worth keeping on a test case, borrowed from its result: trimmed,
/// cut to its bounds. Stored as `{"name", "value"}`, as [`api::LabelDto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub(crate) struct CaseLabel<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
}

/// Labels worth keeping on a test case (for filters): trimmed, without the
/// volatile ones, without repeats (the first of each kept, in order).
/// Borrowed: a result's labels are copied once, into the case's stored JSON.
pub(crate) fn case_labels(labels: &[api::LabelDto]) -> Vec<CaseLabel<'_>> {
    // A result has a handful of labels, where looking through those kept is
    // cheaper than hashing; a set only for a long list.
    const FEW: usize = 16;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        let label = CaseLabel {
            name: cut(l.name.trim(), 255),
            value: cut(l.value.trim(), 1024),
        };
        if label.name.is_empty()
            || VOLATILE_LABELS
                .iter()
                .any(|v| v.eq_ignore_ascii_case(label.name))
        {
            continue;
        }
        let new = if labels.len() <= FEW {
            !out.contains(&label)
        } else {
            seen.insert(label)
        };
        if new {
            out.push(label);
        }
    }
    out
}

/// The stored form of a case's labels: byte for byte the JSON serde_json
/// writes for them (`[{"name":…,"value":…},…]`), written directly: once per
/// result, serde_json's writer cost more than working the labels out (2.7%
/// of the server's instructions: it scans each text a byte at a time, the
/// keys too). A text that needs an escape is written by serde_json itself.
pub(crate) fn labels_json(labels: &[CaseLabel<'_>]) -> String {
    fn text(out: &mut String, s: &str) {
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            out.push_str(&serde_json::to_string(s).unwrap_or_default());
        } else {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
    }
    // `[` `]`, and per label its texts, `{"name":""` `,"value":""}` (22
    // bytes) and a comma (one fewer is written): when no text needs an
    // escape, one byte more than the length, so the JSON a batch holds until
    // its write never grows.
    let size: usize = labels.iter().map(|l| l.name.len() + l.value.len()).sum();
    let mut out = String::with_capacity(2 + size + labels.len() * 23);
    out.push('[');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        text(&mut out, l.name);
        out.push_str(",\"value\":");
        text(&mut out, l.value);
        out.push('}');
    }
    out.push(']');
    out
}

/// What `r` says about its test case: its identity, name, `ALLURE_ID`, the
/// labels worth keeping and its status. Worked out for a batch before its
/// write transaction (see [`CaseFacts`]).
pub(crate) fn case_facts(r: &api::UploadTestResult) -> CaseFacts {
    let name = clip(r.name.trim(), MAX_NAME);
    let full_name = non_empty(&r.full_name).map(|f| clip(f, 4096));
    let allure_id = allure_id_of(&r.labels);
    CaseFacts::with_json(
        identity_with(allure_id.as_deref(), r),
        allure_id.map(|a| clipped(a, 255)),
        if name.is_empty() {
            full_name.clone().unwrap_or_else(|| r.uuid.clone())
        } else {
            name
        },
        full_name,
        labels_json(&case_labels(&r.labels)),
        api::normalize_status(r.status.as_deref()),
    )
}

/// Keeps the test cases of freshly stored results up to date: called by
/// [`super::results_counted`] inside its transaction with the results it
/// inserted (`(result id, result, its case facts)`). Creates the cases not
/// known yet (or updates their names and labels), and queues each case's
/// latest attempt in this batch ([`crate::db::case_last`]: its status; a
/// result uploaded through a job run makes that run's job the case's default
/// executor). Moves a `scheduled` job run to `in_progress`.
pub(crate) async fn track_test_cases(
    conn: &mut Conn,
    session: &crate::db::results::SessionRow,
    results: &[(Id, &api::UploadTestResult, &CaseFacts)],
) -> ServerResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    if let Some(run) = session.job_run_id {
        crate::db::job_runs::start_receiving(conn, run, now).await?;
    }
    let job_id = session.job_id;
    // One update per test case, in identity order: its latest attempt in
    // this batch, as (facts, start, result id).
    let mut latest: BTreeMap<&str, (&CaseFacts, i64, Id)> = BTreeMap::new();
    for &(result_id, r, facts) in results {
        let start = r.start.or(r.stop).unwrap_or(now);
        match latest.get(facts.identity.as_str()) {
            Some(&(_, s, id)) if (s, id) > (start, result_id) => {}
            _ => {
                latest.insert(&facts.identity, (facts, start, result_id));
            }
        }
    }
    let updates: Vec<&CaseFacts> = latest.values().map(|u| u.0).collect();
    let cases = upsert_cases(conn, session.project_id, &updates).await?;
    let attempts: Vec<Attempt> = cases
        .ids
        .iter()
        .zip(latest.values())
        .map(|(&case_id, &(facts, start, result_id))| Attempt {
            case_id,
            status: facts.status,
            start,
            result_id,
            job_id,
        })
        .collect();
    note_attempts(conn, &attempts, cases.known_through).await?;
    if let Some(run) = session.job_run_id {
        crate::db::server_runs::mark_reported(conn, run, &cases.ids).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(
        labels: &[(&str, &str)],
        tcid: Option<&str>,
        full: Option<&str>,
    ) -> api::UploadTestResult {
        api::UploadTestResult {
            uuid: "u".into(),
            name: "n".into(),
            test_case_id: tcid.map(str::to_string),
            full_name: full.map(str::to_string),
            labels: labels
                .iter()
                .map(|(n, v)| api::LabelDto {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn identity_precedence() {
        assert_eq!(
            identity_of(&result(&[("as_id", "101")], Some("t"), Some("f"))),
            "allure:101"
        );
        assert_eq!(
            identity_of(&result(&[("ALLURE_ID", " 7 ")], None, None)),
            "allure:7"
        );
        assert_eq!(identity_of(&result(&[], Some("t"), Some("f"))), "tcid:t");
        assert_eq!(identity_of(&result(&[], Some(" "), Some("f"))), "full:f");
        assert_eq!(identity_of(&result(&[], None, None)), "name:n");
    }

    #[test]
    fn volatile_labels_are_dropped() {
        let r = result(
            &[
                ("host", "h1"),
                ("thread", "1"),
                ("tag", "smoke"),
                ("tag", "smoke"),
            ],
            None,
            None,
        );
        let l = case_labels(&r.labels);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "tag");
    }

    /// A long list is kept the same way as a short one: trimmed, cut, the
    /// first of each repeat in order; stored as the result's labels are.
    #[test]
    fn long_label_lists_keep_the_first_of_each_in_order() {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for i in 0..40 {
            pairs.push(("tag".into(), format!(" t{} ", i % 25)));
        }
        pairs.push(("host".into(), "h".into()));
        pairs.push(("x".repeat(300), "y".repeat(2000)));
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let r = result(&refs, None, None);
        let l = case_labels(&r.labels);
        assert_eq!(l.len(), 26, "{l:?}");
        for (i, label) in l.iter().take(25).enumerate() {
            assert_eq!((label.name, label.value), ("tag", format!("t{i}").as_str()));
        }
        assert_eq!((l[25].name.len(), l[25].value.len()), (255, 1024));
        let owned: Vec<api::LabelDto> = l
            .iter()
            .map(|l| api::LabelDto {
                name: l.name.into(),
                value: l.value.into(),
            })
            .collect();
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            serde_json::to_string(&owned).unwrap()
        );
        assert_eq!(labels_json(&l), serde_json::to_string(&owned).unwrap());
    }

    #[test]
    fn labels_are_stored_as_serde_json_writes_them() {
        // Every character an escape is written for, and some that need none.
        let mut texts: Vec<String> = (0u8..0x20).map(|b| format!("a{}b", b as char)).collect();
        texts.extend(
            [
                "",
                "plain",
                "q\"uote",
                "back\\slash",
                "sl/ash",
                "\u{7f}del",
                "é€😀",
                "\u{2028}\u{2029}",
                "\\\"",
                "end\\",
            ]
            .map(String::from),
        );
        for lists in [0, 1, 2, texts.len()] {
            let labels: Vec<CaseLabel<'_>> = texts
                .iter()
                .zip(texts.iter().rev())
                .take(lists)
                .map(|(n, v)| CaseLabel { name: n, value: v })
                .collect();
            assert_eq!(
                labels_json(&labels),
                serde_json::to_string(&labels).unwrap(),
                "{labels:?}"
            );
        }
        // Without escapes, the room taken is the length written.
        let plain: Vec<CaseLabel<'_>> = ["suite", "tests", "host", "4242-MainThread"]
            .iter()
            .map(|t| CaseLabel { name: t, value: t })
            .collect();
        let written = labels_json(&plain);
        assert_eq!(written, serde_json::to_string(&plain).unwrap());
        assert!(
            written.capacity() <= written.len() + plain.len(),
            "{}",
            written.capacity()
        );
        // What a case's facts store is that form.
        let r = result(&[("suite", "a\"b"), ("owner", "x\ny")], None, None);
        let facts = case_facts(&r);
        assert_eq!(
            facts.labels,
            r#"[{"name":"suite","value":"a\"b"},{"name":"owner","value":"x\ny"}]"#
        );
    }
}
