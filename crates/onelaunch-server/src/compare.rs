//! Comparing two launches test by test. Tests are matched by their test-case
//! identity (`ingest::test_cases::identity_of`: `ALLURE_ID`, else
//! `testCaseId`, else `fullName`, else name), whichever job ran them, so two
//! pipelines' launches compare as well as two runs of one pipeline. Within a
//! launch a test has one outcome per attempt key (per job that ran it): its
//! latest attempt's status, and every attempt's status. A test fails in a
//! launch when one of its outcomes is `failed` or `broken`; it is flaky when
//! the status changed between the attempts of one outcome.

use std::collections::BTreeMap;

use onelaunch_api::{self as api, category};

use crate::db::combine::AttemptRow;
use crate::db::launches::LaunchRow;
use crate::db::{self, Db};
use crate::error::ServerResult;
use crate::ingest::test_cases::identity_of;

/// Compares `head` with `base` (both loaded through the caller's scope).
pub(crate) async fn compare(
    db: &Db,
    base: &LaunchRow,
    head: &LaunchRow,
) -> ServerResult<api::LaunchComparison> {
    let b = db::combine::launch_attempts(db, base.id).await?;
    let h = db::combine::launch_attempts(db, head.id).await?;
    let (summary, tests) = classify(&b, &h);
    Ok(api::LaunchComparison {
        base: api::CompareLaunch {
            id: base.id,
            name: base.name.clone(),
        },
        head: api::CompareLaunch {
            id: head.id,
            name: head.name.clone(),
        },
        summary,
        tests,
    })
}

/// A test of one launch: its display name and its outcomes.
#[derive(Default)]
struct Side {
    name: String,
    outcomes: Vec<api::JobOutcome>,
}

impl Side {
    fn failing(&self) -> bool {
        self.outcomes.iter().any(|o| is_failure(&o.status))
    }
    fn flaky(&self) -> bool {
        self.outcomes.iter().any(|o| o.flaky)
    }
}

fn is_failure(status: &str) -> bool {
    api::DEFAULT_FAILURE_STATUSES.contains(&status)
}

fn identity(r: &AttemptRow) -> String {
    identity_of(&api::UploadTestResult {
        uuid: r.uuid.clone(),
        name: r.name.clone(),
        full_name: r.full_name.clone(),
        test_case_id: r.test_case_id.clone(),
        labels: r.labels.clone(),
        ..Default::default()
    })
}

/// A launch's attempts (in attempt order) as tests by identity.
fn sides(rows: &[AttemptRow]) -> BTreeMap<String, Side> {
    let mut out: BTreeMap<String, Side> = BTreeMap::new();
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j < rows.len() && rows[j].test_key == rows[i].test_key {
            j += 1;
        }
        let attempts = &rows[i..j];
        let latest = &attempts[attempts.len() - 1];
        let statuses: Vec<String> = attempts.iter().map(|a| a.status.clone()).collect();
        let side = out.entry(identity(latest)).or_default();
        side.name = latest.name.clone();
        side.outcomes.push(api::JobOutcome {
            job_id: latest.job_id,
            job: latest.job_name.clone().unwrap_or_else(|| "-".into()),
            status: latest.status.clone(),
            result_id: latest.id,
            flaky: statuses.iter().any(|s| *s != statuses[0]),
            attempts: statuses,
        });
        i = j;
    }
    for side in out.values_mut() {
        side.outcomes
            .sort_by(|a, b| (&a.job, a.result_id).cmp(&(&b.job, b.result_id)));
    }
    out
}

