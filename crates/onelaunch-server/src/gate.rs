//! The launch-wide quality gate: one verdict for the whole launch, whichever
//! pipelines filled it.
//!
//! * Rules come from the project (defaults, admin only), from the plan a
//!   server-led launch was created from, and from the caller (`launch gate`
//!   flags); [`api::GateRules::stricter`] combines them, so no source can
//!   loosen another (a CI job's token cannot switch off its project's gate).
//! * [`measure`] reads what the rules need; [`judge`] (pure) turns rules and
//!   measurements into one outcome per rule.
//! * When a launch closes ([`on_close`]) the verdict of its configured rules is
//!   stored with it; reopening clears it ([`on_reopen`]). The failed rules the
//!   Allure 3 TestOps plugin reports (`quality-gate/bulk`) are kept beside it
//!   and fail the gate too.

use std::collections::BTreeMap;

use onelaunch_api::{self as api, GateOutcome, GateRules, Id, MAX_GATE_DETAILS};

use crate::db::launches::LaunchRow;
use crate::db::{self, Db};
use crate::error::ServerResult;

/// What the rules are checked against.
#[derive(Debug, Default, Clone)]
pub(crate) struct Measured {
    /// Tests per final status (latest attempts; manual results included).
    pub counts: BTreeMap<String, i64>,
    /// The tests whose final status counts as failure (first names).
    pub failing: Vec<String>,
    pub expected_runs: Option<i64>,
    /// `job / run` names of the launch's job runs with their stage.
    pub runs: Vec<(String, String)>,
    /// The planned scope of a server-led launch.
    pub planned: Option<api::PlannedScope>,
    /// New failures against the previous closed launch of the same name:
    /// that launch's id, how many, and the first names. `None` when there is
    /// no such launch (or the rule is not asked).
    pub new_failures: Option<(Id, i64, Vec<String>)>,
    pub launch_name: String,
}

/// The rules configured for a launch: its project's defaults and its plan's
/// rules, the strictest of both.
pub(crate) async fn configured_rules(db: &Db, launch: &LaunchRow) -> ServerResult<GateRules> {
    let mut rules = db::gate::project_rules(db, launch.project_id)
        .await?
        .unwrap_or_default();
    if let Some(run) = db::server_runs::get_run(db, launch.id).await? {
        if let Some(plan) = run.plan_id {
            if let Some(p) = db::gate::plan_rules(db, plan).await? {
                rules = rules.stricter(&p);
            }
        }
    }
    Ok(rules)
}

/// Measures what `rules` ask of a launch.
pub(crate) async fn measure(
    db: &Db,
    launch: &LaunchRow,
    rules: &GateRules,
) -> ServerResult<Measured> {
    let statuses = rules.failure_statuses();
    let mut m = Measured {
        launch_name: launch.name.clone(),
        expected_runs: launch.expected_job_runs,
        ..Default::default()
    };
    for item in db::launches::statistic(db, launch.id, None).await? {
        *m.counts.entry(item.status).or_default() += item.count;
    }
    if rules.max_failures.is_some() {
        m.failing = db::gate::failing_tests(db, launch.id, &statuses, MAX_GATE_DETAILS).await?;
    }
    if rules.all_job_runs == Some(true) {
        m.runs = db::job_runs::launch_job_runs(db, launch.id)
            .await?
            .into_iter()
            .map(|r| (format!("{} / {}", r.job_name, r.name), r.stage))
            .collect();
    }
    if rules.all_planned == Some(true) {
        m.planned = db::server_runs::launch_planned(db, launch.id).await?;
    }
    if rules.no_new_failures == Some(true) {
        if let Some(prev) =
            db::gate::previous_closed_launch(db, launch.project_id, &launch.name, launch.id).await?
        {
            let (n, names) =
                db::gate::new_failures(db, launch.id, prev, &statuses, MAX_GATE_DETAILS).await?;
            m.new_failures = Some((prev, n, names));
        }
    }
    Ok(m)
}

fn outcome(rule: &str, expected: String, actual: String, passed: bool) -> GateOutcome {
    GateOutcome {
        rule: rule.into(),
        expected,
        actual,
        passed,
        details: Vec::new(),
    }
}

/// One outcome per rule that is set, in a fixed order.
pub(crate) fn judge(rules: &GateRules, m: &Measured) -> Vec<GateOutcome> {
    let statuses = rules.failure_statuses();
    let total: i64 = m.counts.values().sum();
    let count = |s: &str| m.counts.get(s).copied().unwrap_or(0);
    let mut out = Vec::new();
    if let Some(max) = rules.max_failures {
        let failures: i64 = statuses.iter().map(|s| count(s)).sum();
        let parts: Vec<String> = statuses
            .iter()
            .map(|s| format!("{s} {}", count(s)))
            .collect();
        let mut o = outcome(
            "maxFailures",
            format!("at most {max}"),
            format!("{failures} ({})", parts.join(", ")),
            failures <= max,
        );
        if failures > max {
            o.details = m.failing.clone();
        }
        out.push(o);
    }
    if let Some(min) = rules.min_pass_rate {
        let ran = total - count("skipped");
        let rate = if ran > 0 {
            count("passed") as f64 * 100.0 / ran as f64
        } else {
            0.0
        };
        out.push(outcome(
            "minPassRate",
            format!("at least {}%", trim(min)),
            format!(
                "{}% ({} passed of {ran} that ran)",
                trim((rate * 10.0).floor() / 10.0),
                count("passed")
            ),
            ran > 0 && rate + 1e-9 >= min,
        ));
    }
    if let Some(min) = rules.min_tests {
        out.push(outcome(
            "minTests",
            format!("at least {min}"),
            total.to_string(),
            total >= min,
        ));
    }
    if rules.all_job_runs == Some(true) {
        let started = m.runs.len() as i64;
        let unfinished: Vec<&(String, String)> = m
            .runs
            .iter()
            .filter(|(_, stage)| stage != api::stage::FINISHED)
            .collect();
        let missing = m.expected_runs.map_or(0, |e| (e - started).max(0));
        let mut actual = match m.expected_runs {
            Some(e) => format!("{started} of {e} expected started"),
            None => format!("{started} started"),
        };
        actual.push_str(&format!(", {} not finished", unfinished.len()));
        let mut o = outcome(
            "allJobRuns",
            "every expected job run finished".into(),
            actual,
            missing == 0 && unfinished.is_empty() && started > 0,
        );
        o.details = unfinished
            .iter()
            .take(MAX_GATE_DETAILS)
            .map(|(name, stage)| format!("{name}: {stage}"))
            .collect();
        if missing > 0 {
            o.details
                .push(format!("{missing} expected job run(s) never started"));
        }
        out.push(o);
    }
    if rules.all_planned == Some(true) {
        let mut o = match &m.planned {
            Some(p) => {
                let mut o = outcome(
                    "allPlanned",
                    "every planned test reported".into(),
                    format!("{} of {} planned tests reported", p.reported, p.planned),
                    p.missing_count() == 0,
                );
                o.details = p
                    .missing
                    .iter()
                    .take(MAX_GATE_DETAILS)
                    .map(|c| c.name.clone())
                    .collect();
                o
            }
            None => outcome(
                "allPlanned",
                "every planned test reported".into(),
                "no planned scope (not created from a plan)".into(),
                true,
            ),
        };
        if !o.passed && o.details.is_empty() {
            o.details.push("see the launch's planned scope".into());
        }
        out.push(o);
    }
    if rules.no_new_failures == Some(true) {
        out.push(match &m.new_failures {
            Some((prev, n, names)) => {
                let mut o = outcome(
                    "noNewFailures",
                    "none".into(),
                    format!("{n} against launch {prev}"),
                    *n == 0,
                );
                o.details = names.clone();
                o
            }
            None => outcome(
                "noNewFailures",
                "none".into(),
                format!("no earlier closed launch named {:?}", m.launch_name),
                true,
            ),
        });
    }
    out
}

/// A number without a useless fraction (`95`, `87.5`).
fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Judges a launch now against its configured rules, made stricter by
/// `extra` (the caller's rules).
pub(crate) async fn evaluate(
    db: &Db,
    launch: &LaunchRow,
    extra: Option<&GateRules>,
) -> ServerResult<api::GateReport> {
    let mut rules = configured_rules(db, launch).await?;
    if let Some(extra) = extra {
        rules = rules.stricter(extra);
    }
    let measured = measure(db, launch, &rules).await?;
    let outcomes = judge(&rules, &measured);
    let allure = db::gate::allure_items(db, launch.id).await?;
    Ok(api::GateReport {
        launch_id: launch.id,
        passed: outcomes.iter().all(|o| o.passed) && allure.is_empty(),
        rules,
        outcomes,
        allure,
        evaluated_date: db::now_ms(),
        launch_closed: launch.closed,
    })
}