/// The comparison of two launches' attempts: counts, and every test that is
/// not unchanged or is flaky in the head launch.
fn classify(
    base: &[AttemptRow],
    head: &[AttemptRow],
) -> (api::CompareSummary, Vec<api::ComparedTest>) {
    let mut b = sides(base);
    let h = sides(head);
    let mut summary = api::CompareSummary::default();
    let mut tests = Vec::new();
    for (identity, hs) in h {
        let bs = b.remove(&identity);
        let category = match &bs {
            None => category::ADDED,
            Some(bs) => match (bs.failing(), hs.failing()) {
                (false, true) => category::NEW_FAILURE,
                (true, false) => category::FIXED,
                (true, true) => category::STILL_FAILING,
                (false, false) => category::UNCHANGED,
            },
        };
        let flaky = hs.flaky();
        push(&mut summary, category, flaky);
        if category != category::UNCHANGED || flaky {
            tests.push(api::ComparedTest {
                identity,
                name: hs.name,
                category: category.into(),
                flaky,
                base: bs.map(|s| s.outcomes).unwrap_or_default(),
                head: hs.outcomes,
            });
        }
    }
    for (identity, bs) in b {
        push(&mut summary, category::REMOVED, false);
        tests.push(api::ComparedTest {
            identity,
            name: bs.name,
            category: category::REMOVED.into(),
            flaky: false,
            base: bs.outcomes,
            head: Vec::new(),
        });
    }
    let rank = |c: &str| category::ALL.iter().position(|x| *x == c).unwrap_or(99);
    tests.sort_by(|x, y| {
        (rank(&x.category), &x.name, &x.identity).cmp(&(rank(&y.category), &y.name, &y.identity))
    });
    (summary, tests)
}

fn push(s: &mut api::CompareSummary, category: &str, flaky: bool) {
    match category {
        category::NEW_FAILURE => s.new_failures += 1,
        category::FIXED => s.fixed += 1,
        category::STILL_FAILING => s.still_failing += 1,
        category::ADDED => s.added += 1,
        category::REMOVED => s.removed += 1,
        _ => s.unchanged += 1,
    }
    if flaky {
        s.flaky += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, job: i64, key: &str, full: &str, status: &str) -> AttemptRow {
        AttemptRow {
            id,
            job_id: Some(job),
            job_name: Some(format!("job {job}")),
            test_key: format!("job:{job}|{key}"),
            uuid: format!("u{id}"),
            test_case_id: None,
            name: full.into(),
            full_name: Some(full.into()),
            status: status.into(),
            labels: Vec::new(),
        }
    }

    #[test]
    fn categories_by_identity_across_jobs() {
        let base = vec![
            row(1, 1, "a", "A", "passed"),
            row(2, 1, "b", "B", "failed"),
            row(3, 1, "c", "C", "broken"),
            row(4, 1, "d", "D", "passed"),
            row(5, 1, "e", "E", "passed"),
        ];
        // Another pipeline's job (2) and a third job (3) running A too.
        let mut head = vec![
            row(10, 2, "a2", "A", "passed"),
            row(11, 3, "a3", "A", "failed"),
            row(12, 2, "b", "B", "passed"),
            row(13, 2, "c", "C", "failed"),
            // flaky: failed, then passed on retry
            row(14, 2, "e", "E", "failed"),
            row(15, 2, "e", "E", "passed"),
            row(16, 2, "f", "F", "passed"),
        ];
        head.sort_by(|x, y| x.test_key.cmp(&y.test_key));
        let (s, tests) = classify(&base, &head);
        assert_eq!(
            (
                s.new_failures,
                s.fixed,
                s.still_failing,
                s.added,
                s.removed,
                s.unchanged,
                s.flaky
            ),
            (1, 1, 1, 1, 1, 1, 1)
        );
        let a = tests.iter().find(|t| t.name == "A").unwrap();
        assert_eq!(a.category, "newFailure");
        assert_eq!(a.head.len(), 2, "each job's outcome");
        let e = tests.iter().find(|t| t.name == "E").unwrap();
        assert!(e.flaky);
        assert_eq!(e.category, "unchanged");
        assert_eq!(e.head[0].attempts, ["failed", "passed"]);
        assert_eq!(tests[0].category, "newFailure");
    }
}