/// The gate of a launch as the API shows it: the verdict stored at close
/// when there is one and the caller asks nothing more, else judged now.
pub(crate) async fn report(
    db: &Db,
    launch: &LaunchRow,
    extra: Option<&GateRules>,
) -> ServerResult<api::GateReport> {
    if launch.closed && extra.is_none_or(|e| e.is_empty() && e.failure_statuses.is_none()) {
        if let Some(stored) = db::gate::stored_report(db, launch.id).await? {
            return Ok(stored);
        }
    }
    evaluate(db, launch, extra).await
}

/// Stores the verdict of a launch that just closed (when it has rules or
/// the Allure plugin reported failed rules).
pub(crate) async fn on_close(db: &Db, launch_id: Id) -> ServerResult<()> {
    let Some(launch) = db::launches::get_launch(db, launch_id).await? else {
        return Ok(());
    };
    let report = evaluate(db, &launch, None).await?;
    if report.outcomes.is_empty() && report.allure.is_empty() {
        return db::gate::store_report(db, launch_id, None).await;
    }
    let report = api::GateReport {
        launch_closed: true,
        ..report
    };
    db::gate::store_report(db, launch_id, Some(&report)).await
}

/// Forgets the stored verdict of a launch that reopened.
pub(crate) async fn on_reopen(db: &Db, launch_id: Id) -> ServerResult<()> {
    db::gate::store_report(db, launch_id, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(counts: &[(&str, i64)]) -> Measured {
        Measured {
            counts: counts.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            launch_name: "release".into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_rule_reports_its_measure_and_verdict() {
        let rules = GateRules {
            max_failures: Some(0),
            min_pass_rate: Some(90.0),
            min_tests: Some(10),
            ..Default::default()
        };
        let mut m = measured(&[("passed", 7), ("failed", 1), ("skipped", 2)]);
        m.failing = vec!["checkout total".into()];
        let o = judge(&rules, &m);
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].rule, "maxFailures");
        assert_eq!(o[0].actual, "1 (failed 1, broken 0)");
        assert!(!o[0].passed);
        assert_eq!(o[0].details, vec!["checkout total"]);
        assert_eq!(o[1].actual, "87.5% (7 passed of 8 that ran)");
        assert!(!o[1].passed);
        assert_eq!(o[2].actual, "10");
        assert!(o[2].passed);

        let fine = measured(&[("passed", 9), ("skipped", 1)]);
        assert!(judge(&rules, &fine)[..2].iter().all(|o| o.passed));
        // Nothing ran: no pass rate can be claimed.
        let none = measured(&[("skipped", 3)]);
        assert!(!judge(&rules, &none)[1].passed);
    }

    #[test]
    fn job_runs_planned_tests_and_new_failures() {
        let rules = GateRules {
            all_job_runs: Some(true),
            all_planned: Some(true),
            no_new_failures: Some(true),
            ..Default::default()
        };
        let mut m = measured(&[("passed", 3)]);
        m.expected_runs = Some(3);
        m.runs = vec![
            ("linux / 1".into(), api::stage::FINISHED.into()),
            ("windows / 7".into(), api::stage::IN_PROGRESS.into()),
        ];
        let o = judge(&rules, &m);
        assert!(!o[0].passed);
        assert_eq!(o[0].actual, "2 of 3 expected started, 1 not finished");
        assert!(o[0].details.iter().any(|d| d.starts_with("windows / 7")));
        assert!(o[1].passed, "no plan: nothing planned is missing");
        assert!(o[2].passed, "no earlier launch: nothing is new");

        m.runs[1].1 = api::stage::FINISHED.into();
        m.expected_runs = Some(2);
        m.new_failures = Some((4, 1, vec!["login".into()]));
        let o = judge(&rules, &m);
        assert!(o[0].passed);
        assert!(!o[2].passed);
        assert_eq!(o[2].actual, "1 against launch 4");
        assert_eq!(o[2].details, vec!["login"]);
    }
}
